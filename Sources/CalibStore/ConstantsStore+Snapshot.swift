import CalibCore
import CalibIO
import Foundation

/// The manifest of a node snapshot (`snapshot.json` in its directory): what it holds and a SHA-256 of every file.
public struct SnapshotManifest: Sendable, Codable, Equatable {
    public struct File: Sendable, Codable, Equatable {
        /// Relative to the snapshot directory: `index.db`, `payloads/ab/<sha256>.h5`.
        public var path: String
        public var bytes: Int64
        /// SHA-256 of the file's bytes (not the payload's content hash).
        public var sha256: String
    }
    public var format: String
    public var formatVersion: Int
    public var globalTag: String
    public var asOf: String
    public var asOfMicroseconds: Int64
    /// `store_meta.store_id` of the store it was taken from.
    public var sourceStoreID: String
    public var source: String
    public var createdAt: String
    public var createdBy: String
    public var calibctlVersion: String
    public var entries: Int
    public var payloads: Int
    public var files: [File]
}

/// What `verifySnapshot` found.
public struct SnapshotCheck: Sendable, Codable {
    public var directory: String
    public var globalTag: String
    public var filesChecked: Int
    public var problems: [String]
    public var ok: Bool { problems.isEmpty }
}

extension StoreFormat {
    /// The manifest that makes a store directory a node snapshot (always opened read-only).
    public static let snapshotManifest = "snapshot.json"
    public static let snapshotFormat = "calibctl-snapshot"
    public static let snapshotFormatVersion = 1
}

