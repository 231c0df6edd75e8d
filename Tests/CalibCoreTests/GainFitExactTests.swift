import Foundation
import Testing
@testable import CalibCore

/// The exact threshold decisions of the gain fit when every point has the same count N (the usual scan): the scalar
/// reference decides them on integers (CommonCountMeans) and the vector kernel decides the stop rule's step test on
/// integer sums, so steps of exactly `stopStep` (frequent with N = 5: sums differ by exactly 25) no longer go to the
/// scalar path. Both must give the answers of the rationals, bit for bit.
@Suite struct GainFitExactTests {
    /// Random pixels with sums near every threshold, counts constant per pixel (N in 2, 5, 50, 4096) or varying.
    static func randomPixels(_ count: Int, points np: Int, seed: UInt64, varyingN: Bool = false) -> (n: [Float], s: [Float], q: [Float]) {
        var rng = SplitMix64(seed: seed)
        var n = [Float](), s = [Float](), q = [Float]()
        let counts: [Float] = [2, 5, 5, 5, 50, 4096]
        for _ in 0..<count {
            let N = counts[Int(rng.next() % UInt64(counts.count))]
            let plateau = Float(150 + rng.next() % 100)
            let slope = plateau / Float(np - 6 + Int(rng.next() % 4))
            var prev: Float = 0
            for k in 0..<np {
                let nk = varyingN && rng.next() % 3 == 0 ? N + Float(rng.next() % 3) : N
                var mean = min(plateau, slope * Float(k + 1))
                // Snap some steps to exactly 5 ADC and some means to 0.8 x plateau or the plateau +- 10.
                switch rng.next() % 6 {
                case 0 where k > 0: mean = prev + 5
                case 1: mean = 0.8 * plateau
                case 2: mean = plateau - 10
                default: break
                }
                let sum = (mean * nk).rounded()
                prev = sum / nk
                let variance = Float(1 + rng.next() % 8)
                n.append(nk); s.append(sum); q.append((nk * (prev * prev + variance)).rounded())
            }
        }
        return (n, s, q)
    }

    @Test(arguments: [(UInt64(1), false), (2, false), (3, true)])
    func commonCountDecisionsEqualRationals(seed: UInt64, varyingN: Bool) {
        let np = 29, P = 4096
        let (n, s, q) = Self.randomPixels(P, points: np, seed: seed, varyingN: varyingN)
        let x = (0..<np).map { 250 * Float($0 + 1) }
        var differ = 0, ties = 0
        n.withUnsafeBufferPointer { nb in s.withUnsafeBufferPointer { sb in q.withUnsafeBufferPointer { qb in
            x.withUnsafeBufferPointer { xb in
                for p in 0..<P {
                    let o = p * np
                    let fast = GainFitKernel.fitPixelScalar(n: nb.baseAddress! + o, sum: sb.baseAddress! + o,
                                                            sumsq: qb.baseAddress! + o, x: xb.baseAddress!, points: np)
                    let slow = GainFitKernel.fitPixelScalar(n: nb.baseAddress! + o, sum: sb.baseAddress! + o,
                                                            sumsq: qb.baseAddress! + o, x: xb.baseAddress!, points: np,
                                                            commonCount: false)
                    if fast.gain.bitPattern != slow.gain.bitPattern || fast.status != slow.status
                        || fast.npoints != slow.npoints || fast.chi2ndf.bitPattern != slow.chi2ndf.bitPattern {
                        differ += 1
                    }
                    for k in 2..<np where abs(sb[o + k] - sb[o + k - 1]) == 5 * nb[o + k] { ties += 1 }
                }
            }
        } } }
        #expect(differ == 0)
        #expect(ties > 100, "the data must exercise steps of exactly stopStep")
    }

    @Test(arguments: [(UInt64(4), false), (5, true)])
    func vectorMatchesScalarOnTies(seed: UInt64, varyingN: Bool) {
        let np = 29, P = 4096 + 7
        let (n, s, q) = Self.randomPixels(P, points: np, seed: seed, varyingN: varyingN)
        let x = (0..<np).map { 250 * Float($0 + 1) }
        let v = FitOutput(P), sc = FitOutput(P)
        n.withUnsafeBufferPointer { nb in s.withUnsafeBufferPointer { sb in q.withUnsafeBufferPointer { qb in
            x.withUnsafeBufferPointer { xb in
                let b = GainScanBlock(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!, pixels: P, points: np)
                v.with { GainFitKernel.fitVector(b, x: xb.baseAddress!, range: 0..<P, into: $0) }
                sc.with { GainFitKernel.fitScalar(b, x: xb.baseAddress!, range: 0..<P, into: $0) }
            }
        } } }
        GainFitEdgeTests.expectSameBits(v, sc)
    }

