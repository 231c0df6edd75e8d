@testable import CalibStore
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// Node snapshots (`store snapshot`): exactly what a global tag resolves, read-only, checked by a manifest.
@Suite struct SnapshotTests {
    /// A store with two detectors, several types and tags, overlapping entries before and after the global tag;
    /// every lookup through the global tag (every run, every as-of time) answers the same on the snapshot.
    @Test func everyLookupThroughTheGlobalTagAnswersAsOnTheSource() throws {
        let f = try StoreFixture()
        let s = f.store
        try s.addDetector(DetectorSpec(name: "epix", kind: "epix10ka", aliases: ["MfxEndstation.0:Epix10ka.0"]))
        var times: [Int64] = []
        func put(_ det: String, _ type: String, _ r: String, _ seed: UInt64, tag: String? = nil) throws {
            let p: Payload
            if type == "pixel_status" {
                p = try Payload(arrays: [PayloadArray(name: "pixel_status", values: (0..<12).map { UInt16(($0 + Int(seed)) % 3) }, shape: [3, 4])])
            } else { p = try peds(seed) }
            times.append(try s.put(detector: det, type: type, runs: runs(r), payload: p, tag: tag, createTag: tag != nil).insertedAtMicroseconds)
            usleep(1000)
        }
        try put("jf4m", "pedestals", "0-", 1)
        try put("jf4m", "pedestals", "10-20", 2)
        try put("jf4m", "pedestals", "15-", 3)
        try put("jf4m", "pedestals", "5-12", 4, tag: "v2")
        try put("jf4m", "pixel_status", "0-30", 5)
        try put("epix", "pedestals", "3-8", 6)
        try put("epix", "pedestals", "7-", 7)
        let gt = try s.createGlobalTag(name: "GT1", entries: [
            .init(detector: "jf4m", type: "pedestals", tag: "default"), .init(detector: "jf4m", type: "pixel_status", tag: "default"),
            .init(detector: "epix", type: "pedestals", tag: "default")])
        // After the global tag: invisible through it, so absent from the snapshot.
        try put("jf4m", "pedestals", "12-14", 8)
        try put("epix", "pedestals", "0-", 9)
        try s.createGlobalTag(name: "GT_other", entries: [.init(detector: "jf4m", type: "pedestals", tag: "v2")])

        let out = f.tmp.file("snap")
        let m = try s.snapshot(globalTag: "GT1", to: out)
        #expect(m.globalTag == "GT1" && m.entries == 6 && m.asOfMicroseconds == gt.asOfMicroseconds)
        #expect(m.payloads == 6 && m.files.count == 7 && m.files[0].path == "index.db")
        let snap = try ConstantsStore(directory: out, identity: StoreFixture.me)
        #expect(snap.readOnly && snap.isSnapshot)
        #expect(try snap.globalTags().map(\.name) == ["GT1"])
        #expect(try Set(snap.detectors().map(\.name)) == ["jf4m", "epix"])
        #expect(try snap.detector("MfxEndstation.0:Epix10ka.0").name == "epix")
        let asOfs: [Int64?] = [nil] + times.map { Optional($0) } + times.map { Optional($0 - 1) }
        var compared = 0
        for (det, type) in [("jf4m", "pedestals"), ("jf4m", "pixel_status"), ("epix", "pedestals"), ("CxiDs1.0:Jungfrau.0", "pedestals")] {
            for run in Int64(0)...32 {
                for asOf in asOfs {
                    let a = Result { try s.lookup(detector: det, type: type, run: run, globalTag: "GT1", asOf: asOf) }
                    let b = Result { try snap.lookup(detector: det, type: type, run: run, globalTag: "GT1", asOf: asOf) }
                    switch (a, b) {
                    case (.success(let x), .success(let y)): #expect(x == y, "\(det)/\(type) run \(run) as of \(String(describing: asOf))")
                    case (.failure, .failure): break
                    default: Issue.record("\(det)/\(type) run \(run) as of \(String(describing: asOf)): \(a) vs \(b)")
                    }
                    compared += 1
                }
                let xa = try s.explain(detector: det, type: type, run: run, globalTag: "GT1")
                let xb = try snap.explain(detector: det, type: type, run: run, globalTag: "GT1")
                #expect(xa.winner == xb.winner)
            }
            #expect(try s.timeline(detector: det, type: type, globalTag: "GT1").map { "\($0.runs) \($0.entry.id)" }
                    == snap.timeline(detector: det, type: type, globalTag: "GT1").map { "\($0.runs) \($0.entry.id)" })
        }
        #expect(compared > 1000)
        // Payloads read and verify from the snapshot; nothing the global tag does not resolve is there.
        let got = try snap.get(detector: "jf4m", type: "pedestals", run: 16, globalTag: "GT1")
        #expect(got.payload == (try s.get(detector: "jf4m", type: "pedestals", run: 16, globalTag: "GT1").payload))
        #expect(throws: StoreError.self) { try snap.lookup(detector: "jf4m", type: "pedestals", run: 5, tag: "v2") }
        #expect(try snap.entries().count == 6)
        #expect(try snap.verify().ok)
        #expect(try ConstantsStore.verifySnapshot(out).ok)
        // Read-only, whoever opens it (root included): a put is refused with the reason.
        do {
            _ = try snap.put(detector: "jf4m", type: "pedestals", runs: runs("40-"), payload: try peds(99))
            Issue.record("a put into a snapshot succeeded")
        } catch let e as StoreError {
            #expect(e.kind == .permission && e.message.contains("snapshot"))
        }
        // The manifest catches a changed file.
        let copy = f.tmp.file("snap-copy")
        _ = try runProcess("/bin/cp", ["-a", out, copy])
        _ = try runProcess("/bin/chmod", ["-R", "u+w", copy])
        let victim = copy + "/" + m.files[1].path
        var bytes = try Data(contentsOf: URL(fileURLWithPath: victim))
        bytes[bytes.count - 1] ^= 0xff
        try bytes.write(to: URL(fileURLWithPath: victim))
        let check = try ConstantsStore.verifySnapshot(copy)
        #expect(!check.ok && check.problems.count == 1 && check.problems[0].contains(m.files[1].path))
        // An existing output directory is refused; an unknown global tag names the known ones.
        #expect(throws: StoreError.self) { try s.snapshot(globalTag: "GT1", to: out) }
        do { try s.snapshot(globalTag: "GT2", to: f.tmp.file("snap2")); Issue.record("unknown global tag accepted") } catch let e as StoreError {
            #expect(e.message.contains("GT2") && (e.fix ?? "").contains("GT1"))
        }
        #expect(!FileManager.default.fileExists(atPath: f.tmp.file("snap2")))
    }
}
