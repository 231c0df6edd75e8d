@testable import CalibStore
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

@Suite struct ConstantsStoreTests {
    @Test func newestInsertionContainingTheRunWins() throws {
        let fx = try StoreFixture(), s = fx.store
        let e1 = try s.put(detector: "jf4m", type: "pedestals", runs: runs("100-"), payload: try peds(1))
        let e2 = try s.put(detector: "jf4m", type: "pedestals", runs: runs("150-200"), payload: try peds(2))
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 120).id == e1.id)
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 150).id == e2.id)
        #expect(try s.lookup(detector: "CxiDs1.0:Jungfrau.0", type: "pedestals", run: 200).id == e2.id)
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 201).id == e1.id)
        #expect(throws: StoreError.self) { try s.lookup(detector: "jf4m", type: "pedestals", run: 99) }
        let got = try s.get(detector: "jf4m", type: "pedestals", run: 160)
        #expect(got.payload == (try peds(2)))
        #expect(try got.payload["pedestals"]!.values(as: Float.self) == (try peds(2)).arrays[0].values(as: Float.self))
        #expect(got.entry.provenance.user == "alice" && got.entry.provenance.host == "testhost")
        // as-of: before the second insertion, run 160 still resolves to the first.
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 160, asOf: e1.insertedAtMicroseconds).id == e1.id)
        let x = try s.explain(detector: "jf4m", type: "pedestals", run: 160, asOf: e1.insertedAtMicroseconds)
        #expect(x.winner?.id == e1.id && x.candidates.count == 2 && x.candidates[0].verdict.contains("after the as-of"))
    }

    @Test func aLongLivedReaderSeesOtherConnectionsWrites() throws {
        let fx = try StoreFixture()
        let reader = try fx.reopen(as: StoreFixture.me), writer = fx.store
        try writer.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        #expect(try reader.lookup(detector: "jf4m", type: "pedestals", run: 10).sha256 == (try peds(1)).contentHash)
        // The reader has the tag's entries cached now; a commit by another connection must invalidate them.
        try writer.put(detector: "jf4m", type: "pedestals", runs: runs("5-20"), payload: try peds(2))
        #expect(try reader.lookup(detector: "jf4m", type: "pedestals", run: 10).sha256 == (try peds(2)).contentHash)
        // And its own writes too.
        try reader.put(detector: "jf4m", type: "pedestals", runs: runs("10-10"), payload: try peds(3))
        #expect(try reader.lookup(detector: "jf4m", type: "pedestals", run: 10).sha256 == (try peds(3)).contentHash)
        #expect(try writer.lookup(detector: "jf4m", type: "pedestals", run: 10).sha256 == (try peds(3)).contentHash)
    }

    @Test func identicalContentIsStoredOnce() throws {
        let fx = try StoreFixture(), s = fx.store
        let a = try s.put(detector: "jf4m", type: "pedestals", runs: runs("1-10"), payload: try peds(1))
        let b = try s.put(detector: "jf4m", type: "pedestals", runs: runs("11-20"), payload: try peds(1))
        #expect(a.sha256 == b.sha256)
        let files = try FileManager.default.subpathsOfDirectory(atPath: s.directory + "/payloads").filter { $0.hasSuffix(".h5") && !$0.hasPrefix(".tmp") }
        #expect(files == ["\(a.sha256.prefix(2))/\(a.sha256).h5"])
    }

    @Test func badInputNamesTheObjectAndChangesNothing() throws {
        let fx = try StoreFixture(), s = fx.store
        func refused(_ status: CalibIO.ExitStatus, _ text: String, _ body: () throws -> Void) {
            do { try body(); Issue.record("accepted: \(text)") } catch let e as StoreError {
                #expect(e.exitStatus == status, "\(e)")
                #expect(e.description.contains(text), "\(e)")
            } catch { Issue.record("\(error)") }
        }
        refused(.dataError, "did you mean 'jf4m'") { try s.put(detector: "jf4n", type: "pedestals", runs: .all, payload: try peds(1)) }
        refused(.dataError, "did you mean 'pedestals'") { try s.put(detector: "jf4m", type: "pedestal", runs: .all, payload: try peds(1)) }
        refused(.dataError, "dataset 'pixel_status'") {
            try s.put(detector: "jf4m", type: "pixel_status", runs: .all, payload: Payload(arrays: [PayloadArray(name: "pixel_status", values: [Float(1)])]))
        }
        refused(.dataError, "lacks dataset 'detid'") {
            try s.put(detector: "jf4m", type: "gain_offline", runs: .all, payload: Payload(arrays: [PayloadArray(name: "offline", values: [UInt8](repeating: 1, count: 4), shape: [2, 2])]))
        }
        refused(.dataError, "rank 0") {
            try s.put(detector: "jf4m", type: "pedestals", runs: .all, payload: Payload(arrays: [PayloadArray(name: "pedestals", dtype: .float32, shape: [], bytes: [0, 0, 0, 0])]))
        }
        refused(.dataError, "'extra' is not part of type pedestals") {
            try s.put(detector: "jf4m", type: "pedestals", runs: .all, payload: Payload(arrays: (try peds(1)).arrays + [PayloadArray(name: "extra", values: [Float(1)])]))
        }
        refused(.dataError, "shape of 'slope'") {
            try s.put(detector: "jf4m", type: "vcal", runs: .all, payload: Payload(arrays: [PayloadArray(name: "slope", values: [Float(1), 2]), PayloadArray(name: "offset", values: [Float(1)])]))
        }
        refused(.usage, "path separator") { try s.put(detector: "jf4m", type: "pedestals", runs: .all, payload: try peds(1), tag: "a/b") }
        refused(.usage, "'..'") { try s.addDetector(DetectorSpec(name: "..", kind: "x")) }
        refused(.usage, "'..'") { try s.addType("/calibration/../etc", schema: TypeSchema(datasets: [try .init(parsing: "x:any:any")])) }
        refused(.dataError, "does not exist") { try s.put(detector: "jf4m", type: "pedestals", runs: .all, payload: try peds(1), tag: "nosuch") }
        #expect(try s.entries().isEmpty)
        #expect(try s.verify().orphans.isEmpty)
    }

    @Test func tagStatesGovernWrites() throws {
        let fx = try StoreFixture(), s = fx.store
        try s.createTag(detector: "jf4m", type: "pedestals", name: "v1", alias: "best")
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-99"), payload: try peds(1), tag: "best")
        try s.setTagState(detector: "jf4m", type: "pedestals", name: "v1", to: .validated)
        #expect(throws: StoreError.self) { try s.put(detector: "jf4m", type: "pedestals", runs: runs("200-"), payload: try peds(2), tag: "v1") }
        #expect(throws: StoreError.self) { try s.setTagState(detector: "jf4m", type: "pedestals", name: "v1", to: .retired) }
        try s.setTagState(detector: "jf4m", type: "pedestals", name: "v1", to: .published)
        // Inside the existing range: refused. After it: accepted.
        #expect(throws: StoreError.self) { try s.put(detector: "jf4m", type: "pedestals", runs: runs("50-150"), payload: try peds(2), tag: "v1") }
        #expect(throws: StoreError.self) { try s.put(detector: "jf4m", type: "pedestals", runs: runs("99-"), payload: try peds(2), tag: "v1") }
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("100-"), payload: try peds(2), tag: "v1")
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 50, tag: "v1").sha256 == (try peds(1)).contentHash)
        let clone = try s.cloneTag(detector: "jf4m", type: "pedestals", source: "v1", destination: "rework")
        #expect(clone.state == .open && clone.entryCount == 2)
        for r: Int64 in [0, 50, 99, 100, 5000] {
            #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: r, tag: "rework").sha256 == s.lookup(detector: "jf4m", type: "pedestals", run: r, tag: "v1").sha256)
        }
        try s.setTagState(detector: "jf4m", type: "pedestals", name: "v1", to: .retired)
        #expect(throws: StoreError.self) { try s.put(detector: "jf4m", type: "pedestals", runs: runs("1000-"), payload: try peds(3), tag: "v1") }
        // The history cannot be edited even with SQL.
        #expect(throws: SQLiteError.self) { try s.db.run("DELETE FROM iovs") }
        #expect(throws: SQLiteError.self) { try s.db.run("UPDATE iovs SET first_run = 0") }
    }

    @Test func globalTagsAreImmutableSnapshots() throws {
        let fx = try StoreFixture(), s = fx.store
        let e1 = try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        let gt = try s.createGlobalTag(name: "GT1", entries: [.init(detector: "jf4m", type: "pedestals", tag: "default")])
        let later = try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(2))
        #expect(later.insertedAtMicroseconds > gt.asOfMicroseconds)
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 5, globalTag: "GT1").id == e1.id)
        #expect(try s.lookup(detector: "jf4m", type: "pedestals", run: 5).id == later.id)
        #expect(throws: StoreError.self) { try s.createGlobalTag(name: "GT1", entries: [.init(detector: "jf4m", type: "pedestals", tag: "default")]) }
        #expect(throws: SQLiteError.self) { try s.db.run("UPDATE global_tags SET as_of_us = 0") }
        #expect(throws: SQLiteError.self) { try s.db.run("DELETE FROM global_tag_entries") }
        #expect(throws: SQLiteError.self) { try s.db.run("INSERT INTO global_tag_entries VALUES(?, 1, 1, 1)", gt.id) }
        try s.createTag(detector: "jf4m", type: "pedestals", name: "v2")
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(3), tag: "v2")
        try s.createGlobalTag(name: "GT2", entries: [.init(detector: "jf4m", type: "pedestals", tag: "v2")], base: "GT1")
        let d = try s.diffGlobalTags("GT1", "GT2")
        #expect(d.count == 1 && d[0].a == "default" && d[0].b == "v2")
        let r = try s.diffGlobalTags("GT1", "GT2", atRun: 7)
        let p3 = try peds(3).contentHash
        #expect(r.count == 1 && r[0].payloadA == e1.sha256 && r[0].payloadB == p3)
    }

    @Test func accessRulesRefuseOtherUsers() throws {
        let fx = try StoreFixture(), s = fx.store
        let bob = try fx.reopen(as: Identity(user: "bob", host: "h", commandLine: "c"))
        // Open store: bob may write, not administer.
        try bob.put(detector: "jf4m", type: "pedestals", runs: runs("0-9"), payload: try peds(1))
        #expect(throws: StoreError.self) { try bob.addDetector(DetectorSpec(name: "x", kind: "y")) }
        try s.grant(user: "carol", permission: .write, detector: "jf4m", type: "pixel_status")
        do {
            try bob.put(detector: "jf4m", type: "pedestals", runs: runs("10-19"), payload: try peds(2))
            Issue.record("bob wrote after the first rule")
        } catch let e as StoreError {
            #expect(e.exitStatus == .permissionDenied && e.message.contains("bob") && e.fix?.contains("store grant bob write") == true)
        }
        try s.grant(user: "bob", permission: .write, detector: "jf4m", type: "pedestals")
        try bob.put(detector: "jf4m", type: "pedestals", runs: runs("10-19"), payload: try peds(2))
        #expect(throws: StoreError.self) { try bob.setTagState(detector: "jf4m", type: "pedestals", name: "default", to: .validated) }
        #expect(throws: StoreError.self) { try bob.grant(user: "bob", permission: .admin) }
        try s.revoke(user: "bob", permission: .write, detector: "jf4m", type: "pedestals")
        #expect(throws: StoreError.self) { try bob.put(detector: "jf4m", type: "pedestals", runs: runs("20-29"), payload: try peds(3)) }
        #expect(try bob.lookup(detector: "jf4m", type: "pedestals", run: 15).provenance.user == "bob")
    }

    @Test func damageBehindTheStoresBackIsDetected() throws {
        let fx = try StoreFixture(), s = fx.store
        let e = try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1, count: 4096))
        let path = s.payloadPath(e.sha256)
        // Change one value in place with h5py-free means: rewrite the dataset through HDF5.
        let f = try HDF5File.open(path, writable: true)
        var v = try f.read("/data/pedestals", as: Float.self)
        v[7] += 1
        try f.dataset("/data/pedestals").write(v)
        try f.close()
        do { _ = try s.get(detector: "jf4m", type: "pedestals", run: 3); Issue.record("damaged payload was served") } catch let err as StoreError {
            #expect(err.exitStatus == .dataError && err.message.contains(String(e.sha256.prefix(12))) && err.message.contains("damaged"))
        }
        #expect(try s.get(detector: "jf4m", type: "pedestals", run: 3, verify: false).payload != (try peds(1, count: 4096)))
        let r = try s.verify()
        #expect(!r.ok && r.damaged.map(\.sha256) == [e.sha256])
        try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: path))
        #expect(try s.verify().damaged.first?.problem.contains("unreadable") == true || s.verify().damaged.first?.problem.contains("HDF5") == true)
        try FileManager.default.removeItem(atPath: path)
        #expect(try s.verify().damaged.first?.problem == "missing")
    }

    @Test func gcRemovesOnlyOrphans() throws {
        let fx = try StoreFixture(), s = fx.store
        let e = try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        // An orphan: a complete payload file no row names (what a writer killed after rename leaves).
        let sha = (try peds(9)).contentHash
        let orphan = s.payloadPath(sha)
        try FileManager.default.createDirectory(atPath: (orphan as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let f = try HDF5File.create(orphan)
        try PayloadFile.write(try peds(9), sha256: sha, to: f)
        try f.close()
        // A stale temporary of a dead writer on this host, and one of a live writer (this process).
        let tmpDir = s.directory + "/payloads/.tmp"
        let stale = "\(tmpDir)/testhost-999999-1.h5", live = "\(tmpDir)/testhost-\(getpid())-2.h5"
        _ = FileManager.default.createFile(atPath: stale, contents: Data([1, 2, 3]))
        _ = FileManager.default.createFile(atPath: live, contents: Data([1, 2, 3]))
        let v = try s.verify()
        #expect(v.ok && v.orphans == [orphan] && v.staleTemporaries == [stale] && v.activeTemporaries == [live])
        let dry = try s.gc()
        #expect(dry.dryRun && Set(dry.removed) == [orphan, stale] && FileManager.default.fileExists(atPath: orphan))
        let real = try s.gc(dryRun: false)
        #expect(Set(real.removed) == [orphan, stale] && !FileManager.default.fileExists(atPath: orphan))
        #expect(FileManager.default.fileExists(atPath: s.payloadPath(e.sha256)) && FileManager.default.fileExists(atPath: live))
        #expect(try s.get(detector: "jf4m", type: "pedestals", run: 1).entry.id == e.id)
    }

    @Test func lintFindsGapsOverlapsAndOpenEnds() throws {
        let fx = try StoreFixture(), s = fx.store
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("100-199"), payload: try peds(1))
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("250-"), payload: try peds(2))
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("300-310"), payload: try peds(3))
        let f = try s.lint(required: runs("50-400"), detector: "jf4m", type: "pedestals")
        let gaps = f.filter { $0.kind == .gap }.map(\.runs)
        #expect(gaps == ["50-99", "200-249"])
        #expect(f.filter { $0.kind == .overlap }.map(\.runs) == ["300-310"])
        #expect(f.filter { $0.kind == .openEnd }.map(\.runs) == ["250-"])
        #expect(try s.lint(required: runs("100-199"), detector: "jf4m", type: "pedestals").isEmpty)
        #expect(try s.lint(required: runs("0-10"), detector: "jf4m", type: "pixel_rms").map(\.kind) == [.empty])
    }

    @Test func newerSchemaIsRefusedAndVersionIsRecorded() throws {
        let fx = try StoreFixture()
        #expect(fx.store.schemaVersion == StoreIndex.currentVersion)
        try fx.store.db.run("UPDATE schema_versions SET version = 99 WHERE component = ?", StoreFormat.indexComponent)
        #expect(throws: (any Error).self) { try fx.reopen(as: StoreFixture.me) }
        #expect(throws: StoreError.self) { try ConstantsStore(directory: fx.tmp.file("nothing-here")) }
    }
}

