import CalibIO
import Foundation
import Testing
@testable import CalibCore

/// Random uint16 frames with gain bits, outliers and saturation, for kernel comparisons.
private func randomFrames(frames: Int, pixels: Int, seed: UInt64) -> [UInt16] {
    var rng = SplitMix64(seed: seed)
    return (0..<(frames * pixels)).map { i in
        let p = i % pixels
        var v = 2000 + Double(p % 97) * 3 + rng.nextGaussian() * (p % 13 == 0 ? 80 : 6)
        if rng.nextUniform() < 0.01 { v = 16383 }
        if rng.nextUniform() < 0.005 { v = 0 }
        let gain: UInt16 = rng.nextUniform() < 0.01 ? 1 : 0
        return UInt16(min(max(v.rounded(), 0), 16383)) | gain << 14
    }
}

@Suite struct DarkKernelTests {
    struct Acc {
        let a: DarkAccumulators
        init(_ p: Int) { a = .allocate(pixels: p) }
    }

    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 1024], [CommonModeMode?.none, .row, .column, .bank])
    func vectorMatchesScalar(pixels: Int, cm: CommonModeMode?) {
        let rows = 4, cols = 256
        let P = max(pixels, 1)
        let frames = 23
        let data = randomFrames(frames: frames, pixels: P, seed: UInt64(pixels) + 3)
        var o = DarkOptions(); o.bankRows = 2; o.bankCols = 64
        let g = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P); defer { g.deallocate() }
        let gates = DarkGates(lo: g, hi: g + P, ref: g + 2 * P)
        let va = DarkAccumulators.allocate(pixels: P), sa = DarkAccumulators.allocate(pixels: P)
        defer { va.deallocate(); sa.deallocate() }
        data.withUnsafeBufferPointer { fb in
            let f = fb.baseAddress!
            DarkKernel.gates(frames: f, frameCount: 10, pixels: P, range: 0..<P, options: o, into: gates)
            // Geometry: panels x rows x cols covering P pixels (only meaningful for P = 1000+; otherwise one row).
            let geoRows = P >= rows * cols ? rows : 1, geoCols = P >= rows * cols ? cols : P
            let groups = cm.map { DarkKernel.groupCount(panels: max(1, P / (geoRows * geoCols)), rows: geoRows,
                                                         cols: geoCols, mode: $0, bankRows: o.bankRows, bankCols: o.bankCols) } ?? 0
            var cmValues = [Float](repeating: 0, count: max(1, frames * groups))
            cmValues.withUnsafeMutableBufferPointer { cb in
                let geo = cm.map { CommonModeBlock(mode: $0, values: cb.baseAddress!, groupsPerFrame: groups, rows: geoRows,
                                                   cols: geoCols, bankRows: o.bankRows, bankCols: o.bankCols) }
                if let geo, P == pixels {
                    for fi in 0..<frames {
                        DarkKernel.commonMode(frames: f, frame: fi, pixels: P, gates: gates, geometry: geo, options: o,
                                              into: cb.baseAddress! + fi * groups)
                    }
                }
                let n = pixels
                DarkKernel.accumulateVector(frames: f, frameCount: frames, pixels: P, range: 0..<n, expectedGain: 0,
                                            gates: gates, commonMode: geo, options: o, into: va)
                DarkKernel.accumulateScalar(frames: f, frameCount: frames, pixels: P, range: 0..<n, expectedGain: 0,
                                            gates: gates, commonMode: geo, options: o, into: sa)
            }
        }
        for p in 0..<pixels {
            #expect(va.n[p] == sa.n[p] && va.below[p] == sa.below[p] && va.above[p] == sa.above[p])
            #expect(va.badGain[p] == sa.badGain[p] && va.min[p] == sa.min[p] && va.max[p] == sa.max[p])
            #expect(abs(va.sum[p] - sa.sum[p]) <= 1e-3 * max(1, abs(sa.sum[p])), "pixel \(p)")
            #expect(abs(va.sumsq[p] - sa.sumsq[p]) <= 1e-5 * max(1, sa.sumsq[p]), "pixel \(p)")
        }
    }

    /// The exact integer path equals the scalar reference bit for bit (not just within a tolerance) for unusual
    /// options too: non-integer limits, a 12-bit mask, gain code 3 and no gain check, wide gates (|d| up to ~16000,
    /// 32-bit chunks), groups whose values leave [intLo, intHi], prebuilt integer gates, more frames than a chunk.
    @Test(arguments: UnusualDarkCase.all)
    func integerPathIsExact(_ c: UnusualDarkCase) {
        let P = 16 * 40 + 7, F = 150, mask = c.mask, gain = c.gain, o = c.options
        let data = c.frames(pixels: P, frames: F, seed: 5)
        let g = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P); defer { g.deallocate() }
        var gates = DarkGates(lo: g, hi: g + P, ref: g + 2 * P)
        let va = DarkAccumulators.allocate(pixels: P), vb = DarkAccumulators.allocate(pixels: P),
            sa = DarkAccumulators.allocate(pixels: P)
        defer { va.deallocate(); vb.deallocate(); sa.deallocate() }
        data.withUnsafeBufferPointer { fb in
            let f = fb.baseAddress!
            DarkKernel.gatesVector(frames: f, frameCount: 50, pixels: P, range: 0..<P, options: o, into: gates)
            DarkKernel.accumulateScalar(frames: f, frameCount: F, pixels: P, range: 0..<P, expectedGain: gain,
                                        gates: gates, commonMode: nil, options: o, into: sa)
            // Gates built per call, odd range boundaries, blocks of 32 / 64.
            for (f0, c) in [(0, 32), (32, 64), (96, 54)] {
                DarkKernel.accumulateVector(frames: f + f0 * P, frameCount: c, pixels: P, range: 0..<300, expectedGain: gain,
                                            gates: gates, commonMode: nil, options: o, into: va)
                DarkKernel.accumulateVector(frames: f + f0 * P, frameCount: c, pixels: P, range: 300..<P, expectedGain: gain,
                                            gates: gates, commonMode: nil, options: o, into: va)
            }
            // Prebuilt integer gates, one call over all frames.
            gates.integer = DarkKernel.makeIntegerGates(gates, pixels: P, dataMask: mask, threads: 2)
            DarkKernel.accumulateVector(frames: f, frameCount: F, pixels: P, range: 0..<P, expectedGain: gain,
                                        gates: gates, commonMode: nil, options: o, into: vb)
            gates.integer?.deallocate()
        }
        for v in [va, vb] {
            for p in 0..<P {
                #expect(v.n[p] == sa.n[p] && v.below[p] == sa.below[p] && v.above[p] == sa.above[p], "pixel \(p)")
                #expect(v.badGain[p] == sa.badGain[p] && v.min[p] == sa.min[p] && v.max[p] == sa.max[p], "pixel \(p)")
                #expect(v.sum[p] == sa.sum[p] && v.sumsq[p] == sa.sumsq[p], "pixel \(p)")
            }
        }
    }

    /// Frames padded apart (frameStride > pixels, as DarkFit lays out its block buffer) give the same sums as
    /// contiguous frames.
    @Test func paddedFrameStrideMatchesContiguous() {
        let P = 16 * 9 + 3, F = 20, stride = P + 96
        let data = randomFrames(frames: F, pixels: P, seed: 77)
        var padded = [UInt16](repeating: 0, count: F * stride)
        for f in 0..<F { for p in 0..<P { padded[f * stride + p] = data[f * P + p] } }
        let o = DarkOptions()
        let g = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P); defer { g.deallocate() }
        let gates = DarkGates(lo: g, hi: g + P, ref: g + 2 * P)
        let va = DarkAccumulators.allocate(pixels: P), sa = DarkAccumulators.allocate(pixels: P)
        defer { va.deallocate(); sa.deallocate() }
        data.withUnsafeBufferPointer { d in
            padded.withUnsafeBufferPointer { pd in
                DarkKernel.gates(frames: d.baseAddress!, frameCount: 10, pixels: P, range: 0..<P, options: o, into: gates)
                DarkKernel.accumulateVector(frames: pd.baseAddress!, frameCount: F, pixels: P, range: 0..<P,
                                            expectedGain: 0, gates: gates, commonMode: nil, options: o, into: va,
                                            frameStride: stride)
                DarkKernel.accumulateScalar(frames: d.baseAddress!, frameCount: F, pixels: P, range: 0..<P,
                                            expectedGain: 0, gates: gates, commonMode: nil, options: o, into: sa)
            }
        }
        for p in 0..<P {
            #expect(va.n[p] == sa.n[p] && va.min[p] == sa.min[p] && va.max[p] == sa.max[p] && va.badGain[p] == sa.badGain[p])
            #expect(abs(va.sumsq[p] - sa.sumsq[p]) <= 1e-5 * max(1, sa.sumsq[p]))
        }
    }

    /// Stage-1 gates: the register-insertion vector version equals the sorting reference.
    @Test(arguments: [2, 3, 10, 50, 61, 200])
    func gatesVectorMatchesSorting(frames: Int) {
        let P = 16 * 20 + 5
        let data = randomFrames(frames: frames, pixels: P, seed: UInt64(frames))
        let o = DarkOptions()
        let a = UnsafeMutablePointer<Float>.allocate(capacity: 6 * P); defer { a.deallocate() }
        let gv = DarkGates(lo: a, hi: a + P, ref: a + 2 * P), gs = DarkGates(lo: a + 3 * P, hi: a + 4 * P, ref: a + 5 * P)
        data.withUnsafeBufferPointer { f in
            DarkKernel.gatesVector(frames: f.baseAddress!, frameCount: frames, pixels: P, range: 0..<P, options: o, into: gv)
            DarkKernel.gates(frames: f.baseAddress!, frameCount: frames, pixels: P, range: 0..<P, options: o, into: gs)
        }
        for p in 0..<P {
            #expect(gv.lo[p] == gs.lo[p] && gv.hi[p] == gs.hi[p] && gv.ref[p] == gs.ref[p], "pixel \(p)")
        }
    }

    /// The whole streamed pipeline against a straightforward double-precision implementation of the same definitions.
    @Test func matchesDoublePrecisionReference() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-dark-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let F = 70, shape = [2, 8, 40], P = 640
        let frames = randomFrames(frames: F, pixels: P, seed: 17)
        let input = tmp + "/dark.h5", output = tmp + "/out.h5"
        let f = try HDF5File.create(input)
        try f.setAttribute(DarkFormat.attrFormat, .string(DarkFormat.runKind))
        try f.setAttribute(DarkFormat.attrFormatVersion, .int(1))
        try f.setAttribute(DarkFormat.attrGainBits, .int(1))
        try f.write(DarkFormat.frames, frames, shape: [F] + shape, chunks: [1] + shape)
        try f.close()
        var o = DarkOptions(); o.framesPerBlock = 16
        let s = try DarkFit.run(inputPath: input, outputPath: output, options: o, threads: 2)
        #expect(s.modes.count == 1 && s.modes[0].frames == F)
        let r = try HDF5File.open(output)
        let ped = try r.read(DarkFormat.pedestals, as: Float.self), rms = try r.read(DarkFormat.pixelRMS, as: Float.self)
        let status = try r.read(DarkFormat.pixelStatus, as: UInt16.self)
        var refPed = [Double](repeating: 0, count: P), refRMS = refPed
        var bad = [Bool](repeating: false, count: P), above = [Int](repeating: 0, count: P), below = above
        for p in 0..<P {
            let first = (0..<50).map { Double(frames[$0 * P + p] & 0x3fff) }.sorted()
            func q(_ x: Double) -> Double {
                let pos = x * Double(first.count - 1), i = Int(pos), fr = pos - Double(i)
                return i + 1 < first.count ? first[i] + (first[i + 1] - first[i]) * fr : first[i]
            }
            let lo = max(q(0.05).rounded(.down), 1)
            var hi = min(q(0.95).rounded(.up), 16000)
            if hi <= lo { hi += 1 }
            var n = 0.0, sum = 0.0, sq = 0.0
            for fi in 0..<F {
                let raw = frames[fi * P + p], v = Double(raw & 0x3fff)
                if raw >> 14 != 0 { bad[p] = true }
                if v > 16000 { above[p] += 1 }
                if v < 1 { below[p] += 1 }
                if v >= lo && v <= hi { n += 1; sum += v; sq += v * v }
            }
            if n > 0 {
                refPed[p] = sum / n
                refRMS[p] = max(sq / n - refPed[p] * refPed[p], 0).squareRoot()
            }
        }
        var compared = 0
        for p in 0..<P where refPed[p] > 0 {
            #expect(abs(Double(ped[p]) - refPed[p]) < 1e-3, "pedestal pixel \(p)")
            #expect(abs(Double(rms[p]) - refRMS[p]) < 1e-3 * max(1, refRMS[p]), "rms pixel \(p)")
            compared += 1
        }
        #expect(compared > 600)
        for p in 0..<P {
            #expect((status[p] & 64 != 0) == bad[p])
            #expect((status[p] & 4 != 0) == (Double(above[p]) > 0.1 * Double(F)))
            #expect((status[p] & 8 != 0) == (Double(below[p]) > 0.1 * Double(F)))
        }
    }
}
