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
        var temporary: String? = nil
        defer { if let temporary { unlink(temporary) } }
        if !(try payloadIntact(sha)) {
            temporary = try writeTemporary(payload, sha: sha)
        }
        let id: Int64 = try write {
            // The insertion time is taken under the write lock, so insertion times follow commit order.
            let now = try transactionTime()
            let tagID: Int64
            if let t = try tagRow(detectorID: det.id, typeID: ctype.id, name: tagName) {
                try checkAppend(tag: t, runs: runs, detector: det.name, type: ctype.name)
                tagID = t.id
            } else {
                tagID = try insertTag(name: tagName, detectorID: det.id, typeID: ctype.id, alias: nil, comment: "", at: now)
            }
            if let tmp = temporary {
                try installPayload(temporary: tmp, sha: sha)
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

    /// True when the index knows `sha` and its file is in place with exactly that content. A missing or damaged
    /// file (a failed disk, an edit behind the store's back) is not intact: `put` and `import` of the same content
    /// write it again, which is how a damaged payload is repaired.
    func payloadIntact(_ sha: String) throws -> Bool {
        guard try db.first("SELECT 1 FROM payloads WHERE sha256=?", sha) != nil else { return false }
        let path = payloadPath(sha)
        guard FileManager.default.fileExists(atPath: path) else { return false }
        do {
            _ = try PayloadFile.read(from: try HDF5File.open(path), expectedSHA256: sha)
            return true
        } catch {
            return false
        }
    }

    /// Renames a complete temporary payload file to `payloads/ab/<sha>.h5` (replacing a damaged file there) and
    /// fsyncs the directory. Called inside the write transaction.
    func installPayload(temporary: String, sha: String) throws {
        let final = payloadPath(sha)
        try makeStoreDirectory((final as NSString).deletingLastPathComponent)
        do { try AtomicFile.commit(temporary: temporary, to: final) } catch {
            throw StoreError.fileSystem(error, path: final, doing: "write the payload file", user: identity.user)
        }
    }

    /// Creates a directory below `payloads/` with the mode (and so the setgid bit and group write permission) of
    /// the store's `payloads/` directory rather than the caller's umask, so that in a group-writable store every
    /// member can write into the directories another member created.
    func makeStoreDirectory(_ path: String) throws {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue { return }
        let payloads = (directory as NSString).appendingPathComponent(StoreFormat.payloadDirectory)
        do {
            if path != payloads { try makeStoreDirectory((path as NSString).deletingLastPathComponent) }
            if mkdir(path, 0o777) != 0 && errno != EEXIST {
                throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno))
            }
        } catch {
            throw StoreError.fileSystem(error, path: path, doing: "create the directory", user: identity.user)
        }
        if path != payloads {
            var st = stat()
            if stat(payloads, &st) == 0 { _ = chmod(path, st.st_mode & 0o7777) }
        }
    }

    /// Writes the payload file under `payloads/.tmp/<host>-<pid>-<random>.h5` and fsyncs it.
    func writeTemporary(_ payload: Payload, sha: String) throws -> String {
        let tmpDir = (directory as NSString).appendingPathComponent(StoreFormat.temporaryDirectory)
        try makeStoreDirectory(tmpDir)
        let host = identity.host.replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "-", with: "_")
        let tmp = "\(tmpDir)/\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).h5"
        if access(tmpDir, W_OK) != 0 {
            throw StoreError.fileSystem(NSError(domain: NSPOSIXErrorDomain, code: Int(errno)), path: tmpDir,
                                        doing: "write a payload file in", user: identity.user)
        }
        do {
            let f = try HDF5File.create(tmp, overwrite: true)
            try PayloadFile.write(payload, sha256: sha, to: f)
            try f.close()
            try AtomicFile.fsync(path: tmp)
        } catch {
            let errorNumber = errno
            unlink(tmp)
            func posix(_ code: Int32) -> StoreError {
                StoreError.fileSystem(NSError(domain: NSPOSIXErrorDomain, code: Int(code)), path: tmp,
                                      doing: "write the payload file", user: identity.user)
            }
            // HDF5 reports a failed write without errno in its error; the free space tells a full disk apart.
            if [ENOSPC, EDQUOT].contains(errorNumber)
                || Self.freeBytes(tmpDir).map({ $0 < Int64(payload.byteCount) + (1 << 20) }) == true { throw posix(ENOSPC) }
            if [EACCES, EPERM, EROFS].contains(errorNumber) { throw posix(errorNumber) }
            if error is DiagnosableError { throw error }
            throw StoreError.fileSystem(error, path: tmp, doing: "write the payload file", user: identity.user)
        }
        return tmp
    }

    /// Bytes free for an unprivileged user on the file system holding `path`.
    static func freeBytes(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
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
                let next = limit < .max ? "start the new range after run \(limit) (e.g. --runs \(limit + 1)-), or " : ""
                throw StoreError(.state, "tag \(t.name) of \(detector)/\(type) is published: runs \(runs) reach into the existing range (entries up to run \(limit))",
                                 fix: "published tags only grow: \(next)clone the tag into a new open tag")
            }
        }
    }
}
