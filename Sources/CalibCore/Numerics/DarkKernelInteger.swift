#if CALIBCTL_AVX512
import CalibCore
#endif
import CPrefetch
import Foundation

// Exact integer stage 2 of dark processing in 16-bit lanes (docs/numerics.md, "Dark processing"): one register holds
// 16 (AVX2) or 32 (AVX-512) pixels of a frame; sums of d = value - ref and of d^2 are integers, summed exactly in 16- or 32-bit lanes
// over chunks whose bounds are known from the gates, then added into the double accumulators (exact below 2^53).
// The result equals `accumulateScalar` bit for bit, whatever the block length, tiling or thread count.

// The integer kernel is compiled into CalibCore at 16 pixels per register (AVX2) and, through a symbolic link, into
// CalibKernelsAVX512 at 32 (docs/numerics.md, "Instruction sets"); `NumericKernels.darkInteger` picks one.
#if CALIBCTL_AVX512
typealias U16V = SIMD32<UInt16>
typealias S16V = SIMD32<Int16>
/// Int32 lanes of half a register, and Double lanes of a quarter.
typealias HalfI = SIMD16<Int32>
typealias QuarterD = SIMD8<Double>
@inline(__always) func sextLo(_ v: S16V) -> HalfI {
    HalfI(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]), Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}
@inline(__always) func sextHi(_ v: S16V) -> HalfI {
    HalfI(Int32(v[16]), Int32(v[17]), Int32(v[18]), Int32(v[19]), Int32(v[20]), Int32(v[21]), Int32(v[22]), Int32(v[23]), Int32(v[24]), Int32(v[25]), Int32(v[26]), Int32(v[27]), Int32(v[28]), Int32(v[29]), Int32(v[30]), Int32(v[31]))
}
@inline(__always) func zextLo(_ v: U16V) -> HalfI {
    HalfI(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]), Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}
