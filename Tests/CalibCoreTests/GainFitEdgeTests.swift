import CalibIO
import Foundation
import Testing
@testable import CalibCore

/// Fits at the edges: clamped (censored) points, exact threshold ties, NaN inputs and bad VCal values.
@Suite struct GainFitEdgeTests {
    static func fitBoth(_ d: ScanData) -> (vector: FitOutput, scalar: FitOutput) {
        let v = FitOutput(d.pixels), s = FitOutput(d.pixels)
        d.withBlock { b in
            d.x.withUnsafeBufferPointer { x in
                v.with { GainFitKernel.fitVector(b, x: x.baseAddress!, range: 0..<d.pixels, into: $0) }
                s.with { GainFitKernel.fitScalar(b, x: x.baseAddress!, range: 0..<d.pixels, into: $0) }
            }
        }
        return (v, s)
    }

    static func expectSameBits(_ a: FitOutput, _ b: FitOutput) {
        #expect(a.status == b.status)
        #expect(a.npoints == b.npoints)
        #expect(a.gain.map(\.bitPattern) == b.gain.map(\.bitPattern))
        #expect(a.pedestal.map(\.bitPattern) == b.pedestal.map(\.bitPattern))
        #expect(a.chi2.map(\.bitPattern) == b.chi2.map(\.bitPattern))
    }

    /// Irradiated modules: pedestals -80..-20 ADC, so the lowest points read 0 on every injection (and the next ones
    /// partly). Those points are censored (not fitted); the gain is recovered to ~0.4-1% and good pixels stay good.
    /// Before censoring: below -40 ADC every such pixel was chi2 > 500, at -40..-20 about half.
    @Test(arguments: [(Float(-70), Float(-80), Float(-60)), (-50, -60, -40), (-30, -40, -20)])
    func irradiatedPedestalsRecoverTheGain(mean: Float, lo: Float, hi: Float) {
        let d = ScanData(rows: 64, cols: 104, seed: 31, defects: 0, pedestal: (mean, 8, lo, hi))
        let (v, s) = Self.fitBoth(d)
        Self.expectSameBits(v, s)
        var rel: [Double] = [], flagged = 0, fitted = 0
        for p in 0..<d.pixels {
            guard v.status(p).hasUsableFit else { flagged += 1; continue }
            fitted += 1
            rel.append(abs(Double(v.gain[p]) / Double(d.truthGain[p]) - 1))
        }
        rel.sort()
        let median = rel.isEmpty ? 1 : rel[rel.count / 2]
        #expect(Double(flagged) <= 0.005 * Double(d.pixels), "\(flagged) of \(d.pixels) flagged at pedestal \(mean)")
        #expect(median < 0.01, "median relative gain error \(median) at pedestal \(mean)")
        // The clamped points really are there (the test covers the edge).
        let zeros = (0..<d.pixels).filter { d.n[$0 * d.points] == 5 && d.sum[$0 * d.points] == 0 }.count
        #expect(zeros > d.pixels / 2)
        // Interleaved layout: the same bits.
        let il = FitOutput(d.pixels)
        d.withInterleavedBlock { b in
            d.x.withUnsafeBufferPointer { x in il.with { GainFitKernel.fitVector(b, x: x.baseAddress!, range: 0..<d.pixels, into: $0) } }
        }
        Self.expectSameBits(il, v)
    }

    @Test func censoringRule() {
        // All readings 0, all 255: censored. Identical readings inside the range: not. Mixed 0/1/2: may be clamped.
        #expect(GainFitKernel.censored(n: 5, sum: 0, d0: 0))
        #expect(GainFitKernel.censored(n: 5, sum: 1275, d0: 0))
        #expect(!GainFitKernel.censored(n: 5, sum: 185, d0: 0))
        let readings: [Float] = [0, 1, 2, 1, 1]
        let s = readings.reduce(0, +), q = readings.map { $0 * $0 }.reduce(0, +)
        #expect(GainFitKernel.censored(n: 5, sum: s, d0: 5 * q - s * s))
        let far: [Float] = [40, 42, 38, 41, 39]
        let s2 = far.reduce(0, +), q2 = far.map { $0 * $0 }.reduce(0, +)
        #expect(!GainFitKernel.censored(n: 5, sum: s2, d0: 5 * q2 - s2 * s2))
    }

    /// 16 copies of a pixel (the vector path) and the scalar path; both must give `check`'s answer.
    static func fitPixels(_ sums: [[Float]], variance: Float = 4) -> (vector: FitOutput, scalar: FitOutput) {
        let r = fitPixelsCounting(sums, variance: variance)
        return (r.vector, r.scalar)
    }

    /// fitPixels, plus how many pixels the vector kernel handed to the scalar path.
    static func fitPixelsCounting(_ sums: [[Float]], variance: Float = 4) -> (vector: FitOutput, scalar: FitOutput, handed: Int) {
        let np = sums[0].count, P = sums.count
        let x = (0..<np).map { 1000 * Float($0 + 1) }
        var n = [Float](repeating: 5, count: P * np), s = n, q = n
        for p in 0..<P { for k in 0..<np {
            s[p * np + k] = sums[p][k]
            let y = sums[p][k] / 5
            q[p * np + k] = (5 * (y * y + variance)).rounded()
        } }
        let v = FitOutput(P), sc = FitOutput(P)
        var handed = -1
        n.withUnsafeBufferPointer { nb in s.withUnsafeBufferPointer { sb in q.withUnsafeBufferPointer { qb in
            x.withUnsafeBufferPointer { xb in
                let b = GainScanBlock(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!, pixels: P, points: np)
                v.with { handed = GainFitKernel.fitVector(b, x: xb.baseAddress!, range: 0..<P, into: $0) }
                sc.with { GainFitKernel.fitScalar(b, x: xb.baseAddress!, range: 0..<P, into: $0) }
            }
        } } }
        return (v, sc, handed)
    }

