import CalibCore
import CalibIO
import Foundation

extension ConstantsStore {
    /// Stores `payload` as valid for `runs` of (detector, type) in `tag` (default tag "default", created on first use).
    ///
    /// Order of work: check names, rights, schema and tag state; write the payload file to `payloads/.tmp`, fsync;
    /// then in one write transaction: re-check the tag state, rename the file into place, fsync the directory,
    /// insert the payload, provenance and validity rows, commit. Identical content is stored once.
    /// - Parameters:
    ///   - createTag: create `tag` (open) if it does not exist; otherwise an unknown tag is an error.
    /// - Returns: the new validity entry.
    @discardableResult
    public func put(detector: String, type: String, runs: RunRange, payload: Payload, tag: String? = nil,
                    provenance: ProvenanceLinks = ProvenanceLinks(), createTag: Bool = false) throws -> IOVEntry {
        let det = try self.detector(detector)
        let ctype = try self.type(type)
        let tagName = tag ?? ConstantsStore.defaultTag
        try StoreNames.check(tagName, what: "tag name")
        try requirePermission(.write, detector: det.name, type: ctype.name, action: "put \(det.name)/\(ctype.name)")
        try ctype.schema.validate(payload, typeName: ctype.name)
        let existingTag = try tagRow(detectorID: det.id, typeID: ctype.id, name: tagName)
        if existingTag == nil && !createTag && tag != nil {
            throw StoreError.bad("tag \(tagName) of \(det.name)/\(ctype.name) does not exist",
                                 fix: "create it with `calibctl store tag create \(det.name) \(ctype.name) \(tagName)` or pass --create-tag")
        }
        if let t = existingTag { try checkAppend(tag: t, runs: runs, detector: det.name, type: ctype.name) }

        let sha = payload.contentHash
        let final = payloadPath(sha)
        var temporary: String? = nil
        defer { if let temporary { unlink(temporary) } }
        if !(try payloadPresent(sha)) {
            temporary = try writeTemporary(payload, sha: sha)
        }
        let now = StoreTime.now()
        let id: Int64 = try write {
            let tagID: Int64
            if let t = try tagRow(detectorID: det.id, typeID: ctype.id, name: tagName) {
                try checkAppend(tag: t, runs: runs, detector: det.name, type: ctype.name)
                tagID = t.id
            } else {
                tagID = try insertTag(name: tagName, detectorID: det.id, typeID: ctype.id, alias: nil, comment: "", at: now)
            }
            if let tmp = temporary {
                try FileManager.default.createDirectory(atPath: (final as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try AtomicFile.commit(temporary: tmp, to: final)
                temporary = nil
            }
            try insertPayloadRow(payload, sha: sha, at: now)
            let provID = try insertProvenance(links: provenance, at: now)
            try db.run("INSERT INTO iovs(tag_id, first_run, last_run, sha256, inserted_at_us, provenance_id) VALUES(?,?,?,?,?,?)",
                       tagID, runs.first, runs.last, sha, now, provID)
            return db.lastInsertRowID
        }
        return try entry(id: id)
    }

    /// True when the index knows `sha` and its file is in place with the recorded size class (a present file is
    /// never rewritten; `verify` checks content).
    func payloadPresent(_ sha: String) throws -> Bool {
        guard try db.first("SELECT 1 FROM payloads WHERE sha256=?", sha) != nil else { return false }
        return FileManager.default.fileExists(atPath: payloadPath(sha))
    }

    /// Writes the payload file under `payloads/.tmp/<host>-<pid>-<random>.h5` and fsyncs it.
    func writeTemporary(_ payload: Payload, sha: String) throws -> String {
        let tmpDir = (directory as NSString).appendingPathComponent(StoreFormat.temporaryDirectory)
        try FileManager.default.createDirectory(atPath: tmpDir, withIntermediateDirectories: true)
        let host = identity.host.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "-", with: "_")
        let tmp = "\(tmpDir)/\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).h5"
        do {
            let f = try HDF5File.create(tmp, overwrite: true)
            try PayloadFile.write(payload, sha256: sha, to: f)
            try f.close()
            try AtomicFile.fsync(path: tmp)
        } catch {
            unlink(tmp)
            throw error
        }
        return tmp
    }

    func insertPayloadRow(_ payload: Payload, sha: String, at now: Int64) throws {
        let attrs = try ConstantsStore.json(payload.attributes)
        let inserted = try db.run("INSERT OR IGNORE INTO payloads(sha256, relpath, byte_count, hash_rule, attributes_json, created_at_us) VALUES(?,?,?,?,?,?)",
                                  sha, ConstantsStore.relativePath(sha), payload.byteCount, Payload.hashRule, attrs, now)
        if inserted > 0 {
            for a in payload.arrays {
                try db.run("INSERT INTO payload_datasets(sha256, name, dtype, shape, byte_order) VALUES(?,?,?,?,'little')",
                           sha, a.name, a.dtype.rawValue, a.shape.map(String.init).joined(separator: ","))
            }
        }
    }

    func insertProvenance(links: ProvenanceLinks, at now: Int64, identity who: Identity? = nil,
                          softwareVersion: String = CalibctlVersion.string) throws -> Int64 {
        let who = who ?? identity
        try db.run("INSERT INTO provenance(user, host, command_line, software_version, at_us, comment, campaign, step, job, input_runs) VALUES(?,?,?,?,?,?,?,?,?,?)",
                   who.user, who.host, who.commandLine, softwareVersion, now, links.comment, links.campaign, links.step,
                   links.job, links.inputRuns)
        return db.lastInsertRowID
    }

    /// Refuses a put the tag's state forbids: validated and retired tags take none; published tags only take an
    /// entry starting after every run they already cover.
    func checkAppend(tag t: TagRow, runs: RunRange, detector: String, type: String) throws {
        switch t.state {
        case .open: return
        case .validated, .retired:
            throw StoreError(.state, "tag \(t.name) of \(detector)/\(type) is \(t.state.rawValue); only open tags take new constants",
                             fix: t.state == .validated
                                ? "reopen it (`calibctl store tag state \(detector) \(type) \(t.name) open`) or clone it into a new open tag"
                                : "clone it into a new tag: `calibctl store tag clone \(detector) \(type) \(t.name) NEW`")
        case .published:
            guard let r = try db.first("SELECT MAX(first_run) AS f, MAX(last_run) AS l FROM iovs WHERE tag_id=?", t.id),
                  let maxFirst = r.int("f") else { return }
            let limit = Swift.max(maxFirst, r.int("l") ?? maxFirst)
            guard runs.first > limit else {
                throw StoreError(.state, "tag \(t.name) of \(detector)/\(type) is published: runs \(runs) reach into the existing range (entries up to run \(limit))",
                                 fix: "published tags only grow: start the new range after run \(limit) (e.g. --runs \(limit + 1)-), or clone the tag into a new open tag")
            }
        }
    }
}
