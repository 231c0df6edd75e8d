import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The filesystem a store directory is on, and whether it is shared over a network.
///
/// SQLite's WAL mode keeps its index in shared memory (`index.db-shm`, mmap), which processes on different hosts
/// do not share: on NFS, Lustre, GPFS, SMB/CIFS and the like, WAL can lose or corrupt commits. A store on such a
/// filesystem uses a rollback journal instead, and writers also take an exclusive lock on `index.db.lock`
/// (docs/store.md, "Network filesystems").
public struct StoreFilesystem: Sendable, Equatable, Codable {
    /// `statfs(2)` `f_type`.
    public var magic: UInt64
    /// A short name (`nfs`, `lustre`, `gpfs`, `ext4/ext3/ext2`, ...; `unknown` for unlisted types).
    public var name: String
    /// True when other hosts may write the same directory: the store then avoids WAL.
    public var isNetwork: Bool

    public init(magic: UInt64, name: String, isNetwork: Bool) {
        self.magic = magic; self.name = name; self.isNetwork = isNetwork
    }

    /// Network and cluster filesystems (shared between hosts), by `f_type`.
    static let network: [UInt64: String] = [
        0x6969: "nfs", 0x0BD0_0BD0: "lustre", 0x4750_4653: "gpfs", 0xFF53_4D42: "cifs", 0xFE53_4D42: "smb2",
        0x517B: "smb", 0x6573_5546: "fuse", 0x00C3_6400: "ceph", 0x5346_414F: "afs", 0x6B41_4653: "afs",
        0x0102_1997: "9p", 0x0116_1970: "gfs2", 0x7461_636F: "ocfs2", 0x1983_0326: "beegfs", 0xAAD7_AAEA: "panfs",
        0x0027_E0EB: "cgroup-fuse",
    ]
    /// Local filesystems worth naming in messages.
    static let local: [UInt64: String] = [
        0xEF53: "ext4/ext3/ext2", 0x5846_5342: "xfs", 0x9123_683E: "btrfs", 0x0102_1994: "tmpfs",
        0x2FC1_2FC1: "zfs", 0x794C_7630: "overlayfs", 0xF2F5_2010: "f2fs",
    ]

    /// `statfs(2)`'s `f_type` for `path`, nil when it fails. Glibc's Swift module does not export `statfs` (it is in
    /// `<sys/vfs.h>`), so it is looked up by name; `f_type` is the first field of `struct statfs` on Linux (a
    /// `long`), and the buffer is larger than the struct on every Linux architecture.
    static func fsType(_ path: String) -> UInt64? {
        typealias StatFS = @convention(c) (UnsafePointer<CChar>, UnsafeMutableRawPointer) -> Int32
        guard let sym = dlsym(nil, "statfs") else { return nil }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 16)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: 512)
        guard unsafeBitCast(sym, to: StatFS.self)(path, buffer) == 0 else { return nil }
        return UInt64(truncatingIfNeeded: buffer.load(as: Int.self))
    }

    /// Classifies a `statfs` `f_type`; an unknown type counts as local.
    public static func classify(magic: UInt64) -> StoreFilesystem {
        if let n = network[magic] { return StoreFilesystem(magic: magic, name: n, isNetwork: true) }
        return StoreFilesystem(magic: magic, name: local[magic] ?? "unknown", isNetwork: false)
    }

    /// The filesystem of `path` (its nearest existing ancestor). `CALIBCTL_STORE_FILESYSTEM=network` or `=local`
    /// overrides the detection (a network filesystem that is not listed, or a FUSE filesystem that is local).
    public static func detect(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> StoreFilesystem {
        var p = path
        var magic: UInt64 = 0
        while true {
            if let m = fsType(p) { magic = m; break }
            let parent = (p as NSString).deletingLastPathComponent
            if parent == p || parent.isEmpty { break }
            p = parent
        }
        var fs = classify(magic: magic)
        switch environment["CALIBCTL_STORE_FILESYSTEM"]?.lowercased() {
        case "network": fs.isNetwork = true
        case "local": fs.isNetwork = false
        default: break
        }
        return fs
    }
}

/// An exclusive `flock(2)` on `index.db.lock`, taken by writers of a store on a network filesystem around each
/// write transaction. Linux's NFS client maps `flock` to an NFS byte-range lock (NLM or NFSv4), so it excludes
/// writers on other hosts; on a filesystem without working locks it fails and the write is refused.
final class StoreWriteLock {
    let path: String
    private var fd: Int32 = -1
    private var depth = 0

    init(path: String) { self.path = path }
    deinit { if fd >= 0 { close(fd) } }

    /// Takes the lock (waiting up to `timeout` seconds), runs `body`, releases it. Re-entrant.
    func with<T>(timeout: TimeInterval, _ body: () throws -> T) throws -> T {
        if depth > 0 { depth += 1; defer { depth -= 1 }; return try body() }
        if fd < 0 {
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o664)
            guard fd >= 0 else {
                throw StoreError(.permission, "cannot open the store's writer lock \(path): \(String(cString: strerror(errno)))",
                                 fix: "writers need write permission on the store directory (docs/store.md, Deployment)")
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            guard e == EWOULDBLOCK || e == EINTR else {
                throw StoreError(.unavailable, "file locking does not work on the filesystem of \(path) (\(String(cString: strerror(e)))): concurrent writers could corrupt the store",
                                 fix: "enable locking on the mount (NFS: lockd / NFSv4 without `nolock`; Lustre: mount with `-o flock`), or write through one host only and give readers snapshots (docs/store.md, Network filesystems)")
            }
            guard Date() < deadline else {
                throw StoreError(.temporary, "another writer has held the store's writer lock \(path) for \(Int(timeout)) s",
                                 fix: "retry later; `fuser \(path)` on each host shows who holds it")
            }
            usleep(2_000)
        }
        depth = 1
        defer { depth = 0; flock(fd, LOCK_UN) }
        return try body()
    }
}
