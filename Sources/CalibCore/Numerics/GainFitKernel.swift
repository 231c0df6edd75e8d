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
    typealias M = SIMDMask<SIMD16<Int32>>

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
        var allValid = M(repeating: true)
        var varSum = V.zero
        // Pass A: means, variances and weights per point.
        for k in 0..<np {
            let n = tn[k]
            allValid .&= n .> one
            let inv = one / n
            let sk = ts[k]
            let y = sk * inv
            // n*sumsq - sum^2 is exact in float for integer counts below 2^24 (no cancellation error).
            let v = pointwiseMax((n * tq[k]).addingProduct(-sk, sk) * (inv * inv), floorV)
            ty[k] = y
            tw[k] = n / v
            varSum += v
        }
        // Plateau from the last four points.
        let a = ty[np - 4], b = ty[np - 3], c = ty[np - 2], d = ty[np - 1]
        var plateau = (((a + b) + c) + d) * 0.25
        let tol = V(repeating: o.plateauTolerance)
        let dev = vabs(a - plateau) .> tol .| vabs(b - plateau) .> tol .| vabs(c - plateau) .> tol
            .| vabs(d - plateau) .> tol
        plateau.replace(with: 255, where: dev)
        // Flat test and point selection.
        let flatTol = V(repeating: o.flatTolerance)
        var flatCount = SIMD16<Int32>.zero
        let hi = plateau * o.fitFraction, stopLevel = plateau * (o.fitFraction * o.fitFraction)
        let stopStep = V(repeating: o.stopStep)
        var active = M(repeating: true)
        var count = SIMD16<Int32>.zero
        var sw = V.zero, swx = V.zero, swy = V.zero
        for k in 0..<np {
            let y = ty[k]
            let isFlat = vabs(y - plateau) .<= flatTol .| y .== V.zero
            flatCount &+= SIMD16<Int32>(repeating: 1).replacing(with: 0, where: .!isFlat)
            if k >= 2 {
                let stop = vabs(y - ty[k - 1]) .< stopStep .& y .> stopLevel
                active .&= .!stop
            }
            let inc = active .& y .<= hi
            let w = V.zero.replacing(with: tw[k], where: inc)
            tw[k] = w
            count &+= SIMD16<Int32>(repeating: 1).replacing(with: 0, where: .!inc)
            let xk = x[k]
            sw += w
            swx = swx.addingProduct(w, V(repeating: xk))
            swy = swy.addingProduct(w, y)
        }
        let flat = flatCount .>= SIMD16<Int32>(repeating: Int32(np - 2))
        let noisy = varSum * (one / V(repeating: Float(np))) .> V(repeating: o.noisyRMS * o.noisyRMS)
        let irregular = .!allValid .| (count .< SIMD16<Int32>(repeating: 4) .& (.!flat .| noisy))
        // Centred sums, slope, chi2.
        let xm = swx / sw, ym = swy / sw
        var sxx = V.zero, sxy = V.zero
        for k in 0..<np {
            let w = tw[k]
            let dx = V(repeating: x[k]) - xm, dy = ty[k] - ym
            let wdx = w * dx
            sxx = sxx.addingProduct(wdx, dx)
            sxy = sxy.addingProduct(wdx, dy)
        }
        let p1 = sxy / sxx
        var chi2 = V.zero
        for k in 0..<np {
            let w = tw[k]
            let dx = V(repeating: x[k]) - xm, dy = ty[k] - ym
            let r = dy.addingProduct(-p1, dx)
            chi2 = chi2.addingProduct(w * r, r)
        }
        let gain = one / p1
        let ped = ym.addingProduct(-p1, xm)
        let maxChi2 = V(repeating: o.maxChi2PerNDF), maxGain = V(repeating: o.maxGain)
        for j in 0..<lanes {
            let p = first + j
            if irregular[j] {
                store(fitPixel(block, x: x, pixel: p, options: o), at: p, out)
                continue
            }
            let status: GainPixelStatus
            var g = gain[j], pd = ped[j], m = Int(count[j])
            let ndf = Float(m - 2)
            var c2: Float = ndf > 0 ? chi2[j] / ndf : 0
            let finite = g.isFinite && pd.isFinite && c2.isFinite
            if noisy[j] { status = .noisy }
            else if flat[j] { status = .flat }
            else if !finite { status = .notANumber }
            else if !(g > 0) || g > maxGain[j] { status = .badGain }
            else if c2 > maxChi2[j] { status = .chi2TooLarge }
            else if dev[j] { status = .noPlateau }
            else { status = .ok }
            if status == .flat { g = .nan; pd = .nan; c2 = .nan; m = 0 }
            store(GainPixelFit(gain: g, pedestal: pd, chi2ndf: c2, npoints: m, status: status), at: p, out)
        }
    }
}

@inline(__always) func vabs(_ v: SIMD16<Float>) -> SIMD16<Float> { pointwiseMax(v, -v) }
