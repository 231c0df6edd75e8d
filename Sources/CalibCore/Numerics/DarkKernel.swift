import Foundation

/// Per-pixel stage-2 accumulators of dark processing (all `pixels` long), owned by the caller.
public struct DarkAccumulators: @unchecked Sendable {
    public let pixels: Int
    public let n: UnsafeMutablePointer<Int32>
    public let sum: UnsafeMutablePointer<Double>
    public let sumsq: UnsafeMutablePointer<Double>
    public let below: UnsafeMutablePointer<Int32>
    public let above: UnsafeMutablePointer<Int32>
    public let badGain: UnsafeMutablePointer<Int32>
    public let min: UnsafeMutablePointer<UInt16>
    public let max: UnsafeMutablePointer<UInt16>

    /// Allocates zeroed accumulators (min starts at 0xffff); call `deallocate()`. One `LargeBuffer` block: its pages
    /// are mapped 2 MB at a time as the stage-2 tasks first touch them.
    public static func allocate(pixels: Int) -> DarkAccumulators {
        let c = Swift.max(pixels, 1)
        // 8-byte sums first, then 4-byte counts, then 2-byte min/max: every array stays aligned to its element.
        let raw = UnsafeMutableRawPointer(LargeBuffer.zeroed(UInt8.self, count: c * (2 * 8 + 4 * 4 + 2 * 2)))
        let s = raw.bindMemory(to: Double.self, capacity: 2 * c)
        let i = (raw + 16 * c).bindMemory(to: Int32.self, capacity: 4 * c)
        let u = (raw + 32 * c).bindMemory(to: UInt16.self, capacity: 2 * c)
        u.update(repeating: .max, count: c)
        return DarkAccumulators(pixels: pixels, n: i, sum: s, sumsq: s + c, below: i + c, above: i + 2 * c,
                                badGain: i + 3 * c, min: u, max: u + c)
    }

    public func deallocate() { free(sum) }
}

/// Stage-1 gates per pixel: accepted data range [lo, hi] and the reference value (stage-1 median) subtracted before
/// summing so that sums of squares stay exact in float.
public struct DarkGates: @unchecked Sendable {
    public let lo: UnsafeMutablePointer<Float>
    public let hi: UnsafeMutablePointer<Float>
    public let ref: UnsafeMutablePointer<Float>
    /// The same gates in the integer form of the 16-bit stage-2 path (`DarkKernel.makeIntegerGates`), all pixels;
    /// nil: `accumulateVector` builds them for its range on each call.
    public var integer: UnsafeMutablePointer<SIMD16<UInt16>>? = nil

    public init(lo: UnsafeMutablePointer<Float>, hi: UnsafeMutablePointer<Float>, ref: UnsafeMutablePointer<Float>,
                integer: UnsafeMutablePointer<SIMD16<UInt16>>? = nil) {
        self.lo = lo; self.hi = hi; self.ref = ref; self.integer = integer
    }
}

/// Common-mode values of a block of frames: `values[f * groups + g]`, group index from `DarkKernel.cmGroup`.
public struct CommonModeBlock: @unchecked Sendable {
    public let mode: CommonModeMode
    public let values: UnsafePointer<Float>
    public let groupsPerFrame: Int
    /// Detector geometry: panels x rows x cols (pixels = panels * rows * cols).
    public let rows: Int
    public let cols: Int
    public let bankRows: Int
    public let bankCols: Int
}

/// Dark-run kernels: stage-1 quantile gates (scalar, sorting) and the stage-2 gated accumulation as a SIMD kernel over
/// 16 pixels x a block of frames with the scalar reference `accumulateScalar` next to it.
public enum DarkKernel {
    public static let lanes = 16
    typealias V = SIMD16<Float>
    typealias I = SIMD16<Int32>

    /// numpy-style quantile (linear interpolation) of sorted values.
    @inline(__always)
    static func quantile(_ v: UnsafeMutablePointer<Float>, _ count: Int, _ q: Double) -> Double {
        let pos = q * Double(count - 1)
        let i = Int(pos.rounded(.down))
        let frac = pos - Double(i)
        if i + 1 >= count { return Double(v[count - 1]) }
        return Double(v[i]) + (Double(v[i + 1]) - Double(v[i])) * frac
    }