extension ConstantsStore {
    /// True when `directory` holds a node snapshot (a `snapshot.json` manifest).
    public static func isSnapshot(_ directory: String) -> Bool {
        FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent(StoreFormat.snapshotManifest))
    }

    /// The snapshot manifest of this store, or nil when it is not a snapshot.
    public func snapshotManifest() throws -> SnapshotManifest? {
        try ConstantsStore.readManifest(directory)
    }

    static func readManifest(_ directory: String) throws -> SnapshotManifest? {
        let path = (directory as NSString).appendingPathComponent(StoreFormat.snapshotManifest)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        do { return try JSONDecoder().decode(SnapshotManifest.self, from: data) } catch {
            throw StoreError.bad("the snapshot manifest \(path) is unreadable: \(error)",
                                 fix: "take the snapshot again with `calibctl store snapshot --global-tag GT -o DIR`")
        }
    }

    /// Writes a node snapshot: a new, read-only, self-contained store at `output` holding exactly what global tag
    /// `globalTag` resolves (its tags' entries up to its as-of time, their payloads and provenance, the detectors
    /// and types it names, the global tag itself), plus `snapshot.json` with a SHA-256 of every file.
    ///
    /// Every lookup through the global tag (any run, any as-of time) answers on the snapshot as on this store.
    /// Payloads are verified against their content hash before they are copied. The snapshot is written beside
    /// `output` and renamed into place when complete; files are made read-only (0444, directories 0555).
    @discardableResult
    public func snapshot(globalTag name: String, to output: String) throws -> SnapshotManifest {
        let gt = try globalTag(name)
        let fm = FileManager.default
        let out = URL(fileURLWithPath: (output as NSString).expandingTildeInPath).standardizedFileURL.path
        if fm.fileExists(atPath: out) {
            throw StoreError.bad("\(out) already exists; a snapshot is written to a new directory",
                                 fix: "choose another -o, or remove \(out) first")
        }
        let parent = (out as NSString).deletingLastPathComponent
        let tmp = (parent as NSString).appendingPathComponent(".\((out as NSString).lastPathComponent).partial-\(getpid())")
        defer { if fm.fileExists(atPath: tmp) { ConstantsStore.makeWritable(tmp); try? fm.removeItem(atPath: tmp) } }
        do {
            try? fm.removeItem(atPath: tmp)
            try fm.createDirectory(atPath: tmp + "/" + StoreFormat.payloadDirectory, withIntermediateDirectories: true)
        } catch {
            throw StoreError.fileSystem(error, path: parent, doing: "create the snapshot directory", user: identity.user)
        }
        // 1. A consistent copy of the index (a global tag and the entries before its as-of time never change).
        let index = tmp + "/" + StoreFormat.indexFile
        do {
            try db.run("VACUUM INTO ?", index)
        } catch let e as SQLiteError {
            throw StoreError(.internalError, "cannot copy the index of \(directory) to \(index): \(e.message)",
                             fix: "check free space and write permission in \(parent)")
        }
        // 2. Keep exactly what the global tag resolves.
        let storeID = (try db.first("SELECT value FROM store_meta WHERE key='store_id'")?.text("value")) ?? ""
        let payloadHashes: [String]
        let entryCount: Int
        do {
            let copy = try SQLiteDatabase(path: index)
            try copy.transaction {
                for t in ["iovs_no_update", "iovs_no_delete", "payloads_no_delete", "global_tags_no_update",
                          "global_tags_no_delete", "gt_entries_no_update", "gt_entries_no_delete", "gt_entries_no_late_insert"] {
                    try copy.execute("DROP TRIGGER IF EXISTS \(t)")
                }
                try copy.run("DELETE FROM global_tag_entries WHERE global_tag_id != ?", gt.id)
                try copy.run("DELETE FROM global_tags WHERE id != ?", gt.id)
                try copy.run("DELETE FROM iovs WHERE tag_id NOT IN (SELECT tag_id FROM global_tag_entries) OR inserted_at_us > ?",
                             gt.asOfMicroseconds)
                try copy.run("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM global_tag_entries)")
                try copy.run("DELETE FROM provenance WHERE id NOT IN (SELECT provenance_id FROM iovs)")
                try copy.run("DELETE FROM payload_datasets WHERE sha256 NOT IN (SELECT sha256 FROM iovs)")
                try copy.run("DELETE FROM payloads WHERE sha256 NOT IN (SELECT sha256 FROM iovs)")
                try copy.run("DELETE FROM detector_aliases WHERE detector_id NOT IN (SELECT detector_id FROM global_tag_entries)")
                try copy.run("DELETE FROM detector_tags WHERE detector_id NOT IN (SELECT detector_id FROM global_tag_entries)")
                try copy.run("DELETE FROM detectors WHERE id NOT IN (SELECT detector_id FROM global_tag_entries)")
                try copy.run("DELETE FROM calib_types WHERE builtin = 0 AND id NOT IN (SELECT type_id FROM global_tag_entries)")
                try copy.run("DELETE FROM access_rules")
                for (k, v) in [("snapshot_global_tag", gt.name), ("snapshot_of", storeID),
                               ("snapshot_created_at", StoreTime.format(StoreTime.now()))] {
                    try copy.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES(?, ?)", k, v)
                }
                // The same triggers as every store (migration 2): the snapshot's history is append-only too.
                try copy.execute(StoreIndex.migrations[1])
            }
            payloadHashes = try copy.query("SELECT sha256 FROM payloads ORDER BY sha256").compactMap { $0.text("sha256") }
            entryCount = Int(try copy.first("SELECT COUNT(*) AS n FROM iovs")?.int("n") ?? 0)
            try copy.execute("VACUUM")
            // Rollback journal, not WAL: a reader of a read-only copy then needs no -wal or -shm file.
            try copy.execute("PRAGMA journal_mode=DELETE")
            copy.close()
        } catch let e as SQLiteError {
            throw StoreError(.internalError, "cannot trim the snapshot index \(index): \(e.message)", fix: "please report this")
        }
        // 3. Payload files, verified before they are copied; a SHA-256 of every file for the manifest.
        var files: [SnapshotManifest.File] = []
        for sha in payloadHashes {
            _ = try readPayload(sha256: sha, verify: true, context: "global tag \(gt.name)")
            let rel = ConstantsStore.relativePath(sha)
            let dst = tmp + "/" + rel
            do {
                try fm.createDirectory(atPath: (dst as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try fm.copyItem(atPath: payloadPath(sha), toPath: dst)
            } catch {
                throw StoreError.fileSystem(error, path: dst, doing: "copy payload \(sha.prefix(12)) into the snapshot", user: identity.user)
            }
            files.append(try ConstantsStore.fileChecksum(tmp, rel))
        }
        files.insert(try ConstantsStore.fileChecksum(tmp, StoreFormat.indexFile), at: 0)
        let manifest = SnapshotManifest(
            format: StoreFormat.snapshotFormat, formatVersion: StoreFormat.snapshotFormatVersion, globalTag: gt.name,
            asOf: gt.asOf, asOfMicroseconds: gt.asOfMicroseconds, sourceStoreID: storeID, source: directory,
            createdAt: StoreTime.format(StoreTime.now()), createdBy: identity.user, calibctlVersion: CalibctlVersion.string,
            entries: entryCount, payloads: payloadHashes.count, files: files)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        do {
            try enc.encode(manifest).write(to: URL(fileURLWithPath: tmp + "/" + StoreFormat.snapshotManifest))
            try ConstantsStore.makeReadOnly(tmp)
            try fm.moveItem(atPath: tmp, toPath: out)
            chmod(out, 0o555)
        } catch let e as StoreError { throw e } catch {
            throw StoreError.fileSystem(error, path: out, doing: "write the snapshot", user: identity.user)
        }
        return manifest
    }

    static func fileChecksum(_ root: String, _ rel: String) throws -> SnapshotManifest.File {
        let path = root + "/" + rel
        guard let h = FileHandle(forReadingAtPath: path) else {
            throw StoreError.bad("cannot read \(path)", fix: "check the file's permissions")
        }
        defer { try? h.close() }
        var hasher = SHA256Hasher()
        var n: Int64 = 0
        while true {
            let chunk = h.readData(ofLength: 8 << 20)
            if chunk.isEmpty { break }
            n += Int64(chunk.count)
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return SnapshotManifest.File(path: rel, bytes: n, sha256: hasher.finalizeHex())
    }

    /// Files 0444, directories 0555, below and including `root`'s contents (not `root` itself).
    static func makeReadOnly(_ root: String) throws {
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: root) else { return }
        var dirs: [String] = []
        for case let rel as String in e {
            let p = root + "/" + rel
            var isDir: ObjCBool = false
            _ = fm.fileExists(atPath: p, isDirectory: &isDir)
            if isDir.boolValue { dirs.append(p) } else { chmod(p, 0o444) }
        }
        for d in dirs.reversed() { chmod(d, 0o555) }
    }

    static func makeWritable(_ root: String) {
        chmod(root, 0o755)
        guard let e = FileManager.default.enumerator(atPath: root) else { return }
        for case let rel as String in e { chmod(root + "/" + rel, 0o755) }
    }

    /// Checks a snapshot against its manifest: every file present, of the recorded size and SHA-256, and no
    /// payload file the manifest does not name.
    public static func verifySnapshot(_ directory: String) throws -> SnapshotCheck {
        let dir = URL(fileURLWithPath: (directory as NSString).expandingTildeInPath).standardizedFileURL.path
        guard let m = try readManifest(dir) else {
            throw StoreError(.unavailable, "\(dir) is not a snapshot (no \(StoreFormat.snapshotManifest))",
                             fix: "take one with `calibctl store snapshot --global-tag GT -o \(dir)`")
        }
        var problems: [String] = []
        for f in m.files {
            guard FileManager.default.fileExists(atPath: dir + "/" + f.path) else { problems.append("\(f.path): missing"); continue }
            let got = try fileChecksum(dir, f.path)
            if got.bytes != f.bytes || got.sha256 != f.sha256 {
                problems.append("\(f.path): \(got.bytes) bytes with SHA-256 \(got.sha256.prefix(12)), the manifest records \(f.bytes) bytes, \(f.sha256.prefix(12))")
            }
        }
        let named = Set(m.files.map(\.path))
        let payloads = dir + "/" + StoreFormat.payloadDirectory
        if let e = FileManager.default.enumerator(atPath: payloads) {
            for case let rel as String in e where rel.hasSuffix(".h5") {
                let p = StoreFormat.payloadDirectory + "/" + rel
                if !named.contains(p) { problems.append("\(p): not in the manifest") }
            }
        }
        return SnapshotCheck(directory: dir, globalTag: m.globalTag, filesChecked: m.files.count, problems: problems)
    }
}

/// What the index records about one payload (no file is read): its datasets, attributes and file size.
public struct PayloadSummary: Sendable, Codable, Equatable {
    public struct Dataset: Sendable, Codable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
    }
    public var sha256: String
    public var hashRule: String
    /// Element bytes of all datasets.
    public var byteCount: Int64
    /// Size of the payload file (`payloads/ab/<sha256>.h5`), -1 when it is missing.
    public var fileBytes: Int64
    public var datasets: [Dataset]
    /// The payload's attributes as text (as `get --json` prints them).
    public var attributes: [String: String]
}

