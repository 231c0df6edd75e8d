/// The CMS Phase-1 pixel detector as calibctl simulates it: 108 FEDs (80 BPix + 28 FPix), 1856 modules of
/// 160 x 416 pixels. The FED id list is a plausible choice, not the official cabling map (docs/numerics.md).
public enum CMSPixelTopology {
    public static let rowsPerModule = 160
    public static let colsPerModule = 416
    public static let pixelsPerModule = rowsPerModule * colsPerModule
    public static let rowsPerROC = 80
    public static let colsPerROC = 52
    public static let bpixModules = 1184
    public static let fpixModules = 672
    public static let bpixLayer1Modules = 96

    /// BPix FEDs: four crates of 24 slots starting at 1200, the first 20 slots of each used (1200-1219, 1224-1243,
    /// 1248-1267, 1272-1291): 80 ids inside 1200-1293 with gaps.
    public static let bpixFEDs: [Int] = (0..<4).flatMap { c in (0..<20).map { 1200 + 24 * c + $0 } }
    /// FPix FEDs: two crates of 14 (1296-1309, 1320-1333): 28 ids inside 1296-1338 with gaps.
    public static let fpixFEDs: [Int] = Array(1296...1309) + Array(1320...1333)
    /// All 108 FED ids in increasing order.
    public static let feds: [Int] = bpixFEDs + fpixFEDs

    public static func isBPix(fed: Int) -> Bool { fed < 1296 }

    /// Modules read out by a FED: BPix 1184 modules over 80 FEDs (the first 64 take 15, the last 16 take 14),
    /// FPix 24 each.
    public static func modules(fed: Int) -> Int {
        if let i = bpixFEDs.firstIndex(of: fed) { return i < 64 ? 15 : 14 }
        return fpixFEDs.contains(fed) ? 24 : 0
    }

    /// Index of a FED's first module among all 1856 (BPix first).
    public static func firstModule(fed: Int) -> Int {
        if let i = bpixFEDs.firstIndex(of: fed) { return i < 64 ? 15 * i : 960 + 14 * (i - 64) }
        if let i = fpixFEDs.firstIndex(of: fed) { return bpixModules + 24 * i }
        return 0
    }

    /// A synthetic detector id: 0x12 (BPix) / 0x14 (FPix) in the high byte and the global module index below.
    public static func detID(globalModule m: Int) -> Int64 {
        Int64(m < bpixModules ? 0x1200_0000 : 0x1400_0000) | Int64(m)
    }

    /// VCal-to-electrons conversion of a module: BPix layer 1 slope 45.7 * corr, offset -308; others 47 and -60.
    public static func vcalConversion(globalModule m: Int, radiationCorrection corr: Double = 1.0) -> (slope: Double, offset: Double) {
        m < bpixLayer1Modules ? (45.7 * corr, -308) : (47, -60)
    }

    /// The 29 VCal-high points of a standard scan.
    public static let standardVCal: [Float] = [6, 8, 10, 12, 14, 15, 16, 17, 18, 21, 24, 28, 35, 42, 49, 56, 63, 70, 77,
                                               84, 91, 98, 105, 112, 119, 126, 133, 140, 160]
    public static let vcalHighToLow = 6.5
}
