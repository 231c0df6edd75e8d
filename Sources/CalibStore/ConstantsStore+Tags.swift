import CalibIO
import Foundation

/// An index row of a tag (internal).
struct TagRow {
    var id: Int64
    var name: String
    var state: TagState
    var alias: String?
}

extension ConstantsStore {
    func tagRow(detectorID: Int64, typeID: Int64, name: String) throws -> TagRow? {
        let r = try db.first("SELECT id, name, state, alias FROM tags WHERE detector_id=? AND type_id=? AND (name=? OR alias=?) ORDER BY name=? DESC LIMIT 1",
                             detectorID, typeID, name, name, name)
        return r.map { TagRow(id: $0.int("id")!, name: $0.text("name")!, state: TagState(rawValue: $0.text("state")!) ?? .open, alias: $0.text("alias")) }
    }

    func insertTag(name: String, detectorID: Int64, typeID: Int64, alias: String?, comment: String, at now: Int64,
                   state: TagState = .open) throws -> Int64 {
        try db.run("INSERT INTO tags(name, detector_id, type_id, alias, state, comment, created_at_us, created_by, state_changed_at_us, state_changed_by) VALUES(?,?,?,?,?,?,?,?,?,?)",
                   name, detectorID, typeID, alias, state.rawValue, comment, now, identity.user, now, identity.user)
        return db.lastInsertRowID
    }

    /// The tag for a lookup, with a helpful error naming the known tags. Ids of found tags are cached (tags are
    /// never deleted or renamed); the cached row carries no state, so callers that need the state re-read it.
    func requireTag(detector d: Detector, type t: CalibType, name: String) throws -> TagRow {
        try requireTag(detectorID: d.id, typeID: t.id, detectorName: d.name, typeName: t.name, name: name)
    }

    func requireTag(detectorID: Int64, typeID: Int64, detectorName: String, typeName: String, name: String) throws -> TagRow {
        let key = "\(detectorID)/\(typeID)/\(name)"
        if let id = tagIDs[key] { return TagRow(id: id, name: name, state: .open, alias: nil) }
        guard let row = try tagRow(detectorID: detectorID, typeID: typeID, name: name) else {
            let known = try db.query("SELECT name FROM tags WHERE detector_id=? AND type_id=? ORDER BY name", detectorID, typeID).compactMap { $0.text("name") }
            var fix = known.isEmpty ? "nothing is stored for \(detectorName)/\(typeName) yet; put constants first"
                : "known tags: \(known.joined(separator: ", "))"
            if let s = suggestion(for: name, among: known) { fix = "did you mean '\(s)'? " + fix }
            throw StoreError.bad("no tag \(name) for \(detectorName)/\(typeName)", fix: fix)
        }
        tagIDs[key] = row.id
        return row
    }

    /// Creates an open tag of (detector, type).
    @discardableResult
    public func createTag(detector: String, type: String, name: String, alias: String? = nil, comment: String = "") throws -> Tag {
        let d = try self.detector(detector), t = try self.type(type)
        try StoreNames.check(name, what: "tag name")
        if let alias { try StoreNames.check(alias, what: "tag alias") }
        try requirePermission(.write, detector: d.name, type: t.name, action: "create tag \(name) of \(d.name)/\(t.name)")
        try write {
            for n in [name] + (alias.map { [$0] } ?? []) where try tagRow(detectorID: d.id, typeID: t.id, name: n) != nil {
                throw StoreError.bad("\(d.name)/\(t.name) already has a tag named or aliased '\(n)'")
            }
            _ = try insertTag(name: name, detectorID: d.id, typeID: t.id, alias: alias, comment: comment, at: try transactionTime())
        }
        return try self.tag(detector: d.name, type: t.name, name: name)
    }

    /// Moves a tag to a new state (open -> validated -> published -> retired; validated -> open).
    @discardableResult
    public func setTagState(detector: String, type: String, name: String, to state: TagState) throws -> Tag {
        let d = try self.detector(detector), t = try self.type(type)
        try requirePermission(.publish, detector: d.name, type: t.name, action: "change the state of tag \(name) of \(d.name)/\(t.name)")
        try write {
            let row = try requireTag(detector: d, type: t, name: name)
            let current = try tagRow(detectorID: d.id, typeID: t.id, name: row.name)!
            guard current.state.canMove(to: state) else {
                throw StoreError(.state, "tag \(current.name) of \(d.name)/\(t.name) cannot go from \(current.state.rawValue) to \(state.rawValue)",
                                 fix: "allowed: open -> validated -> published -> retired, and validated -> open")
            }
            try db.run("UPDATE tags SET state=?, state_changed_at_us=?, state_changed_by=? WHERE id=?",
                       state.rawValue, try transactionTime(), identity.user, current.id)
        }
        return try self.tag(detector: d.name, type: t.name, name: name)
    }