extension StoredPayload {
    /// A looked-up payload read from elsewhere (a server's answer): the entry, the verified payload and where it is.
    public init(entry: IOVEntry, payload: Payload, location: String) {
        self.init(entry: entry, payload: payload, path: location)
    }
}

extension ConstantsStore {
    /// The index's record of a payload (full 64-hex hash).
    public func payloadSummary(sha256: String) throws -> PayloadSummary {
        guard let r = try db.first("SELECT hash_rule, byte_count, attributes_json FROM payloads WHERE sha256 = ?", sha256) else {
            throw StoreError.bad("no payload \(sha256) in the store", fix: "`calibctl store list iovs` shows stored payloads")
        }
        let ds = try db.query("SELECT name, dtype, shape FROM payload_datasets WHERE sha256 = ? ORDER BY name", sha256).map {
            PayloadSummary.Dataset(name: $0.text("name") ?? "", dtype: $0.text("dtype") ?? "",
                                   shape: ($0.text("shape") ?? "").split(separator: ",").compactMap { Int($0) })
        }
        let attrs = (try? JSONDecoder().decode([String: AttributeValue].self, from: Data((r.text("attributes_json") ?? "{}").utf8))) ?? [:]
        let size = (try? FileManager.default.attributesOfItem(atPath: payloadPath(sha256))[.size] as? NSNumber)?.int64Value ?? -1
        return PayloadSummary(sha256: sha256, hashRule: r.text("hash_rule") ?? "", byteCount: r.int("byte_count") ?? 0,
                              fileBytes: size, datasets: ds, attributes: attrs.mapValues(\.description))
    }

    /// The latest time the store has handed out, in microseconds (`Int64.min` for an empty store): an as-of time
    /// at or before it, and in the past, gives an answer that never changes.
    public func lastCommitMicroseconds() throws -> Int64 { try lastCommitTime() }
}
