import Foundation

/// Pixel-major scan data of a block of pixels: `n`, `sum`, `sumsq` each hold `pixels * points` floats, the points of
/// one pixel contiguous ([pixel][point], the file layout).
public struct GainScanBlock: @unchecked Sendable {
    public let n: UnsafePointer<Float>
    public let sum: UnsafePointer<Float>
    public let sumsq: UnsafePointer<Float>
    public let pixels: Int
    public let points: Int

    public init(n: UnsafePointer<Float>, sum: UnsafePointer<Float>, sumsq: UnsafePointer<Float>, pixels: Int, points: Int) {
        self.n = n; self.sum = sum; self.sumsq = sumsq; self.pixels = pixels; self.points = points
    }
}

/// Per-pixel outputs of the gain fit, each `pixels` long. No-fit pixels get NaN gain/pedestal and 0 points.
public struct GainFitResults: @unchecked Sendable {
    public let gain: UnsafeMutablePointer<Float>
    public let pedestal: UnsafeMutablePointer<Float>
    public let chi2ndf: UnsafeMutablePointer<Float>
    public let npoints: UnsafeMutablePointer<UInt8>
    public let status: UnsafeMutablePointer<UInt8>

    public init(gain: UnsafeMutablePointer<Float>, pedestal: UnsafeMutablePointer<Float>,
                chi2ndf: UnsafeMutablePointer<Float>, npoints: UnsafeMutablePointer<UInt8>,
                status: UnsafeMutablePointer<UInt8>) {
        self.gain = gain; self.pedestal = pedestal; self.chi2ndf = chi2ndf; self.npoints = npoints; self.status = status
    }
}

/// One pixel's fit result.
public struct GainPixelFit: Sendable, Equatable {
    public var gain: Float
    public var pedestal: Float
    public var chi2ndf: Float
    public var npoints: Int
    public var status: GainPixelStatus
}

/// The per-pixel weighted linear gain fit: a SIMD kernel (16 pixels per vector, points walked in order) with the scalar
/// reference `fitPixelScalar` next to it. Both evaluate the same operations in the same order, so they agree
/// bit for bit on every pixel the vector path handles; pixels with missing points (n <= 1) or needing the fallback
/// selection go through the scalar code. See docs/numerics.md for the algorithm.
public enum GainFitKernel {
    /// SIMD width in pixels.
    public static let lanes = 16
    typealias V = SIMD16<Float>

    /// Fits every pixel of `block` using `threads` workers (pixel ranges of 4096). `x` holds the injected charge in
    /// electrons per point.
    public static func fit(_ block: GainScanBlock, x: [Float], options: GainFitOptions = GainFitOptions(),
                           into out: GainFitResults, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        precondition(x.count == block.points, "x has \(x.count) values for \(block.points) points")
        let tile = 4096
        let tiles = (block.pixels + tile - 1) / tile
        x.withUnsafeBufferPointer { xb in
            let xp = SendablePointer(xb.baseAddress ?? UnsafePointer(bitPattern: 8)!)
            if threads <= 1 || tiles <= 1 {
                fitVector(block, x: xp.base, range: 0..<block.pixels, options: options, into: out)
                return
            }
            DispatchQueue.concurrentPerform(iterations: tiles) { t in
                let r = (t * tile)..<Swift.min(block.pixels, (t + 1) * tile)
                fitVector(block, x: xp.base, range: r, options: options, into: out)
            }
        }
    }

    /// Scalar reference over a pixel range.
    public static func fitScalar(_ block: GainScanBlock, x: UnsafePointer<Float>, range: Range<Int>,
                                 options: GainFitOptions = GainFitOptions(), into out: GainFitResults) {
        for p in range { store(fitPixel(block, x: x, pixel: p, options: options), at: p, out) }
    }

