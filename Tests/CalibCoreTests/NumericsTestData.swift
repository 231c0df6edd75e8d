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
