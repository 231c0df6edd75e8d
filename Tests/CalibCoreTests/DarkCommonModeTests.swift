import Foundation
import Testing
@testable import CalibCore

/// The common mode is exactly what docs/numerics.md says: per frame and group, the median (even count: mean of the two
/// middle values) of value - ref over the pixels inside their stage-1 gate, ref = (mean of the pixel's in-gate
/// stage-1 values, rounded to an integer); 0 unless more than cmMinPixels contribute and |median| < cmMax. Checked against a sort.
@Suite struct DarkCommonModeTests {
    @Test(arguments: [CommonModeMode.bank, .row, .column])
    func commonModeIsTheExactMedianOfInGateDeviations(mode: CommonModeMode) {
        let panels = 2, rows = 16, cols = 64, P = panels * rows * cols, F = 60
        var rng = SplitMix64(seed: 41)
        var frames = [UInt16](repeating: 0, count: F * P)
        for f in 0..<F {
            let offset = rng.nextGaussian() * 15
            for p in 0..<P {
                var v = 3000 + Double(p % 37) * 2 + offset + rng.nextGaussian() * 6
                if p % 101 == 0 { v += rng.nextGaussian() * 300 }   // some out-of-gate values
                frames[f * P + p] = UInt16(min(max(v.rounded(), 0), 16383))
            }
        }
        var o = DarkOptions()
        o.bankRows = 8; o.bankCols = 32; o.cmMinPixels = 10
        var lo = [Float](repeating: 0, count: P), hi = lo, ref = lo
        let groups = DarkKernel.groupCount(panels: panels, rows: rows, cols: cols, mode: mode, bankRows: 8, bankCols: 32)
        var cm = [Float](repeating: .nan, count: F * groups)
        frames.withUnsafeBufferPointer { fb in
            lo.withUnsafeMutableBufferPointer { l in hi.withUnsafeMutableBufferPointer { h in ref.withUnsafeMutableBufferPointer { r in
                let g = DarkGates(lo: l.baseAddress!, hi: h.baseAddress!, ref: r.baseAddress!)
                DarkKernel.gatesVector(frames: fb.baseAddress!, frameCount: 50, pixels: P, range: 0..<P, options: o, into: g)
                cm.withUnsafeMutableBufferPointer { cb in
                    let geo = CommonModeBlock(mode: mode, values: UnsafePointer(cb.baseAddress!), groupsPerFrame: groups,
                                              rows: rows, cols: cols, bankRows: 8, bankCols: 32)
                    for f in 0..<F {
                        DarkKernel.commonMode(frames: fb.baseAddress!, frame: f, pixels: P, gates: g, geometry: geo,
                                              options: o, into: cb.baseAddress! + f * groups)
                    }
                }
            } } }
        }
        // Reference: collect, sort, take the middle.
        var checked = 0, applied = 0
        for f in 0..<F {
            var values = [[Double]](repeating: [], count: groups)
            for p in 0..<P {
                let panel = p / (rows * cols), r = (p % (rows * cols)) / cols, c = p % cols
                let group: Int
                switch mode {
                case .row: group = panel * rows + r
                case .column: group = panel * cols + c
                case .bank: group = (panel * (rows / 8) + r / 8) * (cols / 32) + c / 32
                }
                let v = Float(frames[f * P + p] & o.dataMask)
                if v >= lo[p] && v <= hi[p] { values[group].append(Double(v) - Double(ref[p])) }
            }
            for g in 0..<groups {
                let s = values[g].sorted()
                var median = 0.0
                if s.count > o.cmMinPixels {
                    median = s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
                    if abs(median) >= Double(o.cmMax) { median = 0 } else { applied += 1 }
                }
                #expect(Double(cm[f * groups + g]) == median, "frame \(f) group \(g): \(cm[f * groups + g]) vs \(median)")
                checked += 1
            }
        }
        #expect(checked == F * groups && applied > checked / 2)
    }
}

extension DarkCommonModeTests {
    /// Without a common mode in the data, processing with common mode gives the same pedestals on average as without
    /// (|mean difference| < 0.1 ADU). With ref = floor(mean) the median carried the pixels' fractional offsets and
    /// pedestals with common mode came out ~0.45 ADU low.
    @Test(arguments: [CommonModeMode.bank, .row, .column])
    func commonModeAddsNoOffset(mode: CommonModeMode) throws {
        let tmp = NSTemporaryDirectory() + "calibctl-cmoffset-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var sim = DarkRunSimulator()
        sim.panels = 2; sim.rows = 64; sim.cols = 128; sim.frames = 120; sim.seed = 5
        try sim.write(path: tmp + "/d.h5", truthPath: tmp + "/t.h5", threads: 2)
        let plain = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/a.h5", threads: 2)
        var o = DarkOptions(); o.commonMode = mode
        let cm = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/b.h5", options: o, threads: 2)
        let diff = cm.modes[0].meanPedestal - plain.modes[0].meanPedestal
        #expect(abs(diff) < 0.1, "pedestals with \(mode) common mode differ by \(diff) ADU on average")
    }
}