    @inline(__always)
    static func store(_ r: GainPixelFit, at p: Int, _ out: GainFitResults) {
        out.gain[p] = r.gain; out.pedestal[p] = r.pedestal; out.chi2ndf[p] = r.chi2ndf
        out.npoints[p] = UInt8(clamping: r.npoints); out.status[p] = r.status.rawValue
    }

    static func fitPixel(_ b: GainScanBlock, x: UnsafePointer<Float>, pixel p: Int, options: GainFitOptions) -> GainPixelFit {
        let o = p * b.points
        return fitPixelScalar(n: b.n + o, sum: b.sum + o, sumsq: b.sumsq + o, x: x, points: b.points, options: options)
    }

    /// Vector kernel over a pixel range; groups of 16 pixels, scalar for the tail and for irregular pixels.
    public static func fitVector(_ block: GainScanBlock, x: UnsafePointer<Float>, range: Range<Int>,
                                 options: GainFitOptions = GainFitOptions(), into out: GainFitResults) {
        let np = block.points
        guard np >= 4 else { fitScalar(block, x: x, range: range, options: options, into: out); return }
        withUnsafeTemporaryAllocation(of: V.self, capacity: 5 * np) { buf in
            let tn = buf.baseAddress!, ts = tn + np, tq = ts + np, ty = tq + np, tw = ty + np
            var p = range.lowerBound
            while p + lanes <= range.upperBound {
                transpose(block, first: p, n: tn, s: ts, q: tq)
                fitGroup(first: p, points: np, tn: tn, ts: ts, tq: tq, ty: ty, tw: tw, x: x, options: options,
                         block: block, out: out)
                p += lanes
            }
            fitScalar(block, x: x, range: p..<range.upperBound, options: options, into: out)
        }
    }

    /// Gathers 16 pixels' points into point-major vectors.
    @inline(__always)
    static func transpose(_ b: GainScanBlock, first: Int, n: UnsafeMutablePointer<V>, s: UnsafeMutablePointer<V>,
                          q: UnsafeMutablePointer<V>) {
        let np = b.points
        let raw = (UnsafeMutableRawPointer(n), UnsafeMutableRawPointer(s), UnsafeMutableRawPointer(q))
        let fn = raw.0.assumingMemoryBound(to: Float.self), fs = raw.1.assumingMemoryBound(to: Float.self),
            fq = raw.2.assumingMemoryBound(to: Float.self)
        for j in 0..<lanes {
            let src = (first + j) * np
            let bn = b.n + src, bs = b.sum + src, bq = b.sumsq + src
            for k in 0..<np {
                fn[k &* 16 &+ j] = bn[k]; fs[k &* 16 &+ j] = bs[k]; fq[k &* 16 &+ j] = bq[k]
            }
        }
    }

