import CPrefetch
import Foundation

// Exact integer stage 2 of dark processing in 16-bit lanes (docs/numerics.md, "Dark processing"): one AVX2 register
// holds 16 pixels of a frame; sums of d = value - ref and of d^2 are integers, summed exactly in 16- or 32-bit lanes
// over chunks whose bounds are known from the gates, then added into the double accumulators (exact below 2^53).
// The result equals `accumulateScalar` bit for bit, whatever the block length, tiling or thread count.

typealias U16V = SIMD16<UInt16>
typealias S16V = SIMD16<Int16>

@inline(__always) func mask16(_ m: SIMDMask<S16V>) -> U16V { unsafeBitCast(m, to: U16V.self) }
@_transparent func umin(_ a: U16V, _ b: U16V) -> U16V { a.replacing(with: b, where: b .< a) }
@_transparent func umax(_ a: U16V, _ b: U16V) -> U16V { a.replacing(with: b, where: a .< b) }
@inline(__always) func sextLo(_ v: S16V) -> I8 {
    I8(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}
@inline(__always) func sextHi(_ v: S16V) -> I8 {
    I8(Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}
@inline(__always) func zextLo(_ v: U16V) -> I8 {
    I8(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}
@inline(__always) func zextHi(_ v: U16V) -> I8 {
    I8(Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}
typealias D4 = SIMD4<Double>
/// Int32 lanes to Double, exactly (vcvtdq2pd).
@inline(__always) func toDouble(_ v: I8) -> (D4, D4) {
    (D4(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3])), D4(Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7])))
}
/// UInt32 lanes (as Int32 bit patterns) to Double, exactly.
@inline(__always) func toDoubleUnsigned(_ v: I8) -> (D4, D4) {
    let (a, b) = toDouble(v ^ I8(repeating: Int32.min))
    let o = D4(repeating: 2_147_483_648)
    return (a + o, b + o)
}
@inline(__always) func addInto(_ p: UnsafeMutablePointer<Double>, _ a: D4, _ b: D4) {
    let r = UnsafeMutableRawPointer(p)
    r.storeBytes(of: r.loadUnaligned(as: D4.self) + a, as: D4.self)
    r.storeBytes(of: r.loadUnaligned(fromByteOffset: 32, as: D4.self) + b, toByteOffset: 32, as: D4.self)
}
@inline(__always) func addInto(_ p: UnsafeMutablePointer<Int32>, _ v: I8) {
    let r = UnsafeMutableRawPointer(p)
    r.storeBytes(of: r.loadUnaligned(as: I8.self) &+ v, as: I8.self)
}
/// One frame of 16 pixels through a stage-1 gate [lo, lo + width] (unsigned wrap-around test): counts the pixels
/// inside into `n` (16-bit lanes) and returns their offsets from `ref`, 0 outside the gate.
@inline(__always) func gated(_ v: U16V, lo: U16V, width: U16V, ref: U16V, count n: inout U16V) -> S16V {
    let t = v &- lo
    let inG = mask16(umin(t, width) .== t)
    n &-= inG
    return unsafeBitCast((v &- ref) & inG, to: S16V.self)
}
/// Adds 16 offsets and their squares to 32-bit sums (lanes 0-7 and 8-15).
@inline(__always) func addWide(_ d: S16V, sum s0: inout I8, _ s1: inout I8, squares q0: inout I8, _ q1: inout I8) {
    let dl = sextLo(d), dh = sextHi(d)
    s0 &+= dl; s1 &+= dh
    q0 &+= dl &* dl; q1 &+= dh &* dh
}
@inline(__always) func any16(_ v: U16V) -> Bool {
    let c = unsafeBitCast(v, to: SIMD4<UInt64>.self)
    return (c.x | c.y) | (c.z | c.w) != 0
}

/// Integer form of the stage-1 gates for `DarkKernel.accumulateInteger`: 4 x 16 UInt16 per group of 16 pixels
/// (`makeIntegerGates`), `base` holding group `firstGroup`.
struct IntegerGates: @unchecked Sendable {
    let base: UnsafePointer<U16V>
    var firstGroup = 0
}

extension DarkKernel {
    /// How far ahead (bytes) the integer stage 2 prefetches in each frame stream. The kernel walks 32-128 frame
    /// streams at once, 32 bytes per stream per 16-pixel group: more than the hardware prefetchers follow. `bench
    /// dark`, frames in memory, 2 threads (sixth session): none 12.2 GB/s, 384 B 23.0, 640 B 24.5, 1 kB 25.8-26.6,
    /// 2 kB 24.2-24.9, 4 kB 20.3-21.6; the earlier staged copy into L2 15.5.
    static let prefetchDistance = 1024

