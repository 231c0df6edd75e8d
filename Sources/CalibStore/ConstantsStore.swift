import CalibCore
import CalibIO
import Foundation

/// A constants store: a directory holding `index.db` (SQLite, WAL) and `payloads/ab/<sha256>.h5`.
///
/// One instance is one SQLite connection and is used by one thread at a time (open one per process or task).
/// Several processes may read and write the same store at once: payload files are written to a temporary name,
/// fsynced and renamed before the index row that names them is committed, so readers never see a partial payload
/// and a killed writer leaves at worst an orphan file (`gc` reclaims it).
///
/// ```swift
/// let store = try ConstantsStore(directory: "/data/calib/store", create: true)
/// try store.addDetector(DetectorSpec(name: "jf4m", kind: "jungfrau", hardwareIndex: 170))
/// let p = try Payload(arrays: [PayloadArray(name: "pedestals", values: peds, shape: [8, 512, 1024])])
/// try store.put(detector: "jf4m", type: "pedestals", runs: RunRange(parsing: "100-"), payload: p)
/// let got = try store.get(detector: "jf4m", type: "pedestals", run: 150)
/// let values: [Float] = try got.payload["pedestals"]!.values()
/// ```
public final class ConstantsStore {
    public let directory: String
    public let identity: Identity
    let db: SQLiteDatabase
    /// Positive name -> id caches; rows are never deleted or renamed, so a cached id stays right.
    var detectorIDs: [String: Int64] = [:]
    var typeIDs: [String: Int64] = [:]
    var tagIDs: [String: Int64] = [:]
    /// In-memory ranges of tags with many lookups (``TagIndex``). Valid while the database's `data_version` is
    /// unchanged (another connection committed) and cleared by this connection's own writes.
    var tagIndexes: [Int64: TagIndex] = [:]
    /// SQL lookups per tag since the caches were last cleared (``ConstantsStore/indexAfterLookups``).
    var sqlLookups: [Int64: Int] = [:]
    /// Entries read by id (immutable: kept across commits, bounded).
    var entriesByID: [Int64: IOVEntry] = [:]
    var entryCacheVersion: Int64 = -1
    /// The index has `iov_stats` and `iovs_open` (schema v5+); false only for a read-only store of v4.
    var hasIOVStats = true
    /// Global tags are immutable: (as-of, "detectorID/typeID" -> tag name) per name, cached on first use.
    var globalTagMaps: [String: (name: String, asOf: Int64, tags: [String: String])] = [:]

    /// The name of the tag `put` and `get` use when no tag is given.
    public static let defaultTag = "default"