    @inline(__always)
    static func fitGroup(first: Int, points np: Int, tn: UnsafeMutablePointer<V>, ts: UnsafeMutablePointer<V>,
                         tq: UnsafeMutablePointer<V>, ty: UnsafeMutablePointer<V>, tw: UnsafeMutablePointer<V>,
                         x: UnsafePointer<Float>, options o: GainFitOptions, block: GainScanBlock, out: GainFitResults) {
        let one = V(repeating: 1), floorV = V(repeating: o.varianceFloor)
        var allValid = I16(repeating: -1)
        var varSum = V.zero
        // Pass A: means, variances and weights per point.
        for k in 0..<np {
            let n = tn[k]
            allValid &= lessMask(one, n)
            let sk = ts[k]
            // n*sumsq - sum^2 is exact in float for integer counts below 2^24 (no cancellation error); the floor on
            // the variance D/n^2 is applied to D. One division per point: r = 1/(n D), 1/n = D r, w = n/v = n^4 r.
            let dvar = vmax((n * tq[k]).addingProduct(-sk, sk), floorV * (n * n))
            let r = one / (n * dvar)
            let inv = dvar * r
            let y = sk * inv
            let n2 = n * n
            let v = dvar * (inv * inv)
            ty[k] = y
            tw[k] = (n2 * n2) * r
            varSum += v
        }
        // Plateau from the last four points.
        let a = ty[np - 4], b = ty[np - 3], c = ty[np - 2], d = ty[np - 1]
        var plateau = (((a + b) + c) + d) * 0.25
        let tol = V(repeating: o.plateauTolerance)
        let dev = lessMask(tol, vabs(a - plateau)) | lessMask(tol, vabs(b - plateau))
            | lessMask(tol, vabs(c - plateau)) | lessMask(tol, vabs(d - plateau))
        plateau = select(dev, V(repeating: 255), plateau)
        // Flat test and point selection.
        let flatTol = V(repeating: o.flatTolerance)
        var flatCount = I16.zero
        let hi = plateau * o.fitFraction, stopLevel = plateau * (o.fitFraction * o.fitFraction)
        let stopStep = V(repeating: o.stopStep)
        var active = I16(repeating: -1)
        var count = I16.zero
        var sw = V.zero, swx = V.zero, swy = V.zero
        for k in 0..<np {
            let y = ty[k]
            let isZero = ~(lessMask(y, V.zero) | lessMask(V.zero, y))
            flatCount &-= lessEqualMask(vabs(y - plateau), flatTol) | isZero
            if k >= 2 {
                active &= ~(lessMask(vabs(y - ty[k - 1]), stopStep) & lessMask(stopLevel, y))
            }
            let inc = active & lessEqualMask(y, hi)
            let w = keep(inc, tw[k])
            tw[k] = w
            count &-= inc
            let xk = x[k]
            sw += w
            swx = swx.addingProduct(w, V(repeating: xk))
            swy = swy.addingProduct(w, y)
        }
        let flat = ~lessMask(flatCount, I16(repeating: Int32(np - 2)))
        let noisy = lessMask(V(repeating: o.noisyRMS * o.noisyRMS), varSum * (one / V(repeating: Float(np))))
        let irregular = ~allValid | (lessMask(count, I16(repeating: 4)) & (~flat | noisy))
        // Centred sums, slope, chi2.
        let xm = swx / sw, ym = swy / sw
        var sxx = V.zero, sxy = V.zero, syy = V.zero
        for k in 0..<np {
            let w = tw[k]
            let dx = V(repeating: x[k]) - xm, dy = ty[k] - ym
            let wdx = w * dx
            sxx = sxx.addingProduct(wdx, dx)
            sxy = sxy.addingProduct(wdx, dy)
            syy = syy.addingProduct(w * dy, dy)
        }
        let p1 = sxy / sxx
        // chi2 = sum w (dy - p1 dx)^2 = Syy - p1 Sxy (centred sums).
        let chi2 = vmax(syy.addingProduct(-p1, sxy), V.zero)
        let gain = one / p1
        let ped = ym.addingProduct(-p1, xm)
        let maxChi2 = V(repeating: o.maxChi2PerNDF), maxGain = V(repeating: o.maxGain)
        for j in 0..<lanes {
            let p = first + j
            if irregular[j] != 0 {
                store(fitPixel(block, x: x, pixel: p, options: o), at: p, out)
                continue
            }
            let status: GainPixelStatus
            var g = gain[j], pd = ped[j], m = Int(count[j])
            let ndf = Float(m - 2)
            var c2: Float = ndf > 0 ? chi2[j] / ndf : 0
            let finite = g.isFinite && pd.isFinite && c2.isFinite
            if noisy[j] != 0 { status = .noisy }
            else if flat[j] != 0 { status = .flat }
            else if !finite { status = .notANumber }
            else if !(g > 0) || g > maxGain[j] { status = .badGain }
            else if c2 > maxChi2[j] { status = .chi2TooLarge }
            else if dev[j] != 0 { status = .noPlateau }
            else { status = .ok }
            if status == .flat { g = .nan; pd = .nan; c2 = .nan; m = 0 }
            store(GainPixelFit(gain: g, pedestal: pd, chi2ndf: c2, npoints: m, status: status), at: p, out)
        }
    }
}

