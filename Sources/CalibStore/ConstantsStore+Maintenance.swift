import CalibIO
import Foundation

/// The result of `verify`: every problem found, and the orphan files (complete files no index row names, and
/// temporary files of writers that died).
public struct VerifyReport: Sendable, Codable {
    public struct Problem: Sendable, Codable, Equatable {
        public var sha256: String
        public var path: String
        public var problem: String
    }
    public var payloadsChecked: Int
    public var entriesChecked: Int
    public var bytesHashed: Int64
    public var damaged: [Problem]
    public var orphans: [String]
    public var staleTemporaries: [String]
    public var activeTemporaries: [String]
    public var ok: Bool { damaged.isEmpty }
}

/// What `gc` removed (or would remove in a dry run).
public struct GCReport: Sendable, Codable {
    public var dryRun: Bool
    public var removed: [String]
    public var bytes: Int64
    public var keptActiveTemporaries: [String]
}

/// One finding of `lint` over a required run range.
public struct LintFinding: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case gap, overlap, openEnd = "open_end", empty }
    public var kind: Kind
    public var detector: String
    public var type: String
    public var tag: String
    public var runs: String
    public var detail: String
}

extension ConstantsStore {
    /// Checks every payload: the file exists, is readable HDF5 of the payload format, and its content hashes to its
    /// name and index row. Lists orphan files. `hash: false` checks existence and format only.
    public func verify(hash: Bool = true) throws -> VerifyReport {
        var damaged: [VerifyReport.Problem] = []
        var known = Set<String>()
        var bytes: Int64 = 0
        let rows = try db.query("SELECT sha256, byte_count FROM payloads ORDER BY sha256")
        for r in rows {
            let sha = r.text("sha256")!
            known.insert(sha)
            let path = payloadPath(sha)
            if !FileManager.default.fileExists(atPath: path) {
                damaged.append(.init(sha256: sha, path: path, problem: "missing"))
                continue
            }
            do {
                let f = try HDF5File.open(path)
                let p = try PayloadFile.read(from: f, expectedSHA256: hash ? sha : nil)
                bytes += Int64(p.byteCount)
                if p.byteCount != Int(r.int("byte_count") ?? -1) {
                    damaged.append(.init(sha256: sha, path: path, problem: "holds \(p.byteCount) bytes, index says \(r.int("byte_count") ?? -1)"))
                }
            } catch let e as DiagnosableError {
                damaged.append(.init(sha256: sha, path: path, problem: e.message))
            }
        }
        let entries = Int(try db.first("SELECT COUNT(*) AS n FROM iovs")?.int("n") ?? 0)
        let dangling = try db.query("SELECT DISTINCT sha256 FROM iovs WHERE sha256 NOT IN (SELECT sha256 FROM payloads)")
        for d in dangling {
            let sha = d.text("sha256")!
            damaged.append(.init(sha256: sha, path: payloadPath(sha), problem: "validity entries name a payload the index lacks"))
        }
        let (orphans, stale, active) = try scanFiles(known: known)
        return VerifyReport(payloadsChecked: rows.count, entriesChecked: entries, bytesHashed: bytes, damaged: damaged,
                            orphans: orphans, staleTemporaries: stale, activeTemporaries: active)
    }

