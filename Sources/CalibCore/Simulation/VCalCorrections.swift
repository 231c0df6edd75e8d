import Foundation

/// Radiation corrections of the VCal -> electrons slope per BPix layer (1-4) and FPix ring (1-2), as the CMS gain
/// calibration puts them into its VCal object (seed 002: `corrs_bpix = {1: 1.095, 2: 1.056, 3: 1.039, 4: 1.023}`,
/// `corrs_fpix = {1: 1.1397, 2: 1.0914}`). Missing entries are 1. docs/numerics.md, "VCal corrections".
public struct VCalCorrections: Sendable, Equatable, Codable {
    public var bpix: [Int: Double]
    public var fpix: [Int: Double]

    public init(bpix: [Int: Double] = [:], fpix: [Int: Double] = [:]) { self.bpix = bpix; self.fpix = fpix }

    /// Parses "1:1.095,2:1.056"; nil if malformed or a key outside `keys` or a factor not positive and finite.
    public static func parse(_ text: String, keys: ClosedRange<Int>) -> [Int: Double]? {
        var out: [Int: Double] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: ":")
            guard kv.count == 2, let k = Int(kv[0].trimmingCharacters(in: .whitespaces)),
                  let v = Double(kv[1].trimmingCharacters(in: .whitespaces)), keys.contains(k), v.isFinite, v > 0,
                  out[k] == nil else { return nil }
            out[k] = v
        }
        return out.isEmpty ? nil : out
    }

    // The dose model of SiPixelTools-GainCalibration test/calc_corrections.py (facts, not code).
    /// Integrated luminosity (1/fb) of 2017 and 2018, before Run 3 (BPix layer 1 was replaced after 2018).
    public static let lumi2017 = 49.97, lumi2018 = 65.77
    /// Dose per 1/fb (Mrad): layer 1 counts Run 3 only, the others and the FPix rings everything since 2017.
    public static let doseLayer1 = 0.35, doseLayer2 = 0.0717, doseLayer3 = 0.0438, doseLayer4 = 0.0236
    public static let doseRing1 = 0.212, doseRing2 = 0.056

    /// Bandgap-voltage model of the slope change with dose d (Mrad): BGV(d) = -0.13 exp(-0.0313 d) + 1.38 (V).
    public static func bgv(_ d: Double) -> Double { -0.13 * exp(-0.0313 * d) + 1.38 }

    /// Corrections from the Run-3 integrated luminosity (1/fb): BPix layer l: BGV(dose_l) / BGV(0) rounded to 3
    /// decimals; FPix ring r: BGV(dose_r) / BGV(0) x 49/47 rounded to 4 decimals (the reference's rounding).
    public static func fromLuminosity(run3 l: Double) -> VCalCorrections {
        let total = lumi2017 + lumi2018 + l
        func c(_ d: Double) -> Double { bgv(d) / bgv(0) }
        func r(_ x: Double, _ digits: Double) -> Double { (x * digits).rounded() / digits }
        return VCalCorrections(
            bpix: [1: r(c(doseLayer1 * l), 1000), 2: r(c(doseLayer2 * total), 1000), 3: r(c(doseLayer3 * total), 1000),
                   4: r(c(doseLayer4 * total), 1000)],
            fpix: [1: r(c(doseRing1 * total) * 49 / 47, 10000), 2: r(c(doseRing2 * total) * 49 / 47, 10000)])
    }
}

extension CMSPixelTopology {
    /// BPix layer (1-4) of a global module (modules ordered L1 96, L2 224, L3 352, L4 512), nil for FPix.
    public static func bpixLayer(globalModule m: Int) -> Int? {
        guard m >= 0, m < bpixModules else { return nil }
        return m < 96 ? 1 : m < 320 ? 2 : m < 672 ? 3 : 4
    }

    /// FPix ring (1 inner: the first 44 modules of each 112-module disk, 2 outer: the other 68) of a global module,
    /// nil for BPix (calibctl's synthetic module order).
    public static func fpixRing(globalModule m: Int) -> Int? {
        guard m >= bpixModules else { return nil }
        return (m - bpixModules) % 112 < 44 ? 1 : 2
    }

    /// VCal conversion with per-layer / per-ring corrections: BPix L1 45.7 x c1 / -308, other layers 47 x c_l / -60,
    /// FPix 47 x c_ring / -60.
    public static func vcalConversion(globalModule m: Int, corrections c: VCalCorrections) -> (slope: Double, offset: Double) {
        if let l = bpixLayer(globalModule: m) {
            let f = c.bpix[l] ?? 1
            return l == 1 ? (45.7 * f, -308) : (47 * f, -60)
        }
        return (47 * (c.fpix[fpixRing(globalModule: m) ?? 1] ?? 1), -60)
    }
}
