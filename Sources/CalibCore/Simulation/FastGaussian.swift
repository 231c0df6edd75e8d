import Foundation

/// Standard-normal variates by table lookup: 65,536 equiprobable quantiles of N(0,1) indexed by 16 random bits, so one
/// SplitMix64 draw gives four variates. Tails are cut at +-4.3 sigma (the outermost quantile); the simulator adds
/// outliers explicitly, so this does not matter for the tests and makes simulating 10^10 samples affordable.
public enum FastGaussian {
    public static let table: [Float] = {
        (0..<65536).map { i in Float(inverseNormal((Double(i) + 0.5) / 65536)) }
    }()

    /// Inverse of the standard normal CDF by Newton iterations on erfc.
    static func inverseNormal(_ p: Double) -> Double {
        var x = 0.0
        if p < 0.5 { x = -(-2 * log(p)).squareRoot() * 0.8 } else if p > 0.5 { x = (-2 * log(1 - p)).squareRoot() * 0.8 }
        for _ in 0..<40 {
            let cdf = 0.5 * erfc(-x / 2.0.squareRoot())
            let pdf = exp(-0.5 * x * x) / (2 * Double.pi).squareRoot()
            let step = (cdf - p) / max(pdf, 1e-300)
            x -= step
            if abs(step) < 1e-13 { break }
        }
        return x
    }

    /// Four variates from one 64-bit draw.
    @inline(__always)
    public static func four(_ rng: inout SplitMix64, _ t: UnsafePointer<Float>) -> SIMD4<Float> {
        let r = rng.next()
        return SIMD4(t[Int(r & 0xffff)], t[Int((r >> 16) & 0xffff)], t[Int((r >> 32) & 0xffff)], t[Int(r >> 48)])
    }
}
