import CalibIO
import Foundation

/// Reading a whole tag: its ranges for in-memory lookups and lint, and its resolved timeline (`tag show`, LCLS
/// export). Both read narrow rows without an SQL `ORDER BY` and put them in insertion order in memory: SQLite
/// would sort every row of a big tag through temporary files (a million rows spill its sorter), and the timeline
/// builds full entries only for the entries that win somewhere.
extension ConstantsStore {
    /// Reads a tag's ranges (ids, runs, insertion times; oldest insertion first) for in-memory lookups.
    func loadTagIndex(tagID: Int64) throws -> TagIndex {
        var ids: [Int64] = [], firsts: [Int64] = [], lasts: [Int64?] = [], at: [Int64] = []
        try db.forEachRow("SELECT id, first_run, last_run, inserted_at_us FROM iovs WHERE tag_id = ?", parameters: [tagID]) { r in
            let v = r.values
            guard case .int(let id) = v[0], case .int(let f) = v[1], case .int(let t) = v[3] else { return }
            ids.append(id); firsts.append(f); at.append(t)
            if case .int(let l) = v[2] { lasts.append(l) } else { lasts.append(nil) }
        }
        guard let order = ConstantsStore.insertionOrder(ids: ids, insertedAt: at) else {
            return TagIndex(ids: ids, firsts: firsts, lasts: lasts, insertedAt: at)
        }
        return TagIndex(ids: order.map { ids[$0] }, firsts: order.map { firsts[$0] }, lasts: order.map { lasts[$0] },
                        insertedAt: order.map { at[$0] })
    }

    /// The permutation that puts rows in insertion order (insertion time, then id), or nil when they already are.
    static func insertionOrder(ids: [Int64], insertedAt at: [Int64]) -> [Int]? {
        let n = ids.count
        var sorted = true
        for i in 1..<Swift.max(n, 1) where (at[i - 1], ids[i - 1]) > (at[i], ids[i]) { sorted = false; break }
        if sorted { return nil }
        return (0..<n).sorted { (at[$0], ids[$0]) < (at[$1], ids[$1]) }
    }

    /// The resolved timeline of a tag: maximal run segments with the payload that wins there (as of `asOf`).
    /// Segments follow run order; a segment with `sha256 == nil` is not listed (gaps are simply absent).
    public func timeline(detector: String, type: String, tag: String? = nil, globalTag: String? = nil,
                         asOf: Int64? = nil) throws -> [(runs: RunRange, entry: IOVEntry)] {
        try timeline(scope(detector: detector, type: type, tag: tag, globalTag: globalTag, asOf: asOf))
    }

    /// The timeline in scope `s`. Provenance rows are read by id while at most `pointQueries` distinct ones win
    /// (tests pass 0 to take the other path), else in one pass over the tag's.
    func timeline(_ s: Scope, pointQueries: Int = 1024) throws -> [(runs: RunRange, entry: IOVEntry)] {
        guard let names = try db.first("""
            SELECT t.name AS tag, d.name AS det, c.name AS typ FROM tags t JOIN detectors d ON d.id = t.detector_id
            JOIN calib_types c ON c.id = t.type_id WHERE t.id = ?
            """, s.tagID), let tagName = names.text("tag"), let det = names.text("det"), let typ = names.text("typ") else { return [] }
        var ids: [Int64] = [], firsts: [Int64] = [], lasts: [Int64?] = [], at: [Int64] = [], shas: [String] = [], provIDs: [Int64] = []
        try db.forEachRow("SELECT id, first_run, last_run, inserted_at_us, sha256, provenance_id FROM iovs WHERE tag_id = ? AND inserted_at_us <= ?",
                          parameters: [s.tagID, s.asOf]) { r in
            let v = r.values
            guard case .int(let id) = v[0], case .int(let f) = v[1], case .int(let t) = v[3], case .text(let sha) = v[4],
                  case .int(let p) = v[5] else { return }
            ids.append(id); firsts.append(f); at.append(t); shas.append(sha); provIDs.append(p)
            if case .int(let l) = v[2] { lasts.append(l) } else { lasts.append(nil) }
        }
        let order = ConstantsStore.insertionOrder(ids: ids, insertedAt: at) ?? Array(ids.indices)
        let segments = IOVTimeline.resolve(count: order.count, first: { firsts[order[$0]] }, last: { lasts[order[$0]] })
        // Provenance of the winners: each distinct row read once (a bulk import or a clone shares one among many
        // entries), one point query each while there are few, else one pass over the tag's provenance rows.
        var wanted = Set<Int64>()
        for seg in segments { wanted.insert(provIDs[order[seg.winner]]) }
        var provenance: [Int64: Provenance] = [:]
        provenance.reserveCapacity(wanted.count)
        let provSelect = "SELECT id, user, host, command_line, software_version, at_us, comment, campaign, step, job, input_runs FROM provenance"
        func add(_ r: SQLRow) {
            guard let id = r.int("id"), wanted.contains(id) else { return }
            let pat = r.int("at_us") ?? 0
            provenance[id] = Provenance(user: r.text("user") ?? "", host: r.text("host") ?? "", commandLine: r.text("command_line") ?? "",
                                        softwareVersion: r.text("software_version") ?? "", at: StoreTime.format(pat), atMicroseconds: pat,
                                        links: ProvenanceLinks(comment: r.text("comment") ?? "", campaign: r.text("campaign"), step: r.text("step"),
                                                               job: r.text("job"), inputRuns: r.text("input_runs")))
        }
        if wanted.count <= pointQueries {
            for id in wanted { if let r = try db.first(provSelect + " WHERE id = ?", id) { add(r) } }
        } else {
            try db.forEachRow(provSelect + " WHERE id IN (SELECT provenance_id FROM iovs WHERE tag_id = ? AND inserted_at_us <= ?)",
                              parameters: [s.tagID, s.asOf], add)
        }
        // One entry per winner, shared by its segments.
        var entries: [Int: IOVEntry] = [:]
        return try segments.map { seg in
            let i = order[seg.winner]
            let e: IOVEntry
            if let known = entries[i] { e = known } else {
                guard let p = provenance[provIDs[i]] else { throw StoreError(.internalError, "validity entry #\(ids[i]) names provenance #\(provIDs[i]), which is missing") }
                e = IOVEntry(id: ids[i], detector: det, type: typ, tag: tagName, runs: try RunRange(first: firsts[i], last: lasts[i]),
                             sha256: shas[i], insertedAt: p.atMicroseconds == at[i] ? p.at : StoreTime.format(at[i]),
                             insertedAtMicroseconds: at[i], provenance: p)
                entries[i] = e
            }
            return (try RunRange(first: seg.first, last: seg.last), e)
        }
    }
}
