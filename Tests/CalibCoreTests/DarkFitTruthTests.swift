import CalibIO
import Foundation
import Testing
@testable import CalibCore

@Suite struct DarkFitTruthTests {
    /// Simulated run with injected defects: every kind is flagged with the right bit (>= 99%), good pixels rarely.
    @Test func flagsInjectedPixels() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-darktruth-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var sim = DarkRunSimulator()
        sim.panels = 2; sim.rows = 128; sim.cols = 256; sim.frames = 120; sim.gainModes = 3; sim.seed = 5
        sim.defectFraction = 0.002
        try sim.write(path: tmp + "/d.h5", truthPath: tmp + "/t.h5")
        let s = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/o.h5")
        #expect(s.modes.map(\.gainMode) == [0, 1, 2] && s.modes.map(\.frames) == [40, 40, 40])
        let out = try HDF5File.open(tmp + "/o.h5"), truth = try HDF5File.open(tmp + "/t.h5")
        let status = try out.read(DarkFormat.pixelStatus, as: UInt16.self)
        let ped = try out.read(DarkFormat.pedestals, as: Float.self)
        let truePed = try truth.read(DarkFormat.truthPedestal, as: Float.self)
        let kind = try truth.read(DarkFormat.truthKind, as: UInt8.self)
        let P = sim.pixels
        let expectedBit: [SimulatedDarkPixelKind: UInt16] = [.hot: 1, .cold: 8, .saturated: 4, .badGain: 64, .dead: 2]
        for g in 0..<3 {
            var hits = [SimulatedDarkPixelKind: (Int, Int)]()
            var good = 0, falseFlags = 0, pedErr = 0.0
            for p in 0..<P {
                let k = SimulatedDarkPixelKind(rawValue: kind[p])!, st = status[g * P + p]
                if k == .good {
                    good += 1
                    if st != 0 { falseFlags += 1 }
                    pedErr += abs(Double(ped[g * P + p] - truePed[g * P + p]))
                    continue
                }
                let bit = expectedBit[k]!
                let h = hits[k] ?? (0, 0)
                hits[k] = (h.0 + (st & bit != 0 ? 1 : 0), h.1 + 1)
            }
            for (k, h) in hits {
                #expect(h.1 > 20 && Double(h.0) >= 0.99 * Double(h.1), "mode \(g) \(k): \(h.0)/\(h.1)")
            }
            #expect(Double(falseFlags) < 0.001 * Double(good), "mode \(g): \(falseFlags) good pixels flagged")
            // Pedestal error of good pixels: noise 8 ADU over ~36 gated frames -> ~1.3 ADU mean abs error expected.
            #expect(pedErr / Double(good) < 2.5)
        }
    }

    /// A per-frame, per-row offset is removed by the row common mode: rms returns to the no-offset value.
    @Test func rowCommonModeRemovesRowOffsets() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-darkcm-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let F = 60, rows = 16, cols = 64, P = rows * cols
        var rng = SplitMix64(seed: 8)
        var frames = [UInt16](repeating: 0, count: F * P)
        for f in 0..<F {
            let offsets = (0..<rows).map { _ in rng.nextGaussian() * 20 }
            for p in 0..<P {
                frames[f * P + p] = UInt16((3000 + Double(p % 50) + offsets[p / cols] + 5 * rng.nextGaussian()).rounded())
            }
        }
        let f = try HDF5File.create(tmp + "/d.h5")
        try f.setAttribute(DarkFormat.attrFormat, .string(DarkFormat.runKind))
        try f.write(DarkFormat.frames, frames, shape: [F, 1, rows, cols], chunks: [1, 1, rows, cols])
        try f.close()
        var o = DarkOptions(); o.nrecs1 = 60
        let plain = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/a.h5", options: o)
        o.commonMode = .row
        let corrected = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/b.h5", options: o)
        #expect(plain.modes[0].meanRMS > 10)
        #expect(corrected.modes[0].meanRMS < 6 && corrected.modes[0].meanRMS > 3)
    }
}
