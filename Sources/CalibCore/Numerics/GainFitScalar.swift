extension GainFitKernel {
    /// The scalar reference fit of one pixel: the same operations, in the same order, as the vector kernel.
    /// `n`, `sum`, `sumsq` hold `points` values each, `stride` floats apart (1 for pixel-major data, 16 for interleaved
    /// data: `GainScanBlock.offset(ofPixel:)`); `x` holds `points` contiguous values.
    public static func fitPixelScalar(n: UnsafePointer<Float>, sum: UnsafePointer<Float>, sumsq: UnsafePointer<Float>,
                                      x: UnsafePointer<Float>, points np: Int, stride: Int = 1,
                                      options o: GainFitOptions = GainFitOptions()) -> GainPixelFit {
        let noFit = GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0, status: .neverPulsed)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 3 * max(np, 1)) { buf -> GainPixelFit in
            let ys = buf.baseAddress!, ws = ys + np, xs = ws + np
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
                ys[nv] = y; ws[nv] = (n2 * n2) * r; xs[nv] = x[k]
                varSum += v
                nv += 1
            }
            if nv == 0 { return noFit }
            if nv < 2 {
                return GainPixelFit(gain: .nan, pedestal: .nan, chi2ndf: .nan, npoints: 0, status: .tooFewPoints)
            }
            // The vector kernel divides by all points (they are all valid there).
            let noisy = varSum * (1 / Float(nv)) > o.noisyRMS * o.noisyRMS
            // Plateau: mean of the last four valid points (all of them if fewer).
            var plateau: Float
            var dev = false
            if nv >= 4 {
                let a = ys[nv - 4], b = ys[nv - 3], c = ys[nv - 2], d = ys[nv - 1]
                plateau = (((a + b) + c) + d) * 0.25
                for y in [a, b, c, d] where abs(y - plateau) > o.plateauTolerance { dev = true }
            } else {
                var s: Float = 0
                for j in 0..<nv { s += ys[j] }
                plateau = s / Float(nv)
                for j in 0..<nv where abs(ys[j] - plateau) > o.plateauTolerance { dev = true }
            }
            if dev { plateau = 255 }
            var flatCount = 0
            for j in 0..<nv where abs(ys[j] - plateau) <= o.flatTolerance || ys[j] == 0 { flatCount += 1 }
            let flat = flatCount >= nv - 2
            // Selection: weights of unselected points become 0.
            let hi = plateau * o.fitFraction, stopLevel = plateau * (o.fitFraction * o.fitFraction)
            var sel = [Bool](repeating: false, count: nv)
            var count = 0
            for j in 0..<nv {
                if j >= 2 && abs(ys[j] - ys[j - 1]) < o.stopStep && ys[j] > stopLevel { break }
                if ys[j] <= hi { sel[j] = true; count += 1 }
            }
            if count < 4 {
                for j in 0..<nv { sel[j] = false }
                count = 0
                for j in 0..<nv where count < 4 && ys[j] > 0 && ys[j] < plateau * o.fallbackFraction {
                    sel[j] = true; count += 1
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
