import CalibIO
import Foundation

extension ConstantsStore {
    static let entrySelect = """
        SELECT i.id AS iid, i.first_run, i.last_run, i.sha256, i.inserted_at_us, t.name AS tag, d.name AS det,
               c.name AS typ, p.user, p.host, p.command_line, p.software_version, p.at_us, p.comment, p.campaign,
               p.step, p.job, p.input_runs
        FROM iovs i JOIN tags t ON t.id = i.tag_id JOIN detectors d ON d.id = t.detector_id
             JOIN calib_types c ON c.id = t.type_id JOIN provenance p ON p.id = i.provenance_id
        """

    /// Builds an entry from a row of `entrySelect` (by column position: this is the lookup hot path).
    func entryFrom(_ r: SQLRow) throws -> IOVEntry {
        let v = r.values
        func int(_ i: Int) -> Int64? { if case .int(let x) = v[i] { x } else { nil } }
        func text(_ i: Int) -> String? { if case .text(let x) = v[i] { x } else { nil } }
        let links = ProvenanceLinks(comment: text(13) ?? "", campaign: text(14), step: text(15), job: text(16),
                                    inputRuns: text(17))
        let pat = int(12) ?? 0
        let prov = Provenance(user: text(8) ?? "", host: text(9) ?? "", commandLine: text(10) ?? "",
                              softwareVersion: text(11) ?? "", at: StoreTime.format(pat), atMicroseconds: pat, links: links)
        let at = int(4) ?? 0
        return IOVEntry(id: int(0) ?? 0, detector: text(6) ?? "", type: text(7) ?? "", tag: text(5) ?? "",
                        runs: try RunRange(first: int(1) ?? 0, last: int(2)), sha256: text(3) ?? "",
                        insertedAt: StoreTime.format(at), insertedAtMicroseconds: at, provenance: prov)
    }

    /// One validity entry by id.
    public func entry(id: Int64) throws -> IOVEntry {
        guard let r = try db.first(ConstantsStore.entrySelect + " WHERE i.id = ?", id) else {
            throw StoreError.bad("no validity entry #\(id)")
        }
        return try entryFrom(r)
    }

    /// Where a lookup searches: a tag id and an as-of cap.
    struct Scope { var tagID: Int64; var tagName: String; var asOf: Int64; var globalTag: String? }

    func scope(detector: String, type: String, tag: String?, globalTag: String?, asOf: Int64?) throws -> Scope {
        if tag != nil && globalTag != nil {
            throw StoreError.usage("give --tag or --global-tag, not both")
        }
        let detID = try detectorID(detector), typID = try typeID(type)
        if let asOf { try settle(asOf: asOf) }
        if let globalTag {
            if globalTagMaps[globalTag] == nil {
                let gt = try self.globalTag(globalTag)
                var map: [String: String] = [:]
                for e in gt.entries { map["\(try detectorID(e.detector))/\(try typeID(e.type))"] = e.tag }
                globalTagMaps[globalTag] = (gt.name, gt.asOfMicroseconds, map)
            }
            let gt = globalTagMaps[globalTag]!
            guard let tagName = gt.tags["\(detID)/\(typID)"] else {
                throw StoreError.bad("global tag \(gt.name) has no entry for \(detector)/\(type)",
                                     fix: "`calibctl store global-tag show \(gt.name)` lists its entries")
            }
            let row = try requireTag(detectorID: detID, typeID: typID, detectorName: detector, typeName: type, name: tagName)
            return Scope(tagID: row.id, tagName: tagName, asOf: Swift.min(asOf ?? .max, gt.asOf), globalTag: gt.name)
        }
        let tagName = tag ?? ConstantsStore.defaultTag
        let row = try requireTag(detectorID: detID, typeID: typID, detectorName: detector, typeName: type, name: tagName)
        return Scope(tagID: row.id, tagName: tagName, asOf: asOf ?? .max, globalTag: nil)
    }

