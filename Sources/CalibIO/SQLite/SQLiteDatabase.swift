internal import CSQLite
import Foundation

/// A SQLite failure, naming the database file, the SQL and SQLite's message.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let path: String
    public let message: String
    public let sql: String?

    /// True for SQLITE_BUSY / SQLITE_LOCKED: another process holds the database; retry later.
    public var isBusy: Bool { code & 0xff == SQLITE_BUSY || code & 0xff == SQLITE_LOCKED }
    /// True for a UNIQUE / PRIMARY KEY / CHECK / FOREIGN KEY violation.
    public var isConstraint: Bool { code & 0xff == SQLITE_CONSTRAINT }

    public var description: String {
        var s = "SQLite error \(code) in \(path): \(message)"
        if let sql { s += " (while running: \(sql.prefix(120)))" }
        return s
    }
}

/// A value bound to or read from a statement.
public enum SQLValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// Swift values that bind to a SQL parameter.
public protocol SQLBindable: Sendable { var sqlValue: SQLValue { get } }
extension Int: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Int64: SQLBindable { public var sqlValue: SQLValue { .int(self) } }
extension Int32: SQLBindable { public var sqlValue: SQLValue { .int(Int64(self)) } }
extension Double: SQLBindable { public var sqlValue: SQLValue { .double(self) } }
extension String: SQLBindable { public var sqlValue: SQLValue { .text(self) } }
extension Bool: SQLBindable { public var sqlValue: SQLValue { .int(self ? 1 : 0) } }
extension SQLValue: SQLBindable { public var sqlValue: SQLValue { self } }
extension Optional: SQLBindable where Wrapped: SQLBindable {
    public var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// One result row; columns by index or name.
public struct SQLRow: Sendable {
    public let columns: [String]
    public let values: [SQLValue]

    public subscript(_ name: String) -> SQLValue {
        guard let i = columns.firstIndex(of: name) else { return .null }
        return values[i]
    }
    public func int(_ name: String) -> Int64? { if case .int(let v) = self[name] { v } else { nil } }
    public func double(_ name: String) -> Double? {
        switch self[name] {
        case .double(let d): d
        case .int(let i): Double(i)
        default: nil
        }
    }
    public func text(_ name: String) -> String? { if case .text(let v) = self[name] { v } else { nil } }
    public func blob(_ name: String) -> [UInt8]? { if case .blob(let v) = self[name] { v } else { nil } }
}

/// A connection to a SQLite database file, in WAL mode with a busy timeout, foreign keys on.
///
/// One connection is used by one thread at a time (the class is not `Sendable`); open one per process or task.
public final class SQLiteDatabase {
    public let path: String
    private var handle: OpaquePointer?
    private var statementCache: [String: OpaquePointer] = [:]
    private var transactionDepth = 0

    /// Opens (creating if needed) the database at `path` (`sqlite3_open_v2`).
    /// - Parameter busyTimeout: how long a write waits for another writer before failing with `isBusy`.
    public convenience init(path: String, readOnly: Bool = false, busyTimeout: TimeInterval = 30) throws {
        try self.init(path: path, readOnly: readOnly, immutable: false, busyTimeout: busyTimeout)
    }

    /// Opens the database at `path` (`sqlite3_open_v2`).
    /// - Parameters:
    ///   - busyTimeout: how long a write waits for another writer before failing with `isBusy`.
    ///   - immutable: (with `readOnly`) open as `file:PATH?immutable=1`: no locks, no `-wal`/`-shm` files, for a
    ///     database on a read-only medium that nothing writes while it is open.
    ///   - rollbackJournal: use a rollback journal (`journal_mode=DELETE`, `synchronous=FULL`) instead of WAL: for a
    ///     database on a network filesystem, where WAL's shared-memory index does not work across hosts.
    public init(path: String, readOnly: Bool = false, immutable: Bool, busyTimeout: TimeInterval = 30,
                rollbackJournal: Bool = false) throws {
        self.path = path
        var h: OpaquePointer?
        var flags = readOnly || immutable ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
        var name = path
        if immutable {
            flags |= SQLITE_OPEN_URI
            let allowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#%"))
            name = "file:" + (path.addingPercentEncoding(withAllowedCharacters: allowed) ?? path) + "?immutable=1"
        }
        let rc = sqlite3_open_v2(name, &h, flags | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let h else {
            let msg = h.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            sqlite3_close_v2(h)
            throw SQLiteError(code: rc, path: path, message: msg, sql: nil)
        }
        handle = h
        sqlite3_busy_timeout(h, Int32(busyTimeout * 1000))
        sqlite3_extended_result_codes(h, 1)
        if !readOnly && !immutable {
            if rollbackJournal {
                try execute("PRAGMA journal_mode=DELETE")
                try execute("PRAGMA synchronous=FULL")
            } else {
                try execute("PRAGMA journal_mode=WAL")
                try execute("PRAGMA synchronous=NORMAL")
                // A big write (an import, a bulk fill) grows the -wal to its size, and it would stay that size while
                // any connection is open: the next write after the checkpoint truncates it to 64 MiB instead.
                try execute("PRAGMA journal_size_limit=67108864")
            }
        }
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { close() }

    /// Closes the connection (`sqlite3_close_v2`). Safe to call twice.
    public func close() {
        for (_, s) in statementCache { sqlite3_finalize(s) }
        statementCache.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    private func error(_ rc: Int32, _ sql: String?) -> SQLiteError {
        SQLiteError(code: rc, path: path, message: handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed",
                    sql: sql)
    }

    /// Runs one or more statements with no parameters and no results (`sqlite3_exec`).
    public func execute(_ sql: String) throws {
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, sql) }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let s = statementCache[sql] {
            sqlite3_reset(s)
            sqlite3_clear_bindings(s)
            return s
        }
        var s: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &s, nil)
        guard rc == SQLITE_OK, let s else { throw error(rc, sql) }
        statementCache[sql] = s
        return s
    }

