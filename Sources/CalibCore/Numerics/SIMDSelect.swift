/// Branch-free lane masks and selects for the SIMD kernels.
///
/// Swift's SIMD comparisons (`.<`) produce `SIMDMask` values that, on x86-64 Linux, LLVM legalises through packed
/// bytes and lane-by-lane inserts; `replacing(with:where:)` and `pointwiseMax` become loops through the stack. Measured:
/// the gain kernel ran at 0.5 GB/s with them. These helpers derive masks from the sign bit of a difference instead
/// (arithmetic shift right by 31 gives 0 or -1 per lane), which compiles to plain vector instructions. For finite
/// values the sign of `a - b` is exactly the result of `a < b` (IEEE subtraction never rounds a nonzero difference to
/// zero or flips its sign), so the scalar references, written with ordinary comparisons, give identical decisions.
typealias F16 = SIMD16<Float>
typealias I16 = SIMD16<Int32>

/// -1 where a < b, else 0 (finite lanes).
@inline(__always) func lessMask(_ a: F16, _ b: F16) -> I16 { unsafeBitCast(a - b, to: I16.self) &>> 31 }
/// -1 where a <= b.
@inline(__always) func lessEqualMask(_ a: F16, _ b: F16) -> I16 { ~lessMask(b, a) }
/// -1 where a < b for small integers.
@inline(__always) func lessMask(_ a: I16, _ b: I16) -> I16 { (a &- b) &>> 31 }
/// -1 where a != 0 for integers in (-2^31, 2^31).
@inline(__always) func nonZeroMask(_ a: I16) -> I16 { (a | (I16.zero &- a)) &>> 31 }

/// m ? a : b per lane (m lanes are 0 or -1).
@inline(__always) func select(_ m: I16, _ a: F16, _ b: F16) -> F16 {
    let ai = unsafeBitCast(a, to: I16.self), bi = unsafeBitCast(b, to: I16.self)
    return unsafeBitCast((ai & m) | (bi & ~m), to: F16.self)
}

/// m ? a : b per lane for integers.
@inline(__always) func select(_ m: I16, _ a: I16, _ b: I16) -> I16 { (a & m) | (b & ~m) }

/// m ? a : 0 per lane.
@inline(__always) func keep(_ m: I16, _ a: F16) -> F16 {
    unsafeBitCast(unsafeBitCast(a, to: I16.self) & m, to: F16.self)
}

@inline(__always) func vabs(_ v: F16) -> F16 {
    unsafeBitCast(unsafeBitCast(v, to: I16.self) & I16(repeating: 0x7fff_ffff), to: F16.self)
}

/// max(a, b) for finite lanes.
@inline(__always) func vmax(_ a: F16, _ b: F16) -> F16 { select(lessMask(a, b), b, a) }