    /// Makes an as-of answer final: refuses an as-of time in the future (insertions until then would change the
    /// answer), and when the time is later than the last commit this connection sees, waits for writers that may
    /// be committing an insertion with an earlier time (an empty `BEGIN IMMEDIATE` transaction). Every later
    /// insertion gets a later time (``transactionTime()``), so the answer never changes afterwards.
    func settle(asOf: Int64) throws {
        if asOf > StoreTime.now() {
            throw StoreError.usage("the as-of time \(StoreTime.format(asOf)) is in the future; answers as of a future time still change",
                                   fix: "omit --as-of for the current answer, or give a time that has passed")
        }
        guard !readOnly, asOf > (try lastCommitTime()) else { return }
        do { try db.transaction {} } catch let e as SQLiteError {
            throw StoreError.fromSQLite(e, directory: directory, user: identity.user)
        }
    }

    /// The validity entry that applies to `run`: the newest insertion (by insertion time, then id) whose range
    /// contains the run, in the tag (or the global tag's tag), not inserted after the as-of time.
    ///
    /// The first lookups in a tag are indexed SQL queries (``winnerID(tagID:run:asOf:)``), so one lookup costs the
    /// same in a tag of ten entries or of millions (a `calibctl get` process); after
    /// ``ConstantsStore/indexAfterLookups`` lookups in the same tag, its ranges are held in memory
    /// (``TagIndex``) and a lookup is a binary search. Both give the same answer (tested as a property).
    /// - Parameters:
    ///   - asOf: microseconds since the epoch (``StoreTime``); nil = now.
    public func lookup(detector: String, type: String, run: Int64, tag: String? = nil, globalTag: String? = nil,
                       asOf: Int64? = nil) throws -> IOVEntry {
        let s = try scope(detector: detector, type: type, tag: tag, globalTag: globalTag, asOf: asOf)
        try checkCacheVersion()
        let id: Int64?
        if let index = tagIndexes[s.tagID] {
            id = index.winner(run: run, asOf: s.asOf)
        } else if sqlLookups[s.tagID, default: 0] >= ConstantsStore.indexAfterLookups {
            let index = try loadTagIndex(tagID: s.tagID)
            tagIndexes[s.tagID] = index
            id = index.winner(run: run, asOf: s.asOf)
        } else {
            sqlLookups[s.tagID, default: 0] += 1
            id = try winnerID(tagID: s.tagID, run: run, asOf: s.asOf)
        }
        if let id { return try cachedEntry(id: id) }
        throw StoreError.bad("no constants for \(detector)/\(type) run \(run) in tag \(s.tagName)"
                             + (s.globalTag.map { " (global tag \($0))" } ?? "")
                             + (s.asOf < .max ? " as of \(StoreTime.format(s.asOf))" : ""),
                             fix: "`calibctl store explain \(detector) \(type) --run \(run)` shows what is there; `calibctl store lint` finds gaps")
    }

    /// Lookups in one tag answered by SQL before the tag's ranges are loaded into memory (a ``TagIndex``).
    static let indexAfterLookups = 64

    /// The winning entry's id by indexed SQL, without reading the tag: closed ranges can only contain `run` if they
    /// start within the tag's widest closed range before it (`iov_stats.max_span`, kept by a trigger), so those
    /// are read through `iovs_lookup`; open-ended ranges are walked newest first through `iovs_open` until one
    /// starts at or before `run`. The newer of the two wins. A read-only store of schema v4 (no `iov_stats`) is
    /// searched with one plain query over the entries starting at or before `run`.
    func winnerID(tagID: Int64, run: Int64, asOf: Int64) throws -> Int64? {
        guard hasIOVStats else {
            return try db.first("""
                SELECT id FROM iovs WHERE tag_id = ? AND first_run <= ? AND (last_run IS NULL OR last_run >= ?)
                AND inserted_at_us <= ? ORDER BY inserted_at_us DESC, id DESC LIMIT 1
                """, tagID, run, run, asOf)?.int("id")
        }
        var best: (at: Int64, id: Int64)? = nil
        func consider(_ r: SQLRow?) {
            guard let r, let id = r.int("id"), let at = r.int("inserted_at_us") else { return }
            if best == nil || (at, id) > (best!.at, best!.id) { best = (at, id) }
        }
        if let span = try db.first("SELECT max_span FROM iov_stats WHERE tag_id = ?", tagID)?.int("max_span") {
            let (lo, overflow) = run.subtractingReportingOverflow(span)
            consider(try db.first("""
                SELECT id, inserted_at_us FROM iovs INDEXED BY iovs_lookup
                WHERE tag_id = ? AND first_run BETWEEN ? AND ? AND last_run >= ? AND inserted_at_us <= ?
                ORDER BY inserted_at_us DESC, id DESC LIMIT 1
                """, tagID, overflow ? Int64.min : lo, run, run, asOf))
        }
        consider(try db.first("""
            SELECT id, inserted_at_us FROM iovs INDEXED BY iovs_open
            WHERE tag_id = ? AND last_run IS NULL AND first_run <= ? AND inserted_at_us <= ?
            ORDER BY inserted_at_us DESC, id DESC LIMIT 1
            """, tagID, run, asOf))
        return best?.id
    }

