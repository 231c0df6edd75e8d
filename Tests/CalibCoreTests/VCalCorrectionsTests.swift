import Testing
@testable import CalibCore

@Suite struct VCalCorrectionsTests {
    /// The dose model reproduces the seed's 2025 factors at a Run-3 luminosity of ~226/fb (and the reference script's
    /// own 2025_v0 entry, 196.07/fb, gives 1.092, 1.052, 1.036, 1.021 / 1.1373, 1.0882).
    @Test func luminosityModelMatchesTheReference() {
        let c = VCalCorrections.fromLuminosity(run3: 226)
        #expect(c.bpix == [1: 1.095, 2: 1.056, 3: 1.039, 4: 1.023])
        #expect(abs(c.fpix[1]! - 1.1397) <= 0.0001 && abs(c.fpix[2]! - 1.0914) <= 0.0001)
        let v0 = VCalCorrections.fromLuminosity(run3: 196.073394321)
        #expect(v0.bpix == [1: 1.092, 2: 1.052, 3: 1.036, 4: 1.021] && v0.fpix == [1: 1.1373, 2: 1.0882])
    }

    @Test func perLayerAndRingConversion() {
        let c = VCalCorrections(bpix: VCalCorrections.parse("1:1.095,2:1.056,3:1.039,4:1.023", keys: 1...4)!,
                                fpix: VCalCorrections.parse("1:1.1397,2:1.0914", keys: 1...2)!)
        #expect(CMSPixelTopology.vcalConversion(globalModule: 0, corrections: c) == (45.7 * 1.095, -308))
        #expect(CMSPixelTopology.vcalConversion(globalModule: 100, corrections: c) == (47 * 1.056, -60))
        #expect(CMSPixelTopology.vcalConversion(globalModule: 1183, corrections: c) == (47 * 1.023, -60))
        #expect(CMSPixelTopology.vcalConversion(globalModule: 1184, corrections: c) == (47 * 1.1397, -60))
        #expect(CMSPixelTopology.vcalConversion(globalModule: 1184 + 50, corrections: c) == (47 * 1.0914, -60))
        #expect(VCalCorrections.parse("5:1.1", keys: 1...4) == nil && VCalCorrections.parse("1:nan", keys: 1...4) == nil)
        #expect(VCalCorrections.parse("1:1.1,1:1.2", keys: 1...4) == nil)
    }
}
