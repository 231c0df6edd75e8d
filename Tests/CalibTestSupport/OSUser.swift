import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A second OS user for the permission tests. `getpwnam` returns a pointer to one static buffer shared by the whole
/// test process, so a parallel test looking up another user (the HTCondor pool's `calibtest`) can overwrite it between
/// the lookup and the use: the ids are copied at once with the reentrant `getpwnam_r`, and creation is serialised.
public enum OSUser {
    private static let lock = NSLock()

    /// The uid and gid of `name`, reentrant.
    public static func ids(_ name: String) -> (uid: uid_t, gid: gid_t)? {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        let rc = getpwnam_r(name, &pw, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return (pw.pw_uid, pw.pw_gid)
    }

    /// The ids of `name`, created first (no home, no login shell) when it does not exist yet.
    public static func ensure(_ name: String) throws -> (uid: uid_t, gid: gid_t)? {
        lock.lock(); defer { lock.unlock() }
        if let ids = ids(name) { return ids }
        _ = try runProcess(which("useradd")!, ["-M", "-s", "/usr/sbin/nologin", name])
        return ids(name)
    }
}
