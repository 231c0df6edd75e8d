/// Lane masks, selects and conversions for the SIMD kernels, written so that they compile to plain AVX2 instructions.
///
/// What Swift 6.3 does with the obvious spellings on x86-64 (measured in the gain and dark kernels):
/// - comparisons (`a .< b`) compile to one vcmpps / vpcmpgtd, and `replacing(with:where:)` on their result to one
///   blend; but `&`, `|`, `!` on 16-lane `SIMDMask` values went through packed bytes, and `pointwiseMax` and `!=` on
///   a whole vector became lane-by-lane loops. Masks are therefore kept as `SIMD16<Int32>` (0 or -1 per lane) and
///   combined with integer `&`, `|`, `~`.
/// - `SIMD16<Float>(SIMD16<Int32>)` and `SIMD16<Int32>(truncatingIfNeeded: SIMD16<UInt16>)` are generic runtime
///   calls (not specialised): `toFloat` uses the 2^23 magic number and `widen` a lane-by-lane initialiser, which
///   LLVM turns into vpmovzxwd.
/// The scalar references use ordinary comparisons; native vector compares have the same IEEE semantics (NaN included),
/// so both paths make identical decisions.
typealias F16 = SIMD16<Float>
typealias I16 = SIMD16<Int32>

@inline(__always) func asInt(_ m: SIMDMask<I16>) -> I16 { unsafeBitCast(m, to: I16.self) }
/// -1 where a < b, else 0.
@inline(__always) func lt(_ a: F16, _ b: F16) -> I16 { asInt(a .< b) }
/// -1 where a <= b, else 0.
@inline(__always) func le(_ a: F16, _ b: F16) -> I16 { asInt(a .<= b) }
/// -1 where a < b, else 0 (integers).
@inline(__always) func lt(_ a: I16, _ b: I16) -> I16 { asInt(a .< b) }

/// m ? a : b per lane (m lanes are 0 or -1).
@inline(__always) func sel(_ m: I16, _ a: F16, _ b: F16) -> F16 {
    b.replacing(with: a, where: unsafeBitCast(m, to: SIMDMask<I16>.self))
}
/// m ? a : b per lane for integers, as a float blend: written as (a & m) | (b & ~m), LLVM turned it back into a
/// select on a 16 x i1 vector and rebuilt the mask lane pair by lane pair (vpinsrb) in the dark kernel.
@inline(__always) func sel(_ m: I16, _ a: I16, _ b: I16) -> I16 {
    unsafeBitCast(sel(m, unsafeBitCast(a, to: F16.self), unsafeBitCast(b, to: F16.self)), to: I16.self)
}
/// m ? a : 0 per lane.
@inline(__always) func keep(_ m: I16, _ a: F16) -> F16 {
    unsafeBitCast(unsafeBitCast(a, to: I16.self) & m, to: F16.self)
}
/// True if any lane of m is nonzero.
@inline(__always) func any(_ m: I16) -> Bool {
    let m8 = m.lowHalf | m.highHalf, m4 = m8.lowHalf | m8.highHalf, m2 = m4.lowHalf | m4.highHalf
    return m2.x | m2.y != 0
}

/// True if every lane of m is -1.
@inline(__always) func all(_ m: I16) -> Bool {
    let m8 = m.lowHalf & m.highHalf, m4 = m8.lowHalf & m8.highHalf, m2 = m4.lowHalf & m4.highHalf
    return m2.x & m2.y == -1
}

@inline(__always) func vabs(_ v: F16) -> F16 {
    unsafeBitCast(unsafeBitCast(v, to: I16.self) & I16(repeating: 0x7fff_ffff), to: F16.self)
}

/// Int32 lanes in [0, 2^23) to Float, exactly: OR into the mantissa of 2^23, subtract 2^23.
@inline(__always) func toFloat(_ c: I16) -> F16 {
    unsafeBitCast(c | I16(repeating: 0x4B00_0000), to: F16.self) - F16(repeating: 8_388_608)
}

/// 16 little-endian uint16 values at `p + byteOffset`, zero-extended to Int32.
@inline(__always) func widen(_ p: UnsafeRawPointer, _ byteOffset: Int) -> I16 {
    let v = p.loadUnaligned(fromByteOffset: byteOffset, as: SIMD16<UInt16>.self)
    return I16(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]),
               Int32(v[8]), Int32(v[9]), Int32(v[10]), Int32(v[11]), Int32(v[12]), Int32(v[13]), Int32(v[14]),
               Int32(v[15]))
}

// The same helpers for 8 lanes (one AVX2 register): for kernels whose state would not fit in registers at 16 lanes.
typealias F8 = SIMD8<Float>
typealias I8 = SIMD8<Int32>

@inline(__always) func asInt(_ m: SIMDMask<I8>) -> I8 { unsafeBitCast(m, to: I8.self) }
@inline(__always) func lt(_ a: F8, _ b: F8) -> I8 { asInt(a .< b) }
@inline(__always) func lt(_ a: I8, _ b: I8) -> I8 { asInt(a .< b) }
@inline(__always) func nonZero(_ a: I8) -> I8 { ~asInt(a .== I8.zero) }
@inline(__always) func sel(_ m: I8, _ a: F8, _ b: F8) -> F8 {
    b.replacing(with: a, where: unsafeBitCast(m, to: SIMDMask<I8>.self))
}
@inline(__always) func sel(_ m: I8, _ a: I8, _ b: I8) -> I8 {
    unsafeBitCast(sel(m, unsafeBitCast(a, to: F8.self), unsafeBitCast(b, to: F8.self)), to: I8.self)
}
@inline(__always) func toFloat(_ c: I8) -> F8 {
    unsafeBitCast(c | I8(repeating: 0x4B00_0000), to: F8.self) - F8(repeating: 8_388_608)
}
/// 8 little-endian uint16 values at `p + byteOffset`, zero-extended to Int32.
@inline(__always) func widen8(_ p: UnsafeRawPointer, _ byteOffset: Int) -> I8 {
    let v = p.loadUnaligned(fromByteOffset: byteOffset, as: SIMD8<UInt16>.self)
    return I8(Int32(v[0]), Int32(v[1]), Int32(v[2]), Int32(v[3]), Int32(v[4]), Int32(v[5]), Int32(v[6]), Int32(v[7]))
}
