import CalibIO
import Foundation

extension ConstantsStore {
    /// Creates an immutable global tag mapping (detector, type) -> tag, with an as-of time (default now) that caps
    /// which insertions its lookups see. `base` copies another global tag's entries first; `entries` override.
    ///
    /// The time is taken under the write lock, and every later insertion gets a later time, so the answers of a
    /// global tag never change once it exists. An as-of time in the future is refused (exit 64): insertions
    /// until then would still change its answers.
    @discardableResult
    public func createGlobalTag(name: String, entries: [GlobalTag.Entry], base: String? = nil, asOf: Int64? = nil,
                                comment: String = "") throws -> GlobalTag {
        try StoreNames.check(name, what: "global tag name")
        try requirePermission(.admin, detector: "*", type: "*", action: "create global tag \(name)")
        var map: [String: (Int64, Int64, Int64)] = [:]
        if let base {
            for e in try globalTag(base).entries {
                let d = try detector(e.detector), t = try type(e.type)
                map["\(d.id)/\(t.id)"] = (d.id, t.id, try requireTag(detector: d, type: t, name: e.tag).id)
            }
        }
        for e in entries {
            let d = try detector(e.detector), t = try type(e.type)
            map["\(d.id)/\(t.id)"] = (d.id, t.id, try requireTag(detector: d, type: t, name: e.tag).id)
        }
        guard !map.isEmpty else { throw StoreError.usage("global tag \(name) would be empty", fix: "give --entry DET/TYPE=TAG (repeatable) or --base GT") }
        func future(_ t: Int64) -> StoreError {
            StoreError.usage("the as-of time \(StoreTime.format(t)) of global tag \(name) is in the future; its answers would change until then",
                             fix: "omit --as-of (the global tag then sees everything committed before it is created) or give a past time")
        }
        if let asOf, asOf > StoreTime.now() { throw future(asOf) }
        try write {
            let now = try transactionTime()
            if let asOf, asOf > now { throw future(asOf) }
            if try db.first("SELECT 1 FROM global_tags WHERE name=?", name) != nil {
                throw StoreError.bad("global tag \(name) already exists; global tags are immutable",
                                     fix: "choose a new name, e.g. \(name)_v2, with --base \(name) to start from it")
            }
            let id = (try db.first("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM global_tags")?.int("n")) ?? 1
            // Entries first, then the global tag row: a trigger refuses entries for an existing global tag.
            for (_, v) in map.sorted(by: { $0.key < $1.key }) {
                try db.run("INSERT INTO global_tag_entries(global_tag_id, detector_id, type_id, tag_id) VALUES(?,?,?,?)", id, v.0, v.1, v.2)
            }
            try db.run("INSERT INTO global_tags(id, name, as_of_us, comment, created_at_us, created_by) VALUES(?,?,?,?,?,?)",
                       id, name, asOf ?? now, comment, now, identity.user)
        }
        return try globalTag(name)
    }

    /// One global tag with its entries.
    public func globalTag(_ name: String) throws -> GlobalTag {
        guard let r = try db.first("SELECT * FROM global_tags WHERE name=?", name) else {
            let known = try db.query("SELECT name FROM global_tags").compactMap { $0.text("name") }
            var fix = known.isEmpty ? "no global tag exists yet; create one with `calibctl store global-tag create`" : "known: \(known.joined(separator: ", "))"
            if let s = suggestion(for: name, among: known) { fix = "did you mean '\(s)'? " + fix }
            throw StoreError.bad("unknown global tag '\(name)'", fix: fix)
        }
        let entries = try db.query("""
            SELECT d.name AS det, c.name AS typ, t.name AS tag FROM global_tag_entries g
            JOIN detectors d ON d.id = g.detector_id JOIN calib_types c ON c.id = g.type_id JOIN tags t ON t.id = g.tag_id
            WHERE g.global_tag_id = ? ORDER BY d.name, c.name
            """, r.int("id")!).map { GlobalTag.Entry(detector: $0.text("det")!, type: $0.text("typ")!, tag: $0.text("tag")!) }
        return GlobalTag(id: r.int("id")!, name: r.text("name")!, asOf: StoreTime.format(r.int("as_of_us")!),
                         asOfMicroseconds: r.int("as_of_us")!, comment: r.text("comment") ?? "",
                         createdAt: StoreTime.format(r.int("created_at_us")!), createdBy: r.text("created_by")!, entries: entries)
    }

    /// Every global tag, by name.
    public func globalTags() throws -> [GlobalTag] {
        try db.query("SELECT name FROM global_tags ORDER BY name").map { try globalTag($0.text("name")!) }
    }

    /// One difference between two global tags.
    public struct GlobalTagDifference: Sendable, Codable, Equatable {
        public var detector: String
        public var type: String
        public var a: String?
        public var b: String?
        /// For diff-at-run: the payloads each side resolves to (nil = none).
        public var payloadA: String?
        public var payloadB: String?
    }

    /// Entries whose tag differs between two global tags (missing on one side included).
    public func diffGlobalTags(_ a: String, _ b: String) throws -> [GlobalTagDifference] {
        let ga = try globalTag(a), gb = try globalTag(b)
        var keys = Set<String>()
        var ma: [String: String] = [:], mb: [String: String] = [:]
        for e in ga.entries { ma["\(e.detector)\t\(e.type)"] = e.tag; keys.insert("\(e.detector)\t\(e.type)") }
        for e in gb.entries { mb["\(e.detector)\t\(e.type)"] = e.tag; keys.insert("\(e.detector)\t\(e.type)") }
        var out: [GlobalTagDifference] = []
        for k in keys.sorted() where ma[k] != mb[k] || ga.asOfMicroseconds != gb.asOfMicroseconds {
            let p = k.split(separator: "\t").map(String.init)
            if ma[k] == mb[k] { continue }
            out.append(GlobalTagDifference(detector: p[0], type: p[1], a: ma[k], b: mb[k]))
        }
        return out
    }

    /// For one run: every (detector, type) of either global tag whose resolved payload differs.
    public func diffGlobalTags(_ a: String, _ b: String, atRun run: Int64) throws -> [GlobalTagDifference] {
        let ga = try globalTag(a), gb = try globalTag(b)
        var keys = Set<String>()
        for e in ga.entries + gb.entries { keys.insert("\(e.detector)\t\(e.type)") }
        var out: [GlobalTagDifference] = []
        for k in keys.sorted() {
            let p = k.split(separator: "\t").map(String.init)
            func resolve(_ g: GlobalTag) -> (String?, String?) {
                guard let e = g.entries.first(where: { $0.detector == p[0] && $0.type == p[1] }) else { return (nil, nil) }
                let sha = try? lookup(detector: p[0], type: p[1], run: run, globalTag: g.name).sha256
                return (e.tag, sha)
            }
            let (ta, pa) = resolve(ga), (tb, pb) = resolve(gb)
            if pa != pb { out.append(GlobalTagDifference(detector: p[0], type: p[1], a: ta, b: tb, payloadA: pa, payloadB: pb)) }
        }
        return out
    }
}
