// Compiled into CalibCore and CalibKernelsAVX512 (see GainFitKernel.swift).
#if CALIBCTL_AVX512
import CalibCore
#endif

extension GainFitKernel {
    /// The ADC range of the CMS pixel readout: readings are clamped to 0...255.
    public static let adcFloor: Float = 0
    public static let adcCeiling: Float = 255

    /// True if some reading of a point may sit at the ADC floor or ceiling (a censored point). By Samuelson's
    /// inequality every one of n readings lies within sqrt(n - 1) population standard deviations of their mean, so
    /// (mean - floor)^2 > (n - 1) variance proves no reading is at the floor. Multiplied by n^2 this is
    /// (sum - n floor)^2 > (n - 1) D with D = n sumsq - sum^2: integers, exact in float32 for n sumsq < 2^24.
    /// The vector kernel evaluates the same expression in the same order.
    @inline(__always)
    static func censored(n: Float, sum: Float, d0: Float) -> Bool {
        let bound = (n - 1) * d0
        let lo = sum - n * adcFloor, hi = n * adcCeiling - sum
        return lo * lo <= bound || hi * hi <= bound
    }

    /// The scalar reference fit of one pixel: the same operations, in the same order, as the vector kernel.
    /// `n`, `sum`, `sumsq` hold `points` values each, `stride` floats apart (1 for pixel-major data, 16 for interleaved
    /// data: `GainScanBlock.offset(ofPixel:)`); `x` holds `points` contiguous values.
    ///
    /// Threshold decisions on point means (plateau deviation, flat tolerance, stop rule, fit fraction, fallback) are
    /// exact: with integral counts and sums they are decided on rationals (`ExactRational`), the options read as
    /// decimals with six digits. The vector kernel decides in float32 and hands every pixel whose float margin to a
    /// threshold is below `tieMargin` to this function, so both agree bit for bit.
    public static func fitPixelScalar(n: UnsafePointer<Float>, sum: UnsafePointer<Float>, sumsq: UnsafePointer<Float>,
                                      x: UnsafePointer<Float>, points np: Int, stride: Int = 1,
                                      options o: GainFitOptions = GainFitOptions(),
                                      commonCount: Bool = true) -> GainPixelFit {
        let noFit = GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0, status: .neverPulsed)
        // Non-finite inputs (NaN or infinite n, sum or sum of squares at any point): the pixel is `nan`.
        for k in 0..<np where !(n[k * stride].isFinite && sum[k * stride].isFinite && sumsq[k * stride].isFinite) {
            return GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0, status: .notANumber)
        }
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 5 * max(np, 1)) { buf -> GainPixelFit in
            let ys = buf.baseAddress!, ws = ys + np, xs = ws + np, ns = xs + np, ss = ns + np
            var nv = 0
            var varSum: Float = 0
            for k in 0..<np where n[k * stride] > 1 {
                let nk = n[k * stride], sk = sum[k * stride]
                let d0 = (nk * sumsq[k * stride]).addingProduct(-sk, sk), fl = o.varianceFloor * (nk * nk)
                let dvar = fl >= d0 ? fl : d0
                let r = 1 / (nk * dvar)
                let inv = dvar * r
                let y = sk * inv
                let n2 = nk * nk
                let v = dvar * (inv * inv)
                // Censored points keep their mean for the plateau and flat tests but carry no weight.
                ys[nv] = y; ws[nv] = censored(n: nk, sum: sk, d0: d0) ? 0 : (n2 * n2) * r; xs[nv] = x[k]
                ns[nv] = nk; ss[nv] = sk
                varSum += v
                nv += 1
            }
            if nv == 0 { return noFit }
            if nv < 2 {
                return GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0, status: .tooFewPoints)
            }
            let exact = ExactMeans(n: ns, sum: ss, count: nv)
            // The usual scan injects every point the same number of times: then every mean is s_j / N and the exact
            // decisions are comparisons of integers (CommonCountMeans), the same values as the rationals, far cheaper.
            // (`commonCount: false` forces the rationals: the tests compare both.)
            let common = exact != nil && commonCount ? CommonCountMeans(n: ns, sum: ss, count: nv) : nil
            // The vector kernel divides by all points (they are all valid there).
            let noisy = varSum * (1 / Float(nv)) > o.noisyRMS * o.noisyRMS
            // Plateau: mean of the last four valid points (all of them if fewer).
            let first = nv >= 4 ? nv - 4 : 0
            var plateau: Float
            if nv >= 4 {
                let a = ys[nv - 4], b = ys[nv - 3], c = ys[nv - 2], d = ys[nv - 1]
                plateau = (((a + b) + c) + d) * 0.25
            } else {
                var s: Float = 0
                for j in 0..<nv { s += ys[j] }
                plateau = s / Float(nv)
            }
            var dev = false
            var pq = common == nil ? exact?.mean(first..<nv) : nil
            var pc = common?.plateau(first..<nv)
            for j in first..<nv {
                let d: Bool
                if let c = common { d = c.deviates(j, from: pc!, by: o.plateauTolerance) }
                else if let e = exact { d = (e.mean(j) - pq!).magnitude > ExactRational(decimal: o.plateauTolerance) }
                else { d = abs(ys[j] - plateau) > o.plateauTolerance }
                if d { dev = true }
            }
            if dev { plateau = 255; pq = ExactRational(255); pc = common?.constant(255, like: pc!) }
            // Exact or float decision of `mean_j OP factor x plateau + 0`.
            func atMost(_ j: Int, _ factor: ExactRational, _ ff: Float) -> Bool {  // y_j <= factor P
                if let c = common { return !c.below(factor, times: pc!, j) }
                if let e = exact { return !(factor * pq! < e.mean(j)) }
                return ys[j] <= plateau * ff
            }
            func above(_ j: Int, _ factor: ExactRational, _ ff: Float) -> Bool {   // y_j > factor P
                if let c = common { return c.below(factor, times: pc!, j) }
                if let e = exact { return factor * pq! < e.mean(j) }
                return ys[j] > plateau * ff
            }
            var flatCount = 0
            for j in 0..<nv {
                let within: Bool
                if let c = common { within = !c.deviates(j, from: pc!, by: o.flatTolerance) }
                else if let e = exact { within = !(ExactRational(decimal: o.flatTolerance) < (e.mean(j) - pq!).magnitude) }
                else { within = abs(ys[j] - plateau) <= o.flatTolerance }
                if within || ys[j] == 0 { flatCount += 1 }
            }
            let flat = flatCount >= nv - 2
            // Selection: weights of unselected points become 0.
            let f = ExactRational(decimal: o.fitFraction)
            let ff = o.fitFraction, ff2 = o.fitFraction * o.fitFraction
            let f2 = f * f
            var sel = [Bool](repeating: false, count: nv)
            var count = 0
            for j in 0..<nv {
                if j >= 2 {
                    let small: Bool
                    if let c = common { small = c.stepBelow(j, o.stopStep) }
                    else if let e = exact { small = (e.mean(j) - e.mean(j - 1)).magnitude < ExactRational(decimal: o.stopStep) }
                    else { small = abs(ys[j] - ys[j - 1]) < o.stopStep }
                    if small && above(j, f2, ff2) { break }
                }
                if atMost(j, f, ff) && ws[j] > 0 { sel[j] = true; count += 1 }
            }
            if count < 4 {
                for j in 0..<nv { sel[j] = false }
                count = 0
                let fb = ExactRational(decimal: o.fallbackFraction)
                for j in 0..<nv where count < 4 && ws[j] > 0 && ys[j] > 0 {
                    let below: Bool
                    if let c = common { below = c.above(fb, times: pc!, j) }
                    else if let e = exact { below = e.mean(j) < fb * pq! }
                    else { below = ys[j] < plateau * o.fallbackFraction }
                    if below { sel[j] = true; count += 1 }
                }
            }
            for j in 0..<nv where !sel[j] { ws[j] = 0 }
            if flat && !noisy {
                return GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0, status: .flat)
            }
            if count < 2 {
                return GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0,
                                    status: noisy ? .noisy : .tooFewPoints)
            }
            var sw: Float = 0, swx: Float = 0, swy: Float = 0
            for j in 0..<nv {
                sw += ws[j]
                swx = swx.addingProduct(ws[j], xs[j])
                swy = swy.addingProduct(ws[j], ys[j])
            }
            let xm = swx / sw, ym = swy / sw
            var sxx: Float = 0, sxy: Float = 0, syy: Float = 0
            for j in 0..<nv {
                let dx = xs[j] - xm, dy = ys[j] - ym
                let wdx = ws[j] * dx
                sxx = sxx.addingProduct(wdx, dx)
                sxy = sxy.addingProduct(wdx, dy)
                syy = syy.addingProduct(ws[j] * dy, dy)
            }
            let p1 = sxy / sxx
            let c2raw = syy.addingProduct(-p1, sxy)
            let chi2: Float = c2raw <= 0 ? 0 : c2raw
            let gain = 1 / p1
            let ped = ym.addingProduct(-p1, xm)
            let ndf = Float(count - 2)
            let chi2ndf: Float = ndf > 0 ? chi2 / ndf : 0
            let status: GainPixelStatus
            if noisy { status = .noisy }
            else if !(gain.isFinite && ped.isFinite && chi2ndf.isFinite) { status = .notANumber }
            else if !(gain > 0) || gain > o.maxGain { status = .badGain }
            else if chi2ndf > o.maxChi2PerNDF { status = .chi2TooLarge }
            else if dev { status = .noPlateau }
            else { status = .ok }
            return GainPixelFit(gain: gain, pedestal: ped, chi2ndf: chi2ndf, npoints: count, status: status)
        }
    }
}

