import CalibIO
import Foundation
import Testing
@testable import CalibCore

@Suite struct GainFitFileTests {
    /// Simulator -> files -> streamed fit -> output file equals the in-memory kernel on the same module data.
    @Test func streamedFitMatchesKernelAndSummarises() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-gainfile-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var sim = GainScanSimulator()
        sim.rows = 16; sim.cols = 32; sim.seed = 4; sim.deadFraction = 0.02
        let files = try sim.write(directory: tmp, feds: [1200, 1296], modulesPerFED: 3)
        #expect(files.map { ($0 as NSString).lastPathComponent } == ["fed_1200.h5", "fed_1296.h5"])
        let s = try GainFit.run(inputPath: files[0], outputPath: tmp + "/fit.h5", threads: 2)
        #expect(s.pixels == 3 * 512 && s.modules == 3 && s.fed == 1200)
        #expect(s.counts.values.reduce(0, +) == s.pixels && s.counts["never_pulsed"]! > 0)
        #expect(abs(s.meanGain - 150) < 5 && s.fractionGood > 0.9)
        let out = try HDF5File.open(tmp + "/fit.h5")
        #expect(try out.attribute(GainScanFormat.attrFormatVersion).intValue == GainScanFormat.version)
        #expect(try out.attribute("summary_count_ok").intValue == Int64(s.counts["ok"]!))
        let gain = try out.read(GainScanFormat.gain, as: Float.self)
        let refStatus = try out.read(GainScanFormat.referenceStatus, as: Int8.self)
        // Module 2 through the kernel directly.
        let reader = try GainScanReader(path: files[0])
        let per = 512 * reader.points
        var n = [Float](repeating: 0, count: per), sm = n, sq = n
        try reader.readModule(2, n: &n, sum: &sm, sumsq: &sq)
        let o = FitOutput(512)
        n.withUnsafeBufferPointer { nb in sm.withUnsafeBufferPointer { sb in sq.withUnsafeBufferPointer { qb in
            let b = GainScanBlock(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!, pixels: 512,
                                  points: reader.points)
            o.with { GainFitKernel.fit(b, x: reader.electrons(module: 2), into: $0, threads: 1) }
        } } }
        for p in 0..<512 {
            #expect(gain[1024 + p].bitPattern == o.gain[p].bitPattern || (gain[1024 + p].isNaN && o.gain[p].isNaN))
            #expect(refStatus[1024 + p] == o.status(p).referenceCode)
        }
    }

    /// The tile-streaming path (contiguous float32 read with pread, tiles of 2,048 pixels on all cores) and the
    /// module-by-module HDF5 path (taken for compressed inputs) write the same bits, with a module size that is not a
    /// multiple of the tile and one thread or two.
    @Test(arguments: [1, 2])
    func streamingAndModulePathsAgree(threads: Int) throws {
        let tmp = NSTemporaryDirectory() + "calibctl-gainpaths-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var sim = GainScanSimulator()
        sim.rows = 80; sim.cols = 52; sim.seed = 9; sim.deadFraction = 0.01   // 4,160 pixels per module
        let plain = try sim.write(directory: tmp + "/plain", feds: [1200], modulesPerFED: 3)[0]
        sim.deflate = 1
        let packed = try sim.write(directory: tmp + "/packed", feds: [1200], modulesPerFED: 3)[0]
        #expect(try GainScanReader(path: plain).direct != nil)
        #expect(try GainScanReader(path: packed).direct == nil)
        let a = try GainFit.run(inputPath: plain, outputPath: tmp + "/a.h5", threads: threads)
        let b = try GainFit.run(inputPath: packed, outputPath: tmp + "/b.h5", threads: threads)
        #expect(a.counts == b.counts && a.meanGain == b.meanGain && a.maxChi2ndf == b.maxChi2ndf)
        let fa = try HDF5File.open(tmp + "/a.h5"), fb = try HDF5File.open(tmp + "/b.h5")
        for name in [GainScanFormat.gain, GainScanFormat.pedestal, GainScanFormat.chi2ndf] {
            #expect(try fa.read(name, as: Float.self).map(\.bitPattern) == fb.read(name, as: Float.self).map(\.bitPattern))
        }
        #expect(try fa.read(GainScanFormat.status, as: UInt8.self) == fb.read(GainScanFormat.status, as: UInt8.self))
        #expect(try fa.read(GainScanFormat.npoints, as: UInt8.self) == fb.read(GainScanFormat.npoints, as: UInt8.self))
    }

    @Test func badInputNamesTheObject() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-gainbad-\(UUID().uuidString.prefix(8)).h5"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let f = try HDF5File.create(tmp)
        try f.setAttribute(GainScanFormat.attrFormat, .string(GainScanFormat.scanKind))
        try f.setAttribute(GainScanFormat.attrFormatVersion, .int(1))
        for a in [GainScanFormat.attrFED, GainScanFormat.attrRun, GainScanFormat.attrRows, GainScanFormat.attrCols,
                  GainScanFormat.attrModules] { try f.setAttribute(a, .int(1)) }
        try f.close()
        do {
            _ = try GainFit.run(inputPath: tmp, outputPath: tmp + ".out")
            Issue.record("expected an error")
        } catch let e as NumericsError {
            #expect(e.message.contains("/vcal") && e.exitStatus == .dataError && e.fix != nil)
        }
        #expect(!FileManager.default.fileExists(atPath: tmp + ".out"))
    }

    @Test func topologyMatchesTheDetector() {
        #expect(CMSPixelTopology.feds.count == 108 && Set(CMSPixelTopology.feds).count == 108)
        #expect(CMSPixelTopology.bpixFEDs.allSatisfy { (1200...1293).contains($0) })
        #expect(CMSPixelTopology.fpixFEDs.allSatisfy { (1296...1338).contains($0) })
        #expect(CMSPixelTopology.feds.map(CMSPixelTopology.modules).reduce(0, +) == 1856)
        #expect(CMSPixelTopology.feds.map(CMSPixelTopology.modules).reduce(0, +) * CMSPixelTopology.pixelsPerModule
                == 123_535_360)
        #expect(CMSPixelTopology.firstModule(fed: CMSPixelTopology.fpixFEDs[0]) == 1184)
    }
}
