@testable import CalibStore
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

@Suite struct BundleTests {
    /// A store with overlapping entries in several tags, inserted in random order.
    func populated() throws -> StoreFixture {
        let fx = try StoreFixture(), s = fx.store
        var rng = SplitMix64(seed: 42)
        try s.createTag(detector: "jf4m", type: "pedestals", name: "v1", alias: "best")
        for i in 0..<30 {
            let first = Int64(rng.next() % 500)
            let last: Int64? = rng.next() % 4 == 0 ? nil : first + Int64(rng.next() % 120)
            let r = try RunRange(first: first, last: last)
            try s.put(detector: "jf4m", type: "pedestals", runs: r, payload: try peds(UInt64(i % 7)), tag: i % 2 == 0 ? nil : "v1",
                      provenance: ProvenanceLinks(comment: "entry \(i)", campaign: "c1", inputRuns: "\(first)"))
        }
        try s.put(detector: "jf4m", type: "gain_offline", runs: runs("0-"), payload: Payload(arrays: [
            PayloadArray(name: "offline", values: [UInt8](repeating: 2, count: 8), shape: [2, 4]),
            PayloadArray(name: "detid", values: [Int64(1), 2])], attributes: ["unit": .string("VCAL")]))
        try s.setTagState(detector: "jf4m", type: "pedestals", name: "v1", to: .validated)
        return fx
    }

    @Test func exportImportGivesIdenticalLookupsForEveryRun() throws {
        let fx = try populated(), s = fx.store
        let out = fx.tmp.file("bundles")
        let path = try s.exportBundle(detector: "jf4m", to: out)
        #expect((path as NSString).lastPathComponent == "jf4m-170.h5")
        let other = try ConstantsStore(directory: fx.tmp.file("store2"), identity: StoreFixture.me, create: true)
        let rep = try other.importBundle(path)
        #expect(rep.detectorCreated && rep.entriesAdded == 31)
        for (type, tag) in [("pedestals", "default"), ("pedestals", "v1"), ("gain_offline", "default")] {
            for run in Int64(0)...700 {
                let a = try? s.lookup(detector: "jf4m", type: type, run: run, tag: tag)
                let b = try? other.lookup(detector: "jf4m", type: type, run: run, tag: tag)
                #expect(a?.sha256 == b?.sha256 && a?.runs == b?.runs && a?.insertedAt == b?.insertedAt, "\(type) \(tag) run \(run)")
                #expect(a?.provenance == b?.provenance)
            }
        }
        #expect(try other.tag(detector: "CxiDs1.0:Jungfrau.0", type: "pedestals", name: "best").state == .validated)
        #expect(try other.get(detector: "jf4m", type: "gain_offline", run: 3).payload.attributes["unit"] == .string("VCAL"))
        #expect(try other.verify().ok)
        // Importing again adds nothing.
        let again = try other.importBundle(path)
        #expect(again.entriesAdded == 0 && again.entriesAlreadyPresent == 31)
    }

    @Test func globalTagsTravelWithTheBundlesOfAllTheirDetectors() throws {
        let fx = try populated(), s = fx.store
        try s.addDetector(DetectorSpec(name: "sipix", kind: "sipixel", hardwareIndex: 3))
        try s.put(detector: "sipix", type: "vcal", runs: runs("0-"), payload: Payload(arrays: [
            PayloadArray(name: "slope", values: [Float(47), 48]), PayloadArray(name: "offset", values: [Float(-60), -61])]))
        let gt = try s.createGlobalTag(name: "GT1", entries: [.init(detector: "jf4m", type: "pedestals", tag: "v1"),
                                                             .init(detector: "sipix", type: "vcal", tag: "default")])
        // Inserted after the global tag: must stay invisible through it in the other store too.
        try s.put(detector: "sipix", type: "vcal", runs: runs("0-"), payload: Payload(arrays: [
            PayloadArray(name: "slope", values: [Float(50), 51]), PayloadArray(name: "offset", values: [Float(-60), -61])]))
        let a = try s.exportBundle(detector: "jf4m", to: fx.tmp.file("b")), b = try s.exportBundle(detector: "sipix", to: fx.tmp.file("b"))
        let other = try ConstantsStore(directory: fx.tmp.file("store2"), identity: StoreFixture.me, create: true)
        let r1 = try other.importBundle(a)
        #expect(r1.globalTagsCreated.isEmpty && r1.globalTagsDeferred.first?.contains("sipix") == true)
        let r2 = try other.importBundle(b)
        #expect(r2.globalTagsCreated == ["GT1"])
        let g2 = try other.globalTag("GT1")
        #expect(g2.asOfMicroseconds == gt.asOfMicroseconds && g2.entries == gt.entries)
        for run: Int64 in [0, 5, 50, 120, 300, 499, 600] {
            for (d, t) in [("jf4m", "pedestals"), ("sipix", "vcal")] {
                #expect((try? s.lookup(detector: d, type: t, run: run, globalTag: "GT1").sha256) == (try? other.lookup(detector: d, type: t, run: run, globalTag: "GT1").sha256))
            }
        }
        #expect(try other.importBundle(a).globalTagsCreated.isEmpty)
    }