    /// A plateau point exactly 5 ADC from the plateau mean is inside the tolerance (> 5 is "no plateau"), decided on
    /// the integer sums, not on float32 rounding; 5.2 ADC is outside.
    @Test(arguments: [Float(0.5), 1, 4])
    func plateauDeviationTiesAreExact(variance: Float) {
        var tie: [[Float]] = [], over: [[Float]] = []
        let patterns: [[Float]] = [[25, 0, 0, -25], [25, -5, -5, -15], [-25, 15, 5, 5], [25, -25, 5, -5], [25, -20, 0, -5]]
        for a in stride(from: Float(1060), through: 1250, by: 1) {   // plateau means 212 ... 250 in steps of 0.2
            let ramp: [Float] = (1...7).map { 100 * Float($0) }    // linear: means 20 ... 140 at x = 1000 ... 7000
            for pat in patterns {
                tie.append(ramp + pat.map { a + $0 })                   // largest deviation exactly 5 ADC
                over.append(ramp + pat.map { a + $0 * 1.04 })           // 5.2 ADC
            }
        }
        for (sums, expectDev) in [(tie, false), (over, true)] {
            let (v, s) = Self.fitPixels(sums, variance: variance)
            Self.expectSameBits(v, s)
            let wrong = (0..<sums.count).filter { (v.status($0) == .noPlateau) != expectDev }
            #expect(wrong.isEmpty, "\(wrong.count) of \(sums.count) decided wrongly (deviation \(expectDev ? 5.2 : 5)), first: \(wrong.first.map { sums[$0] } ?? [])")
        }
    }

    /// A point at exactly 0.8 x plateau is selected (y <= 0.8 P), decided exactly.
    @Test(arguments: [Float(0.25), 0.5, 4])
    func fitFractionTiesAreExact(variance: Float) {
        var pixels: [[Float]] = []
        for t in stride(from: Float(850), through: 1010, by: 1) {
            // Plateau sums total 5 t, so P = t / 4 and 0.8 P = t / 5 = the mean of the point with sum t.
            let base = (5 * t / 4).rounded(.down), extra = 5 * t - 4 * base
            for e in 0..<4 {
                var plateau = [Float](repeating: base, count: 4)
                plateau[e] += extra
                let step = (base - t) / 3
                pixels.append([150, 300, 450, 600, 700, t, (t + step).rounded(), (t + 2 * step).rounded()] + plateau)
            }
        }
        let (v, s) = Self.fitPixels(pixels, variance: variance)
        Self.expectSameBits(v, s)
        let wrong = (0..<pixels.count).filter { v.npoints[$0] != 6 }
        #expect(wrong.isEmpty, "\(wrong.count) of \(pixels.count) wrong, first: \(wrong.first.map { pixels[$0] } ?? [])")
    }

    /// NaN sums are a NaN pixel (reference -6), not "too few points"; on both paths.
    @Test func nanInputsAreNaN() {
        let good: [Float] = [200, 350, 500, 650, 800, 950, 1050, 1200, 1200, 1200, 1200]
        var pixels = [[Float]](repeating: good, count: 20)
        pixels[3] = [Float](repeating: .nan, count: good.count)
        pixels[17][4] = .nan
        let (v, s) = Self.fitPixels(pixels)
        for out in [v, s] {
            #expect(out.status(3) == .notANumber && out.status(17) == .notANumber)
            #expect(out.status(0).hasUsableFit)
        }
        #expect(GainPixelStatus.notANumber.referenceCode == -6)
    }

    static func scanFile(_ tmp: String) throws -> String {
        var sim = GainScanSimulator()
        sim.rows = 8; sim.cols = 16; sim.seed = 2
        return try sim.write(directory: tmp, feds: [1200], modulesPerFED: 3, threads: 1)[0]
    }

    @Test(arguments: ["nan-vcal", "decreasing-vcal", "nan-slope", "zero-slope"])
    func badVCalIsRefused(kind: String) throws {
        let tmp = NSTemporaryDirectory() + "calibctl-vcal-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let path = try Self.scanFile(tmp)
        let f = try HDF5File.open(path, writable: true)
        let F = GainScanFormat.self
        var vcal = try f.read(F.vcal, as: Float.self)
        var slope = try f.read(F.moduleVCalSlope, as: Double.self)
        switch kind {
        case "nan-vcal": vcal[7] = .nan
        case "decreasing-vcal": vcal.swapAt(3, 4)
        case "nan-slope": slope[1] = .nan
        default: slope[1] = 0
        }
        try f.dataset(F.vcal).write(vcal)
        try f.dataset(F.moduleVCalSlope).write(slope)
        try f.close()
        do {
            _ = try GainFit.run(inputPath: path, outputPath: tmp + "/fit.h5", threads: 1)
            Issue.record("\(kind): expected an error")
        } catch let e as NumericsError {
            #expect(e.exitStatus == .dataError && e.message.contains(path) && e.fix != nil)
            if kind.hasSuffix("slope") { #expect(e.message.contains("module 1 (detid"), "\(e.message)") }
            else { #expect(e.message.contains("/vcal"), "\(e.message)") }
        }
        #expect(!FileManager.default.fileExists(atPath: tmp + "/fit.h5"))
    }
}
