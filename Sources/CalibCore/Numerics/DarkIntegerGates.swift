import Foundation

/// One 16-pixel group's component of the integer gates (`makeIntegerGates`), whatever width the kernel runs at.
package typealias GateV = SIMD16<UInt16>

/// Integer form of the stage-1 gates for `DarkKernel.accumulateInteger`: 4 x 16 UInt16 per group of 16 pixels
/// (`makeIntegerGates`), `base` holding group `firstGroup`.
package struct IntegerGates: @unchecked Sendable {
    package let base: UnsafePointer<GateV>
    package var firstGroup = 0

    package init(base: UnsafePointer<GateV>, firstGroup: Int = 0) { self.base = base; self.firstGroup = firstGroup }
}

extension DarkKernel {
    /// Per group k (pixels 16k..<16k+16): [lo', width, ref, maxD in lane 0]: integer data v is in the gate [lo, hi]
    /// <=> (v - lo') as UInt16 <= width (lo' = ceil(lo), width = floor(hi) - lo'; an empty gate never matches),
    /// d = v - ref, |d| <= maxD for in-gate v. Width 0xffff (all lanes) marks a group the integer path cannot take
    /// (non-integer ref, |d| could exceed 16383, i.e. unusual intLo/intHi options): the scalar reference does it.
    /// Writes groups `range`, group k at `out + 4 * (k - range.lowerBound)`.
    static func makeIntegerGates(_ g: DarkGates, pixels: Int, groups range: Range<Int>, dataMask: UInt16,
                                 into out: UnsafeMutablePointer<GateV>) {
        let dataMask = Swift.min(dataMask, 0x3fff)
        let M = Float(dataMask)
        for gi in range {
            var lo = GateV(), w = GateV(), rf = GateV()
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
            var c = GateV()
            c[0] = UInt16(maxD)
            let o = out + 4 * (gi - range.lowerBound)
            o[0] = lo; o[1] = ok ? w : GateV(repeating: 0xffff); o[2] = rf; o[3] = c
        }
    }
}

extension DarkKernel {
    /// The integer form of gates `g` for all `pixels` (on `threads` threads), for `DarkGates.integer`; deallocate it
    /// after use. Built once per gain mode after stage 1 so that the stage-2 blocks do not redo it.
    public static func makeIntegerGates(_ g: DarkGates, pixels: Int, dataMask: UInt16, threads: Int) -> UnsafeMutablePointer<SIMD16<UInt16>> {
        let groups = (pixels + 15) / 16
        let out = UnsafeMutablePointer<GateV>.allocate(capacity: 4 * Swift.max(groups, 1))
        let op = SendablePointer(out)
        let per = 4096
        Stage2.perform((groups + per - 1) / per, threads: threads) { t in
            let r = (t * per)..<Swift.min(groups, (t + 1) * per)
            makeIntegerGates(g, pixels: pixels, groups: r, dataMask: dataMask, into: op.base + 4 * r.lowerBound)
        }
        return out
    }
}