/// The point means of one pixel as exact rationals sum / n, available when every count is an integer in 2...4096 and
/// every sum an integer of magnitude <= 2^24 (always so for real scans: the front end counts hits and adds 8-bit ADC
/// values). Otherwise the fit decides its thresholds in float32.
struct ExactMeans {
    let n: UnsafePointer<Float>, sum: UnsafePointer<Float>

    init?(n: UnsafePointer<Float>, sum: UnsafePointer<Float>, count: Int) {
        for j in 0..<count {
            let nj = n[j], sj = sum[j]
            guard nj == nj.rounded(), nj >= 2, nj <= 4096, sj == sj.rounded(), sj.magnitude <= 16_777_216 else { return nil }
        }
        self.n = n; self.sum = sum
    }

    func mean(_ j: Int) -> ExactRational { ExactRational(Int128(sum[j]), Int128(n[j])) }

    func mean(_ r: Range<Int>) -> ExactRational {
        var acc = ExactRational(0)
        for j in r { acc = acc + mean(j) }
        return acc * ExactRational(1, Int128(r.count))
    }
}

/// Exact decisions on point means s_j / N that share one count N (`ExactMeans` holds and every n_j == N): each
/// comparison of ExactRational values is rewritten as a comparison of Int128 integers by multiplying both sides by
/// their (positive) denominators, so the decisions are the same and no gcd or division is needed. Option values are
/// the same six-digit decimals (`ExactRational(decimal:)`): T / 10^6.
struct CommonCountMeans {
    /// A mean of several point means: `sum / (points * N)`.
    struct Plateau { var sum: Int128; var points: Int128 }

