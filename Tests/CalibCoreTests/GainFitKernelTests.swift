import Foundation
import Testing
@testable import CalibCore

@Suite struct GainFitKernelTests {
    /// Vector and scalar kernels agree bit for bit (same operations in the same order) at every awkward length.
    @Test(arguments: [0, 1, 15, 16, 17, 33, 4099])
    func vectorMatchesScalar(length: Int) {
        let d = ScanData(rows: 64, cols: 65, seed: 11, defects: 0.02)
        let v = FitOutput(length), s = FitOutput(length)
        d.withBlock(count: length) { b in
            d.x.withUnsafeBufferPointer { x in
                v.with { GainFitKernel.fitVector(b, x: x.baseAddress!, range: 0..<length, into: $0) }
                s.with { GainFitKernel.fitScalar(b, x: x.baseAddress!, range: 0..<length, into: $0) }
            }
        }
        for p in 0..<length {
            #expect(v.status[p] == s.status[p], "pixel \(p)")
            #expect(v.npoints[p] == s.npoints[p], "pixel \(p)")
            #expect(v.gain[p].bitPattern == s.gain[p].bitPattern || (v.gain[p].isNaN && s.gain[p].isNaN), "pixel \(p)")
            #expect(v.pedestal[p].bitPattern == s.pedestal[p].bitPattern || (v.pedestal[p].isNaN && s.pedestal[p].isNaN))
            #expect(v.chi2[p].bitPattern == s.chi2[p].bitPattern || (v.chi2[p].isNaN && s.chi2[p].isNaN))
        }
    }

    /// The interleaved layout (the kernel's native one) gives the same bits as pixel-major input, on the vector path
    /// and the scalar path, at every awkward length and for a range that starts inside a 16-pixel group.
    @Test(arguments: [0, 1, 15, 16, 17, 33, 4099])
    func interleavedMatchesPixelMajor(length: Int) {
        let d = ScanData(rows: 64, cols: 65, seed: 12, defects: 0.02)
        let a = FitOutput(length), b = FitOutput(length), c = FitOutput(length), e = FitOutput(length)
        d.withBlock(count: length) { pm in
            d.x.withUnsafeBufferPointer { x in a.with { GainFitKernel.fitVector(pm, x: x.baseAddress!, range: 0..<length, into: $0) } }
        }
        d.withInterleavedBlock(count: length) { il in
            d.x.withUnsafeBufferPointer { x in
                b.with { GainFitKernel.fitVector(il, x: x.baseAddress!, range: 0..<length, into: $0) }
                c.with { GainFitKernel.fitScalar(il, x: x.baseAddress!, range: 0..<length, into: $0) }
                let cut = Swift.min(length, 5)
                e.with { o in
                    GainFitKernel.fitVector(il, x: x.baseAddress!, range: 0..<cut, into: o)
                    GainFitKernel.fitVector(il, x: x.baseAddress!, range: cut..<length, into: o)
                }
            }
        }
        for o in [b, c, e] {
            #expect(o.status == a.status)
            #expect(o.npoints == a.npoints)
            #expect(o.gain.map(\.bitPattern) == a.gain.map(\.bitPattern))
            #expect(o.pedestal.map(\.bitPattern) == a.pedestal.map(\.bitPattern))
            #expect(o.chi2.map(\.bitPattern) == a.chi2.map(\.bitPattern))
        }
    }