    /// Opens the store at `directory`.
    ///
    /// A store whose directory the caller cannot write (a read-only copy, a read-only mount, CVMFS, or a reader
    /// without write permission) is opened read-only: lookups work, every write is refused (exit 77). With no
    /// `index.db-wal` to replay it is opened `immutable` (no lock or `-shm` file needed).
    /// - Parameters:
    ///   - identity: who is acting (access rules and provenance); the OS user by default.
    ///   - create: create the directory and index if they do not exist (the creating user becomes the store's admin).
    ///     Only `calibctl store init` passes true: every other command refuses a path that holds no store.
    /// - Throws: ``StoreError`` (`unavailable`) when the store does not exist and `create` is false.
    ///   - filesystem: the filesystem of the directory (detected with `statfs` when nil; tests inject one). On a
    ///     network filesystem the index uses a rollback journal, not WAL, and writers lock `index.db.lock`.
    public init(directory: String, identity: Identity = .current, create: Bool = false,
                filesystem: StoreFilesystem? = nil) throws {
        let dir = URL(fileURLWithPath: (directory as NSString).expandingTildeInPath).standardizedFileURL.path
        self.directory = dir
        self.identity = identity
        let fs = filesystem ?? StoreFilesystem.detect(path: dir)
        self.filesystem = fs
        writeLock = fs.isNetwork ? StoreWriteLock(path: (dir as NSString).appendingPathComponent(StoreFormat.indexFile + ".lock")) : nil
        let indexPath = (dir as NSString).appendingPathComponent(StoreFormat.indexFile)
        let fm = FileManager.default
        if !fm.fileExists(atPath: indexPath) {
            guard create else {
                throw StoreError(.unavailable, "no constants store at \(dir) (no \(StoreFormat.indexFile))",
                                 fix: "pass --store DIR (or set CALIBCTL_STORE) to an existing store, or create one with `calibctl store init \(dir)`")
            }
            do {
                try fm.createDirectory(atPath: (dir as NSString).appendingPathComponent(StoreFormat.temporaryDirectory),
                                       withIntermediateDirectories: true)
            } catch {
                throw StoreError.fileSystem(error, path: dir, doing: "create the store directory", user: identity.user)
            }
        }
        // A directory we cannot write: open read-only. SQLite's WAL needs to create `-wal`/`-shm` beside the index
        // even to read, so without them the index is opened immutable (nothing can be writing a store no one may
        // write); with a live `-wal` (a writer with more rights is active) it is read through the existing `-shm`.
        // A node snapshot (`snapshot.json`) is never written, whoever opens it (root included).
        isSnapshot = ConstantsStore.isSnapshot(dir)
        readOnly = isSnapshot || access(dir, W_OK) != 0 || (fm.fileExists(atPath: indexPath) && access(indexPath, W_OK) != 0)
        do {
            if readOnly {
                let wal = (try? fm.attributesOfItem(atPath: indexPath + "-wal")[.size] as? NSNumber)?.int64Value ?? 0
                if wal > 0 && !fm.fileExists(atPath: indexPath + "-shm") {
                    throw StoreError(.unavailable, "the store \(dir) is read-only for \(identity.user) and its index has un-checkpointed changes in \(StoreFormat.indexFile)-wal but no \(StoreFormat.indexFile)-shm",
                                     fix: "copy the store while no calibctl process has it open (the last one to close folds the -wal into index.db), or give read access through a writable directory")
                }
                // On a network filesystem a writer on another host may be active even with no -wal here (rollback
                // journal): read with locks then, except from a snapshot, which nothing writes.
                db = try SQLiteDatabase(path: indexPath, readOnly: true, immutable: wal == 0 && (isSnapshot || !fs.isNetwork))
            } else if fs.isNetwork {
                let inWAL = StoreError(.unavailable, "the store index \(indexPath) is on a network filesystem (\(fs.name)) and still in WAL mode, which another process has open; WAL is not safe across hosts",
                                       fix: "stop every calibctl process using the store (on every host) and run the command again: it switches the index to a rollback journal")
                do {
                    db = try SQLiteDatabase(path: indexPath, readOnly: false, immutable: false, rollbackJournal: true)
                } catch let e as SQLiteError where e.isBusy { throw inWAL }
                guard try db.first("PRAGMA journal_mode")?.values.first == .text("delete") else { throw inWAL }
            } else {
                db = try SQLiteDatabase(path: indexPath)
            }
        } catch let e as SQLiteError {
            throw StoreError(.unavailable, "cannot open the store index \(indexPath): \(e.message)",
                             fix: "check that \(dir) is a calibctl store and readable by \(identity.user)")
        }
        // Read the version without taking the write lock, so readers are never queued behind a writer.
        let version = (try? db.first("SELECT version FROM schema_versions WHERE component = ?",
                                     StoreFormat.indexComponent)?.int("version")).flatMap { $0 } ?? 0
        // A read-only copy of schema v4 (before `iov_stats`) still answers lookups, by a plain SQL query.
        if readOnly && version == 4 {
            hasIOVStats = false
        } else if readOnly && version == 5 {
            // Before the built-in type `cabling` (migration 6, a type row only): everything else reads as in v6.
        } else if version != Int64(StoreIndex.currentVersion) {
            if readOnly {
                throw StoreError(version > Int64(StoreIndex.currentVersion) ? .configuration : .unavailable,
                                 "the read-only store \(dir) has index schema v\(version); this calibctl reads v\(StoreIndex.currentVersion)",
                                 fix: version > Int64(StoreIndex.currentVersion) ? "upgrade calibctl"
                                    : "open it once with write access (any calibctl store command) to upgrade its index, then copy it again")
            }
            try db.migrate(StoreIndex.migrations, what: StoreFormat.indexComponent)
            try write {
                try db.run("INSERT OR IGNORE INTO store_meta(key, value) VALUES('creator', ?)", identity.user)
                try db.run("INSERT OR IGNORE INTO store_meta(key, value) VALUES('created_at', ?)",
                           StoreTime.format(StoreTime.now()))
                try db.run("INSERT OR IGNORE INTO store_meta(key, value) VALUES('store_id', ?)", UUID().uuidString)
            }
        }
    }