    /// A step of exactly stopStep (5 ADC) above fitFraction^2 x plateau stops the selection (|dy| < 5 is false, so the
    /// point is still a candidate); 4.8 ADC stops it. Decided on the sums by the vector kernel, as by the rationals.
    @Test func stopStepTiesAreExact() {
        var exact: [[Float]] = [], small: [[Float]] = []
        for p in stride(from: Float(1000), through: 1200, by: 5) {   // plateau sums 1000 ... 1200 (means 200 ... 240)
            let ramp: [Float] = (1...6).map { (p * 0.6 / 6 * Float($0)).rounded() }
            let a = (p * 0.7).rounded()                                  // above 0.64 P, below 0.8 P
            exact.append(ramp + [a, a + 25, a + 50] + [Float](repeating: p, count: 4))
            small.append(ramp + [a, a + 24, a + 48] + [Float](repeating: p, count: 4))
        }
        let (ve, se) = GainFitEdgeTests.fitPixels(exact)
        GainFitEdgeTests.expectSameBits(ve, se)
        let (vs, ss) = GainFitEdgeTests.fitPixels(small)
        GainFitEdgeTests.expectSameBits(vs, ss)
        // Exactly 5: no stop, points 6, 7, 8 stay selectable while <= 0.8 P. 4.8: stop at point 7 (index 7).
        for i in 0..<exact.count {
            #expect(ve.npoints[i] > vs.npoints[i], "pixel \(i): \(ve.npoints[i]) vs \(vs.npoints[i])")
            #expect(vs.npoints[i] == 7)
        }
        // The vector kernel decides these itself: only the pixels after the last whole group of 16 are scalar
        // (before the integer step test, every pixel with a step of exactly 5 ADC went to the scalar path).
        #expect(Self.scalarFitted(exact) == exact.count % 16)
        #expect(Self.scalarFitted(small) == small.count % 16)
    }

    /// A point exactly flatTolerance (10 ADC) from the plateau counts as flat (|y - P| <= 10), 10.2 ADC does not;
    /// with 12 points and 9 at the plateau, that point decides whether the pixel is `flat`. A plateau point exactly
    /// plateauTolerance (5 ADC) from the plateau mean is no deviation, 5.2 is. The vector kernel decides all of these
    /// on the integer sums (no scalar hand-off), as the rationals do.
    @Test func flatAndPlateauTiesAreDecidedInTheVectorKernel() {
        var flatTie: [[Float]] = [], flatOver: [[Float]] = [], devTie: [[Float]] = [], devOver: [[Float]] = []
        for p in stride(from: Float(150), through: 250, by: 2) {
            let s = 5 * p   // sum of a point at the plateau (n = 5)
            flatTie.append([2.5 * p, 2.5 * p, s - 50] + [Float](repeating: s, count: 9))
            flatOver.append([2.5 * p, 2.5 * p, s - 51] + [Float](repeating: s, count: 9))
            let ramp: [Float] = (1...8).map { (0.09 * s * Float($0)).rounded() }   // below 0.8 P: no fit-fraction tie
            devTie.append(ramp + [s + 25, s, s, s - 25])
            devOver.append(ramp + [s + 26, s, s, s - 26])
        }
        for (pixels, flat) in [(flatTie, true), (flatOver, false)] {
            let (v, sc) = GainFitEdgeTests.fitPixels(pixels)
            GainFitEdgeTests.expectSameBits(v, sc)
            #expect((0..<pixels.count).allSatisfy { (v.status($0) == .flat) == flat })
        }
        // (A pixel that is not flat with two points below 0.8 P takes the fallback selection, which is scalar.)
        #expect(Self.scalarFitted(flatTie) == flatTie.count % 16)
        for (pixels, dev) in [(devTie, false), (devOver, true)] {
            let (v, sc) = GainFitEdgeTests.fitPixels(pixels)
            GainFitEdgeTests.expectSameBits(v, sc)
            #expect((0..<pixels.count).allSatisfy { (v.status($0) == .noPlateau) == dev })
        }
        // (With no plateau the thresholds are 0.8 x 255 and 0.64 x 255 ADC, which some ramp means hit exactly: those
        // float ties are still the scalar reference's.)
        #expect(Self.scalarFitted(devTie) == devTie.count % 16)
    }

    /// How many of `sums`' pixels (n = 5 per point, as GainFitEdgeTests.fitPixels) fitVector hands to the scalar path.
    static func scalarFitted(_ sums: [[Float]]) -> Int { GainFitEdgeTests.fitPixelsCounting(sums).handed }
}