    /// Stage 1 for pixels `range` (scalar reference, sorting): q05/q95 of the first `frameCount` frames (data bits)
    /// give the gates lo = max(floor(q05), intLo), hi = min(ceil(q95), intHi), hi += 1 if hi <= lo;
    /// ref = the mean of the in-gate stage-1 values rounded to an integer, the offset subtracted before summing (an integer keeps sums exact; rounding, not floor, centres pedestal - ref on 0 so a median common mode carries no offset).
    public static func gates(frames: UnsafePointer<UInt16>, frameCount: Int, pixels: Int, range: Range<Int>,
                             options o: DarkOptions, into g: DarkGates) {
        let cap = max(frameCount, 1)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: cap) { buf in
            let v = buf.baseAddress!
            for p in range {
                if frameCount == 0 { g.lo[p] = o.intLo; g.hi[p] = o.intHi; g.ref[p] = 0; continue }
                for f in 0..<frameCount { v[f] = Float(frames[f * pixels + p] & o.dataMask) }
                // Insertion sort: frameCount is ~50.
                for i in 1..<frameCount {
                    let x = v[i]; var j = i - 1
                    while j >= 0 && v[j] > x { v[j + 1] = v[j]; j -= 1 }
                    v[j + 1] = x
                }
                var lo = max(Float(quantile(v, frameCount, 0.05).rounded(.down)), o.intLo)
                var hi = min(Float(quantile(v, frameCount, 0.95).rounded(.up)), o.intHi)
                if hi <= lo { hi += 1 }
                if lo > hi { lo = hi - 1 }
                g.lo[p] = lo; g.hi[p] = hi
                var sum = 0.0, cnt = 0.0
                for f in 0..<frameCount {
                    let x = Float(frames[f * pixels + p] & o.dataMask)
                    if x >= lo && x <= hi { sum += Double(x); cnt += 1 }
                }
                g.ref[p] = cnt > 0 ? Float((sum / cnt).rounded()) : lo
            }
        }
    }

    /// Stage 1, vector version: 16 pixels at a time keep only the few smallest and largest values the 5% and 95%
    /// quantiles need (insertion into sorted registers, no sort); same result as `gates`. Falls back to `gates` when
    /// more than 8 order statistics per side are needed (nrecs1 > ~160) or for the tail.
    public static func gatesVector(frames: UnsafePointer<UInt16>, frameCount n: Int, pixels: Int, range: Range<Int>,
                                   options o: DarkOptions, into g: DarkGates) {
        let iLo = n > 1 ? Int((0.05 * Double(n - 1)).rounded(.down)) : 0
        let iHi = n > 1 ? Int((0.95 * Double(n - 1)).rounded(.down)) : 0
        let kLo = min(iLo + 2, n), kHi = n - iHi
        guard n >= 2, kLo <= 8, kHi <= 8 else {
            gates(frames: frames, frameCount: n, pixels: pixels, range: range, options: o, into: g); return
        }
        let raw = UnsafeRawPointer(frames)
        let mask16 = SIMD16<UInt16>(repeating: o.dataMask)
        var p = range.lowerBound
        // The kLo smallest and kHi largest values per lane, sorted, in 16-bit lanes (one register per rank): inserting
        // a value is one vpminuw + one vpmaxuw per rank. (Arrays of vectors indexed in the frame loop cost 4x more.)
        let ranks = UnsafeMutablePointer<SIMD16<UInt16>>.allocate(capacity: 16)
        defer { ranks.deallocate() }
        while p + lanes <= range.upperBound {
            orderStatistics(raw, byteOffset: 2 * p, frameStride: 2 * pixels, frames: n, kLo: kLo, kHi: kHi, mask: mask16, into: ranks)
            for j in 0..<lanes {
                // sorted[i] for i < kLo is the i-th smallest; sorted[n - 1 - i] for i < kHi the i-th largest.
                func sorted(_ i: Int) -> Double { i < kLo ? Double(ranks[i][j]) : Double(ranks[8 + n - 1 - i][j]) }
                func quantile(_ q: Double) -> Double {
                    let pos = q * Double(n - 1), i = Int(pos.rounded(.down)), frac = pos - Double(i)
                    return i + 1 >= n ? sorted(n - 1) : sorted(i) + (sorted(i + 1) - sorted(i)) * frac
                }
                var l = max(Float(quantile(0.05).rounded(.down)), o.intLo)
                var h = min(Float(quantile(0.95).rounded(.up)), o.intHi)
                if h <= l { h += 1 }
                if l > h { l = h - 1 }
                g.lo[p + j] = l; g.hi[p + j] = h
            }
            // ref = round(mean of the in-gate stage-1 values): keeps stage-2 offsets small (exact sums). In-gate test on
            // the truncated gates in 16-bit lanes: (v - lo) as UInt16 <= hi - lo.
            var gl = SIMD16<UInt16>(), gw = SIMD16<UInt16>()
            for j in 0..<lanes {
                let l = max(Int(g.lo[p + j]), 0), h = min(Int(g.hi[p + j]), 0xffff)
                if h >= l { gl[j] = UInt16(l); gw[j] = UInt16(h - l) } else { gl[j] = 1; gw[j] = 0; if l == 0 { gl[j] = 0xffff } }
            }
            var s0 = I8(), s1 = I8(), cnt = SIMD16<UInt16>()
            for f in 0..<n {
                let v = raw.loadUnaligned(fromByteOffset: 2 * (f * pixels + p), as: SIMD16<UInt16>.self) & mask16
                let t = v &- gl
                let inGate = unsafeBitCast(t.replacing(with: gw, where: gw .< t) .== t, to: SIMD16<UInt16>.self)
                let x = v & inGate
                s0 &+= zextLo(x); s1 &+= zextHi(x)
                cnt &-= inGate
            }
            for j in 0..<lanes {
                let sum = j < 8 ? s0[j] : s1[j - 8]
                g.ref[p + j] = cnt[j] > 0 ? Float((Double(sum) / Double(cnt[j])).rounded()) : g.lo[p + j]
            }
            p += lanes
        }
        gates(frames: frames, frameCount: n, pixels: pixels, range: p..<range.upperBound, options: o, into: g)
    }

    /// Stage-1 order statistics of one 16-pixel group: ranks[0..<kLo] the kLo smallest values per lane (sorted),
    /// ranks[8..<8+kHi] the kHi largest (largest first). A separate function so that the min/max helpers are inlined
    /// (inside the whole of `gatesVector` they were left as calls: 3x the instructions).
    @inline(never)
    static func orderStatistics(_ raw: UnsafeRawPointer, byteOffset: Int, frameStride: Int, frames n: Int, kLo: Int, kHi: Int,
                                mask: SIMD16<UInt16>, into ranks: UnsafeMutablePointer<SIMD16<UInt16>>) {
        let top = SIMD16<UInt16>(repeating: .max), bottom = SIMD16<UInt16>()
        var l0 = top, l1 = top, l2 = top, l3 = top, l4 = top, l5 = top, l6 = top, l7 = top
        var h0 = bottom, h1 = bottom, h2 = bottom, h3 = bottom, h4 = bottom, h5 = bottom, h6 = bottom, h7 = bottom
        for f in 0..<n {
            let v = raw.loadUnaligned(fromByteOffset: byteOffset &+ f &* frameStride, as: SIMD16<UInt16>.self) & mask
            var t = v
            insertSmallest(&l0, &t)
            if kLo > 1 { insertSmallest(&l1, &t)
            if kLo > 2 { insertSmallest(&l2, &t)
            if kLo > 3 { insertSmallest(&l3, &t)
            if kLo > 4 { insertSmallest(&l4, &t)
            if kLo > 5 { insertSmallest(&l5, &t)
            if kLo > 6 { insertSmallest(&l6, &t)
            if kLo > 7 { insertSmallest(&l7, &t) } } } } } } }
            t = v
            insertLargest(&h0, &t)
            if kHi > 1 { insertLargest(&h1, &t)
            if kHi > 2 { insertLargest(&h2, &t)
            if kHi > 3 { insertLargest(&h3, &t)
            if kHi > 4 { insertLargest(&h4, &t)
            if kHi > 5 { insertLargest(&h5, &t)
            if kHi > 6 { insertLargest(&h6, &t)
            if kHi > 7 { insertLargest(&h7, &t) } } } } } } }
        }
        ranks[0] = l0; ranks[1] = l1; ranks[2] = l2; ranks[3] = l3; ranks[4] = l4; ranks[5] = l5; ranks[6] = l6; ranks[7] = l7
        ranks[8] = h0; ranks[9] = h1; ranks[10] = h2; ranks[11] = h3; ranks[12] = h4; ranks[13] = h5; ranks[14] = h6; ranks[15] = h7
    }

    /// Insertion into sorted registers: `keep` takes the smaller (larger) of the two, `t` carries the other on.
    /// `@_transparent`: with `@inline(__always)` the inserts inside the `if kLo > i` branches were left as calls.
    @_transparent static func insertSmallest(_ keep: inout SIMD16<UInt16>, _ t: inout SIMD16<UInt16>) {
        let m = t .< keep
        let a = keep.replacing(with: t, where: m); t = t.replacing(with: keep, where: m); keep = a
    }
    @_transparent static func insertLargest(_ keep: inout SIMD16<UInt16>, _ t: inout SIMD16<UInt16>) {
        let m = keep .< t
        let a = keep.replacing(with: t, where: m); t = t.replacing(with: keep, where: m); keep = a
    }

    /// Group index of pixel p for common mode (panels x rows x cols geometry).
    @inline(__always)
    public static func cmGroup(_ p: Int, _ cm: CommonModeBlock) -> Int {
        let per = cm.rows * cm.cols
        let panel = p / per, r = (p % per) / cm.cols, c = p % cm.cols
        switch cm.mode {
        case .row: return panel * cm.rows + r
        case .column: return panel * cm.cols + c
        case .bank:
            let bc = (cm.cols + cm.bankCols - 1) / cm.bankCols, br = (cm.rows + cm.bankRows - 1) / cm.bankRows
            return (panel * br + r / cm.bankRows) * bc + c / cm.bankCols
        }
    }

    /// Scalar reference of stage 2: frames `frames[f * pixels + p]`, f < frameCount, pixels `range`.
    /// `expectedGain` is the raw bits-14/15 value of the gain mode (nil: no gain bits).
    public static func accumulateScalar(frames: UnsafePointer<UInt16>, frameCount: Int, pixels: Int, range: Range<Int>,
                                        expectedGain: UInt16?, gates g: DarkGates, commonMode cm: CommonModeBlock?,
                                        options o: DarkOptions, into a: DarkAccumulators, frameStride: Int? = nil) {
        let stride = frameStride ?? pixels
        for p in range {
            let group = cm.map { cmGroup(p, $0) } ?? 0
            for f in 0..<frameCount {
                let raw = frames[f * stride + p]
                let data = raw & o.dataMask
                if let e = expectedGain, raw >> 14 != e { a.badGain[p] += 1 }
                a.min[p] = Swift.min(a.min[p], data); a.max[p] = Swift.max(a.max[p], data)
                let v = Float(data)
                if v < o.intLo { a.below[p] += 1 }
                if v > o.intHi { a.above[p] += 1 }
                if v >= g.lo[p] && v <= g.hi[p] {
                    var d = v - g.ref[p]
                    if let cm { d -= cm.values[f * cm.groupsPerFrame + group] }
                    a.n[p] += 1
                    a.sum[p] += Double(d)
                    a.sumsq[p] += Double(d) * Double(d)
                }
            }
        }
    }

    /// SIMD stage 2 over pixels `range`. Without common mode and with at most 14 data bits (Jungfrau, ePix) this is
    /// the exact integer path `accumulateInteger` (16 or 32 pixels per register, the build `NumericKernels.darkInteger`
    /// names; equal to `accumulateScalar` bit for bit);
    /// otherwise the float path below (8 pixels at a time, per block float partial sums added into the double
    /// accumulators, exact for integer data with |d| < 4096 and the common-mode half-integers).
    /// `frameStride` (elements between frames, default `pixels`) lets callers pad frames apart: frames exactly a
    /// power of two bytes apart make the streams of a block alias to the same cache sets.
    public static func accumulateVector(frames: UnsafePointer<UInt16>, frameCount: Int, pixels: Int, range: Range<Int>,
                                        expectedGain: UInt16?, gates g: DarkGates, commonMode cm: CommonModeBlock?,
                                        options o: DarkOptions, into a: DarkAccumulators, frameStride: Int? = nil) {
        if cm == nil && o.dataMask <= 0x3fff {
            let stride = frameStride ?? pixels
            var ig: IntegerGates
            var owned: UnsafeMutablePointer<GateV>? = nil
            if let all = g.integer {
                ig = IntegerGates(base: UnsafePointer(all))
            } else {
                let g0 = range.lowerBound >> 4, g1 = (range.upperBound + 15) >> 4
                let buf = UnsafeMutablePointer<GateV>.allocate(capacity: 4 * Swift.max(1, g1 - g0))
                makeIntegerGates(g, pixels: pixels, groups: g0..<g1, dataMask: o.dataMask, into: buf)
                ig = IntegerGates(base: UnsafePointer(buf), firstGroup: g0)
                owned = buf
            }
            defer { owned?.deallocate() }
            // 16-bit counters: at most 65,535 frames per call.
            var f0 = 0
            repeat {
                let c = Swift.min(frameCount - f0, 65_535)
                NumericKernels.darkInteger.accumulate(frames + f0 * stride, c, pixels, range, expectedGain, g, ig, o, a, stride)
                f0 += c
            } while f0 < frameCount
            return
        }
        // 8 lanes: the eight per-pixel accumulators then stay in registers (at 16 lanes they took 16 of the 16 AVX2
        // registers and spilled every frame).
        typealias V = F8
        typealias I = I8
        let lanes = 8
        let stride = frameStride ?? pixels
        var p = range.lowerBound
        let raw = UnsafeRawPointer(frames)
        let mask = I(repeating: Int32(o.dataMask))
        let intLo = V(repeating: o.intLo), intHi = V(repeating: o.intHi)
        let expected = I(repeating: Int32(expectedGain ?? 0))
        let checkGain = expectedGain != nil
        // Vector path needs the 16 pixels in one row for row/bank common mode.
        let cmOK = cm.map { $0.cols % lanes == 0 && ($0.mode != .bank || $0.bankCols % lanes == 0) } ?? true
        if !cmOK {
            accumulateScalar(frames: frames, frameCount: frameCount, pixels: pixels, range: range,
                             expectedGain: expectedGain, gates: g, commonMode: cm, options: o, into: a, frameStride: stride)
            return
        }
        while p + lanes <= range.upperBound {
            let lo = UnsafeRawPointer(g.lo + p).loadUnaligned(as: V.self)
            let hi = UnsafeRawPointer(g.hi + p).loadUnaligned(as: V.self)
            let ref = UnsafeRawPointer(g.ref + p).loadUnaligned(as: V.self)
            var s = V.zero, q = V.zero
            var cnt = I.zero, nlo = I.zero, nhi = I.zero, bad = I.zero
            var mn = I(repeating: 0xffff), mx = I.zero
            let group = cm.map { cmGroup(p, $0) } ?? 0
            for f in 0..<frameCount {
                let r = widen8(raw, 2 &* (f &* stride &+ p))
                let data = r & mask
                if checkGain { bad &-= nonZero((r &>> 14) ^ expected) }
                mn = sel(lt(data, mn), data, mn); mx = sel(lt(mx, data), data, mx)
                let v = toFloat(data)
                nlo &+= lt(v, intLo)
                nhi &+= lt(intHi, v)
                let inGate = ~(lt(v, lo) | lt(hi, v))
                var d = v - ref
                if let cm {
                    let base = cm.values + f * cm.groupsPerFrame
                    if cm.mode == .column {
                        d -= UnsafeRawPointer(base + group).loadUnaligned(as: V.self)
                    } else {
                        d -= V(repeating: base[group])
                    }
                }
                d = sel(inGate, d, V.zero)  // a blend: `d & inGate` was rebuilt through packed byte masks
                s += d
                q = q.addingProduct(d, d)
                cnt &-= inGate
            }
            // Into the per-pixel accumulators, 8 lanes at a time (a per-lane loop cost as much as the frame loop with
            // 16-frame blocks). Counters wrap (&+): a run would need 2^31 frames to overflow them.
            @inline(__always) func add(_ ptr: UnsafeMutablePointer<Int32>, _ v: I) {
                let r = UnsafeMutableRawPointer(ptr + p)
                r.storeBytes(of: r.loadUnaligned(as: I.self) &+ v, as: I.self)
            }
            add(a.n, cnt); add(a.below, I.zero &- nlo); add(a.above, I.zero &- nhi); add(a.badGain, bad)
            @inline(__always) func add(_ ptr: UnsafeMutablePointer<Double>, _ v: V) {
                let r = UnsafeMutableRawPointer(ptr + p)
                let lo = SIMD4<Double>(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]))
                let hi = SIMD4<Double>(Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7]))
                r.storeBytes(of: r.loadUnaligned(as: SIMD4<Double>.self) + lo, as: SIMD4<Double>.self)
                r.storeBytes(of: r.loadUnaligned(fromByteOffset: 32, as: SIMD4<Double>.self) + hi, toByteOffset: 32,
                             as: SIMD4<Double>.self)
            }
            add(a.sum, s); add(a.sumsq, q)
            @inline(__always) func narrow(_ v: I) -> SIMD8<UInt16> {
                SIMD8<UInt16>(UInt16(truncatingIfNeeded: v[0]), UInt16(truncatingIfNeeded: v[1]),
                              UInt16(truncatingIfNeeded: v[2]), UInt16(truncatingIfNeeded: v[3]),
                              UInt16(truncatingIfNeeded: v[4]), UInt16(truncatingIfNeeded: v[5]),
                              UInt16(truncatingIfNeeded: v[6]), UInt16(truncatingIfNeeded: v[7]))
            }
            let oldMin = widen8(UnsafeRawPointer(a.min + p), 0), oldMax = widen8(UnsafeRawPointer(a.max + p), 0)
            UnsafeMutableRawPointer(a.min + p).storeBytes(of: narrow(sel(lt(mn, oldMin), mn, oldMin)), as: SIMD8<UInt16>.self)
            UnsafeMutableRawPointer(a.max + p).storeBytes(of: narrow(sel(lt(oldMax, mx), mx, oldMax)), as: SIMD8<UInt16>.self)
            p += lanes
        }
        accumulateScalar(frames: frames, frameCount: frameCount, pixels: pixels, range: p..<range.upperBound,
                         expectedGain: expectedGain, gates: g, commonMode: cm, options: o, into: a, frameStride: stride)
    }

    /// Median common mode of frames `frames[f * pixels + p]` per group: median of data - ref over in-gate pixels, used
    /// when more than `cmMinPixels` contribute and |cm| < cmMax, else 0. Writes `frameCount * groups` values.
    public static func commonMode(frames: UnsafePointer<UInt16>, frame f: Int, pixels: Int, gates g: DarkGates,
                                  geometry: CommonModeBlock, options o: DarkOptions, into out: UnsafeMutablePointer<Float>,
                                  frameStride: Int? = nil) {
        let stride = frameStride ?? pixels
        let groups = geometry.groupsPerFrame
        var values = [[Float]](repeating: [], count: groups)
        for p in 0..<pixels {
            let v = Float(frames[f * stride + p] & o.dataMask)
            if v >= g.lo[p] && v <= g.hi[p] { values[cmGroup(p, geometry)].append(v - g.ref[p]) }
        }
        for k in 0..<groups {
            var a = values[k]
            guard a.count > o.cmMinPixels else { out[k] = 0; continue }
            let mid = a.count / 2
            a.withUnsafeMutableBufferPointer { quickSelect($0, mid) }
            var m = a[mid]
            if a.count % 2 == 0 { m = (m + (a[..<mid].max() ?? m)) * 0.5 }
            out[k] = abs(m) < o.cmMax ? m : 0
        }
    }

    /// Quickselect: puts the k-th smallest at index k.
    static func quickSelect(_ a: UnsafeMutableBufferPointer<Float>, _ k: Int) {
        var lo = 0, hi = a.count - 1
        while lo < hi {
            let pivot = a[(lo + hi) / 2]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if k <= j { hi = j } else if k >= i { lo = i } else { return }
        }
    }

    /// Groups per frame of a common-mode geometry.
    public static func groupCount(panels: Int, rows: Int, cols: Int, mode: CommonModeMode, bankRows: Int, bankCols: Int) -> Int {
        switch mode {
        case .row: panels * rows
        case .column: panels * cols
        case .bank: panels * ((rows + bankRows - 1) / bankRows) * ((cols + bankCols - 1) / bankCols)
        }
    }
}

extension SIMD16 where Scalar == Float {
    /// Lane-wise conversion of integral float values to Int32.
    @inline(__always) func toInt() -> SIMD16<Int32> {
        var r = SIMD16<Int32>.zero
        for i in 0..<16 { r[i] = Int32(self[i]) }
        return r
    }
}
