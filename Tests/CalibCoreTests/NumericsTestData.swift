import Testing
@testable import CalibCore

/// Seeded scan data for kernel tests: `pixels` simulated pixels (all kinds) in pixel-major arrays.
struct ScanData {
    var n: [Float], sum: [Float], sumsq: [Float]
    var x: [Float]
    var truthGain: [Float], truthPedestal: [Float], truthPlateau: [Float], truthNoise: [Float]
    var kind: [UInt8]
    let pixels: Int, points: Int

    init(rows: Int, cols: Int, seed: UInt64, module: Int = 200, defects: Double = 0.002,
         pedestal: (mean: Float, sigma: Float, min: Float, max: Float)? = nil) {
        var sim = GainScanSimulator()
        sim.rows = rows; sim.cols = cols; sim.seed = seed
        if let pedestal {
            sim.pedestalMean = pedestal.mean; sim.pedestalSigma = pedestal.sigma
            sim.pedestalMin = pedestal.min; sim.pedestalMax = pedestal.max
        }
        sim.deadFraction = defects; sim.stuckFraction = defects; sim.noisyFraction = defects
        sim.fewEntriesFraction = defects
        pixels = rows * cols; points = sim.vcal.count
        n = .init(repeating: 0, count: pixels * points); sum = n; sumsq = n
        truthGain = .init(repeating: 0, count: pixels); truthPedestal = truthGain; truthPlateau = truthGain
        truthNoise = truthGain
        kind = .init(repeating: 0, count: pixels)
        x = sim.electrons(globalModule: module)
        sim.generateModule(globalModule: module, n: &n, sum: &sum, sumsq: &sumsq, truthGain: &truthGain,
                           truthPedestal: &truthPedestal, truthPlateau: &truthPlateau, truthNoise: &truthNoise,
                           truthKind: &kind)
    }

    /// Runs `body` with a block over the first `count` pixels.
    @discardableResult func withBlock<R>(count: Int? = nil, _ body: (GainScanBlock) -> R) -> R {
        n.withUnsafeBufferPointer { nb in
            sum.withUnsafeBufferPointer { sb in
                sumsq.withUnsafeBufferPointer { qb in
                    body(GainScanBlock(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!,
                                       pixels: count ?? pixels, points: points))
                }
            }
        }
    }
}

extension ScanData {
    /// Runs `body` with an interleaved copy (GainScanLayout.interleaved) of the first `count` pixels.
    @discardableResult func withInterleavedBlock<R>(count: Int? = nil, _ body: (GainScanBlock) -> R) -> R {
        let P = count ?? pixels
        let c = GainScanBlock.interleavedCount(pixels: P, points: points)
        var copies = [[Float]](repeating: [Float](repeating: .nan, count: c), count: 3)
        for (a, src) in [n, sum, sumsq].enumerated() {
            src.withUnsafeBufferPointer { s in
                copies[a].withUnsafeMutableBufferPointer { d in
                    GainScanBlock.interleave(s.baseAddress!, pixels: P, points: points, into: d.baseAddress!)
                }
            }
        }
        return copies[0].withUnsafeBufferPointer { nb in
            copies[1].withUnsafeBufferPointer { sb in
                copies[2].withUnsafeBufferPointer { qb in
                    body(GainScanBlock(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!,
                                       pixels: P, points: points, layout: .interleaved))
                }
            }
        }
    }
}

/// Owned output arrays of a fit.
final class FitOutput {
    var gain: [Float], pedestal: [Float], chi2: [Float], npoints: [UInt8], status: [UInt8]
    init(_ pixels: Int) {
        gain = .init(repeating: -1, count: pixels); pedestal = gain; chi2 = gain
        npoints = .init(repeating: 99, count: pixels); status = .init(repeating: 99, count: pixels)
    }
    @discardableResult func with<R>(_ body: (GainFitResults) -> R) -> R {
        gain.withUnsafeMutableBufferPointer { g in
            pedestal.withUnsafeMutableBufferPointer { p in
                chi2.withUnsafeMutableBufferPointer { c in
                    npoints.withUnsafeMutableBufferPointer { n in
                        status.withUnsafeMutableBufferPointer { s in
                            body(GainFitResults(gain: g.baseAddress!, pedestal: p.baseAddress!, chi2ndf: c.baseAddress!,
                                                npoints: n.baseAddress!, status: s.baseAddress!))
                        }
                    }
                }
            }
        }
    }
    func status(_ p: Int) -> GainPixelStatus { GainPixelStatus(rawValue: status[p])! }
}

/// Unusual dark options for the exact integer path: non-integer limits, a 12-bit mask, gain code 3, no gain check,
/// limits wide enough for 32-bit chunks.
struct UnusualDarkCase: Sendable, CustomTestStringConvertible {
    let intLo: Float, intHi: Float, mask: UInt16, gain: UInt16?

    static let all = [UnusualDarkCase(intLo: 1, intHi: 16000, mask: 0x3fff, gain: 0),
                      UnusualDarkCase(intLo: 1.5, intHi: 9000.5, mask: 0x3fff, gain: 3),
                      UnusualDarkCase(intLo: -20, intHi: 20000, mask: 0x3fff, gain: nil),
                      UnusualDarkCase(intLo: 1, intHi: 4000, mask: 0x0fff, gain: 1)]

    var options: DarkOptions {
        var o = DarkOptions(); o.intLo = intLo; o.intHi = intHi; o.dataMask = mask
        return o
    }

    var testDescription: String { "intLo \(intLo) intHi \(intHi) mask \(String(mask, radix: 16)) gain \(gain.map(String.init) ?? "none")" }

    /// `unusualDarkFrames` with this case's mask and gain code.
    func frames(pixels: Int, frames: Int, seed: UInt64) -> [UInt16] {
        unusualDarkFrames(pixels: pixels, frames: frames, seed: seed, mask: mask, gain: gain)
    }
}

/// Dark frames (`frames` x `pixels`, frame-major) that exercise every branch of the exact integer stage 2: pixels with
/// wide noise, gates spanning almost the whole range (32-bit chunks), quiet pixels (16-bit chunks), saturated and zero
/// values, frames with the wrong gain code 2; data bits `mask`, gain code `gain` (nil: 0) in bits 14-15.
func unusualDarkFrames(pixels P: Int, frames F: Int, seed: UInt64, mask: UInt16, gain: UInt16?) -> [UInt16] {
    var rng = SplitMix64(seed: seed)
    var data = [UInt16](repeating: 0, count: F * P)
    for f in 0..<F {
        for p in 0..<P {
            var v = 2000 + Double(p % 97) * 3 + rng.nextGaussian() * (p % 13 == 0 ? 80 : 6)
            if p % 101 == 7 { v = f % 2 == 0 ? 200 : 15800 }  // a gate spanning almost the whole range
            if p % 89 == 5 { v = 2000 + Double(f % 7) }         // |d| small: 16-bit chunks
            if rng.nextUniform() < 0.005 { v = 16383 }
            if rng.nextUniform() < 0.005 { v = 0 }
            let g: UInt16 = rng.nextUniform() < 0.005 ? 2 : (gain ?? 0)
            data[f * P + p] = UInt16(min(max(v.rounded(), 0), 16383)) & mask | g << 14
        }
    }
    return data
}