    /// The reference rule, on a tag's entries in insertion order: the last one inserted by `asOf` containing `run`.
    static func referenceWinner(_ entries: [IOVEntry], run: Int64, asOf: Int64) -> IOVEntry? {
        entries.last { $0.insertedAtMicroseconds <= asOf && $0.runs.contains(run) }
    }

    /// Drops in-memory tag indexes when another connection committed (`PRAGMA data_version` changed).
    func checkCacheVersion() throws {
        let version = try db.first("PRAGMA data_version")?.values.first.flatMap { v -> Int64? in if case .int(let x) = v { x } else { nil } } ?? -2
        if version != entryCacheVersion {
            invalidateEntryCache()
            entryCacheVersion = version
        }
    }

    /// One entry by id, from memory when read before (entries and their provenance never change).
    func cachedEntry(id: Int64) throws -> IOVEntry {
        if let e = entriesByID[id] { return e }
        let e = try entry(id: id)
        if entriesByID.count >= 100_000 { entriesByID.removeAll(keepingCapacity: true) }
        entriesByID[id] = e
        return e
    }

    /// Forgets in-memory tag indexes (after this connection wrote: its own commits do not change `data_version`).
    /// Entries by id stay: validity entries are append-only.
    func invalidateEntryCache() {
        tagIndexes.removeAll(keepingCapacity: true)
        sqlLookups.removeAll(keepingCapacity: true)
    }

    /// Looks up and reads the payload for `run` (see ``lookup(detector:type:run:tag:globalTag:asOf:)``).
    /// - Parameter verify: recompute the content hash and refuse a damaged file (default true).
    public func get(detector: String, type: String, run: Int64, tag: String? = nil, globalTag: String? = nil,
                    asOf: Int64? = nil, verify: Bool = true) throws -> StoredPayload {
        let e = try lookup(detector: detector, type: type, run: run, tag: tag, globalTag: globalTag, asOf: asOf)
        let p = try readPayload(sha256: e.sha256, verify: verify, context: "\(e.detector)/\(e.type) run \(run)")
        return StoredPayload(entry: e, payload: p, path: payloadPath(e.sha256))
    }