    /// True when the caller cannot write the store directory, or it is a snapshot: lookups work, writes are refused.
    public let readOnly: Bool

    /// The filesystem of the store directory; on a network filesystem the index uses a rollback journal.
    public let filesystem: StoreFilesystem

    /// Writers' lock on a network filesystem (nil on a local one, where SQLite's WAL locking suffices).
    let writeLock: StoreWriteLock?

    /// The index's journal mode (`wal`, or `delete` on a network filesystem; `delete` for a snapshot).
    public var journalMode: String {
        if case .text(let t)? = (try? db.first("PRAGMA journal_mode"))??.values.first { t } else { "?" }
    }

    /// True when the store is a node snapshot (`calibctl store snapshot`): read-only, one global tag.
    public let isSnapshot: Bool

    /// Runs `body` in a write transaction (`BEGIN IMMEDIATE`) and forgets cached entries afterwards. File-system
    /// failures (disk full, no write permission) become ``StoreError``s that say what to do.
    func write<T>(_ body: () throws -> T) throws -> T {
        defer { invalidateEntryCache() }
        try requireWritable()
        do {
            if let writeLock { return try writeLock.with(timeout: 30) { try db.transaction(body) } }
            return try db.transaction(body)
        } catch let e as SQLiteError {
            throw StoreError.fromSQLite(e, directory: directory, user: identity.user)
        }
    }

    /// Throws ``StoreError`` (`permission`, exit 77) when the store was opened read-only.
    func requireWritable() throws {
        if isSnapshot {
            throw StoreError(.permission, "the store \(directory) is a node snapshot (\(StoreFormat.snapshotManifest)); snapshots are read-only",
                             fix: "write to the store the snapshot was taken from, then take a new snapshot")
        }
        if readOnly {
            throw StoreError(.permission, "the store \(directory) is read-only for \(identity.user) (no write permission on the directory or its index)",
                             fix: "reads work; to write, use a writable store or ask its owner to make it group-writable for your group (docs/store.md, Deployment)")
        }
    }

    /// The time of this write transaction, in microseconds: called inside ``write(_:)`` (after `BEGIN IMMEDIATE`), so
    /// times follow commit order. It is strictly later than every time the store has handed out before (insertion
    /// times, global-tag as-of and creation times), even if the clock stepped back or two commits share a
    /// microsecond; the high-water mark is kept in `store_meta.clock_us`.
    func transactionTime() throws -> Int64 {
        let last = try lastCommitTime()
        let t = Swift.max(StoreTime.now(), last == .min ? .min : last + 1)
        try db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES('clock_us', ?)", String(t))
        return t
    }

    /// The latest time the store has handed out (``transactionTime()``), as committed; `Int64.min` for an empty store.
    func lastCommitTime() throws -> Int64 {
        if let v = try db.first("SELECT value FROM store_meta WHERE key='clock_us'")?.text("value").flatMap({ Int64($0) }) {
            return v
        }
        // A store written before the high-water mark existed: the latest time it holds.
        let entries = try db.first("SELECT MAX(inserted_at_us) AS t FROM iovs")?.int("t") ?? .min
        let globalTags = try db.first("SELECT MAX(MAX(as_of_us, created_at_us)) AS t FROM global_tags")?.int("t") ?? .min
        return Swift.max(entries, globalTags)
    }

    /// The user who created the store (always an admin).
    public var creator: String { (try? db.first("SELECT value FROM store_meta WHERE key='creator'")?.text("value")) .flatMap { $0 } ?? "" }

    /// The index schema version of this store.
    public var schemaVersion: Int { (try? db.schemaVersion(of: StoreFormat.indexComponent)) ?? 0 }

    var indexPath: String { (directory as NSString).appendingPathComponent(StoreFormat.indexFile) }

    /// Relative path of a payload file: `payloads/ab/<sha256>.h5`.
    static func relativePath(_ sha: String) -> String {
        "\(StoreFormat.payloadDirectory)/\(sha.prefix(2))/\(sha).h5"
    }