    /// Files in `payloads/` no index row names, and temporaries (stale: writer process gone, or older than a day).
    func scanFiles(known: Set<String>) throws -> (orphans: [String], stale: [String], active: [String]) {
        let fm = FileManager.default
        let root = (directory as NSString).appendingPathComponent(StoreFormat.payloadDirectory)
        var orphans: [String] = [], stale: [String] = [], active: [String] = []
        for sub in (try? fm.contentsOfDirectory(atPath: root)) ?? [] where sub != ".tmp" {
            let dir = root + "/" + sub
            for f in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] {
                let sha = f.hasSuffix(".h5") ? String(f.dropLast(3)) : f
                if !known.contains(sha) { orphans.append(dir + "/" + f) }
            }
        }
        let tmpDir = (directory as NSString).appendingPathComponent(StoreFormat.temporaryDirectory)
        let host = identity.host.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "-", with: "_")
        for f in ((try? fm.contentsOfDirectory(atPath: tmpDir)) ?? []).sorted() {
            let path = tmpDir + "/" + f
            let parts = f.split(separator: "-")
            let age = (try? fm.attributesOfItem(atPath: path)[.modificationDate] as? Date).flatMap { $0 }.map { -$0.timeIntervalSinceNow } ?? 0
            var alive = age < 86_400
            if parts.count >= 3, String(parts[0]) == host, let pid = Int32(parts[1]) {
                alive = kill(pid, 0) == 0 || errno == EPERM
                if alive && age > 86_400 { alive = false }
            }
            if alive { active.append(path) } else { stale.append(path) }
        }
        return (orphans.sorted(), stale, active)
    }

    /// Removes orphan payload files and stale temporaries. Holds the index's write lock meanwhile, so no writer can
    /// commit a row for a file being removed. Dry run by default.
    public func gc(dryRun: Bool = true) throws -> GCReport {
        try requirePermission(.admin, detector: "*", type: "*", action: "gc the store")
        return try write {
            let known = Set(try db.query("SELECT sha256 FROM payloads").compactMap { $0.text("sha256") })
            let (orphans, stale, active) = try scanFiles(known: known)
            var bytes: Int64 = 0
            for f in orphans + stale {
                bytes += Int64((try? FileManager.default.attributesOfItem(atPath: f)[.size] as? Int).flatMap { $0 } ?? 0)
                if !dryRun { unlink(f) }
            }
            return GCReport(dryRun: dryRun, removed: orphans + stale, bytes: bytes, keptActiveTemporaries: active)
        }
    }

    /// Checks a tag's coverage of `required` runs: gaps (runs without constants), overlaps (an entry partly
    /// superseded by a newer one), open ends. With no detector, every tag of every detector/type is linted.
    public func lint(required: RunRange, detector: String? = nil, type: String? = nil, tag: String? = nil) throws -> [LintFinding] {
        var findings: [LintFinding] = []
        let tagList = try tags(detector: detector, type: type).filter { tag == nil || $0.name == tag || $0.alias == tag }
        if tagList.isEmpty, let detector, let type {
            findings.append(LintFinding(kind: .empty, detector: detector, type: type, tag: tag ?? ConstantsStore.defaultTag,
                                        runs: required.description, detail: "no tag, so no constants at all"))
        }
        for t in tagList {
            // Ranges only (ids, runs; oldest insertion first): O(n log n) plus the findings, for millions of entries.
            let ix = try loadTagIndex(tagID: t.id)
            let n = ix.ids.count
            func range(_ i: Int) throws -> RunRange { try RunRange(first: ix.firsts[i], last: ix.lasts[i]) }
            let segs = IOVTimeline.resolve(count: n, first: { ix.firsts[$0] }, last: { ix.lasts[$0] })
            // Gaps inside the required range.
            var cursor = required.first
            let reqEnd = required.last ?? Int64.max
            for s in segs where try RunRange(first: s.first, last: s.last).overlaps(required) {
                if s.first > cursor {
                    findings.append(LintFinding(kind: .gap, detector: t.detector, type: t.type, tag: t.name,
                                                runs: try RunRange(first: cursor, last: s.first - 1).description,
                                                detail: "no constants"))
                }
                guard let l = s.last, l < .max else { cursor = .max; break }
                cursor = Swift.max(cursor, l + 1)
            }
            if cursor <= reqEnd && cursor != .max {
                findings.append(LintFinding(kind: .gap, detector: t.detector, type: t.type, tag: t.name,
                                            runs: try RunRange(first: cursor, last: required.last).description,
                                            detail: segs.isEmpty ? "no constants at all" : "no constants"))
            }
            // Overlaps between entries, within the required range: a sweep by first run with the started entries
            // in a min-heap by last run (those still in it after popping the ended ones all overlap the next one),
            // then reported in insertion order of the older entry, then of the newer one.
            var inRequired: [Int] = []
            for i in 0..<n where try range(i).overlaps(required) { inRequired.append(i) }
            inRequired.sort { ix.firsts[$0] < ix.firsts[$1] }
            var active = MinHeap()
            var pairs: [(older: Int, newer: Int)] = []
            for x in inRequired {
                while let top = active.top, top.key < ix.firsts[x] { active.pop() }
                for y in active.elements { pairs.append((Swift.min(x, y.value), Swift.max(x, y.value))) }
                active.push((key: ix.lasts[x] ?? .max, value: x))
            }
            pairs.sort { $0.older != $1.older ? $0.older < $1.older : $0.newer < $1.newer }
            for (i, j) in pairs {
                let a = try range(i), b = try range(j)
                let lo = Swift.max(a.first, b.first)
                let hi: Int64? = [a.last, b.last].compactMap { $0 }.min()
                findings.append(LintFinding(kind: .overlap, detector: t.detector, type: t.type, tag: t.name,
                                            runs: try RunRange(first: lo, last: hi).description,
                                            detail: "#\(ix.ids[j]) (\(b)) supersedes #\(ix.ids[i]) (\(a)) there"))
            }
            for i in 0..<n where ix.lasts[i] == nil {
                let r = try range(i)
                if r.overlaps(required) {
                    findings.append(LintFinding(kind: .openEnd, detector: t.detector, type: t.type, tag: t.name,
                                                runs: r.description, detail: "#\(ix.ids[i]) is valid for every later run"))
                }
            }
        }
        return findings
    }
}
