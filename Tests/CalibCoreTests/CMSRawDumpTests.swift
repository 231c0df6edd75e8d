import CalibIO
import Foundation
import Testing
@testable import CalibCore

/// CMS raw FED dumps: the same simulated scan as .dmp and as HDF5 fits to identical results; corruptions are counted.
@Suite struct CMSRawDumpTests {
    static func sim() -> GainScanSimulator {
        var s = GainScanSimulator()
        s.rows = 16; s.cols = 32; s.seed = 7; s.run = 10901
        s.deadFraction = 0.01; s.stuckFraction = 0.01; s.noisyFraction = 0.01; s.fewEntriesFraction = 0.01
        return s
    }

    @Test func dumpAndHDF5GiveIdenticalFits() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-dmp-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let s = Self.sim()
        let h5 = try s.write(directory: tmp, feds: [1205], modulesPerFED: 3, threads: 2)[0]
        let dmp = try s.writeDump(directory: tmp, fed: 1205, modules: 3, threads: 2)
        #expect((dmp as NSString).lastPathComponent == "GainCalibration_1205_10901.dmp")
        let calib = try JSONDecoder().decode(CMSCalibConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: tmp + "/calib.json")))
        let cabling = try JSONDecoder().decode(CMSCablingMap.self, from: Data(contentsOf: URL(fileURLWithPath: tmp + "/cabling_1205.json")))
        let summary = try CMSRawDump.convert(dumpPath: dmp, calib: calib, cabling: cabling, outputPath: tmp + "/from_dmp.h5")
        #expect(summary.anomalies == CMSDumpAnomalies() && summary.run == 10901 && summary.events == calib.expectedEvents)
        let a = try HDF5File.open(h5), b = try HDF5File.open(tmp + "/from_dmp.h5")
        for name in [GainScanFormat.n, GainScanFormat.sum, GainScanFormat.sumsq, GainScanFormat.vcal] {
            #expect(try a.read(name, as: Float.self) == b.read(name, as: Float.self), "\(name)")
        }
        #expect(try a.read(GainScanFormat.moduleDetID, as: Int64.self) == b.read(GainScanFormat.moduleDetID, as: Int64.self))
        let fa = try GainFit.run(inputPath: h5, outputPath: tmp + "/fa.h5", threads: 2)
        let fb = try GainFit.run(inputPath: tmp + "/from_dmp.h5", outputPath: tmp + "/fb.h5", threads: 2)
        #expect(fa.counts == fb.counts && fa.meanGain == fb.meanGain)
        let oa = try HDF5File.open(tmp + "/fa.h5"), ob = try HDF5File.open(tmp + "/fb.h5")
        for name in [GainScanFormat.gain, GainScanFormat.pedestal, GainScanFormat.chi2ndf] {
            #expect(try oa.read(name, as: Float.self).map(\.bitPattern) == ob.read(name, as: Float.self).map(\.bitPattern))
        }
        #expect(try oa.read(GainScanFormat.status, as: UInt8.self) == ob.read(GainScanFormat.status, as: UInt8.self))
    }

    @Test func corruptionsAreCountedPerFEDAndFailOverTheLimit() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-dmpbad-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let s = Self.sim()
        let dmp = try s.writeDump(directory: tmp, fed: 1205, modules: 2, corruptions: .init(), threads: 2)
        let calib = s.calibConfiguration()
        let cabling = CMSCablingMap.standard(fed: 1205, modules: 2, moduleRows: 16, moduleCols: 32)
        do {
            _ = try CMSRawDump.convert(dumpPath: dmp, calib: calib, cabling: cabling, outputPath: tmp + "/o.h5")
            Issue.record("expected a refusal")
        } catch let e as NumericsError {
            #expect(e.exitStatus == .dataError && e.message.contains("FED 1205") && e.message.contains("hits outside pattern"))
        }
        #expect(!FileManager.default.fileExists(atPath: tmp + "/o.h5"))
        let r = try CMSRawDump.convert(dumpPath: dmp, calib: calib, cabling: cabling, outputPath: tmp + "/o.h5",
                                       maxAnomalyFraction: 1)
        let a = r.anomalies
        #expect(a.errorWords == ["29": calib.expectedEvents / 97])
        #expect(a.truncatedBlocks == 1)
        #expect(a.hitsOutsidePattern > calib.expectedEvents * 9 / 10)   // the stuck channel, outside most patterns
        #expect(a.wordsBeforeHeader == 0 && a.unknownChannel == 0 && a.invalidAddress == 0 && a.fedMismatch == 0)
        // Decoding a dump with the wrong FED's cabling counts every header.
        let other = CMSCablingMap.standard(fed: 1206, modules: 2, moduleRows: 16, moduleCols: 32)
        let w = try CMSDumpDecoder(calib: calib, cabling: other).decode(path: dmp, expectedFED: 1206)
        #expect(w.anomalies.fedMismatch == w.blocks)
    }

    @Test func eventMapping() {
        let c = CMSCalibConfiguration(nTriggers: 5, vcal: [10, 20, 30], rowPatterns: [[0], [1]], colPatterns: [[0], [1], [2]])
        #expect(c.patternSize == 15 && c.expectedEvents == 90)
        #expect(c.locate(event: 1)! == (0, 0, 0) && c.locate(event: 15)! == (0, 2, 4) && c.locate(event: 16)! == (1, 0, 0))
        #expect(c.locate(event: 0) == nil && c.locate(event: 91) == nil)
        #expect(c.patternParts(4) == (1, 1))
    }

    /// The pattern tile (the fast path) and direct accumulation give the same sums and the same anomaly counts, on a
    /// clean dump and on a corrupt one (error words, a stuck channel outside the pattern, a truncated block), with
    /// events of a pattern coming back after another pattern.
    @Test func patternTileEqualsDirectAccumulation() throws {
        let tmp = NSTemporaryDirectory() + "calibctl-dmp-tile-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let s = Self.sim()
        for corrupt in [false, true] {
            let dir = tmp + (corrupt ? "/bad" : "/good")
            let dmp = try s.writeDump(directory: dir, fed: 1205, modules: 2, corruptions: corrupt ? .init() : nil, threads: 2)
            let calib = try JSONDecoder().decode(CMSCalibConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/calib.json")))
            let cabling = try JSONDecoder().decode(CMSCablingMap.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/cabling_1205.json")))
            let tiled = try CMSDumpDecoder(calib: calib, cabling: cabling), direct = try CMSDumpDecoder(calib: calib, cabling: cabling, tile: false)
            #expect(tiled.usesTile && !direct.usesTile)
            // The dump twice in a row: the second pass revisits every pattern after the others.
            var st = try tiled.decode(path: dmp, expectedFED: 1205), sd = try direct.decode(path: dmp, expectedFED: 1205)
            st = try tiled.decode(path: dmp, expectedFED: 1205); sd = try direct.decode(path: dmp, expectedFED: 1205)
            #expect(st.anomalies == sd.anomalies && st.hits == sd.hits && st.fillWords == sd.fillWords)
            #expect(tiled.n == direct.n && tiled.sum == direct.sum && tiled.sumsq == direct.sumsq)
            #expect(corrupt == (st.anomalies.hitsOutsidePattern > 0))
        }
    }
}