    /// Absolute path of a payload file.
    public func payloadPath(_ sha256: String) -> String {
        (directory as NSString).appendingPathComponent(ConstantsStore.relativePath(sha256))
    }

    // MARK: detectors

    /// Adds a detector; its name and aliases must be new.
    @discardableResult
    public func addDetector(_ spec: DetectorSpec) throws -> Detector {
        try StoreNames.check(spec.name, what: "detector name")
        try StoreNames.check(spec.kind, what: "detector kind")
        for a in spec.aliases { try StoreNames.check(a, what: "detector alias") }
        try requirePermission(.admin, detector: spec.name, type: "*", action: "add detector \(spec.name)")
        try write {
            if try detectorID(spec.name, orNil: true) != nil {
                throw StoreError.bad("detector \(spec.name) already exists", fix: "`calibctl store list detectors` shows it")
            }
            for a in [spec.name] + spec.aliases where try db.first("SELECT 1 FROM detector_aliases WHERE alias=?", a) != nil {
                throw StoreError.bad("'\(a)' is already an alias of another detector", fix: "choose another alias")
            }
            try db.run("""
                INSERT INTO detectors(name, kind, hw_index, prev_hw_index, next_hw_index, comment, created_at_us, created_by)
                VALUES(?,?,?,?,?,?,?,?)
                """, spec.name, spec.kind, spec.hardwareIndex, spec.previousHardwareIndex, spec.nextHardwareIndex,
                       spec.comment, try transactionTime(), identity.user)
            let id = db.lastInsertRowID
            for a in spec.aliases where a != spec.name {
                if try db.first("SELECT 1 FROM detectors WHERE name=?", a) != nil {
                    throw StoreError.bad("alias '\(a)' is the name of another detector")
                }
                try db.run("INSERT INTO detector_aliases(alias, detector_id) VALUES(?,?)", a, id)
            }
            for (k, v) in spec.tags { try db.run("INSERT INTO detector_tags VALUES(?,?,?)", id, k, v) }
        }
        return try detector(spec.name)
    }

    /// Adds aliases, key=value tags or a comment line to an existing detector (history-neutral metadata).
    public func annotateDetector(_ name: String, aliases: [String] = [], tags: [String: String] = [:],
                                 comment: String? = nil) throws {
        let d = try detector(name)
        try requirePermission(.admin, detector: d.name, type: "*", action: "annotate detector \(d.name)")
        for a in aliases { try StoreNames.check(a, what: "detector alias") }
        try write {
            for a in aliases {
                if try detectorID(a, orNil: true) != nil { throw StoreError.bad("'\(a)' already names a detector") }
                try db.run("INSERT INTO detector_aliases(alias, detector_id) VALUES(?,?)", a, d.id)
            }
            for (k, v) in tags { try db.run("INSERT OR REPLACE INTO detector_tags VALUES(?,?,?)", d.id, k, v) }
            if let comment {
                try db.run("UPDATE detectors SET comment = ? WHERE id = ?", d.comment.isEmpty ? comment : d.comment + "\n" + comment, d.id)
            }
        }
    }

    /// The detector with this name or alias.
    public func detector(_ nameOrAlias: String) throws -> Detector {
        let id = try detectorID(nameOrAlias)
        guard let r = try db.first("SELECT * FROM detectors WHERE id=?", id) else { throw StoreError.bad("detector #\(id) vanished") }
        return try detectorFrom(r)
    }

    /// Every detector, by name.
    public func detectors() throws -> [Detector] {
        try db.query("SELECT * FROM detectors ORDER BY name").map(detectorFrom)
    }

    func detectorFrom(_ r: SQLRow) throws -> Detector {
        let id = r.int("id")!
        let aliases = try db.query("SELECT alias FROM detector_aliases WHERE detector_id=? ORDER BY alias", id).compactMap { $0.text("alias") }
        var tags: [String: String] = [:]
        for t in try db.query("SELECT key, value FROM detector_tags WHERE detector_id=?", id) { tags[t.text("key")!] = t.text("value")! }
        return Detector(id: id, name: r.text("name")!, kind: r.text("kind")!, aliases: aliases,
                        hardwareIndex: r.int("hw_index"), previousHardwareIndex: r.int("prev_hw_index"),
                        nextHardwareIndex: r.int("next_hw_index"), tags: tags, comment: r.text("comment") ?? "",
                        createdAt: StoreTime.format(r.int("created_at_us") ?? 0))
    }

