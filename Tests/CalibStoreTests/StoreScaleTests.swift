@testable import CalibStore
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// Scale (issue 12): single lookups by indexed SQL and the in-memory tag index give the reference answer; the
/// O(n log n) timeline and lint give what the quadratic versions gave; network filesystems avoid WAL.
@Suite struct StoreScaleTests {
    /// A store whose default pedestal tag holds `count` random entries inserted straight into the index: closed
    /// ranges of random width (some wide), some open-ended, insertion times that repeat and, in `shuffled` stores,
    /// do not follow id order (the rule is insertion time, then id).
    static func randomTag(_ fx: StoreFixture, seed: UInt64, count: Int, maxRun: Int64, shuffled: Bool) throws -> [Int64] {
        var rng = SplitMix64(seed: seed)
        let first = try fx.store.put(detector: "jf4m", type: "pedestals", runs: runs("0-0"), payload: try peds(seed))
        let other = try fx.store.put(detector: "jf4m", type: "pedestals", runs: runs("1-1"), payload: try peds(seed + 1))
        var times: [Int64] = [first.insertedAtMicroseconds, other.insertedAtMicroseconds]
        try fx.store.write {
            let base = try fx.store.transactionTime()
            let prov = try fx.store.insertProvenance(links: ProvenanceLinks(comment: "random"), at: base)
            for k in 0..<count {
                let f = Int64(rng.next() % UInt64(maxRun))
                let kind = rng.next() % 10
                let last: Int64? = kind == 0 ? nil : kind == 1 ? f + Int64(rng.next() % UInt64(maxRun)) : f + Int64(rng.next() % 4)
                let at = shuffled ? base + Int64(rng.next() % UInt64(count / 2 + 1)) : base + Int64(k / 3)
                times.append(at)
                try fx.store.db.run("INSERT INTO iovs(tag_id, first_run, last_run, sha256, inserted_at_us, provenance_id) SELECT tag_id, ?, ?, ?, ?, ? FROM iovs WHERE id = ?",
                                    f, last, k % 2 == 0 ? first.sha256 : other.sha256, at, prov, first.id)
            }
            try fx.store.db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES('clock_us', ?)", String(base + Int64(count) + 1))
        }
        return times
    }

    /// Property: on random stores with overlapping ranges, open ends and as-of times, the indexed SQL lookup, the
    /// in-memory index and the public `lookup` (both paths) all give the entry the reference rule picks.
    @Test(arguments: [(1 as UInt64, false), (2, true), (3, false), (4, true), (5, true)])
    func indexedLookupEqualsReference(seed: UInt64, shuffled: Bool) throws {
        let fx = try StoreFixture()
        let maxRun: Int64 = 300
        let times = try Self.randomTag(fx, seed: seed, count: 400, maxRun: maxRun, shuffled: shuffled)
        let s = try fx.reopen(as: StoreFixture.me)
        let entries = try s.history(detector: "jf4m", type: "pedestals", tag: "default")
        let tagID = try s.tag(detector: "jf4m", type: "pedestals", name: "default").id
        let index = try s.loadTagIndex(tagID: tagID)
        var rng = SplitMix64(seed: seed * 77)
        let sortedTimes = Array(Set(times)).sorted()
        var checked = 0, found = 0
        for q in 0..<600 {
            let run = Int64(rng.next() % UInt64(maxRun * 2)) - 5
            let asOf: Int64 = q % 3 == 0 ? .max : sortedTimes[Int(rng.next() % UInt64(sortedTimes.count))] - Int64(rng.next() % 2)
            let want = ConstantsStore.referenceWinner(entries, run: run, asOf: asOf)?.id
            #expect(try s.winnerID(tagID: tagID, run: run, asOf: asOf) == want, "SQL: run \(run) as of \(asOf)")
            #expect(index.winner(run: run, asOf: asOf) == want, "index: run \(run) as of \(asOf)")
            if asOf == .max {
                // The public path: SQL for the first lookups, then the in-memory index.
                let got = try? s.lookup(detector: "jf4m", type: "pedestals", run: run)
                #expect(got?.id == want, "lookup #\(q): run \(run)")
                if let got, let want { #expect(got == entries.first { $0.id == want }); found += 1 }
            }
            checked += 1
        }
        #expect(s.tagIndexes[tagID] != nil && found > 50 && checked == 600)
    }

    /// A read-only copy of a v4 index (no `iov_stats`) is still read, by the plain query, with the same answers.
    @Test func readOnlySchemaV4StillAnswers() throws {
        let fx = try StoreFixture()
        _ = try Self.randomTag(fx, seed: 9, count: 100, maxRun: 50, shuffled: true)
        let entries = try fx.store.history(detector: "jf4m", type: "pedestals", tag: "default")
        let copy = fx.tmp.file("v4")
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try fx.store.db.run("VACUUM INTO ?", copy + "/index.db")
        let db = try SQLiteDatabase(path: copy + "/index.db")
        try db.execute("DROP TRIGGER iovs_stats; DROP TABLE iov_stats; DROP INDEX iovs_open; UPDATE schema_versions SET version = 4; PRAGMA journal_mode=DELETE")
        db.close()
        // Read-only for everyone, root included: a snapshot manifest marks it so.
        _ = FileManager.default.createFile(atPath: copy + "/" + StoreFormat.snapshotManifest, contents: Data("{}".utf8))
        let ro = try ConstantsStore(directory: copy, identity: StoreFixture.me)
        #expect(ro.readOnly && !ro.hasIOVStats)
        for run in Int64(-1)...60 {
            #expect((try? ro.lookup(detector: "jf4m", type: "pedestals", run: run))?.id
                    == ConstantsStore.referenceWinner(entries, run: run, asOf: .max)?.id)
        }
    }