    /// Per group k (pixels 16k..<16k+16): [lo', width, ref, maxD in lane 0]: integer data v is in the gate [lo, hi]
    /// <=> (v - lo') as UInt16 <= width (lo' = ceil(lo), width = floor(hi) - lo'; an empty gate never matches),
    /// d = v - ref, |d| <= maxD for in-gate v. Width 0xffff (all lanes) marks a group the integer path cannot take
    /// (non-integer ref, |d| could exceed 16383, i.e. unusual intLo/intHi options): the scalar reference does it.
    /// Writes groups `range`, group k at `out + 4 * (k - range.lowerBound)`.
    static func makeIntegerGates(_ g: DarkGates, pixels: Int, groups range: Range<Int>, dataMask: UInt16,
                                 into out: UnsafeMutablePointer<U16V>) {
        let dataMask = Swift.min(dataMask, 0x3fff)
        let M = Float(dataMask)
        for gi in range {
            var lo = U16V(), w = U16V(), rf = U16V()
            var ok = true
            var maxD: Float = 0
            for j in 0..<16 where gi * 16 + j < pixels {
                let p = gi * 16 + j
                let l = g.lo[p], h = g.hi[p], r = g.ref[p]
                let lc = Swift.max(l.rounded(.up), 0), hc = Swift.min(h.rounded(.down), M)
                if !(lc <= hc) { lo[j] = UInt16(dataMask) + 1; w[j] = 0; rf[j] = 0; continue }
                guard r == r.rounded(), r - lc <= 16383, hc - r <= 16383, abs(r) <= 16383 else { ok = false; break }
                lo[j] = UInt16(lc); w[j] = UInt16(hc - lc); rf[j] = UInt16(bitPattern: Int16(r))
                maxD = Swift.max(maxD, r - lc, hc - r)
            }
            var c = U16V()
            c[0] = UInt16(maxD)
            let o = out + 4 * (gi - range.lowerBound)
            o[0] = lo; o[1] = ok ? w : U16V(repeating: 0xffff); o[2] = rf; o[3] = c
        }
    }

    /// Stage 2 in 16-bit lanes with exact integer sums: same results as `accumulateScalar`. Needs dataMask <= 0x3fff,
    /// no common mode and frameCount <= 65535 (16-bit counters); `accumulateVector` checks and dispatches.
    static func accumulateInteger(frames: UnsafePointer<UInt16>, frameCount F: Int, pixels: Int, range: Range<Int>,
                                  expectedGain: UInt16?, gates g: DarkGates, integerGates ig: IntegerGates,
                                  options o: DarkOptions, into a: DarkAccumulators, frameStride: Int? = nil) {
        if expectedGain != nil {
            accumulateInteger(checkGain: true, frames: frames, frameCount: F, pixels: pixels, range: range,
                              expectedGain: expectedGain, gates: g, integerGates: ig, options: o, into: a, frameStride: frameStride)
        } else {
            accumulateInteger(checkGain: false, frames: frames, frameCount: F, pixels: pixels, range: range,
                              expectedGain: expectedGain, gates: g, integerGates: ig, options: o, into: a, frameStride: frameStride)
        }
    }

