@testable import CalibStore
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// Regression tests for the defects of issue 12 (reproducibility, crashes, repair, names, LCLS rules).
@Suite struct StoreDefectTests {
    final class Answers: @unchecked Sendable {
        private let lock = NSLock()
        /// (global tag or "@asOf", run) -> payload hash or "none"
        var given: [(key: String, asOf: Int64?, run: Int64, sha: String)] = []
        var globalTags: [String] = []
        var errors: [String] = []
        func add(_ key: String, _ asOf: Int64?, _ run: Int64, _ sha: String) { lock.lock(); given.append((key, asOf, run, sha)); lock.unlock() }
        func add(globalTag: String) { lock.lock(); globalTags.append(globalTag); lock.unlock() }
        func add(error: String) { lock.lock(); errors.append(error); lock.unlock() }
    }

    /// Property: under write contention (4 writer threads, each its own connection), every global tag and every
    /// as-of answer given during the writes is the same afterwards, and insertion times follow commit order.
    @Test func globalTagAndAsOfAnswersNeverChangeUnderContention() throws {
        let fx = try StoreFixture()
        let dir = fx.store.directory
        try fx.store.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1000))
        let answers = Answers()
        let runsToAsk: [Int64] = [0, 5, 15, 25, 35, 45]
        DispatchQueue.concurrentPerform(iterations: 6) { worker in
            do {
                let s = try ConstantsStore(directory: dir, identity: StoreFixture.me)
                if worker < 4 {
                    for k in 0..<25 {
                        let first = Int64((worker * 7 + k * 3) % 50)
                        try s.put(detector: "jf4m", type: "pedestals", runs: try RunRange(first: first, last: first + 12),
                                  payload: try peds(UInt64(worker * 1000 + k + 1)))
                    }
                } else if worker == 4 {
                    for g in 0..<12 {
                        let name = "GT_\(g)"
                        try s.createGlobalTag(name: name, entries: [GlobalTag.Entry(detector: "jf4m", type: "pedestals", tag: "default")])
                        answers.add(globalTag: name)
                        for r in runsToAsk {
                            answers.add(name, nil, r, try s.lookup(detector: "jf4m", type: "pedestals", run: r, globalTag: name).sha256)
                        }
                        usleep(2000)
                    }
                } else {
                    for _ in 0..<30 {
                        let t = StoreTime.now()
                        for r in runsToAsk {
                            answers.add("as-of", t, r, try s.lookup(detector: "jf4m", type: "pedestals", run: r, asOf: t).sha256)
                        }
                        usleep(1000)
                    }
                }
            } catch { answers.add(error: "worker \(worker): \(error)") }
        }
        #expect(answers.errors.isEmpty, "\(answers.errors)")
        let s = try fx.reopen(as: StoreFixture.me)
        #expect(answers.globalTags.count == 12 && answers.given.count > 100)
        var changed: [String] = []
        for a in answers.given {
            let now = a.key == "as-of"
                ? try s.lookup(detector: "jf4m", type: "pedestals", run: a.run, asOf: a.asOf).sha256
                : try s.lookup(detector: "jf4m", type: "pedestals", run: a.run, globalTag: a.key).sha256
            if now != a.sha { changed.append("\(a.key) \(a.asOf.map(StoreTime.format) ?? "") run \(a.run)") }
        }
        let changedCount = changed.count
        #expect(changedCount == 0, "answers changed: \(changed.prefix(5))")
        // Commit order (entry id) is time order, strictly.
        let entries = try s.entries().sorted { $0.id < $1.id }
        #expect(entries.count == 101)
        let inverted = zip(entries, entries.dropFirst()).filter { $0.insertedAtMicroseconds >= $1.insertedAtMicroseconds }.count
        #expect(inverted == 0, "entry pairs committed out of time order")
        // Global tags were created in commit order too: each as-of after the entries committed before it.
        let gts = try s.globalTags().sorted { $0.id < $1.id }
        #expect(zip(gts, gts.dropFirst()).allSatisfy { $0.asOfMicroseconds < $1.asOfMicroseconds })
    }

    @Test func bundleImportIntoAnExistingTagKeepsGlobalTagAnswers() throws {
        let b = try StoreFixture()                     // the store that already has the tag
        try b.store.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        let a = try StoreFixture()                     // the source of the bundle, written later
        let imported = try a.store.put(detector: "jf4m", type: "pedestals", runs: runs("0-100"), payload: try peds(2))
        usleep(1000)
        try b.store.createGlobalTag(name: "GT", entries: [GlobalTag.Entry(detector: "jf4m", type: "pedestals", tag: "default")])
        let before = try b.store.lookup(detector: "jf4m", type: "pedestals", run: 50, globalTag: "GT").sha256
        #expect(before == (try peds(1)).contentHash)
        let bundle = try a.store.exportBundle(detector: "jf4m", to: a.tmp.file("bundles"))
        let r = try b.store.importBundle(bundle)
        #expect(r.entriesAdded == 1 && r.entriesRetimed == 1)
        #expect(try b.store.lookup(detector: "jf4m", type: "pedestals", run: 50, globalTag: "GT").sha256 == before)
        // The current answer is the imported one; it was inserted now, and its provenance keeps the original time.
        let e = try b.store.lookup(detector: "jf4m", type: "pedestals", run: 50)
        #expect(e.sha256 == imported.sha256 && e.insertedAtMicroseconds > imported.insertedAtMicroseconds)
        #expect(e.provenance.atMicroseconds == imported.insertedAtMicroseconds)
        // Importing again adds nothing.
        let again = try b.store.importBundle(bundle)
        #expect(again.entriesAdded == 0 && again.entriesAlreadyPresent == 1)
        // Into a tag the import creates, the original times are kept (identical lookups for every as-of time).
        let c = try StoreFixture()
        let rc = try c.store.importBundle(bundle)
        #expect(rc.entriesRetimed == 0)
        #expect(try c.store.lookup(detector: "jf4m", type: "pedestals", run: 50).insertedAtMicroseconds == imported.insertedAtMicroseconds)
    }

    @Test func futureAsOfAndImpossibleDatesAreRefused() throws {
        let fx = try StoreFixture(), s = fx.store
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        let tomorrow = StoreTime.now() + 86_400_000_000
        for body in [{ _ = try s.createGlobalTag(name: "G", entries: [GlobalTag.Entry(detector: "jf4m", type: "pedestals", tag: "default")], asOf: tomorrow) },
                     { _ = try s.lookup(detector: "jf4m", type: "pedestals", run: 1, asOf: tomorrow) }] {
            do { try body(); Issue.record("future as-of accepted") } catch let e as StoreError {
                #expect(e.exitStatus == .usage && e.message.contains("future"), "\(e)")
            }
        }
        #expect(throws: StoreError.self) { try s.globalTag("G") }
        for bad in ["2026-02-31", "2026-02-29", "2025-04-31", "2026-13-01", "2026-00-10", "2026-01-01T24:00:00Z", "2026-01-01T10:00:60Z",
                    "+026-01-01", "@1e300", "@nan"] {
            #expect(throws: StoreError.self, "\(bad)") { try StoreTime.parse(bad) }
        }
        #expect(try StoreTime.parse("2024-02-29") == StoreTime.parse("2024-02-29T00:00:00Z"))
        #expect(try StoreTime.format(StoreTime.parse("2026-03-31T23:59:59.5+01:00")) == "2026-03-31T22:59:59.500000Z")
    }

    @Test func hugeShapesAndRunsAreErrorsNotCrashes() throws {
        // .npy declaring shape (2^62, 4): the element count overflows Int.
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        npy.append(contentsOf: Array(header.utf8) + [0, 0, 0, 0])
        do { _ = try ArrayFiles.readNPY(npy, name: "pedestals", source: "huge.npy"); Issue.record("accepted") } catch let e as StoreError {
            #expect(e.exitStatus == .dataError && e.message.contains("too large"), "\(e)")
        }
        do {
            _ = try ArrayFiles.readLCLSText("# NDIM 2\n# DIM:0 4611686018427387904\n# DIM:1 4\n1 2 3 4\n", name: "pedestals", defaultDType: .float32, source: "huge.txt")
            Issue.record("accepted")
        } catch let e as StoreError { #expect(e.exitStatus == .dataError && e.message.contains("too large"), "\(e)") }
        #expect(throws: StoreError.self) { try PayloadArray(name: "x", dtype: .float64, shape: [1 << 62, 4], bytes: []) }
        // A published tag whose entries reach run Int64.max.
        let fx = try StoreFixture(), s = fx.store
        try s.put(detector: "jf4m", type: "pedestals", runs: try RunRange(parsing: "-9223372036854775807"), payload: try peds(1))
        try s.setTagState(detector: "jf4m", type: "pedestals", name: "default", to: .validated)
        try s.setTagState(detector: "jf4m", type: "pedestals", name: "default", to: .published)
        do {
            try s.put(detector: "jf4m", type: "pedestals", runs: try RunRange(parsing: "-9223372036854775807"), payload: try peds(2))
            Issue.record("accepted")
        } catch let e as StoreError { #expect(e.exitStatus == .dataError && e.message.contains("published"), "\(e)") }
        #expect(try s.lint(required: try RunRange(parsing: "0-")).allSatisfy { $0.kind != .gap })
        #expect(try s.timeline(detector: "jf4m", type: "pedestals").count == 1)
    }

    @Test func emptyInputsAndBareDashAreRefused() throws {
        #expect(throws: StoreError.self) { try ArrayFiles.readNPY(ArrayFiles.npy(try PayloadArray(name: "p", values: [Float]())), name: "p", source: "e.npy") }
        for text in ["", "\n\n", "# DTYPE float32\n# NDIM 1\n# DIM:0 0\n", "# only a comment\n"] {
            #expect(throws: StoreError.self, "\(text)") { try ArrayFiles.readLCLSText(text, name: "p", defaultDType: .float32, source: "e.txt") }
        }
        for bad in ["-", " - ", "-end", "-inf"] {
            do { _ = try RunRange(parsing: bad); Issue.record("accepted '\(bad)'") } catch let e as StoreError {
                #expect(e.exitStatus == .usage && (e.fix ?? "").contains("`all`"), "\(e)")
            }
        }
        #expect(try RunRange(parsing: "all") == .all && RunRange(parsing: "-5") == RunRange(first: 0, last: 5))
    }

    @Test func aDamagedPayloadIsRepairedByPutAndImport() throws {
        let fx = try StoreFixture(), s = fx.store
        let e = try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        let bundle = try s.exportBundle(detector: "jf4m", to: fx.tmp.file("bundles"))
        let path = s.payloadPath(e.sha256)
        func damage() throws { try Data("not an HDF5 file".utf8).write(to: URL(fileURLWithPath: path)) }
        try damage()
        #expect(throws: StoreError.self) { try s.get(detector: "jf4m", type: "pedestals", run: 3) }
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("10-20"), payload: try peds(1))
        #expect(try s.get(detector: "jf4m", type: "pedestals", run: 3).payload == (try peds(1)))
        try damage()
        let r = try s.importBundle(bundle)
        #expect(r.payloadsAdded == 1 && r.entriesAdded == 0)
        #expect(try s.verify().ok)
    }

    @Test func payloadDirectoriesTakeTheModeOfThePayloadsDirectory() throws {
        let fx = try StoreFixture(), s = fx.store
        let payloads = s.directory + "/payloads"
        #expect(chmod(payloads, 0o2775) == 0)
        let old = umask(0o022)
        defer { umask(old) }
        let e = try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(7))
        var st = stat()
        #expect(stat(payloads + "/" + e.sha256.prefix(2), &st) == 0)
        #expect(st.st_mode & 0o7777 == 0o2775, "mode \(String(st.st_mode & 0o7777, radix: 8))")
    }

    @Test func revokeResolvesAliasesAndRefusesWhenNothingMatches() throws {
        let fx = try StoreFixture(), s = fx.store
        try s.grant(user: "bob", permission: .write, detector: "CxiDs1.0:Jungfrau.0", type: "pedestals")
        #expect(try s.revoke(user: "bob", permission: .write, detector: "CxiDs1.0:Jungfrau.0", type: "pedestals") == 1)
        #expect(try s.accessRules().isEmpty)
        do { _ = try s.revoke(user: "bob", permission: .write, detector: "jf4m", type: "pedestals"); Issue.record("accepted") }
        catch let e as StoreError { #expect(e.exitStatus == .dataError && e.message.contains("nothing was revoked"), "\(e)") }
        // The grant command printed in a refusal quotes '*'.
        let bob = try fx.reopen(as: Identity(user: "bob", host: "h", commandLine: "t"))
        do { try bob.addType("x", schema: TypeSchema(datasets: [try TypeSchema.DatasetRule(parsing: "x:float32:rank1")])); Issue.record("accepted") }
        catch let e as StoreError { #expect(e.fix?.contains("--detector '*' --type x") == true, "\(e)") }
    }

    @Test func bundleImportAppliesTheNameRules() throws {
        let fx = try StoreFixture(), s = fx.store
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("0-"), payload: try peds(1))
        let bundle = try s.exportBundle(detector: "jf4m", to: fx.tmp.file("bundles"))
        let f = try HDF5File.open(bundle, writable: true)
        try f.setAttribute("name", .string("../../evil tag"), on: "\(StoreFormat.bundleTagsGroup)/0")
        for n in try f.children(of: StoreFormat.bundleIOVsGroup) {
            try f.setAttribute("tag", .string("../../evil tag"), on: "\(StoreFormat.bundleIOVsGroup)/\(n)")
        }
        try f.close()
        let other = try StoreFixture()
        do { _ = try other.store.importBundle(bundle); Issue.record("accepted") } catch let e as StoreError {
            #expect(e.exitStatus == .dataError && e.message.contains("evil tag"), "\(e)")
        }
        #expect(try other.store.tags().isEmpty)
    }

    @Test func lclsTreesFollowPsanaFinderRules() throws {
        let fx = try StoreFixture(), s = fx.store
        let dir = fx.tmp.file("calib/Jungfrau::CalibV1/CxiDs1.0:Jungfrau.0/pixel_status")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "1 1\n1 1\n".write(toFile: dir + "/100-end.data", atomically: true, encoding: .utf8)
        try "2 2\n2 2\n".write(toFile: dir + "/100-200.data", atomically: true, encoding: .utf8)
        try "3 3\n3 3\n".write(toFile: dir + "/100-150.data", atomically: true, encoding: .utf8)
        try "4 4\n4 4\n".write(toFile: dir + "/12000-end.data", atomically: true, encoding: .utf8)
        let r = try s.importLCLS(from: fx.tmp.file("calib"))
        #expect(r.files.count == 3 && r.skipped.contains { $0.contains("12000-end.data") && $0.contains("9999") })
        func status(_ run: Int64) throws -> UInt16 { try s.get(detector: "jf4m", type: "pixel_status", run: run).payload["pixel_status"]!.values()[0] }
        // psana (PSCalib CalibFileFinder.py): same first run -> the smallest last run covering the run wins.
        #expect(try status(120) == 3 && status(170) == 2 && status(300) == 1)
        let before = try s.entries().count
        let again = try s.importLCLS(from: fx.tmp.file("calib"))
        let after = try s.entries().count
        #expect(again.files.isEmpty && after == before)
        // No matching file: an error (65) with a command that exists.
        let empty = fx.tmp.file("calib2/Jungfrau::CalibV1/XppDs1.0:Jungfrau.1/pedestals")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try "1\n".write(toFile: empty + "/1-end.data", atomically: true, encoding: .utf8)
        do { _ = try s.importLCLS(from: fx.tmp.file("calib2")); Issue.record("accepted") } catch let e as StoreError {
            #expect(e.exitStatus == .dataError && e.fix?.contains("store detector annotate DET --alias 'XppDs1.0:Jungfrau.1'") == true, "\(e)")
        }
        // Export refuses runs psana cannot find.
        try s.put(detector: "jf4m", type: "pedestals", runs: runs("10000-10005"), payload: try peds(3))
        do { _ = try s.exportLCLS(detector: "jf4m", to: fx.tmp.file("out"), types: ["pedestals"]); Issue.record("accepted") } catch let e as StoreError {
            #expect(e.exitStatus == .dataError && e.message.contains("0-9999"), "\(e)")
        }
        #expect(!FileManager.default.fileExists(atPath: fx.tmp.file("out/Jungfrau::CalibV1")))
    }
}