/// A store whose index predates the built-in CMS gain types (schema version 3, types missing) gets them on open.
@Test func olderStoreGainsLaterBuiltinTypes() throws {
    let f = try StoreFixture()
    let dir = f.store.directory
    do {
        let db = try SQLiteDatabase(path: (dir as NSString).appendingPathComponent(StoreFormat.indexFile))
        try db.execute("DELETE FROM calib_types WHERE name IN ('gain_offline','gain_hlt','vcal')")
        try db.run("UPDATE schema_versions SET version = 3 WHERE component = ?", StoreFormat.indexComponent)
    }
    let s = try f.reopen(as: StoreFixture.me)
    let names = Set(try s.types().map(\.name))
    #expect(names.isSuperset(of: ["gain_offline", "gain_hlt", "vcal", "pedestals"]))
    #expect(try s.type("gain_hlt").builtin)
}

/// A store of schema version 5 (before the built-in `cabling` type) gets it on open (migration 6).
@Test func version5StoreGainsTheCablingType() throws {
    let f = try StoreFixture()
    let dir = f.store.directory
    do {
        let db = try SQLiteDatabase(path: (dir as NSString).appendingPathComponent(StoreFormat.indexFile))
        try db.execute("DELETE FROM calib_types WHERE name = 'cabling'")
        try db.run("UPDATE schema_versions SET version = 5 WHERE component = ?", StoreFormat.indexComponent)
    }
    let s = try f.reopen(as: StoreFixture.me)
    #expect(try s.type("cabling").builtin)
    #expect(s.schemaVersion == 6 && s.schemaVersion == StoreIndex.currentVersion)
}
