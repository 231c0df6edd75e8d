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

    /// `install` puts the AVX-512 kernel in place exactly when the level allows it, and `fitVector` then runs it.
    @Test func installFollowsTheLevel() {
        let before = NumericKernels.gain
        defer { NumericKernels.gain = before }
        NumericKernels.gain = .portable
        #expect(AVX512Kernels.install(environment: ["CALIBCTL_ISA": "x86-64-v3"]) == .v3)
        #expect(NumericKernels.gain.isa == .v3)
        #expect(AVX512Kernels.install(environment: [:]) == (Self.hostHasV4 ? .v4 : .v3))
        #expect(NumericKernels.gain.isa == (Self.hostHasV4 ? .v4 : .v3))
    }
}