    /// The quadratic resolution the store used before (every boundary point against every entry).
    static func quadraticResolve(_ entries: [IOVEntry]) -> [(runs: RunRange, entry: IOVEntry)] {
        var points = Set<Int64>()
        for e in entries {
            points.insert(e.runs.first)
            if let l = e.runs.last, l < .max { points.insert(l + 1) }
        }
        let sorted = points.sorted()
        var out: [(runs: RunRange, entry: IOVEntry)] = []
        for (i, start) in sorted.enumerated() {
            let end: Int64? = i + 1 < sorted.count ? sorted[i + 1] - 1 : nil
            guard let w = entries.last(where: { $0.runs.contains(start) }) else { continue }
            if let prev = out.last, prev.entry.id == w.id, let pl = prev.runs.last, pl + 1 == start {
                out[out.count - 1].runs = try! RunRange(first: prev.runs.first, last: end)
            } else {
                out.append((try! RunRange(first: start, last: end), w))
            }
        }
        return out
    }

    /// Property: the sweep timeline equals the quadratic one; lint's sweep finds the same overlaps, in the same
    /// order, as comparing every pair.
    @Test(arguments: [11 as UInt64, 12, 13])
    func timelineAndLintEqualQuadraticVersions(seed: UInt64) throws {
        let fx = try StoreFixture()
        _ = try Self.randomTag(fx, seed: seed, count: 150, maxRun: 120, shuffled: seed % 2 == 0)
        let entries = try fx.store.history(detector: "jf4m", type: "pedestals", tag: "default")
        let fast = IOVTimeline.resolve(entries), slow = Self.quadraticResolve(entries)
        #expect(fast.map { "\($0.runs) \($0.entry.id)" } == slow.map { "\($0.runs) \($0.entry.id)" })
        // The store's timeline (narrow rows put in insertion order in memory, entries built for winners only), with
        // provenance read by id and in one pass, equals it entry for entry; so does it as of a past time.
        let scope = try fx.store.scope(detector: "jf4m", type: "pedestals", tag: nil, globalTag: nil, asOf: nil)
        for pointQueries in [1024, 0] {
            let stored = try fx.store.timeline(scope, pointQueries: pointQueries)
            #expect(stored.map { "\($0.runs)" } == slow.map { "\($0.runs)" } && stored.map(\.entry) == slow.map(\.entry))
        }
        let cut = entries.map(\.insertedAtMicroseconds).sorted()[entries.count / 2]
        let asOf = try fx.store.timeline(detector: "jf4m", type: "pedestals", asOf: cut)
        let slowAsOf = Self.quadraticResolve(entries.filter { $0.insertedAtMicroseconds <= cut })
        #expect(asOf.map { "\($0.runs)" } == slowAsOf.map { "\($0.runs)" } && asOf.map(\.entry) == slowAsOf.map(\.entry))
        for required in [runs("0-"), runs("10-60"), runs("100-400")] {
            var want: [String] = []
            for (i, a) in entries.enumerated() where a.runs.overlaps(required) {
                for b in entries[(i + 1)...] where b.runs.overlaps(a.runs) && b.runs.overlaps(required) {
                    let lo = Swift.max(a.runs.first, b.runs.first)
                    let hi: Int64? = [a.runs.last, b.runs.last].compactMap { $0 }.min()
                    want.append("\(try RunRange(first: lo, last: hi)) #\(b.id) (\(b.runs)) supersedes #\(a.id) (\(a.runs)) there")
                }
            }
            let got = try fx.store.lint(required: required, detector: "jf4m", type: "pedestals")
                .filter { $0.kind == .overlap }.map { "\($0.runs) \($0.detail)" }
            #expect(got == want, "required \(required)")
        }
    }

