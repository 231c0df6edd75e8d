import CalibIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The lock that keeps two `calibctl tick` runs apart: `HOME/tick.lock`, taken with `flock(LOCK_EX|LOCK_NB)` (the
/// OS releases it when the holder dies) and holding `PID HOST START-TIME EPOCH` of the holder. On file systems where
/// flock survives its holder (some NFS setups), a lock whose recorded holder is a dead process on this host is stale:
/// it is taken over by replacing the file (a new inode, so the stale lock no longer matters).
public final class TickLock {
    public let path: String
    private var fd: Int32 = -1
    /// Set when the lock was taken over from a dead holder (shown in the tick's output).
    public private(set) var tookOverFrom: Holder?

    /// Who holds (or held) the lock.
    public struct Holder: Sendable, Equatable, CustomStringConvertible {
        public var pid: Int32
        public var host: String
        public var processStart: UInt64
        public var since: Date

        public var description: String {
            "pid \(pid) on \(host) since \(ISO8601DateFormatter().string(from: since))"
        }

        static func parse(_ text: String) -> Holder? {
            let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
            guard f.count >= 4, let pid = Int32(f[0]), let st = UInt64(f[2]), let t = Double(f[3]) else { return nil }
            return Holder(pid: pid, host: String(f[1]), processStart: st, since: Date(timeIntervalSince1970: t))
        }

        /// Only a holder on this host can be checked; one elsewhere is assumed alive.
        var isDeadHere: Bool { host == Spawn.hostName && !Spawn.isAlive(pid, start: processStart) }
    }

    /// Another live tick holds the lock (exit 75).
    public struct Held: DiagnosableError {
        public let path: String
        public let holder: Holder?
        public var exitStatus: ExitStatus { .temporaryFailure }
        public var message: String {
            "another tick holds \(path)" + (holder.map { " (\($0))" } ?? "") + "; nothing done"
        }
        public var fix: String? { nil }
    }

    public init(path: String) { self.path = path }

    deinit { release() }

    static func read(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 512)
        let n = pread(fd, &buf, 511, 0)
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
    }

    /// Takes the lock or throws `Held`.
    ///
    /// Race-free takeover (issue 14, defect 7: with a lock file naming a dead process, two ticks started together
    /// both ran). "flock held, but the file names a dead process" is ambiguous: a stale lock (NFS), or a live tick
    /// that has just taken the flock and not yet written its record. So (1) a takeover only happens when the record
    /// still names the dead process after `settleSeconds`, and (2) every winner checks, after writing its record,
    /// that the path still is the file it locked; if another tick replaced it meanwhile, it backs off (Held).
    public func acquire() throws {
        for round in 0..<3 {
            let f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard f >= 0 else { throw JobError.io(path: path, detail: String(cString: strerror(errno))) }
            if flock(f, LOCK_EX | LOCK_NB) == 0 {
                let previous = Holder.parse(Self.read(f))
                if let p = previous, p.pid != getpid() || p.host != Spawn.hostName {
                    // An unlocked file that names a holder: that holder died without releasing (crash, SIGKILL).
                    if p.isDeadHere || p.host != Spawn.hostName { tookOverFrom = p }
                }
                let me = getpid()
                let text = "\(me) \(Spawn.hostName) \(Spawn.processStart(me)?.start ?? 0) \(Date().timeIntervalSince1970)\n"
                ftruncate(f, 0)
                _ = text.withCString { pwrite(f, $0, strlen($0), 0) }
                _ = fsync(f)
                // Still the file at `path`? (A takeover may have replaced it between our open and our write.)
                var mine = stat(), current = stat()
                if fstat(f, &mine) != 0 || stat(path, &current) != 0 || mine.st_ino != current.st_ino
                    || mine.st_dev != current.st_dev {
                    flock(f, LOCK_UN)
                    close(f)
                    tookOverFrom = nil
                    throw Held(path: path, holder: Holder.parse((try? String(contentsOfFile: path, encoding: .utf8)) ?? ""))
                }
                fd = f
                return
            }
            let holder = Holder.parse(Self.read(f))
            // flock is held, but the holder it names is dead on this host: a lock that outlived its process, or a
            // new holder that has not written its record yet. Wait and look again before replacing anything.
            if round == 0, let h = holder, h.isDeadHere {
                Thread.sleep(forTimeInterval: Self.settleSeconds)
                // Takeovers are serialised by a second lock, so that two ticks cannot both replace the file: the
                // second one finds, under this lock, that the file it looked at is no longer the one at `path`.
                let guardFD = open(path + ".takeover", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                var guarded = false
                if guardFD >= 0 {
                    for _ in 0..<200 where !guarded {
                        if flock(guardFD, LOCK_EX | LOCK_NB) == 0 { guarded = true } else { usleep(10_000) }
                    }
                }
                defer { if guardFD >= 0 { flock(guardFD, LOCK_UN); close(guardFD) } }
                let again = Holder.parse(Self.read(f))
                var mine = stat(), current = stat()
                let samePath = fstat(f, &mine) == 0 && stat(path, &current) == 0 && mine.st_ino == current.st_ino
                    && mine.st_dev == current.st_dev
                if guarded && again == h && samePath && flock(f, LOCK_EX | LOCK_NB) != 0 {
                    close(f)
                    let tmp = AtomicFile.temporaryPath(for: path)
                    if FileManager.default.createFile(atPath: tmp, contents: Data()), rename(tmp, path) == 0 {
                        tookOverFrom = h
                        continue
                    }
                    throw Held(path: path, holder: holder)
                }
                // The record changed (a live tick wrote it) or the lock came free: look again from the start.
                flock(f, LOCK_UN)
                close(f)
                continue
            }
            close(f)
            throw Held(path: path, holder: holder)
        }
        throw Held(path: path, holder: nil)
    }

    /// How long a "held by a dead process" record must stay unchanged before the lock is taken over.
    public nonisolated(unsafe) static var settleSeconds: TimeInterval = 0.3

    /// Releases the lock: clears the holder record, then unlocks (the file stays, so waiters never split inodes).
    public func release() {
        guard fd >= 0 else { return }
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }
}