    @Test func damagedBundlesAreRefusedAndChangeNothing() throws {
        let fx = try populated(), s = fx.store
        let path = try s.exportBundle(detector: "jf4m", to: fx.tmp.file("b"))
        let other = try ConstantsStore(directory: fx.tmp.file("store2"), identity: StoreFixture.me, create: true)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = fx.tmp.file("trunc.h5")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        #expect(throws: StoreError.self) { try other.importBundle(truncated) }
        let junk = fx.tmp.file("junk.h5")
        try Data("hello".utf8).write(to: URL(fileURLWithPath: junk))
        #expect(throws: StoreError.self) { try other.importBundle(junk) }
        // One payload value changed inside the bundle: the hash check refuses the whole import.
        let bad = fx.tmp.file("bad.h5")
        try FileManager.default.copyItem(atPath: path, toPath: bad)
        let f = try HDF5File.open(bad, writable: true)
        let sha = try f.children(of: "/payloads")[0]
        let ds = try f.dataset("/payloads/\(sha)/data/\(try f.children(of: "/payloads/\(sha)/data")[0])")
        var v = try ds.read(as: Float.self); v[0] = -1
        try ds.write(v)
        try f.close()
        do { try other.importBundle(bad); Issue.record("damaged bundle imported") } catch let e as StoreError {
            #expect(e.message.contains(String(sha.prefix(12))))
        }
        #expect(try other.detectors().isEmpty && other.entries().isEmpty)
        #expect(try other.verify().orphans.isEmpty)
    }

    @Test func lclsTreeRoundTrip() throws {
        let fx = try populated(), s = fx.store
        let calib = fx.tmp.file("calib")
        let r = try s.exportLCLS(detector: "jf4m", to: calib, tag: "v1")
        #expect(!r.files.isEmpty && r.files.allSatisfy { $0.contains("/Jungfrau::CalibV1/CxiDs1.0:Jungfrau.0/pedestals/") && $0.hasSuffix(".data") })
        let other = try ConstantsStore(directory: fx.tmp.file("store2"), identity: StoreFixture.me, create: true)
        try other.addDetector(DetectorSpec(name: "jfB", kind: "jungfrau", aliases: ["CxiDs1.0:Jungfrau.0"]))
        let back = try other.importLCLS(from: calib, tag: "lcls")
        #expect(back.files.count == r.files.count && back.skipped.isEmpty)
        for run in Int64(0)...700 {
            let a = try? s.lookup(detector: "jf4m", type: "pedestals", run: run, tag: "v1").sha256
            let b = try? other.lookup(detector: "jfB", type: "pedestals", run: run, tag: "lcls").sha256
            #expect(a == b, "run \(run)")
        }
    }

    @Test func lclsImportFollowsPsanaOrder() throws {
        let fx = try StoreFixture()
        let dir = fx.tmp.file("calib/Jungfrau::CalibV1/CxiDs1.0:Jungfrau.0/pixel_status")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "1 0\n0 0\n".write(toFile: dir + "/1-end.data", atomically: true, encoding: .utf8)
        try "0 0\n0 4\n".write(toFile: dir + "/5-20.data", atomically: true, encoding: .utf8)
        try "2 2\n2 2\n".write(toFile: dir + "/10-end.data", atomically: true, encoding: .utf8)
        let r = try fx.store.importLCLS(from: fx.tmp.file("calib"))
        #expect(r.files.count == 3)
        func status(_ run: Int64) throws -> [UInt16] { try fx.store.get(detector: "jf4m", type: "pixel_status", run: run).payload["pixel_status"]!.values() }
        #expect(try status(3) == [1, 0, 0, 0])
        #expect(try status(7) == [0, 0, 0, 4])
        #expect(try status(15) == [2, 2, 2, 2])
        #expect(try status(500) == [2, 2, 2, 2])
    }
}