    private func bind(_ s: OpaquePointer, _ params: [SQLBindable], sql: String) throws {
        for (i, p) in params.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch p.sqlValue {
            case .null: rc = sqlite3_bind_null(s, idx)
            case .int(let v): rc = sqlite3_bind_int64(s, idx, v)
            case .double(let v): rc = sqlite3_bind_double(s, idx, v)
            case .text(let v): rc = sqlite3_bind_text(s, idx, v, -1, calib_sqlite_transient())
            case .blob(let v):
                rc = v.withUnsafeBytes { sqlite3_bind_blob(s, idx, $0.baseAddress, Int32($0.count), calib_sqlite_transient()) }
            }
            guard rc == SQLITE_OK else { throw error(rc, sql) }
        }
    }

    private func column(_ s: OpaquePointer, _ i: Int32) -> SQLValue {
        switch sqlite3_column_type(s, i) {
        case SQLITE_INTEGER: return .int(sqlite3_column_int64(s, i))
        case SQLITE_FLOAT: return .double(sqlite3_column_double(s, i))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(s, i)))
        case SQLITE_BLOB:
            let n = Int(sqlite3_column_bytes(s, i))
            guard n > 0, let p = sqlite3_column_blob(s, i) else { return .blob([]) }
            return .blob(Array(UnsafeRawBufferPointer(start: p, count: n)))
        default: return .null
        }
    }

    /// Runs a statement with parameters; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ params: SQLBindable...) throws -> Int {
        try run(sql, parameters: params)
    }

    @discardableResult
    public func run(_ sql: String, parameters: [SQLBindable]) throws -> Int {
        let s = try prepared(sql)
        defer { sqlite3_reset(s) }
        try bind(s, parameters, sql: sql)
        let rc = sqlite3_step(s)
        guard rc == SQLITE_DONE || rc == SQLITE_ROW else { throw error(rc, sql) }
        return Int(sqlite3_changes(handle))
    }

    /// Runs a query and returns all rows.
    public func query(_ sql: String, _ params: SQLBindable...) throws -> [SQLRow] {
        try query(sql, parameters: params)
    }

    public func query(_ sql: String, parameters: [SQLBindable]) throws -> [SQLRow] {
        var rows: [SQLRow] = []
        try forEachRow(sql, parameters: parameters) { rows.append($0) }
        return rows
    }

    /// Streams rows to `body` without building an array.
    public func forEachRow(_ sql: String, parameters: [SQLBindable] = [], _ body: (SQLRow) throws -> Void) throws {
        let s = try prepared(sql)
        defer { sqlite3_reset(s) }
        try bind(s, parameters, sql: sql)
        let n = sqlite3_column_count(s)
        let names = (0..<n).map { String(cString: sqlite3_column_name(s, $0)) }
        while true {
            let rc = sqlite3_step(s)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw error(rc, sql) }
            try body(SQLRow(columns: names, values: (0..<n).map { column(s, $0) }))
        }
    }

    /// The first row of a query, or nil.
    public func first(_ sql: String, _ params: SQLBindable...) throws -> SQLRow? {
        var out: SQLRow?
        let s = try prepared(sql)
        defer { sqlite3_reset(s) }
        try bind(s, params, sql: sql)
        let rc = sqlite3_step(s)
        if rc == SQLITE_ROW {
            let n = sqlite3_column_count(s)
            out = SQLRow(columns: (0..<n).map { String(cString: sqlite3_column_name(s, $0)) },
                         values: (0..<n).map { column(s, $0) })
        } else if rc != SQLITE_DONE {
            throw error(rc, sql)
        }
        return out
    }

    /// Row id of the last insert.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Runs `body` in a transaction (`BEGIN IMMEDIATE` takes the write lock at once, so two writers never deadlock).
    /// Nested calls join the outer transaction. Rolls back if `body` throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        if transactionDepth > 0 {
            transactionDepth += 1
            defer { transactionDepth -= 1 }
            return try body()
        }
        try execute("BEGIN IMMEDIATE")
        transactionDepth = 1
        do {
            let result = try body()
            transactionDepth = 0
            try execute("COMMIT")
            return result
        } catch {
            transactionDepth = 0
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The schema version of one component (several components keep their tables in one database file).
    public func schemaVersion(of component: String) throws -> Int {
        try execute("CREATE TABLE IF NOT EXISTS schema_versions(component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
        return Int(try first("SELECT version FROM schema_versions WHERE component = ?", component)?.int("version") ?? 0)
    }

    /// Applies ordered migrations of one component: migration `i` (0-based) brings its tables from version `i` to
    /// `i + 1`. Runs in one transaction, so a killed process leaves the old or the new schema, never a mix.
    /// A database newer than this program is refused with an error that says to upgrade calibctl.
    public func migrate(_ migrations: [String], what component: String) throws {
        try transaction {
            let current = try schemaVersion(of: component)
            if current > migrations.count {
                throw SQLiteError(code: SQLITE_MISMATCH, path: path,
                                  message: "\(component) schema version \(current) is newer than this calibctl "
                                      + "understands (\(migrations.count)); upgrade calibctl", sql: nil)
            }
            for (i, m) in migrations.enumerated() where i >= current {
                try execute(m)
                try run("INSERT OR REPLACE INTO schema_versions(component, version) VALUES(?, ?)", component, i + 1)
            }
        }
    }
}