@inline(__always) func zextHi(_ v: U16V) -> HalfI {
    HalfI(Int32(v[16]), Int32(v[17]), Int32(v[18]), Int32(v[19]), Int32(v[20]), Int32(v[21]), Int32(v[22]), Int32(v[23]), Int32(v[24]), Int32(v[25]), Int32(v[26]), Int32(v[27]), Int32(v[28]), Int32(v[29]), Int32(v[30]), Int32(v[31]))
}
/// Int32 lanes to Double, exactly (vcvtdq2pd).
@inline(__always) func toDouble(_ v: HalfI) -> (QuarterD, QuarterD) {
    (QuarterD(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3]), Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7])),
     QuarterD(Double(v[8]), Double(v[9]), Double(v[10]), Double(v[11]), Double(v[12]), Double(v[13]), Double(v[14]), Double(v[15])))
}
@inline(__always) func any16(_ v: U16V) -> Bool {
    let c = unsafeBitCast(v, to: SIMD8<UInt64>.self)
    return ((c[0] | c[1]) | (c[2] | c[3])) | ((c[4] | c[5]) | (c[6] | c[7])) != 0
}
#else
typealias U16V = SIMD16<UInt16>
typealias S16V = SIMD16<Int16>
/// Int32 lanes of half a register, and Double lanes of a quarter.
typealias HalfI = SIMD8<Int32>
typealias QuarterD = SIMD4<Double>
@inline(__always) func sextLo(_ v: S16V) -> HalfI {
    HalfI(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}
@inline(__always) func sextHi(_ v: S16V) -> HalfI {
    HalfI(Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}
@inline(__always) func zextLo(_ v: U16V) -> HalfI {
    HalfI(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}
@inline(__always) func zextHi(_ v: U16V) -> HalfI {
    HalfI(Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]), Int32(v[15]))
}
/// Int32 lanes to Double, exactly (vcvtdq2pd).
@inline(__always) func toDouble(_ v: HalfI) -> (QuarterD, QuarterD) {
    (QuarterD(Double(v[0]), Double(v[1]), Double(v[2]), Double(v[3])),
     QuarterD(Double(v[4]), Double(v[5]), Double(v[6]), Double(v[7])))
}
@inline(__always) func any16(_ v: U16V) -> Bool {
    let c = unsafeBitCast(v, to: SIMD4<UInt64>.self)
    return (c.x | c.y) | (c.z | c.w) != 0
}
#endif
/// The gate vectors of a register's pixels from the integer gates (16-pixel groups, 4 vectors each): component k
/// (0 lo', 1 width, 2 ref) of the group at `q` and, at 32 lanes, of the next group.
@inline(__always) func gateLanes(_ q: UnsafePointer<GateV>, _ k: Int) -> U16V {
    #if CALIBCTL_AVX512
    U16V(lowHalf: q[k], highHalf: q[4 + k])
    #else
    q[k]
    #endif
}
/// The largest |d| of the register's groups, and whether any of them is marked for the scalar reference.
@inline(__always) func gateBounds(_ q: UnsafePointer<GateV>) -> (maxD: Int, scalar: Bool) {
    func flagged(_ w: GateV) -> Bool { w == GateV(repeating: 0xffff) }
    #if CALIBCTL_AVX512
    return (Swift.max(Int(q[3][0]), Int(q[7][0])), flagged(q[1]) || flagged(q[5]))
    #else
    return (Int(q[3][0]), flagged(q[1]))
    #endif
}
@inline(__always) func mask16(_ m: SIMDMask<S16V>) -> U16V { unsafeBitCast(m, to: U16V.self) }
#if CALIBCTL_AVX512
// Swift 6.3's SIMD32<UInt16> has concrete (one-instruction) arithmetic and comparisons, but its bitwise operators,
// shifts and `replacing(with:where:)` are the generic lane-by-lane loops (the first AVX-512 build ran 20x slower than
// AVX2): bitwise operations go through 64-bit lanes, selects are bit selects, and AVX-512 has the unsigned 16-bit
// compare the gate test needs.
typealias W64 = SIMD8<UInt64>
@_transparent func band(_ a: U16V, _ b: U16V) -> U16V {
    unsafeBitCast(unsafeBitCast(a, to: W64.self) & unsafeBitCast(b, to: W64.self), to: U16V.self)
}
@_transparent func bor(_ a: U16V, _ b: U16V) -> U16V {
    unsafeBitCast(unsafeBitCast(a, to: W64.self) | unsafeBitCast(b, to: W64.self), to: U16V.self)
}
@_transparent func bxor(_ a: U16V, _ b: U16V) -> U16V {
    unsafeBitCast(unsafeBitCast(a, to: W64.self) ^ unsafeBitCast(b, to: W64.self), to: U16V.self)
}
@_transparent func umin(_ a: U16V, _ b: U16V) -> U16V { bxor(a, band(bxor(a, b), mask16(b .< a))) }
@_transparent func umax(_ a: U16V, _ b: U16V) -> U16V { bxor(a, band(bxor(a, b), mask16(a .< b))) }
@_transparent func within(_ t: U16V, _ width: U16V) -> U16V { mask16(t .<= width) }
#else
@_transparent func band(_ a: U16V, _ b: U16V) -> U16V { a & b }
@_transparent func bor(_ a: U16V, _ b: U16V) -> U16V { a | b }
@_transparent func bxor(_ a: U16V, _ b: U16V) -> U16V { a ^ b }
@_transparent func umin(_ a: U16V, _ b: U16V) -> U16V { a.replacing(with: b, where: b .< a) }
@_transparent func umax(_ a: U16V, _ b: U16V) -> U16V { a.replacing(with: b, where: a .< b) }
/// -1 where t <= width (unsigned): AVX2 has no unsigned 16-bit compare, vpminuw + vpcmpeqw make one.
@_transparent func within(_ t: U16V, _ width: U16V) -> U16V { mask16(umin(t, width) .== t) }
#endif
/// UInt32 lanes (as Int32 bit patterns) to Double, exactly.
@inline(__always) func toDoubleUnsigned(_ v: HalfI) -> (QuarterD, QuarterD) {
    let (a, b) = toDouble(v ^ HalfI(repeating: Int32.min))
    let o = QuarterD(repeating: 2_147_483_648)
    return (a + o, b + o)
}
@inline(__always) func addInto(_ p: UnsafeMutablePointer<Double>, _ a: QuarterD, _ b: QuarterD) {
    let r = UnsafeMutableRawPointer(p), w = MemoryLayout<QuarterD>.size
    r.storeBytes(of: r.loadUnaligned(as: QuarterD.self) + a, as: QuarterD.self)
    r.storeBytes(of: r.loadUnaligned(fromByteOffset: w, as: QuarterD.self) + b, toByteOffset: w, as: QuarterD.self)
}
@inline(__always) func addInto(_ p: UnsafeMutablePointer<Int32>, _ v: HalfI) {
    let r = UnsafeMutableRawPointer(p)
    r.storeBytes(of: r.loadUnaligned(as: HalfI.self) &+ v, as: HalfI.self)
}
/// One frame of a register's pixels through a stage-1 gate [lo, lo + width] (unsigned wrap-around test): counts the
/// pixels inside into `n` (16-bit lanes) and returns their offsets from `ref`, 0 outside the gate.
@inline(__always) func gated(_ v: U16V, lo: U16V, width: U16V, ref: U16V, count n: inout U16V) -> S16V {
    let inG = within(v &- lo, width)
    n &-= inG
    return unsafeBitCast(band(v &- ref, inG), to: S16V.self)
}
/// Adds a register's offsets and their squares to 32-bit sums (lower and upper half of the lanes).
@inline(__always) func addWide(_ d: S16V, sum s0: inout HalfI, _ s1: inout HalfI, squares q0: inout HalfI, _ q1: inout HalfI) {
    let dl = sextLo(d), dh = sextHi(d)
    s0 &+= dl; s1 &+= dh
    q0 &+= dl &* dl; q1 &+= dh &* dh
}

extension DarkKernel {
    /// How far ahead (bytes) the integer stage 2 prefetches in each frame stream. The kernel walks 32-128 frame
    /// streams at once, 32 bytes per stream per 16-pixel group: more than the hardware prefetchers follow. `bench
    /// dark`, frames in memory, 2 threads (sixth session): none 12.2 GB/s, 384 B 23.0, 640 B 24.5, 1 kB 25.8-26.6,
    /// 2 kB 24.2-24.9, 4 kB 20.3-21.6; the earlier staged copy into L2 15.5.
    static let prefetchDistance = 1024

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
        // A frame's gain bits equal the expected ones <=> r & 0xc000 == expected << 14 (expected is 0, 1 or 3).
        precondition((expectedGain ?? 0) <= 3, "gain mode \(expectedGain ?? 0) has no 2-bit code")
        let gainBitsV = U16V(repeating: 0xc000)
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
        let L = U16V.scalarCount, H = L / 2
        var p = p0
        while p + L <= range.upperBound {
            let q = ig.base + 4 * ((p >> 4) - ig.firstGroup)
            let (maxD, scalar) = gateBounds(q)
            if scalar {
                accumulateScalar(frames: frames, frameCount: F, pixels: pixels, range: p..<(p + L), expectedGain: expectedGain,
                                 gates: g, commonMode: nil, options: o, into: a, frameStride: stride)
                p += L
                continue
            }
            let wV = gateLanes(q, 1)
            var nIn = U16V(), mn = U16V(repeating: .max), mx = U16V()
            var s0 = HalfI(), s1 = HalfI()
            var sq0 = QuarterD(), sq1 = QuarterD(), sq2 = QuarterD(), sq3 = QuarterD()
            var nLo = U16V(), nHi = U16V(), nEq = U16V()
            let start = 2 &* p
            var fast = valid
            if fast {
                // Fast pass on raw values: gate and offsets shifted by the expected gain bits, min/max of raw values.
                // Valid if every raw value of every lane is in [rawLo, rawHi] (checked below), else the general pass.
                let loV = gateLanes(q, 0) &+ baseV, refV = gateLanes(q, 2) &+ baseV
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
                        var q0 = HalfI(), q1 = HalfI()
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
                fast = F == 0 || !any16(bor(bxor(umax(mn, rawLo), mn), bxor(umin(mx, rawHi), mx)))
                mn = mn &- baseV; mx = mx &- baseV
            }
            if !fast {
                // General pass: gain bits, out-of-range counts, masked data.
                let loV = gateLanes(q, 0), refV = gateLanes(q, 2)
                nIn = U16V(); mn = U16V(repeating: .max); mx = U16V(); s0 = HalfI(); s1 = HalfI()
                sq0 = QuarterD(); sq1 = QuarterD(); sq2 = QuarterD(); sq3 = QuarterD()
                let chunk = maxD == 0 ? F : Swift.max(1, Int(UInt32.max / UInt32(maxD * maxD)))
                var off = start
                var f0 = 0
                repeat {
                    let f1 = Swift.min(F, f0 + chunk)
                    var q0 = HalfI(), q1 = HalfI()
                    for _ in f0..<f1 {
                        let r = raw.loadUnaligned(fromByteOffset: off, as: U16V.self)
                        calib_prefetch(raw + (off &+ pf))
                        off &+= step
                        let data = band(r, maskV)
                        if checkGain { nEq &-= mask16(band(r, gainBitsV) .== baseV) }
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
                addInto(a.below + p, zextLo(nLo)); addInto(a.below + p + H, zextHi(nLo))
                addInto(a.above + p, zextLo(nHi)); addInto(a.above + p + H, zextHi(nHi))
                addInto(a.badGain + p, zextLo(bad)); addInto(a.badGain + p + H, zextHi(bad))
            }
            addInto(a.n + p, zextLo(nIn)); addInto(a.n + p + H, zextHi(nIn))
            let (u0, u1) = toDouble(s0), (u2, u3) = toDouble(s1)
            addInto(a.sum + p, u0, u1); addInto(a.sum + p + H, u2, u3)
            addInto(a.sumsq + p, sq0, sq1); addInto(a.sumsq + p + H, sq2, sq3)
            let mnp = UnsafeMutableRawPointer(a.min + p), mxp = UnsafeMutableRawPointer(a.max + p)
            mnp.storeBytes(of: umin(mnp.loadUnaligned(as: U16V.self), mn), as: U16V.self)
            mxp.storeBytes(of: umax(mxp.loadUnaligned(as: U16V.self), mx), as: U16V.self)
            p += L
        }
        accumulateScalar(frames: frames, frameCount: F, pixels: pixels, range: p..<range.upperBound, expectedGain: expectedGain,
                         gates: g, commonMode: nil, options: o, into: a, frameStride: stride)
    }
}