    // MARK: network filesystems

    @Test func filesystemClassification() {
        #expect(StoreFilesystem.classify(magic: 0x6969) == StoreFilesystem(magic: 0x6969, name: "nfs", isNetwork: true))
        #expect(StoreFilesystem.classify(magic: 0x0BD0_0BD0).name == "lustre")
        #expect(StoreFilesystem.classify(magic: 0x4750_4653).isNetwork)
        #expect(StoreFilesystem.classify(magic: 0xFF53_4D42).isNetwork && StoreFilesystem.classify(magic: 0xFE53_4D42).isNetwork)
        #expect(StoreFilesystem.classify(magic: 0x6573_5546).name == "fuse")
        #expect(!StoreFilesystem.classify(magic: 0xEF53).isNetwork && !StoreFilesystem.classify(magic: 0x5846_5342).isNetwork)
        let tmp = TemporaryDirectory("fs")
        let here = StoreFilesystem.detect(path: tmp.file("not/yet/there"), environment: [:])
        #expect(here.magic != 0, "statfs found the nearest existing directory")
        #expect(StoreFilesystem.detect(path: tmp.path, environment: ["CALIBCTL_STORE_FILESYSTEM": "network"]).isNetwork)
        #expect(!StoreFilesystem.detect(path: tmp.path, environment: ["CALIBCTL_STORE_FILESYSTEM": "local"]).isNetwork)
    }

    /// On a (declared) network filesystem the index uses a rollback journal, a store made on a local disk in WAL
    /// mode is switched when opened there, writers lock index.db.lock, and concurrent writers (each its own
    /// connection) lose nothing. A real NFS mount cannot be made in this sandbox (docs/store.md says why).
    @Test func networkFilesystemUsesRollbackJournalAndWriterLock() throws {
        let nfs = StoreFilesystem.classify(magic: 0x6969)
        let tmp = TemporaryDirectory("nfsstore")
        let dir = tmp.file("store")
        do {
            let local = try ConstantsStore(directory: dir, identity: StoreFixture.me, create: true)
            #expect(local.journalMode == "wal" && local.writeLock == nil)
            try local.addDetector(DetectorSpec(name: "jf4m", kind: "jungfrau", hardwareIndex: 170))
            try local.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
            // While a WAL connection is open the index cannot switch: refused with a fix, not used unsafely.
            #expect(throws: StoreError.self) { try ConstantsStore(directory: dir, identity: StoreFixture.me, filesystem: nfs) }
        }
        let s = try ConstantsStore(directory: dir, identity: StoreFixture.me, filesystem: nfs)
        #expect(s.journalMode == "delete" && s.filesystem.name == "nfs")
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("5-9"), payload: try peds(2))
        #expect(FileManager.default.fileExists(atPath: dir + "/index.db.lock"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/index.db-wal"))
        let failures = NSLock()
        nonisolated(unsafe) var errors: [String] = []
        DispatchQueue.concurrentPerform(iterations: 4) { w in
            do {
                let c = try ConstantsStore(directory: dir, identity: StoreFixture.me, filesystem: nfs)
                for k in 0..<10 {
                    try c.put(detector: "jf4m", type: "pedestals", runs: try RunRange(first: Int64(100 + w * 10 + k), last: Int64(100 + w * 10 + k)),
                              payload: try peds(UInt64(100 + w * 10 + k)))
                }
            } catch { failures.lock(); errors.append("\(error)"); failures.unlock() }
        }
        #expect(errors.isEmpty, "\(errors)")
        let check = try ConstantsStore(directory: dir, identity: StoreFixture.me, filesystem: nfs)
        #expect(try check.history(detector: "jf4m", type: "pedestals").count == 42)
        for r in Int64(100)..<140 { #expect(try check.lookup(detector: "jf4m", type: "pedestals", run: r).runs.first == r) }
        #expect(try check.verify().ok)
    }

    /// The writer lock refuses, with a fix, when it is held past the timeout.
    @Test func writerLockTimesOut() throws {
        let tmp = TemporaryDirectory("lock")
        let path = tmp.file("index.db.lock")
        let a = StoreWriteLock(path: path), b = StoreWriteLock(path: path)
        try a.with(timeout: 1) {
            #expect(throws: StoreError.self) { try b.with(timeout: 0.05) {} }
            try a.with(timeout: 1) {} // re-entrant
        }
        try b.with(timeout: 1) {}
    }
}