    func detectorID(_ nameOrAlias: String, orNil: Bool = false) throws -> Int64? {
        if let id = detectorIDs[nameOrAlias] { return id }
        var id = try db.first("SELECT id FROM detectors WHERE name=?", nameOrAlias)?.int("id")
        if id == nil { id = try db.first("SELECT detector_id FROM detector_aliases WHERE alias=?", nameOrAlias)?.int("detector_id") }
        if let id { detectorIDs[nameOrAlias] = id; return id }
        if orNil { return nil }
        let known = try db.query("SELECT name FROM detectors").compactMap { $0.text("name") }
            + db.query("SELECT alias FROM detector_aliases").compactMap { $0.text("alias") }
        var fix = "add it with `calibctl store detector add \(nameOrAlias) --kind KIND [--hw-index N]`"
        if let s = suggestion(for: nameOrAlias, among: known) { fix = "did you mean '\(s)'? Otherwise " + fix }
        throw StoreError.bad("unknown detector '\(nameOrAlias)' in store \(directory)", fix: fix)
    }

    func detectorID(_ nameOrAlias: String) throws -> Int64 { try detectorID(nameOrAlias, orNil: false)! }

    // MARK: types

    /// Declares a new calibration type with its schema.
    @discardableResult
    public func addType(_ name: String, schema: TypeSchema, comment: String = "") throws -> CalibType {
        try StoreNames.checkType(name)
        guard !schema.datasets.isEmpty else { throw StoreError.usage("type \(name) declares no dataset", fix: "give at least one --dataset NAME:DTYPES:SHAPE") }
        for r in schema.datasets {
            if let o = r.sameShapeAs, !schema.datasets.contains(where: { $0.name == o }) {
                throw StoreError.usage("dataset rule \(r.text) refers to '\(o)', which the schema does not declare")
            }
        }
        try requirePermission(.admin, detector: "*", type: name, action: "add type \(name)")
        try write {
            if try typeID(name, orNil: true) != nil {
                throw StoreError.bad("calibration type \(name) already exists", fix: "`calibctl store list types` shows its schema")
            }
            try db.run("INSERT INTO calib_types(name, schema_json, builtin, comment, created_at_us, created_by) VALUES(?,?,0,?,?,?)",
                       name, try ConstantsStore.json(schema), comment, try transactionTime(), identity.user)
        }
        return try type(name)
    }

    /// The calibration type with this name.
    public func type(_ name: String) throws -> CalibType {
        let id = try typeID(name)
        return try typeFrom(db.first("SELECT * FROM calib_types WHERE id=?", id)!)
    }

    /// Every calibration type, by name.
    public func types() throws -> [CalibType] {
        try db.query("SELECT * FROM calib_types ORDER BY name").map(typeFrom)
    }

    func typeFrom(_ r: SQLRow) throws -> CalibType {
        let schema = try JSONDecoder().decode(TypeSchema.self, from: Data(r.text("schema_json")!.utf8))
        return CalibType(id: r.int("id")!, name: r.text("name")!, schema: schema, builtin: r.int("builtin") == 1,
                         comment: r.text("comment") ?? "")
    }

    func typeID(_ name: String, orNil: Bool = false) throws -> Int64? {
        if let id = typeIDs[name] { return id }
        if let id = try db.first("SELECT id FROM calib_types WHERE name=?", name)?.int("id") { typeIDs[name] = id; return id }
        if orNil { return nil }
        let known = try db.query("SELECT name FROM calib_types").compactMap { $0.text("name") }
        var fix = "declare it with `calibctl store type add \(name) --dataset NAME:DTYPES:SHAPE`"
        if let s = suggestion(for: name, among: known) { fix = "did you mean '\(s)'? Otherwise " + fix }
        throw StoreError.bad("unknown calibration type '\(name)' in store \(directory)", fix: fix)
    }

    func typeID(_ name: String) throws -> Int64 { try typeID(name, orNil: false)! }

    static func json<T: Encodable>(_ v: T) throws -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return String(decoding: try enc.encode(v), as: UTF8.self)
    }
}