    let sum: UnsafePointer<Float>
    let n: Int128
    static let scale: Int128 = 1_000_000

    init?(n: UnsafePointer<Float>, sum: UnsafePointer<Float>, count: Int) {
        guard count > 0 else { return nil }
        for j in 1..<max(count, 1) where n[j] != n[0] { return nil }
        self.n = Int128(Int64(n[0])); self.sum = sum
    }

    @inline(__always) func s(_ j: Int) -> Int128 { Int128(Int64(sum[j])) }  // integral, |s| <= 2^24 (ExactMeans)
    @inline(__always) static func decimal(_ x: Float) -> Int128 { Int128(Int64((Double(x) * 1e6).rounded())) }

    func plateau(_ r: Range<Int>) -> Plateau {
        var acc: Int128 = 0
        for j in r { acc += s(j) }
        return Plateau(sum: acc, points: Int128(r.count))
    }

    /// The constant `v` as a plateau over the same points (v = v * points * N / (points * N)).
    func constant(_ v: Int128, like p: Plateau) -> Plateau { Plateau(sum: v * p.points * n, points: p.points) }

    /// |mean_j - P| > tol: |c s_j - S| / (c N) > T / 10^6.
    func deviates(_ j: Int, from p: Plateau, by tol: Float) -> Bool {
        let d = p.points * s(j) - p.sum
        return (d < 0 ? -d : d) * Self.scale > Self.decimal(tol) * p.points * n
    }

    /// |mean_j - mean_(j-1)| < step: |s_j - s_(j-1)| / N < T / 10^6.
    func stepBelow(_ j: Int, _ step: Float) -> Bool {
        let d = s(j) - s(j - 1)
        return (d < 0 ? -d : d) * Self.scale < Self.decimal(step) * n
    }

    /// factor * P < mean_j: (a / b) S / (c N) < s_j / N, i.e. a S < b c s_j.
    func below(_ factor: ExactRational, times p: Plateau, _ j: Int) -> Bool {
        factor.num * p.sum < factor.den * p.points * s(j)
    }

    /// mean_j < factor * P: b c s_j < a S.
    func above(_ factor: ExactRational, times p: Plateau, _ j: Int) -> Bool {
        factor.den * p.points * s(j) < factor.num * p.sum
    }
}

/// A rational number with a positive denominator, kept reduced. Magnitudes stay far below Int128's range for the
/// inputs `ExactMeans` accepts (denominators at most 4 x 4096^4 x 10^12).
struct ExactRational: Comparable {
    var num: Int128
    var den: Int128

    init(_ num: Int128, _ den: Int128 = 1) {
        let g = ExactRational.gcd(num.magnitude, den.magnitude)
        let s: Int128 = den < 0 ? -1 : 1
        self.num = g > 1 ? s * num / Int128(g) : s * num
        self.den = g > 1 ? s * den / Int128(g) : s * den
    }

    /// An option value read as a decimal with six digits (Float 0.8 is 4/5, 5 is 5).
    init(decimal x: Float) { self.init(Int128((Double(x) * 1e6).rounded()), 1_000_000) }

    static func gcd(_ a: UInt128, _ b: UInt128) -> UInt128 {
        var a = a, b = b
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }

    var magnitude: ExactRational { ExactRational(num < 0 ? -num : num, den) }
    static func + (a: ExactRational, b: ExactRational) -> ExactRational {
        ExactRational(a.num * b.den + b.num * a.den, a.den * b.den)
    }
    static func - (a: ExactRational, b: ExactRational) -> ExactRational {
        ExactRational(a.num * b.den - b.num * a.den, a.den * b.den)
    }
    static func * (a: ExactRational, b: ExactRational) -> ExactRational { ExactRational(a.num * b.num, a.den * b.den) }
    static func < (a: ExactRational, b: ExactRational) -> Bool { a.num * b.den < b.num * a.den }
    static func == (a: ExactRational, b: ExactRational) -> Bool { a.num == b.num && a.den == b.den }
}
