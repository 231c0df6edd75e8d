import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Crash-safe file writing: write to a temporary name in the same directory, fsync, rename, fsync the directory.
/// A reader (or a process that is killed mid-write) sees either the old file or the complete new one, never a part.
public enum AtomicFile {
    /// A temporary path beside `path` that no other process uses (`.NAME.tmp-PID-RANDOM`).
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        return dir + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Writes `data` to `path` atomically and durably.
    public static func write(_ data: Data, to path: String) throws {
        let tmp = temporaryPath(for: path)
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: tmp])
        }
        try commit(temporary: tmp, to: path)
    }

    /// fsyncs `temporary`, renames it onto `path` and fsyncs the directory.
    public static func commit(temporary: String, to path: String) throws {
        try fsync(path: temporary)
        guard rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: e) ?? .EIO, userInfo: [NSFilePathErrorKey: path])
        }
        try? fsync(path: URL(fileURLWithPath: path).deletingLastPathComponent().path)
    }

    /// fsync(2) of a file or directory by path.
    public static func fsync(path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        #if canImport(Glibc)
        _ = Glibc.fsync(fd)
        #else
        _ = Darwin.fsync(fd)
        #endif
    }
}
