import Testing
@testable import CalibCore

@Suite struct GainPayloadEncoderTests {
    /// The reference's test vectors.
    @Test func referenceVectors() {
        let e = GainPayloadEncoder()
        #expect(e.encodePedestal(50) == 108 && abs(e.decodePedestal(108) - 49.4071) < 1e-4)
        #expect(e.encodePedestal(0) == 72 && abs(e.decodePedestal(72) - (-0.3953)) < 1e-4)
        #expect(e.encodePedestal(250) == 253 && abs(e.decodePedestal(253) - 250) < 1e-4)
        #expect(e.encodeGain(150) == 75 && abs(e.decodeGain(75) - 148.3696) < 1e-4)
        #expect(e.encodeGain(500) == 252 && abs(e.decodeGain(252) - 498.5217) < 1e-4)
        #expect(e.decodeGain(254).isNaN && e.decodePedestal(255).isNaN)
    }

    @Test func moduleBlobsHaveReferenceSizesAndReplacement() throws {
        let rows = 160, cols = 416, P = rows * cols
        var gain = [Float](repeating: 0, count: P), ped = gain
        var status = [GainPixelStatus](repeating: .ok, count: P)
        for p in 0..<P { gain[p] = 140 + Float(p % 7); ped[p] = 20 + Float(p % 5) }
        status[0] = .noisy
        status[1] = .flat; gain[1] = .nan; ped[1] = .nan
        gain[2] = 900  // out of range: replaced
        let e = GainPayloadEncoder()
        let m = try e.encodeModule(gain: gain, pedestal: ped, status: status, rows: rows, cols: cols,
                                   globalMean: (150, 30))
        #expect(m.offline.count == 67_392 && m.hlt.count == 1_664)
        #expect(m.noisy == 1 && m.replaced == 2 && m.dead == 0)
        let dec = e.decodeOffline(m.offline, rows: rows, cols: cols)
        #expect(dec.pedestalCodes[0] == GainPayloadEncoder.noisyCode)
        // Pixel 1 (row 0, col 1) took the module mean pedestal (~22).
        #expect(abs(dec.pedestal[1] - 22) < 1.5)
        #expect(abs(dec.pedestal[cols + 5] - ped[cols + 5]) < 1.4)  // one bin is 1.38 ADC
        #expect(dec.gain.count == cols * 2 && dec.gain.allSatisfy { $0 > 138 && $0 < 147 })
        let hlt = e.decodeHLT(m.hlt)
        #expect(hlt.pedestal.count == cols * 2 && hlt.pedestal.allSatisfy { abs($0 - 22) < 1.5 })
    }

    @Test func allBadModuleWithBadGlobalMeanIsDead() throws {
        let rows = 80, cols = 4, P = rows * cols
        let e = GainPayloadEncoder()
        let m = try e.encodeModule(gain: .init(repeating: .nan, count: P), pedestal: .init(repeating: .nan, count: P),
                                   status: .init(repeating: .neverPulsed, count: P), rows: rows, cols: cols,
                                   globalMean: (-5, 30))
        #expect(m.dead == P && m.offline.allSatisfy { $0 == GainPayloadEncoder.deadCode })
        #expect(throws: NumericsError.self) {
            try e.encodeModule(gain: [1], pedestal: [1], status: [.ok], rows: 1, cols: 1, globalMean: (1, 1))
        }
    }
}