    /// interleave puts pixel p, point k at group * 16 * points + k * 16 + lane, and zeroes the padding lanes.
    @Test func interleaveLayout() {
        let P = 21, N = 9
        let src = (0..<(P * N)).map { Float($0) }
        var dst = [Float](repeating: -1, count: GainScanBlock.interleavedCount(pixels: P, points: N))
        #expect(dst.count == 32 * N)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { GainScanBlock.interleave(s.baseAddress!, pixels: P, points: N, into: $0.baseAddress!) }
        }
        for p in 0..<32 {
            for k in 0..<N {
                let v = dst[(p / 16) * 16 * N + k * 16 + p % 16]
                #expect(v == (p < P ? Float(p * N + k) : 0), "pixel \(p) point \(k)")
            }
        }
    }

    /// The threaded driver gives the same results as one thread.
    @Test func threadedMatchesSingleThread() {
        let d = ScanData(rows: 80, cols: 104, seed: 5)
        let a = FitOutput(d.pixels), b = FitOutput(d.pixels)
        d.withBlock { blk in
            a.with { GainFitKernel.fit(blk, x: d.x, into: $0, threads: 2) }
            b.with { GainFitKernel.fit(blk, x: d.x, into: $0, threads: 1) }
        }
        #expect(a.status == b.status)
        #expect(a.gain.map(\.bitPattern) == b.gain.map(\.bitPattern))
    }

    /// Known answer: exact linear data with known spread recovers gain and pedestal, chi2 = 0.
    @Test func knownAnswerLinear() {
        let x: [Float] = (0..<14).map { 2000 + 3500 * Float($0) }
        let gain: Float = 160, ped: Float = 30
        var n: [Float] = [], s: [Float] = [], q: [Float] = []
        for xi in x {
            let y = min(ped + xi / gain, 240)  // last points saturate into a flat plateau
            let variance: Float = 4
            n.append(5); s.append(5 * y); q.append(5 * (y * y + variance))
        }
        let r = GainFitKernel.fitPixelScalar(n: n, sum: s, sumsq: q, x: x, points: x.count)
        #expect(r.status == .ok)
        #expect(abs(r.gain / gain - 1) < 1e-4)
        #expect(abs(r.pedestal - ped) < 1e-2)
        #expect(r.chi2ndf < 1e-2)
        // y <= 0.8 * 240 = 192 selects points up to x = 24500.
        #expect(r.npoints == x.filter { ped + $0 / gain <= 192 }.count)
    }

    /// Points with identical readings get the floor error (1/12 ADC^2 / n) and are kept, unlike the reference.
    @Test func zeroSpreadPointsAreKeptWithFloorError() {
        let x: [Float] = (0..<10).map { 1000 + 3000 * Float($0) }
        let ys: [Float] = x.map { min(20 + $0 / 200, 230).rounded() }
        let n = [Float](repeating: 5, count: 10)
        let s = ys.map { 5 * $0 }, q = ys.map { 5 * $0 * $0 }  // zero spread everywhere
        let r = GainFitKernel.fitPixelScalar(n: n, sum: s, sumsq: q, x: x, points: 10)
        #expect(r.status == .ok || r.status == .noPlateau)
        #expect(r.npoints >= 4)
        #expect(abs(r.gain / 200 - 1) < 0.02)
    }

    @Test func statusCategories() {
        let x: [Float] = (0..<12).map { 1500 + 3000 * Float($0) }
        func fit(_ y: [Float], n: [Float]? = nil, variance: Float = 4) -> GainPixelFit {
            let nn = n ?? [Float](repeating: 5, count: y.count)
            let s = zip(nn, y).map { $0 * $1 }, q = zip(nn, y).map { $0 * ($1 * $1 + variance) }
            return GainFitKernel.fitPixelScalar(n: nn, sum: s, sumsq: q, x: x, points: y.count)
        }
        let linear = x.map { min(20 + $0 / 100, 240) }
        #expect(fit(linear).status == .ok)
        #expect(fit(linear, n: [Float](repeating: 0, count: 12)).status == .neverPulsed)
        #expect(fit([Float](repeating: 128, count: 12), variance: 0).status == .flat)
        #expect(fit([Float](repeating: 0, count: 12), variance: 0).status == .flat)
        #expect(fit(linear, n: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 5]).status == .tooFewPoints)
        #expect(fit(linear, variance: 400).status == .noisy)
        #expect(fit(x.map { 20 + $0 / 150 }).status == .noPlateau)  // never saturates
        #expect(fit(x.map { max(240 - $0 / 150, 20) }).status == .badGain)  // falling response
        var kinked = linear
        kinked[1] += 60; kinked[3] -= 60
        #expect(fit(kinked, variance: 0.1).status == .chi2TooLarge)
        #expect(GainPixelStatus.allCases.map(\.referenceCode) == [1, 3, -2, -7, -8, -6, 5, 0, 0])
    }

    /// float32 kernel vs a straightforward double-precision weighted fit on the same selected points.
    @Test func matchesDoublePrecisionFit() {
        let d = ScanData(rows: 32, cols: 64, seed: 21)
        let out = FitOutput(d.pixels)
        d.withBlock { b in out.with { GainFitKernel.fit(b, x: d.x, into: $0, threads: 2) } }
        var checked = 0
        for p in 0..<d.pixels where out.status(p) == .ok {
            let o = p * d.points
            var ys: [Double] = [], ws: [Double] = []
            for k in 0..<d.points {
                let n = Double(d.n[o + k]), y = Double(d.sum[o + k]) / n
                ys.append(y); ws.append(n / max(Double(d.sumsq[o + k]) / n - y * y, 1.0 / 12))
            }
            let plateau = ys.suffix(4).reduce(0, +) / 4
            var S = 0.0, Sx = 0.0, Sy = 0.0, Sxx = 0.0, Sxy = 0.0, m = 0
            for k in 0..<d.points {
                if k >= 2 && abs(ys[k] - ys[k - 1]) < 5 && ys[k] > 0.64 * plateau { break }
                guard ys[k] <= 0.8 * plateau else { continue }
                let w = ws[k], xv = Double(d.x[k])
                S += w; Sx += w * xv; Sy += w * ys[k]; Sxx += w * xv * xv; Sxy += w * xv * ys[k]; m += 1
            }
            let slope = (S * Sxy - Sx * Sy) / (S * Sxx - Sx * Sx)
            let icpt = (Sy - slope * Sx) / S
            #expect(Int(out.npoints[p]) == m)
            #expect(abs(Double(out.gain[p]) * slope - 1) < 2e-5, "pixel \(p)")
            #expect(abs(Double(out.pedestal[p]) - icpt) < 2e-3, "pixel \(p)")
            checked += 1
        }
        #expect(checked > 1900)
    }
}
