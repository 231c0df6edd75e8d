import Foundation
import Testing
@testable import CalibCore

/// Recovery of the simulator's truth on one full CMS module (66,560 pixels).
///
/// Bound: for a good pixel the fit uses the points whose true response is below 0.8 x plateau. With per-injection noise
/// sigma (ADC) and 8-bit rounding, each point mean has error s_y = sqrt(sigma^2 + 1/12) / sqrt(5). A weighted fit
/// with known, equal errors has slope error s_y / sqrt(S_xx) (S_xx = sum (x - mean x)^2 over the used points), so the
/// relative gain error is gain * s_y / sqrt(S_xx) and the pedestal error s_y * sqrt(1/m + mean(x)^2 / S_xx).
/// For a Gaussian error, the median of |error / predicted| is 0.674. The fit estimates the weights from 5 readings per
/// point, which costs efficiency, so we require median |z| <= 1.0 (at most 1.5x the ideal) and no bias (|median z| < 0.1).
@Suite struct GainTruthRecoveryTests {
    @Test func recoversTruthAndFlagsDefects() {
        let d = ScanData(rows: 160, cols: 416, seed: 99)
        let out = FitOutput(d.pixels)
        d.withBlock { b in out.with { GainFitKernel.fit(b, x: d.x, into: $0, threads: 2) } }
        var zg: [Double] = [], zp: [Double] = []
        var goodPixels = 0, falseFlags = 0
        var flagged = [Int](repeating: 0, count: 5), injected = [Int](repeating: 0, count: 5)
        for p in 0..<d.pixels {
            let kind = SimulatedPixelKind(rawValue: d.kind[p])!
            let st = out.status(p)
            injected[Int(kind.rawValue)] += 1
            switch kind {
            case .good:
                goodPixels += 1
                guard st.hasUsableFit else { falseFlags += 1; continue }
                let gain = Double(d.truthGain[p]), ped = Double(d.truthPedestal[p])
                let used = d.x.map(Double.init).filter { ped + $0 / gain <= 0.8 * Double(d.truthPlateau[p]) }
                let mx = used.reduce(0, +) / Double(used.count)
                let sxx = used.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
                let noise = Double(d.truthNoise[p])
                let sy = (noise * noise + 1.0 / 12).squareRoot() / 5.0.squareRoot()
                let relGain = gain * sy / sxx.squareRoot()
                let sped = sy * (1 / Double(used.count) + mx * mx / sxx).squareRoot()
                zg.append((Double(out.gain[p]) / gain - 1) / relGain)
                zp.append((Double(out.pedestal[p]) - ped) / sped)
            case .dead:
                if st == .neverPulsed { flagged[1] += 1 }
            case .stuck:
                if st == .flat { flagged[2] += 1 }
            case .noisy:
                if st == .noisy { flagged[3] += 1 }
            case .fewEntries:
                if st == .tooFewPoints { flagged[4] += 1 }
            }
        }
        func median(_ a: [Double]) -> Double { let s = a.sorted(); return s[s.count / 2] }
        #expect(goodPixels > 65_000)
        #expect(median(zg.map(abs)) <= 1.0, "median |z| gain \(median(zg.map(abs)))")
        #expect(median(zp.map(abs)) <= 1.0, "median |z| pedestal \(median(zp.map(abs)))")
        #expect(abs(median(zg)) < 0.1 && abs(median(zp)) < 0.1)
        #expect(Double(falseFlags) < 0.001 * Double(goodPixels), "\(falseFlags) good pixels flagged")
        for k in 1...2 { #expect(injected[k] > 50 && flagged[k] == injected[k], "kind \(k)") }
        #expect(injected[3] > 50 && Double(flagged[3]) >= 0.99 * Double(injected[3]))
        #expect(injected[4] > 50 && flagged[4] == injected[4])
        // The bound is not vacuous: the errors are of the predicted size, not far below it.
        #expect(median(zg.map(abs)) > 0.4)
    }
}