    /// Reads a payload by its hash (a unique prefix of at least 8 hex digits is accepted).
    public func readPayload(sha256 prefix: String, verify: Bool = true, context: String? = nil) throws -> Payload {
        let sha = try resolvePayload(prefix)
        let path = payloadPath(sha)
        let what = "payload \(sha.prefix(12))" + (context.map { " (\($0))" } ?? "")
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError.bad("\(what) is missing: \(path) does not exist",
                                 fix: "restore it from a bundle (`calibctl store import`) or put the constants again; `calibctl store verify` lists all damage")
        }
        do {
            let f = try HDF5File.open(path)
            return try PayloadFile.read(from: f, expectedSHA256: verify ? sha : nil)
        } catch let e as HDF5Error {
            throw StoreError.bad("\(what) in \(path) is unreadable: \(e.detail)",
                                 fix: "the file was damaged behind the store's back; restore it from a bundle or put the constants again")
        }
    }

    /// The full hash of a payload from a unique prefix (8+ hex digits).
    public func resolvePayload(_ prefix: String) throws -> String {
        let p = prefix.lowercased()
        guard p.count >= 8, p.allSatisfy(\.isHexDigit) else {
            throw StoreError.usage("'\(prefix)' is not a payload hash (8 to 64 hex digits)")
        }
        if p.count == 64, try db.first("SELECT 1 FROM payloads WHERE sha256=?", p) != nil { return p }
        let rows = try db.query("SELECT sha256 FROM payloads WHERE sha256 >= ? AND sha256 < ? LIMIT 2", p, p + "g")
        guard rows.count == 1, let sha = rows[0].text("sha256") else {
            throw StoreError.bad(rows.isEmpty ? "no payload \(prefix) in the store" : "payload prefix \(prefix) is ambiguous",
                                 fix: rows.isEmpty ? "`calibctl store list iovs` shows stored payloads" : "give more hex digits")
        }
        return sha
    }

    /// Every candidate for `run` and the rule that picked the winner.
    public func explain(detector: String, type: String, run: Int64, tag: String? = nil, globalTag: String? = nil,
                        asOf: Int64? = nil) throws -> LookupExplanation {
        let s = try scope(detector: detector, type: type, tag: tag, globalTag: globalTag, asOf: asOf)
        let rows = try db.query(ConstantsStore.entrySelect + """
             WHERE i.tag_id = ? AND i.first_run <= ? AND (i.last_run IS NULL OR i.last_run >= ?)
             ORDER BY i.inserted_at_us DESC, i.id DESC
            """, s.tagID, run, run).map(entryFrom)
        var winner: IOVEntry? = nil
        var candidates: [LookupExplanation.Candidate] = []
        for e in rows {
            let verdict: String
            if e.insertedAtMicroseconds > s.asOf {
                verdict = "ignored: inserted \(e.insertedAt), after the as-of time \(StoreTime.format(s.asOf))"
            } else if let w = winner {
                verdict = "superseded by #\(w.id) (inserted later, \(w.insertedAt))"
            } else {
                winner = e
                verdict = "winner: newest insertion containing run \(run)"
            }
            candidates.append(.init(entry: e, verdict: verdict))
        }
        return LookupExplanation(detector: try self.detector(detector).name, type: type, run: run, tag: s.tagName,
                                 globalTag: s.globalTag, asOf: s.asOf < .max ? StoreTime.format(s.asOf) : nil,
                                 rule: "among entries of tag \(s.tagName) whose run range contains \(run)"
                                    + (s.asOf < .max ? " and that were inserted at or before \(StoreTime.format(s.asOf))" : "")
                                    + ", the newest insertion wins (latest insertion time, then highest entry id)",
                                 candidates: candidates, winner: winner)
    }

    /// Every insertion for (detector, type), oldest first; optionally one tag.
    public func history(detector: String, type: String, tag: String? = nil) throws -> [IOVEntry] {
        let d = try self.detector(detector), t = try self.type(type)
        if let tag {
            let row = try requireTag(detector: d, type: t, name: tag)
            return try db.query(ConstantsStore.entrySelect + " WHERE i.tag_id = ? ORDER BY i.inserted_at_us, i.id", row.id).map(entryFrom)
        }
        return try db.query(ConstantsStore.entrySelect + " WHERE t.detector_id = ? AND t.type_id = ? ORDER BY i.inserted_at_us, i.id",
                            d.id, t.id).map(entryFrom)
    }

    /// Validity entries, optionally filtered, in insertion order.
    public func entries(detector: String? = nil, type: String? = nil, tag: String? = nil) throws -> [IOVEntry] {
        var cond: [String] = [], params: [SQLBindable] = []
        if let detector { cond.append("t.detector_id = ?"); params.append(try detectorID(detector)) }
        if let type { cond.append("t.type_id = ?"); params.append(try typeID(type)) }
        if let tag { cond.append("(t.name = ? OR t.alias = ?)"); params.append(tag); params.append(tag) }
        return try db.query(ConstantsStore.entrySelect + (cond.isEmpty ? "" : " WHERE " + cond.joined(separator: " AND "))
                            + " ORDER BY i.id", parameters: params).map(entryFrom)
    }
}
