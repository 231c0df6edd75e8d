import CalibIO
import Foundation

/// Every failure the constants store reports: what went wrong with which object, how to fix it, and the exit code
/// (docs/exit-codes.md). The store is unchanged whenever one of these is thrown.
public struct StoreError: DiagnosableError, Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// A malformed argument: run range, name, time (exit 64).
        case usage
        /// Unknown detector/type/tag/payload, schema violation, damaged or foreign file (exit 65).
        case badData
        /// The store directory does not exist or cannot be opened (exit 69).
        case unavailable
        /// The access rules refuse this user (exit 77).
        case permission
        /// The tag's state forbids the operation (exit 65).
        case state
        /// A bug or an unexpected system failure (exit 70).
        case internalError
        /// The store is busy beyond the timeout, or the file system is full: retry later (exit 75).
        case temporary
        /// The index is newer than this calibctl (exit 78).
        case configuration
    }

    public let kind: Kind
    public let message: String
    public let fix: String?

    public init(_ kind: Kind, _ message: String, fix: String? = nil) {
        self.kind = kind
        self.message = message
        self.fix = fix
    }

    public var exitStatus: ExitStatus {
        switch kind {
        case .usage: .usage
        case .badData, .state: .dataError
        case .unavailable: .unavailable
        case .permission: .permissionDenied
        case .internalError: .internalError
        case .temporary: .temporaryFailure
        case .configuration: .configError
        }
    }

    static func usage(_ m: String, fix: String? = nil) -> StoreError { StoreError(.usage, m, fix: fix) }
    static func bad(_ m: String, fix: String? = nil) -> StoreError { StoreError(.badData, m, fix: fix) }

    /// The fix for a store directory the user may not write.
    static func permissionFix(_ directory: String) -> String {
        "make the store writable for your group: `chgrp -R GROUP \(directory) && chmod -R g+rwX \(directory) && find \(directory) -type d -exec chmod g+s {} +` (docs/store.md, Deployment), or use a store you own"
    }

    /// A failed file operation on the store (create a directory, write or rename a payload file) as a diagnosis:
    /// no space (exit 75), no permission (exit 77), anything else (exit 70).
    static func fileSystem(_ error: Error, path: String, doing what: String, user: String) -> StoreError {
        if let e = error as? StoreError { return e }
        let ns = error as NSError
        var code = ns.domain == NSPOSIXErrorDomain ? Int32(ns.code) : 0
        if code == 0, let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain { code = Int32(u.code) }
        if code == 0 {
            switch ns.code {
            case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: code = EACCES
            case NSFileWriteOutOfSpaceError: code = ENOSPC
            case NSFileWriteVolumeReadOnlyError: code = EROFS
            default: break
            }
        }
        let store = storeDirectory(of: path)
        switch code {
        case ENOSPC, EDQUOT:
            return StoreError(.temporary, "cannot \(what) \(path): the file system is full (or \(user)'s quota is exhausted)",
                              fix: "free space on the file system holding \(store) and retry; the store is unchanged")
        case EACCES, EPERM:
            return StoreError(.permission, "cannot \(what) \(path): permission denied for user \(user)", fix: permissionFix(store))
        case EROFS:
            return StoreError(.permission, "cannot \(what) \(path): the file system is read-only",
                              fix: "reads work on a read-only store; write to a store on a writable file system")
        default:
            let detail = code != 0 ? String(cString: strerror(code)) : ns.localizedDescription
            return StoreError(.internalError, "cannot \(what) \(path): \(detail)", fix: "check the store directory \(store)")
        }
    }

    /// A SQLite failure while writing the index, as a diagnosis.
    static func fromSQLite(_ e: SQLiteError, directory: String, user: String) -> StoreError {
        switch e.code & 0xff {
        case 13: // SQLITE_FULL
            return StoreError(.temporary, "cannot write the store index in \(directory): the file system is full",
                              fix: "free space on the file system holding \(directory) and retry; the store is unchanged")
        case 8, 3, 14: // SQLITE_READONLY, SQLITE_PERM, SQLITE_CANTOPEN
            return StoreError(.permission, "cannot write the store index in \(directory) as user \(user): \(e.message)",
                              fix: permissionFix(directory))
        case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
            return StoreError(.temporary, "the store \(directory) is busy: another calibctl process held the write lock beyond the timeout",
                              fix: "retry in a moment")
        default:
            return StoreError(.internalError, e.description, fix: "please report this; the store is unchanged")
        }
    }

    /// The store directory of a path inside it (the path itself when it holds no `payloads` component).
    static func storeDirectory(of path: String) -> String {
        let marker = "/\(StoreFormat.payloadDirectory)"
        if let r = path.range(of: marker + "/") { return String(path[..<r.lowerBound]) }
        if path.hasSuffix(marker) { return String(path.dropLast(marker.count)) }
        return path
    }
}

/// "did you mean" suggestions: the known names closest to `name` by edit distance (at most 3 edits).
func suggestion(for name: String, among known: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let n = Array(name.lowercased())
    let best = known.map { ($0, distance(n, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= Swift.max(1, Swift.min(3, name.count / 3)) else { return nil }
    return best.0
}