    @inline(__always)
    static func accumulateInteger(checkGain: Bool, frames: UnsafePointer<UInt16>, frameCount F: Int, pixels: Int,
                                  range: Range<Int>, expectedGain: UInt16?, gates g: DarkGates, integerGates ig: IntegerGates,
                                  options o: DarkOptions, into a: DarkAccumulators, frameStride: Int?) {
        let stride = frameStride ?? pixels
        let raw = UnsafeRawPointer(frames)
        let M = Float(o.dataMask)
        func clampI(_ x: Float, _ lo: Float, _ hi: Float) -> Int16 { Int16(Swift.min(Swift.max(x, lo), hi)) }
        // Integer data v: v < intLo <=> v < ceil(intLo); v > intHi <=> v > floor(intHi).
        let below = o.intLo.isNaN ? 0 : clampI(o.intLo.rounded(.up), 0, M + 1)
        let above = o.intHi.isNaN ? Int16(o.dataMask) : clampI(o.intHi.rounded(.down), -1, M)
        let belowV = S16V(repeating: below), aboveV = S16V(repeating: above)
        let maskV = U16V(repeating: o.dataMask)
        let expV = U16V(repeating: expectedGain ?? 0)
        // Raw values of a pixel with the expected gain bits and no value out of [intLo, intHi] lie in [rawLo, rawHi].
        let base = (expectedGain ?? 0) << 14
        let baseV = U16V(repeating: base)
        let rawLo = U16V(repeating: base &+ UInt16(truncatingIfNeeded: below))
        let rawHi = U16V(repeating: base &+ UInt16(truncatingIfNeeded: Swift.min(Int(above), Int(o.dataMask))))
        // The fast pass needs a contiguous data field (mask 2^k - 1) and a non-empty [below, above] inside it.
        let valid = below >= 0 && below <= above && Int(below) <= Int(o.dataMask) && (o.dataMask & (o.dataMask &+ 1)) == 0
        let frames16 = U16V(repeating: UInt16(truncatingIfNeeded: F))
        let step = 2 &* stride
        let pf = prefetchDistance
        var p0 = range.lowerBound
        while p0 & 15 != 0 && p0 < range.upperBound { p0 += 1 }
        accumulateScalar(frames: frames, frameCount: F, pixels: pixels, range: range.lowerBound..<p0, expectedGain: expectedGain,
                         gates: g, commonMode: nil, options: o, into: a, frameStride: stride)
        var p = p0
        while p + 16 <= range.upperBound {
            let q = ig.base + 4 * ((p >> 4) - ig.firstGroup)
            let wV = q[1]
            if !any16(~wV) {
                accumulateScalar(frames: frames, frameCount: F, pixels: pixels, range: p..<(p + 16), expectedGain: expectedGain,
                                 gates: g, commonMode: nil, options: o, into: a, frameStride: stride)
                p += 16
                continue
            }
            let maxD = Int(q[3][0])
            var nIn = U16V(), mn = U16V(repeating: .max), mx = U16V()
            var s0 = I8(), s1 = I8()
            var sq0 = D4(), sq1 = D4(), sq2 = D4(), sq3 = D4()
            var nLo = U16V(), nHi = U16V(), nEq = U16V()
            let start = 2 &* p
            var fast = valid
            if fast {
                // Fast pass on raw values: gate and offsets shifted by the expected gain bits, min/max of raw values.
                // Valid if every raw value of every lane is in [rawLo, rawHi] (checked below), else the general pass.
                let loV = q[0] &+ baseV, refV = q[2] &+ baseV
                var off = start
                var f0 = 0
                if maxD <= 90 {
                    // |d| <= 90: sums and squares in 16 bits over chunks (|sum| <= 32767, sum of squares <= 65535).
                    let chunk = maxD == 0 ? F : Swift.min(32767 / maxD, 65535 / (maxD * maxD))
                    repeat {
                        let f1 = Swift.min(F, f0 + chunk)
                        var s = S16V(), qq = U16V()
                        for _ in f0..<f1 {
                            let r = raw.loadUnaligned(fromByteOffset: off, as: U16V.self)
                            calib_prefetch(raw + (off &+ pf))
                            off &+= step
                            mn = umin(mn, r); mx = umax(mx, r)
                            let d = gated(r, lo: loV, width: wV, ref: refV, count: &nIn)
                            s &+= d
                            qq &+= unsafeBitCast(d &* d, to: U16V.self)
                        }
                        s0 &+= sextLo(s); s1 &+= sextHi(s)
                        let (x0, x1) = toDouble(zextLo(qq)), (x2, x3) = toDouble(zextHi(qq))
                        sq0 += x0; sq1 += x1; sq2 += x2; sq3 += x3
                        f0 = f1
                    } while f0 < F
                } else {
                    // Sums in 32 bits, squares in 32 bits (unsigned) over chunks.
                    let chunk = Swift.max(1, Int(UInt32.max / UInt32(maxD * maxD)))
                    repeat {
                        let f1 = Swift.min(F, f0 + chunk)
                        var q0 = I8(), q1 = I8()
                        for _ in f0..<f1 {
                            let r = raw.loadUnaligned(fromByteOffset: off, as: U16V.self)
                            calib_prefetch(raw + (off &+ pf))
                            off &+= step
                            mn = umin(mn, r); mx = umax(mx, r)
                            addWide(gated(r, lo: loV, width: wV, ref: refV, count: &nIn), sum: &s0, &s1, squares: &q0, &q1)
                        }
                        let (x0, x1) = toDoubleUnsigned(q0), (x2, x3) = toDoubleUnsigned(q1)
                        sq0 += x0; sq1 += x1; sq2 += x2; sq3 += x3
                        f0 = f1
                    } while f0 < F
                }
                fast = F == 0 || !any16((umax(mn, rawLo) ^ mn) | (umin(mx, rawHi) ^ mx))
                mn = mn &- baseV; mx = mx &- baseV
            }
            if !fast {
                // General pass: gain bits, out-of-range counts, masked data.
                let loV = q[0], refV = q[2]
                nIn = U16V(); mn = U16V(repeating: .max); mx = U16V(); s0 = I8(); s1 = I8()
                sq0 = D4(); sq1 = D4(); sq2 = D4(); sq3 = D4()
                let chunk = maxD == 0 ? F : Swift.max(1, Int(UInt32.max / UInt32(maxD * maxD)))
                var off = start
                var f0 = 0
                repeat {
                    let f1 = Swift.min(F, f0 + chunk)
                    var q0 = I8(), q1 = I8()
                    for _ in f0..<f1 {
                        let r = raw.loadUnaligned(fromByteOffset: off, as: U16V.self)
                        calib_prefetch(raw + (off &+ pf))
                        off &+= step
                        let data = r & maskV
                        if checkGain { nEq &-= mask16((r &>> 14) .== expV) }
                        mn = umin(mn, data); mx = umax(mx, data)
                        let sd = unsafeBitCast(data, to: S16V.self)
                        nLo &-= mask16(sd .< belowV)
                        nHi &-= mask16(aboveV .< sd)
                        addWide(gated(data, lo: loV, width: wV, ref: refV, count: &nIn), sum: &s0, &s1, squares: &q0, &q1)
                    }
                    let (x0, x1) = toDoubleUnsigned(q0), (x2, x3) = toDoubleUnsigned(q1)
                    sq0 += x0; sq1 += x1; sq2 += x2; sq3 += x3
                    f0 = f1
                } while f0 < F
                let bad = checkGain ? frames16 &- nEq : U16V()
                addInto(a.below + p, zextLo(nLo)); addInto(a.below + p + 8, zextHi(nLo))
                addInto(a.above + p, zextLo(nHi)); addInto(a.above + p + 8, zextHi(nHi))
                addInto(a.badGain + p, zextLo(bad)); addInto(a.badGain + p + 8, zextHi(bad))
            }
            addInto(a.n + p, zextLo(nIn)); addInto(a.n + p + 8, zextHi(nIn))
            let (u0, u1) = toDouble(s0), (u2, u3) = toDouble(s1)
            addInto(a.sum + p, u0, u1); addInto(a.sum + p + 8, u2, u3)
            addInto(a.sumsq + p, sq0, sq1); addInto(a.sumsq + p + 8, sq2, sq3)
            let mnp = UnsafeMutableRawPointer(a.min + p), mxp = UnsafeMutableRawPointer(a.max + p)
            mnp.storeBytes(of: umin(mnp.loadUnaligned(as: U16V.self), mn), as: U16V.self)
            mxp.storeBytes(of: umax(mxp.loadUnaligned(as: U16V.self), mx), as: U16V.self)
            p += 16
        }
        accumulateScalar(frames: frames, frameCount: F, pixels: pixels, range: p..<range.upperBound, expectedGain: expectedGain,
                         gates: g, commonMode: nil, options: o, into: a, frameStride: stride)
    }
}

extension DarkKernel {
    /// The integer form of gates `g` for all `pixels` (on `threads` threads), for `DarkGates.integer`; deallocate it
    /// after use. Built once per gain mode after stage 1 so that the stage-2 blocks do not redo it.
    public static func makeIntegerGates(_ g: DarkGates, pixels: Int, dataMask: UInt16, threads: Int) -> UnsafeMutablePointer<SIMD16<UInt16>> {
        let groups = (pixels + 15) / 16
        let out = UnsafeMutablePointer<U16V>.allocate(capacity: 4 * Swift.max(groups, 1))
        let op = SendablePointer(out)
        let per = 4096, parts = (groups + per - 1) / per
        DispatchQueue.concurrentPerform(iterations: Swift.max(1, Swift.min(parts, threads == 1 ? 1 : parts))) { t in
            let r = threads == 1 ? 0..<groups : (t * per)..<Swift.min(groups, (t + 1) * per)
            makeIntegerGates(g, pixels: pixels, groups: r, dataMask: dataMask, into: op.base + 4 * r.lowerBound)
        }
        return out
    }
}