    /// Creates a new open tag holding the same validity entries as `source` (same ranges, payloads, insertion times
    /// and provenance), so lookups in the clone equal lookups in the source.
    @discardableResult
    public func cloneTag(detector: String, type: String, source: String, destination: String, comment: String = "") throws -> Tag {
        let d = try self.detector(detector), t = try self.type(type)
        try StoreNames.check(destination, what: "tag name")
        try requirePermission(.write, detector: d.name, type: t.name, action: "clone tag \(source) of \(d.name)/\(t.name)")
        try write {
            let src = try requireTag(detector: d, type: t, name: source)
            if try tagRow(detectorID: d.id, typeID: t.id, name: destination) != nil {
                throw StoreError.bad("\(d.name)/\(t.name) already has a tag '\(destination)'")
            }
            let newID = try insertTag(name: destination, detectorID: d.id, typeID: t.id, alias: nil,
                                      comment: comment.isEmpty ? "clone of \(src.name)" : comment, at: try transactionTime())
            try db.run("INSERT INTO iovs(tag_id, first_run, last_run, sha256, inserted_at_us, provenance_id) SELECT ?, first_run, last_run, sha256, inserted_at_us, provenance_id FROM iovs WHERE tag_id=? ORDER BY id",
                       newID, src.id)
        }
        return try self.tag(detector: d.name, type: t.name, name: destination)
    }

    /// One tag (by name or alias).
    public func tag(detector: String, type: String, name: String) throws -> Tag {
        let d = try self.detector(detector), t = try self.type(type)
        let row = try requireTag(detector: d, type: t, name: name)
        return try tags(where: "t.id = ?", [row.id]).first!
    }

    /// The state of one tag (by name or alias), read from its row alone. Unlike ``tag(detector:type:name:)``, which
    /// also counts the tag's entries (a scan of the tag, tens of milliseconds at a million entries), this costs the
    /// same for any tag size: `calibctl get` calls it on every run to warn about a retired tag.
    public func tagState(detector: String, type: String, name: String) throws -> TagState {
        let d = try self.detector(detector), t = try self.type(type)
        guard let row = try tagRow(detectorID: d.id, typeID: t.id, name: name) else {
            return try requireTag(detector: d, type: t, name: name).state   // throws the error naming the known tags
        }
        return row.state
    }

    /// Tags, optionally of one detector and/or type.
    public func tags(detector: String? = nil, type: String? = nil) throws -> [Tag] {
        var cond: [String] = [], params: [SQLBindable] = []
        if let detector { cond.append("t.detector_id = ?"); params.append(try detectorID(detector)) }
        if let type { cond.append("t.type_id = ?"); params.append(try typeID(type)) }
        return try tags(where: cond.isEmpty ? "1" : cond.joined(separator: " AND "), params)
    }

    func tags(where cond: String, _ params: [SQLBindable]) throws -> [Tag] {
        try db.query("""
            SELECT t.*, d.name AS det, c.name AS typ, (SELECT COUNT(*) FROM iovs i WHERE i.tag_id = t.id) AS n
            FROM tags t JOIN detectors d ON d.id = t.detector_id JOIN calib_types c ON c.id = t.type_id
            WHERE \(cond) ORDER BY d.name, c.name, t.name
            """, parameters: params).map { r in
            Tag(id: r.int("id")!, name: r.text("name")!, detector: r.text("det")!, type: r.text("typ")!,
                alias: r.text("alias"), state: TagState(rawValue: r.text("state")!) ?? .open,
                comment: r.text("comment") ?? "", createdAt: StoreTime.format(r.int("created_at_us")!),
                createdBy: r.text("created_by")!, stateChangedAt: StoreTime.format(r.int("state_changed_at_us")!),
                stateChangedBy: r.text("state_changed_by")!, entryCount: Int(r.int("n") ?? 0))
        }
    }
}
