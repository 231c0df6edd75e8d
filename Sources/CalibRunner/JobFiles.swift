import CalibIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Small file helpers shared by the job engine, the local scheduler and workers.
public enum JobFiles {
    /// Writes `data` to a temporary name beside `path` and renames it (atomic, not fsynced: cheap for 10,000 files).
    public static func writeReplacing(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw JobError.io(path: path, detail: "cannot create \(tmp): \(String(cString: strerror(errno)))")
        }
        let written = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        guard written == data.count else {
            unlink(tmp)
            throw JobError.io(path: path, detail: "cannot write \(tmp) (disk full?)")
        }
        guard rename(tmp, path) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(tmp)
            throw JobError.io(path: path, detail: "cannot rename into place: \(e)")
        }
    }

    /// Writes `data` atomically and durably (fsync of file and directory).
    public static func writeDurably(_ data: Data, to path: String) throws {
        do { try AtomicFile.write(data, to: path) } catch {
            throw JobError.io(path: path, detail: "\(error)")
        }
    }

    /// `p` if absolute, else `dir/p`.
    public static func resolve(_ p: String, relativeTo dir: String) -> String {
        p.hasPrefix("/") ? p : (dir as NSString).appendingPathComponent(p)
    }

    /// SHA-256 of a file's content, streamed in 1 MiB blocks.
    public static func sha256(ofFile path: String) throws -> String {
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw JobError.io(path: path, detail: "cannot open for reading")
        }
        defer { try? fh.close() }
        var h = SHA256Hasher()
        while true {
            let chunk = fh.readData(ofLength: 1 << 20)
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { h.update($0) }
        }
        return h.finalizeHex()
    }

    /// Removes a shard's log file when it is empty (a person debugging a failure needs no empty files, and 100,000
    /// shards would leave 200,000 of them): when `fd` is given, only if it still refers to that file.
    public static func removeIfEmpty(_ path: String, fd: Int32? = nil) {
        var st = stat()
        guard stat(path, &st) == 0, st.st_size == 0, (st.st_mode & S_IFMT) == S_IFREG else { return }
        if let fd {
            var f = stat()
            guard fstat(fd, &f) == 0, f.st_dev == st.st_dev, f.st_ino == st.st_ino, f.st_size == 0 else { return }
        }
        unlink(path)
    }

    /// Size of a file in bytes, nil if absent.
    public static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// Creates a directory and its parents with mode 0777 minus the umask, as mkdir(1) and FileManager do: the
    /// caller's umask decides who may write there (022 -> 0755; a shared-group umask 002 -> 0775; the HTCondor
    /// workflow test uses 000 so that the pool's unprivileged user can write its outputs).
    public static func mkdirs(_ path: String) throws {
        if mkdir(path, 0o777) == 0 || errno == EEXIST { return }
        do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) } catch {
            throw JobError.io(path: path, detail: "cannot create directory: \(error.localizedDescription)")
        }
    }
}

/// Errors of the job engine, schedulers and workers; each names the object and the fix.
public enum JobError: DiagnosableError, Equatable {
    case badSpec(path: String, detail: String)
    case unknownKind(String, known: [String])
    case io(path: String, detail: String)
    case unknownJobSet(String)
    case jobSetExists(String)
    case badName(String)
    case unknownScheduler(String, known: [String])
    case noSuchShards(jobSet: String, shards: [Int])
    case badParameter(String, detail: String)
    /// The object exists but its state forbids the command (exit 65).
    case refused(String, fix: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .badSpec, .io, .refused: .dataError
        case .unknownKind, .unknownJobSet, .jobSetExists, .badName, .noSuchShards, .badParameter: .usage
        case .unknownScheduler: .configError
        }
    }

    public var message: String {
        switch self {
        case .badSpec(let p, let d): "job spec \(p): \(d)"
        case .unknownKind(let k, _): "unknown job kind '\(k)'"
        case .io(let p, let d): "\(p): \(d)"
        case .unknownJobSet(let n): "no job set named '\(n)'"
        case .jobSetExists(let n): "a job set named '\(n)' already exists"
        case .badName(let n): "'\(n)' is not a valid job set name"
        case .unknownScheduler(let s, _): "unknown scheduler '\(s)'"
        case .noSuchShards(let j, let s): "job set '\(j)' has no shard(s) \(s.map(String.init).joined(separator: ", "))"
        case .badParameter(let what, let d): "\(what): \(d)"
        case .refused(let what, _): what
        }
    }

    public var fix: String? {
        switch self {
        case .badSpec: "regenerate the job set (`calibctl jobs create`) or check the file was copied completely"
        case .unknownKind(_, let known): "use one of: \(known.joined(separator: ", "))"
        case .io: "check the path exists, is writable and the file system is not full"
        case .unknownJobSet: "list job sets with `calibctl jobs list`"
        case .jobSetExists: "choose another name, or use the existing one (`calibctl jobs status NAME`)"
        case .badName: "use letters, digits, '.', '_' and '-' only (at most 100 characters), starting with a letter or digit"
        case .unknownScheduler(_, let known): "use one of: \(known.joined(separator: ", "))"
        case .noSuchShards: "see the shard indices with `calibctl jobs status NAME`"
        case .badParameter: nil
        case .refused(_, let fix): fix
        }
    }
}

extension SchedulerError: DiagnosableError {
    /// 69 when the scheduler could not be reached (repeat later), 65 when it refused the request (docs/exit-codes.md).
    public var exitStatus: ExitStatus { permanent ? .dataError : .unavailable }
    public var message: String {
        permanent ? "\(scheduler) refused \(operation) (a permanent error: repeating it cannot help): \(detail)"
                  : "\(scheduler) scheduler: \(operation) failed (transient: \(scheduler) could not be reached or did not answer): \(detail)"
    }
    public var fix: String? {
        permanent ? "the refused shards are recorded as failed (launch-failure, with \(scheduler)'s message) and are not resubmitted by themselves; fix the cause (scheduler settings, memory or time request), then `calibctl jobs retry JOBSET`"
                  : "check that \(scheduler) is running and reachable; the command can be repeated safely (every tick does)"
    }
}
