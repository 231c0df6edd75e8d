import Foundation
import Testing
@testable import CalibCore
import CalibKernelsAVX512

/// The x86-64-v4 (AVX-512) build of the gain kernel against CalibCore's x86-64-v3 build: same bits on every pixel,
/// every layout, every awkward length (docs/numerics.md, "Instruction sets").
@Suite struct KernelISATests {
    static let hostHasV4 = NumericKernels.allowedLevel(environment: [:]) == .v4

    static func fit(_ k: GainKernel, _ b: GainScanBlock, x: [Float], range: Range<Int>, into o: FitOutput) -> Int {
        x.withUnsafeBufferPointer { xb in o.with { k.fitRange(b, xb.baseAddress!, range, GainFitOptions(), $0) } }
    }

    @Test(.enabled(if: hostHasV4, "this CPU has no AVX-512: the x86-64-v4 kernel cannot run here"),
          arguments: [0, 1, 15, 16, 17, 33, 4099])
    func avx512MatchesAVX2(length: Int) {
        let d = ScanData(rows: 64, cols: 65, seed: 21, defects: 0.02)
        for interleaved in [false, true] {
            let a = FitOutput(length), b = FitOutput(length), c = FitOutput(length)
            var handed = (0, 0)
            let body = { (blk: GainScanBlock) in
                handed.0 = Self.fit(.portable, blk, x: d.x, range: 0..<length, into: a)
                handed.1 = Self.fit(AVX512Kernels.gain, blk, x: d.x, range: 0..<length, into: b)
                // A range that starts inside a 16-pixel group.
                let cut = Swift.min(length, 5)
                _ = Self.fit(AVX512Kernels.gain, blk, x: d.x, range: 0..<cut, into: c)
                _ = Self.fit(AVX512Kernels.gain, blk, x: d.x, range: cut..<length, into: c)
            }
            if interleaved { d.withInterleavedBlock(count: length, body) } else { d.withBlock(count: length, body) }
            GainFitEdgeTests.expectSameBits(a, b)
            GainFitEdgeTests.expectSameBits(a, c)
            #expect(handed.0 == handed.1, "both builds hand the same pixels to the scalar reference")
        }
    }

    /// Pixels built to sit exactly on the stop rule's and the fit fraction's thresholds (GainFitExactTests): the
    /// AVX-512 build takes the same decisions as the AVX2 build and the scalar reference.
    @Test(.enabled(if: hostHasV4, "this CPU has no AVX-512: the x86-64-v4 kernel cannot run here"),
          arguments: [(UInt64(4), false), (5, true)])
    func avx512MatchesOnTies(seed: UInt64, varyingN: Bool) {
        let np = 29, P = 4096 + 7
        let (n, s, q) = GainFitExactTests.randomPixels(P, points: np, seed: seed, varyingN: varyingN)
        let x = (0..<np).map { 250 * Float($0 + 1) }
        let a = FitOutput(P), b = FitOutput(P), sc = FitOutput(P)
        n.withUnsafeBufferPointer { nb in s.withUnsafeBufferPointer { sb in q.withUnsafeBufferPointer { qb in
            let blk = GainScanBlock(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!, pixels: P, points: np)
            _ = Self.fit(.portable, blk, x: x, range: 0..<P, into: a)
            _ = Self.fit(AVX512Kernels.gain, blk, x: x, range: 0..<P, into: b)
            x.withUnsafeBufferPointer { xb in sc.with { GainFitKernel.fitScalar(blk, x: xb.baseAddress!, range: 0..<P, into: $0) } }
        } } }
        GainFitEdgeTests.expectSameBits(a, b)
        GainFitEdgeTests.expectSameBits(b, sc)
    }

    /// The level follows the CPU flags, and `CALIBCTL_ISA=x86-64-v3` caps it; an unknown value is ignored and a
    /// higher cap than the CPU has does not raise it.
    @Test func levelFollowsFlagsAndCap() {
        let v4: Set<Substring> = ["fpu", "avx2", "fma", "avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"]
        let noBW = v4.subtracting(["avx512bw"])
        #expect(NumericKernels.allowedLevel(environment: [:], cpuFlags: v4) == .v4)
        #expect(NumericKernels.allowedLevel(environment: [:], cpuFlags: noBW) == .v3)
        #expect(NumericKernels.allowedLevel(environment: ["CALIBCTL_ISA": "x86-64-v3"], cpuFlags: v4) == .v3)
        #expect(NumericKernels.allowedLevel(environment: ["CALIBCTL_ISA": "x86-64-v4"], cpuFlags: noBW) == .v3)
        #expect(NumericKernels.allowedLevel(environment: ["CALIBCTL_ISA": "avx9"], cpuFlags: v4) == .v4)
    }

