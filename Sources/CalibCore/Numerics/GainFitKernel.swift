// The gain kernel proper: compiled into CalibCore for x86-64-v3 (AVX2) and, through a symbolic link, into
// CalibKernelsAVX512 for x86-64-v4 (docs/numerics.md, "Instruction sets"). `GainFitKernel.fitVector` chooses.
#if CALIBCTL_AVX512
import CalibCore
#endif
import Foundation

/// The SIMD kernel of the per-pixel weighted linear gain fit (16 pixels per vector, points walked in order) and the
/// scalar reference `fitPixelScalar` next to it (GainFitScalar.swift). Both evaluate the same operations in the same order, so they agree
/// bit for bit on every pixel the vector path handles; pixels with missing points (n <= 1) or needing the fallback
/// selection go through the scalar code. See docs/numerics.md for the algorithm.
///
/// The vector path reads interleaved data directly (one contiguous 64-byte load per point and array, three sequential
/// streams). Pixel-major data (the file layout) is transposed 16 pixels at a time into a 5.6 kB scratch in L1 with
/// 8 x 8 register transposes, so the data are still read from memory once. Lane masks are Int32 vectors (0 or -1)
/// built from native compares: logical operations on `SIMDMask` values of 16 lanes went through packed bytes.
extension GainFitKernel {
    /// SIMD width in pixels.
    public static let lanes = 16
    /// Float margin (ADC) below which a threshold comparison counts as a possible tie and the pixel goes to the exact
    /// scalar reference; float32 errors of the means are below 1e-4 ADC.
    public static let tieMargin: Float = 1.0 / 512
    typealias V = SIMD16<Float>
    typealias VI = SIMD16<Int32>

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
        let (o, stride) = b.offset(ofPixel: p)
        return fitPixelScalar(n: b.n + o, sum: b.sum + o, sumsq: b.sumsq + o, x: x, points: b.points,
                              stride: stride, options: options)
    }

    /// The vector kernel over a pixel range, as compiled into this module (`GainFitKernel.fitVector` picks the
    /// module for the CPU); groups of 16 pixels, scalar for the tail and for irregular pixels. Returns how many pixels
    /// the scalar reference fitted (tail, missing points, float margins below `tieMargin`).
    static func fitRange(_ block: GainScanBlock, x: UnsafePointer<Float>, range: Range<Int>,
                         options: GainFitOptions, into out: GainFitResults) -> Int {
        let np = block.points
        guard np >= 4 else { fitScalar(block, x: x, range: range, options: options, into: out); return range.count }
        var limits = ExactLimits(options: options)
        var scalar = 0
        withUnsafeTemporaryAllocation(of: V.self, capacity: 5 * np) { buf in
            let tn = buf.baseAddress!, ts = tn + np, tq = ts + np, ty = tq + np, tw = ty + np
            let fn = UnsafeMutableRawPointer(tn).assumingMemoryBound(to: Float.self)
            let fs = UnsafeMutableRawPointer(ts).assumingMemoryBound(to: Float.self)
            let fq = UnsafeMutableRawPointer(tq).assumingMemoryBound(to: Float.self)
            var p = range.lowerBound
            if block.layout == .interleaved, p % lanes != 0 {  // vector groups start at group boundaries
                let aligned = Swift.min(range.upperBound, (p + lanes - 1) / lanes * lanes)
                fitScalar(block, x: x, range: p..<aligned, options: options, into: out)
                scalar += aligned - p
                p = aligned
            }
            while p + lanes <= range.upperBound {
                if block.layout == .interleaved {
                    let g = p * np
                    scalar += fitGroup(first: p, points: np, n: block.n + g, s: block.sum + g, q: block.sumsq + g,
                             stride: lanes, ty: ty, tw: tw, x: x, options: options, limits: &limits, block: block, out: out)
                } else {
                    let src = p * np
                    transpose16(block.n + src, points: np, into: fn)
                    transpose16(block.sum + src, points: np, into: fs)
                    transpose16(block.sumsq + src, points: np, into: fq)
                    scalar += fitGroup(first: p, points: np, n: fn, s: fs, q: fq, stride: lanes, ty: ty, tw: tw, x: x,
                             options: options, limits: &limits, block: block, out: out)
                }
                p += lanes
            }
            fitScalar(block, x: x, range: p..<range.upperBound, options: options, into: out)
            scalar += range.upperBound - p
        }
        return scalar
    }

    @inline(__always)
    static func load(_ p: UnsafePointer<Float>, _ k: Int, _ stride: Int) -> V {
        UnsafeRawPointer(p + k &* stride).loadUnaligned(as: V.self)
    }

    @inline(__always)
    static func fitGroup(first: Int, points np: Int, n nP: UnsafePointer<Float>, s sP: UnsafePointer<Float>,
                         q qP: UnsafePointer<Float>, stride: Int, ty: UnsafeMutablePointer<V>,
                         tw: UnsafeMutablePointer<V>, x: UnsafePointer<Float>, options o: GainFitOptions,
                         limits: inout ExactLimits, block: GainScanBlock, out: GainFitResults) -> Int {
        let one = V(repeating: 1)
        // Pass A in two 8-lane halves (each value in one AVX2 register: on 16 lanes the state did not fit in the 16
        // registers and spilled every point).
        let h0 = pointStatistics(half: 0, points: np, n: nP, s: sP, q: qP, stride: stride, ty: ty, tw: tw, options: o)
        let h1 = pointStatistics(half: 1, points: np, n: nP, s: sP, q: qP, stride: stride, ty: ty, tw: tw, options: o)
        let invalid = VI(lowHalf: h0.invalid, highHalf: h1.invalid)
        let varSum = V(lowHalf: h0.varSum, highHalf: h1.varSum)
        // What makes a lane's stop rule decidable on integer sums (below): one count for all points, sums integral
        // and below 2^22 in magnitude (`frac` is exact only then; larger sums are excluded by sMax).
        let n0 = load(nP, 0, stride)
        let sameN = VI(lowHalf: h0.sameN, highHalf: h1.sameN), frac = VI(lowHalf: h0.frac, highHalf: h1.frac)
        let sMax = V(lowHalf: h0.sMax, highHalf: h1.sMax)
        // Lanes whose means are s/N with one integral count N in 2...4096 and integral sums below 2^21 in magnitude
        // (`frac` is exact only then; larger sums are excluded by sMax): the scalar reference decides their thresholds
        // on integers (CommonCountMeans), and so does this kernel for the plateau deviation, the flat test and the
        // stop rule's step, each an exact comparison of integers in float (below). Scans inject every point the same
        // number of times, so means exactly at a threshold (a tie in float) are frequent: without this a quarter of
        // the pixels of a CMS scan went to the scalar path (steps of exactly stopStep).
        let lim = limits.of(n0)
        let exact = sameN & asInt(frac .== VI.zero) & lt(sMax, V(repeating: 2_097_152)) & lim.ok
        let allExact = all(exact)
        // Plateau from the last four points.
        let a = ty[np - 4], b = ty[np - 3], c = ty[np - 2], d = ty[np - 1]
        var plateau = (((a + b) + c) + d) * 0.25
        let tol = V(repeating: o.plateauTolerance)
        // Lanes with a float margin below tieMargin to a threshold they decide in float go to the scalar reference.
        let margin = V(repeating: tieMargin)
        @inline(__always) func near(_ u: V, _ v: V) -> VI { lt(vabs(u - v), margin) }
        // Exact: |4 s_j - S4| > floor(4 N plateauTolerance), S4 the sum of the last four sums (all below 2^23).
        let four = V(repeating: 4)
        let sa = load(sP, np - 4, stride), sb = load(sP, np - 3, stride), sc = load(sP, np - 2, stride)
        let sd = load(sP, np - 1, stride)
        let s4 = ((sa + sb) + sc) + sd
        @inline(__always) func devX(_ sj: V) -> VI { lt(lim.dev, vabs(four * sj - s4)) }
        var dev = devX(sa) | devX(sb) | devX(sc) | devX(sd)
        var tie = VI.zero
        if !allExact {
            let devF = lt(tol, vabs(a - plateau)) | lt(tol, vabs(b - plateau)) | lt(tol, vabs(c - plateau))
                | lt(tol, vabs(d - plateau))
            dev = sel(exact, dev, devF)
            tie = (near(vabs(a - plateau), tol) | near(vabs(b - plateau), tol) | near(vabs(c - plateau), tol)
                | near(vabs(d - plateau), tol)) & ~exact
        }
        plateau = sel(dev, V(repeating: 255), plateau)
        let sP4 = sel(dev, V(repeating: 1020) * n0, s4)   // 4 N x plateau for the exact flat test
        let flatTol = V(repeating: o.flatTolerance)
        let hi = plateau * o.fitFraction, stopLevel = plateau * (o.fitFraction * o.fitFraction)
        let stopStep = V(repeating: o.stopStep)
        // Flat test: a point within flatTolerance of the plateau, or at 0. Exact: |4 s_j - 4 N P| <= floor(4 N tol).
        // The fit-fraction and stop-level comparisons stay in float with their tie check.
        var flatF = V.zero
        if allExact {
            // The smallest distance of a point to either float threshold, compared with the margin once (vminps: one
            // instruction per distance instead of a compare and an or).
            var dist = V(repeating: .infinity)
            for k in 0..<np {
                let y = ty[k], sk = load(sP, k, stride)
                flatF += keep(le(vabs(four * sk - sP4), lim.flat) | asInt(y .== V.zero), one)
                let dh = vabs(y - hi)
                dist = sel(lt(dh, dist), dh, dist)
                if k >= 2 {
                    let ds = vabs(y - stopLevel)
                    dist = sel(lt(ds, dist), ds, dist)
                }
            }
            tie |= lt(dist, margin)
        } else {
            var tieF = VI.zero, yPrev = ty[1]
            for k in 0..<np {
                let y = ty[k], sk = load(sP, k, stride)
                let dp = vabs(y - plateau)
                let within = sel(exact, le(vabs(four * sk - sP4), lim.flat), le(dp, flatTol))
                flatF += keep(within | asInt(y .== V.zero), one)
                tieF |= near(dp, flatTol)
                tie |= near(y, hi)
                if k >= 2 {
                    tie |= near(y, stopLevel)
                    tieF |= near(vabs(y - yPrev), stopStep)
                }
                yPrev = y
            }
            tie |= tieF & ~exact
        }
        let stepLimit = lim.step, exactStep = exact
        var st = Selection(hiEff: hi)
        let negInf = V(repeating: -.infinity)
        // Points 0 and 1 precede the stop rule; from point 2 on, a small step above fitFraction^2 * plateau stops the
        // selection: no later point is selected. The loop is written twice so the usual all-exact case carries no
        // mask selects between lanes (LLVM packs selects of 16-lane masks into bytes on AVX2).
        st.add(y: ty[0], w: &tw[0], x: x[0])
        st.add(y: ty[1], w: &tw[1], x: x[1])
        var sPrev = load(sP, 1, stride)
        if allExact {
            for k in 2..<np {
                let y = ty[k], sk = load(sP, k, stride)
                st.hiEff = sel(lt(vabs(sk - sPrev), stepLimit) & lt(stopLevel, y), negInf, st.hiEff)
                sPrev = sk
                st.add(y: y, w: &tw[k], x: x[k])
            }
        } else {
            var yPrev = ty[1]
            for k in 2..<np {
                let y = ty[k], sk = load(sP, k, stride)
                let small = sel(exactStep, lt(vabs(sk - sPrev), stepLimit), lt(vabs(y - yPrev), stopStep))
                st.hiEff = sel(small & lt(stopLevel, y), negInf, st.hiEff)
                sPrev = sk
                yPrev = y
                st.add(y: y, w: &tw[k], x: x[k])
            }
        }
        let countF = st.count, sw = st.sw, swx = st.swx, swy = st.swy
        let flat = ~lt(flatF, V(repeating: Float(np - 2)))
        let noisy = lt(V(repeating: o.noisyRMS * o.noisyRMS), varSum * (one / V(repeating: Float(np))))
        var count = unsafeBitCast(countF + V(repeating: 8_388_608), to: VI.self) & VI(repeating: 0x7f_ffff)
        let irregular = invalid | tie | ~lt(varSum, V(repeating: .infinity))
            | (lt(countF, V(repeating: 4)) & (~flat | noisy))
        // Centred sums, slope, chi2.
        let xm = swx / sw, ym = swy / sw
        // In 8-lane halves (one AVX2 register per sum): written on 16 lanes, LLVM split this loop into 4-lane pieces.
        let (sxx, sxy, syy) = centredSums(points: np, w: tw, y: ty, x: x, xm: xm, ym: ym)
        let p1 = sxy / sxx
        // chi2 = sum w (dy - p1 dx)^2 = Syy - p1 Sxy (centred sums).
        let c2raw = syy.addingProduct(-p1, sxy)
        let chi2 = sel(le(c2raw, V.zero), V.zero, c2raw)
        var gain = one / p1
        var ped = ym.addingProduct(-p1, xm)
        let ndf = countF - 2
        var c2 = sel(le(ndf, V.zero), V.zero, chi2 / ndf)
        // Status, lowest priority first (the scalar reference's if-chain read bottom up).
        let inf = V(repeating: .infinity)
        let finite = lt(vabs(gain), inf) & lt(vabs(ped), inf) & lt(vabs(c2), inf)
        func code(_ s: GainPixelStatus) -> VI { VI(repeating: Int32(s.rawValue)) }
        var status = sel(dev, code(.noPlateau), code(.ok))
        status = sel(lt(V(repeating: o.maxChi2PerNDF), c2), code(.chi2TooLarge), status)
        status = sel(~lt(V.zero, gain) | lt(V(repeating: o.maxGain), gain), code(.badGain), status)
        status = sel(~finite, code(.notANumber), status)
        status = sel(flat, code(.flat), status)
        status = sel(noisy, code(.noisy), status)
        let flatOut = flat & ~noisy
        let nan = V(repeating: .nan)
        gain = sel(flatOut, nan, gain)
        ped = sel(flatOut, nan, ped)
        c2 = sel(flatOut, nan, c2)
        count &= ~flatOut
        UnsafeMutableRawPointer(out.gain + first).storeBytes(of: gain, as: V.self)
        UnsafeMutableRawPointer(out.pedestal + first).storeBytes(of: ped, as: V.self)
        UnsafeMutableRawPointer(out.chi2ndf + first).storeBytes(of: c2, as: V.self)
        UnsafeMutableRawPointer(out.npoints + first)
            .storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: count), as: SIMD16<UInt8>.self)
        UnsafeMutableRawPointer(out.status + first)
            .storeBytes(of: SIMD16<UInt8>(truncatingIfNeeded: status), as: SIMD16<UInt8>.self)
        guard any(irregular) else { return 0 }
        var handed = 0
        for j in 0..<lanes where irregular[j] != 0 {
            store(fitPixel(block, x: x, pixel: first + j, options: o), at: first + j, out)
            handed += 1
        }
        return handed
    }

    /// Weighted centred sums Sxx, Sxy, Syy of a group (per lane, the same operations in the same order as the scalar
    /// reference), computed 8 lanes at a time.
    @inline(__always)
    static func centredSums(points np: Int, w: UnsafeMutablePointer<V>, y: UnsafeMutablePointer<V>,
                            x: UnsafePointer<Float>, xm: V, ym: V) -> (V, V, V) {
        typealias H = SIMD8<Float>
        let wr = UnsafeRawPointer(w), yr = UnsafeRawPointer(y)
        var out = (V.zero, V.zero, V.zero)
        for h in 0..<2 {
            let xmh = h == 0 ? xm.lowHalf : xm.highHalf, ymh = h == 0 ? ym.lowHalf : ym.highHalf
            var sxx = H.zero, sxy = H.zero, syy = H.zero
            for k in 0..<np {
                let wk = wr.load(fromByteOffset: k &* 64 &+ h &* 32, as: H.self)
                let yk = yr.load(fromByteOffset: k &* 64 &+ h &* 32, as: H.self)
                let dx = H(repeating: x[k]) - xmh, dy = yk - ymh
                let wdx = wk * dx
                sxx = sxx.addingProduct(wdx, dx)
                sxy = sxy.addingProduct(wdx, dy)
                syy = syy.addingProduct(wk * dy, dy)
            }
            if h == 0 { out.0.lowHalf = sxx; out.1.lowHalf = sxy; out.2.lowHalf = syy }
            else { out.0.highHalf = sxx; out.1.highHalf = sxy; out.2.highHalf = syy }
        }
        return out
    }

    /// Per-lane results of pass A over one 8-lane half of a group.
    struct HalfStatistics {
        var invalid = SIMD8<Int32>.zero, sameN = SIMD8<Int32>(repeating: -1), frac = SIMD8<Int32>.zero
        var varSum = SIMD8<Float>.zero, sMax = SIMD8<Float>.zero
    }

    /// Pass A on lanes 8h ..< 8h + 8: per point the mean y = sum / n (as sum x D / (n D), one division), its weight
    /// w = n / variance (0 for censored points) into ty and tw, and per lane the sum of the point variances, whether
    /// some n <= 1, and what the exact stop rule needs (same n at every point, integral sums, their largest magnitude).
    @inline(__always)
    static func pointStatistics(half h: Int, points np: Int, n nP: UnsafePointer<Float>, s sP: UnsafePointer<Float>,
                                q qP: UnsafePointer<Float>, stride: Int, ty: UnsafeMutablePointer<V>,
                                tw: UnsafeMutablePointer<V>, options o: GainFitOptions) -> HalfStatistics {
        typealias H = SIMD8<Float>
        typealias HI = SIMD8<Int32>
        let lane0: Int = h &* 8
        @inline(__always) func ld(_ p: UnsafePointer<Float>, _ k: Int) -> H {
            let i: Int = k &* stride &+ lane0
            return UnsafeRawPointer(p + i).loadUnaligned(as: H.self)
        }
        @inline(__always) func le(_ a: H, _ b: H) -> HI { unsafeBitCast(a .<= b, to: HI.self) }
        @inline(__always) func abs(_ v: H) -> H { unsafeBitCast(unsafeBitCast(v, to: HI.self) & HI(repeating: 0x7fff_ffff), to: H.self) }
        let one = H(repeating: 1), floorV = H(repeating: o.varianceFloor), ceiling = H(repeating: adcCeiling)
        let roundingBias = H(repeating: 12_582_912)  // 1.5 x 2^23: (s + b) - b is s rounded to an integer
        let yr = UnsafeMutableRawPointer(ty), wr = UnsafeMutableRawPointer(tw)
        let n0 = ld(nP, 0)
        var r = HalfStatistics()
        for k in 0..<np {
            let n = ld(nP, k), sk = ld(sP, k), qk = ld(qP, k)
            r.sameN &= unsafeBitCast(n .== n0, to: HI.self)
            let sa = abs(sk)
            r.sMax = sel(lt(r.sMax, sa), sa, r.sMax)
            r.frac |= unsafeBitCast(((sk + roundingBias) - roundingBias) - sk, to: HI.self)
            r.invalid |= le(n, one)  // a NaN count shows up as a NaN variance sum (checked below)
            // n*sumsq - sum^2 is exact in float for integer counts below 2^24 (no cancellation error); the floor on
            // the variance D/n^2 is applied to D. One division per point: r = 1/(n D), 1/n = D r, w = n/v = n^4 r.
            let n2 = n * n
            // -sk as a sign flip (true negation, as the scalar `-sk`; `0 - sk` would not fold into vfnmadd).
            let negS = unsafeBitCast(unsafeBitCast(sk, to: HI.self) ^ HI(repeating: Int32.min), to: H.self)
            let d0 = (n * qk).addingProduct(negS, sk), fl = floorV * n2
            let dvar = sel(le(d0, fl), fl, d0)
            let rc = one / (n * dvar)
            let inv = dvar * rc
            yr.storeBytes(of: sk * inv, toByteOffset: k &* 64 &+ lane0 &* 4, as: H.self)
            // Censored points (a reading may sit at the ADC floor or ceiling, `censored(n:sum:d0:)`) get weight 0:
            // they count for the plateau and flat tests but are never selected. The floor is 0: sum - n x 0 is the
            // sum for every finite n (lanes with a non-finite n go to the scalar reference).
            let bound = (n - one) * d0
            let clo = sk, chi = n * ceiling - sk
            let cens = le(clo * clo, bound) | le(chi * chi, bound)
            wr.storeBytes(of: sel(cens, H.zero, (n2 * n2) * rc), toByteOffset: k &* 64 &+ lane0 &* 4, as: H.self)
            r.varSum += dvar * (inv * inv)
        }
        return r
    }

    /// The running state of the point selection of one group.
    struct Selection {
        var hiEff: V
        var count = V.zero, sw = V.zero, swx = V.zero, swy = V.zero

        /// Selects point (y, w) if y <= hiEff and w > 0 (its weight becomes 0 otherwise) and adds it to the sums.
        @inline(__always) mutating func add(y: V, w: inout V, x: Float) {
            let inc = le(y, hiEff) & lt(V.zero, w)
            let wi = keep(inc, w)
            w = wi
            count += keep(inc, V(repeating: 1))
            sw += wi
            swx = swx.addingProduct(wi, V(repeating: x))
            swy = swy.addingProduct(wi, y)
        }
    }

    /// The integer limits of the exact decisions for a group's counts N (ceil(stopStep x N) for the step test,
    /// floor(4 N tolerance) for the plateau deviation and the flat test), with the last group's answer kept (every
    /// pixel of a scan usually has the same N). Options read as six-digit decimals, as `ExactRational(decimal:)`.
    struct ExactLimits {
        struct Lanes { var ok = VI.zero, step = V.zero, dev = V.zero, flat = V.zero }
        let stopStep: Int64, plateauTolerance: Int64, flatTolerance: Int64
        var n = V(repeating: -1)
        var cached = Lanes()

        init(options o: GainFitOptions) {
            func decimal(_ x: Float) -> Int64 {
                let d = (Double(x) * 1e6).rounded()
                return d.magnitude < 1e12 ? Int64(d) : -1   // absurd options (> 10^6 ADC): no exact lanes
            }
            stopStep = decimal(o.stopStep); plateauTolerance = decimal(o.plateauTolerance)
            flatTolerance = decimal(o.flatTolerance)
        }

        /// Per lane: ok = -1 and the limits where N is an integer in 2...4096 (as `ExactMeans` requires) and every
        /// limit is exact in float; ok = 0 elsewhere.
        @inline(__always) mutating func of(_ n0: V) -> Lanes {
            if !any(~asInt(n0 .== n)) { return cached }
            var l = Lanes()
            for j in 0..<lanes {
                let nj = n0[j]
                guard nj == nj.rounded(), nj >= 2, nj <= 4096, stopStep >= 0, plateauTolerance >= 0,
                      flatTolerance >= 0 else { continue }
                let N = Int64(nj)
                let step = stopStep * N == 0 ? 0 : (stopStep * N - 1) / 1_000_000 + 1   // ceil
                let dev = plateauTolerance * 4 * N / 1_000_000, flat = flatTolerance * 4 * N / 1_000_000   // floor
                guard step < 1 << 24, dev < 1 << 24, flat < 1 << 24 else { continue }
                l.ok[j] = -1; l.step[j] = Float(step); l.dev[j] = Float(dev); l.flat[j] = Float(flat)
            }
            n = n0; cached = l
            return l
        }
    }

    /// Transposes 16 pixels' `points` values (pixel-major, `points` apart) into point-major vectors of 16 floats
    /// (`dst[k * 16 + j]` = pixel j, point k) with 8 x 8 register transposes; the last block overlaps the previous
    /// one when `points` is not a multiple of 8. Fewer than 8 points go element by element.
    @inline(__always)
    static func transpose16(_ src: UnsafePointer<Float>, points np: Int, into dst: UnsafeMutablePointer<Float>) {
        guard np >= 8 else {
            for j in 0..<lanes { for k in 0..<np { dst[k &* 16 &+ j] = src[j &* np &+ k] } }
            return
        }
        for half in 0..<2 {
            var kb = 0
            while true {
                let base = src + (half &* 8 &* np &+ kb)
                transpose8x8(base, rowStride: np, into: dst + (kb &* 16 &+ half &* 8), colStride: 16)
                if kb + 8 == np { break }
                kb = Swift.min(kb + 8, np - 8)
            }
        }
    }

    /// Transposes the 8 x 8 floats at `src` (rows `rowStride` apart) into `dst` (rows `colStride` apart): three
    /// rounds of "unzip" (even lanes of a row pair, then odd lanes) rotate the 6-bit element index by three bits,
    /// which is the transpose. LLVM turns each unzip into vshufps + vpermpd; written as an unpack/shuffle network it
    /// merged the stages into ~90 blends and inserts.
    @inline(__always)
    static func transpose8x8(_ src: UnsafePointer<Float>, rowStride rs: Int, into dst: UnsafeMutablePointer<Float>,
                             colStride cs: Int) {
        typealias W = SIMD8<Float>
        @inline(__always) func ld(_ i: Int) -> W { UnsafeRawPointer(src + i &* rs).loadUnaligned(as: W.self) }
        @inline(__always) func ev(_ a: W, _ b: W) -> W { SIMD16(lowHalf: a, highHalf: b).evenHalf }
        @inline(__always) func od(_ a: W, _ b: W) -> W { SIMD16(lowHalf: a, highHalf: b).oddHalf }
        @inline(__always) func st(_ i: Int, _ v: W) { UnsafeMutableRawPointer(dst + i &* cs).storeBytes(of: v, as: W.self) }
        var v0 = ld(0), v1 = ld(1), v2 = ld(2), v3 = ld(3), v4 = ld(4), v5 = ld(5), v6 = ld(6), v7 = ld(7)
        for _ in 0..<3 {
            (v0, v1, v2, v3, v4, v5, v6, v7) = (ev(v0, v1), ev(v2, v3), ev(v4, v5), ev(v6, v7),
                                                od(v0, v1), od(v2, v3), od(v4, v5), od(v6, v7))
        }
        st(0, v0); st(1, v1); st(2, v2); st(3, v3); st(4, v4); st(5, v5); st(6, v6); st(7, v7)
    }
}