    /// `install` puts the AVX-512 kernels (gain and dark) in place exactly when the level allows it. (The test restores
    /// the previous kernels; other tests running meanwhile get the same bits from either build.)
    @Test func installFollowsTheLevel() {
        let before = (NumericKernels.gain, NumericKernels.darkInteger)
        defer { (NumericKernels.gain, NumericKernels.darkInteger) = before }
        NumericKernels.gain = .portable
        NumericKernels.darkInteger = .portable
        #expect(AVX512Kernels.install(environment: ["CALIBCTL_ISA": "x86-64-v3"]) == .v3)
        #expect(NumericKernels.gain.isa == .v3 && NumericKernels.darkInteger.isa == .v3)
        let expected: KernelISA = Self.hostHasV4 ? .v4 : .v3
        #expect(AVX512Kernels.install(environment: [:]) == expected)
        #expect(NumericKernels.gain.isa == expected && NumericKernels.darkInteger.isa == expected)
    }

    /// The 32-pixel AVX-512 build of the exact integer dark kernel equals the 16-pixel AVX2 build and the scalar
    /// reference bit for bit: unusual options (non-integer limits, a 12-bit mask, gain code 3, no gain check, gates
    /// wide enough for 32-bit chunks, groups the integer path hands to the scalar reference), ranges that start inside
    /// a 32-pixel pair of groups or end inside one, frame blocks of several lengths.
    @Test(.enabled(if: hostHasV4, "this CPU has no AVX-512: the x86-64-v4 kernel cannot run here"),
          arguments: UnusualDarkCase.all)
    func avx512DarkMatchesAVX2(_ c: UnusualDarkCase) {
        let P = 16 * 41 + 7, F = 150, mask = c.mask, gain = c.gain, o = c.options
        let data = c.frames(pixels: P, frames: F, seed: 9)
        let g = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P); defer { g.deallocate() }
        let gates = DarkGates(lo: g, hi: g + P, ref: g + 2 * P)
        let accs = (0..<3).map { _ in DarkAccumulators.allocate(pixels: P) }
        defer { accs.forEach { $0.deallocate() } }
        data.withUnsafeBufferPointer { fb in
            let f = fb.baseAddress!
            DarkKernel.gatesVector(frames: f, frameCount: 50, pixels: P, range: 0..<P, options: o, into: gates)
            // Pixels 48-63 get a non-integer ref: their 16-pixel group goes to the scalar reference, its partner in
            // the 32-pixel register (32-47) does not.
            for p in 48..<64 { gates.ref[p] += 0.5 }
            DarkKernel.accumulateScalar(frames: f, frameCount: F, pixels: P, range: 0..<P, expectedGain: gain,
                                        gates: gates, commonMode: nil, options: o, into: accs[0])
            let ig = DarkKernel.makeIntegerGates(gates, pixels: P, dataMask: mask, threads: 1)
            defer { ig.deallocate() }
            let igates = IntegerGates(base: UnsafePointer(ig))
            for (k, kernel) in [DarkIntegerKernel.portable, AVX512Kernels.darkInteger].enumerated() {
                for (f0, c) in [(0, 32), (32, 64), (96, 54)] {
                    for r in [0..<300, 300..<336, 336..<P] {
                        kernel.accumulate(f + f0 * P, c, P, r, gain, gates, igates, o, accs[k + 1], P)
                    }
                }
            }
        }
        for v in accs.dropFirst() {
            let sa = accs[0]
            var differ = 0
            for p in 0..<P where !(v.n[p] == sa.n[p] && v.below[p] == sa.below[p] && v.above[p] == sa.above[p]
                                   && v.badGain[p] == sa.badGain[p] && v.min[p] == sa.min[p] && v.max[p] == sa.max[p]
                                   && v.sum[p] == sa.sum[p] && v.sumsq[p] == sa.sumsq[p]) { differ += 1 }
            #expect(differ == 0)
        }
    }
}
