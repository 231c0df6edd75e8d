import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The detached process that runs one local submission (`calibctl job local-executor DIR`): starts shards in index
/// order while a concurrency slot is free (slots are `flock`ed files shared by all executors of the workspace, so the
/// limit holds across submissions and the OS frees a dead executor's slots), records starts and ends in
/// `events.log`, enforces time limits (SIGTERM to the shard's process group, SIGKILL after the grace period) and
/// cancellations (`cancel.log`), and exits when every shard has ended.
public final class LocalExecutor {
    private let directory: String
    private var manifest: LocalManifest!
    private var eventsFD: Int32 = -1
    private var slotFDs: [Int32] = []

    private struct Running {
        var index: Int
        var pid: pid_t
        var slot: Int
        var start: Double
        var deadline: Double?
        var termSentAt: Double?
        var flag: String = "-"
    }

    public init(directory: String) {
        self.directory = directory
    }

    private func file(_ n: String) -> String { (directory as NSString).appendingPathComponent(n) }
    private static func now() -> Double { Date().timeIntervalSince1970 }

    /// Runs the submission to the end. Returns immediately if another live executor already owns it.
    public func run() throws {
        // Claim the submission: an exclusive flock on executor.pid (freed by the OS if this process dies).
        let pidPath = file("executor.pid")
        let pfd = open(pidPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard pfd >= 0 else { throw JobError.io(path: pidPath, detail: String(cString: strerror(errno))) }
        guard flock(pfd, LOCK_EX | LOCK_NB) == 0 else { return }
        let me = getpid()
        let info = "\(me) \(Spawn.processStart(me)?.start ?? 0) \(Spawn.hostName)\n"
        ftruncate(pfd, 0)
        _ = info.withCString { pwrite(pfd, $0, strlen($0), 0) }
        // Claimed (the submitter waits for this); now read the submission.
        let path = file(LocalManifest.name)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JobError.io(path: path, detail: "no local submission manifest")
        }
        manifest = try JSONDecoder().decode(LocalManifest.self, from: data)

        eventsFD = open(file("events.log"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard eventsFD >= 0 else { throw JobError.io(path: file("events.log"), detail: String(cString: strerror(errno))) }
        try JobFiles.mkdirs(manifest.slotDirectory)
        for k in 0..<max(1, manifest.concurrency) {
            let p = (manifest.slotDirectory as NSString).appendingPathComponent("slot-\(k).lock")
            let fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw JobError.io(path: p, detail: String(cString: strerror(errno))) }
            slotFDs.append(fd)
        }

        // Resume after a restart: shards with an end (or a start whose process is gone) are not run again.
        let done = LocalEvents.read(file("events.log"))
        var queue = manifest.submission.shards.filter { done[$0.index] == nil }.sorted { $0.index < $1.index }
        queue.reverse()  // pop from the end
        var running: [pid_t: Running] = [:]
        let byIndex = Dictionary(manifest.submission.shards.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        var cancelSize: off_t = -1
        var cancels: (all: Bool, indices: Set<Int>) = (false, [])
        var idle = 0

        while !queue.isEmpty || !running.isEmpty {
            var progressed = false
            // Cancellation requests.
            var st = stat()
            if stat(file("cancel.log"), &st) == 0, st.st_size != cancelSize {
                cancelSize = st.st_size
                cancels = LocalEvents.readCancels(file("cancel.log"))
            }
            let now = Self.now()
            if cancels.all || !cancels.indices.isEmpty {
                queue.removeAll { s in
                    guard cancels.all || cancels.indices.contains(s.index) else { return false }
                    LocalEvents.append("C \(s.index) \(now)", fd: eventsFD)
                    return true
                }
                for (pid, r) in running where r.termSentAt == nil && (cancels.all || cancels.indices.contains(r.index)) {
                    kill(-pid, SIGTERM)
                    running[pid]?.termSentAt = now
                    running[pid]?.flag = "cancel"
                }
            }
            // Time limits and the grace period.
            for (pid, r) in running {
                if let t = r.termSentAt {
                    if now - t > manifest.graceSeconds { kill(-pid, SIGKILL) }
                } else if let d = r.deadline, now > d {
                    kill(-pid, SIGTERM)
                    running[pid]?.termSentAt = now
                    running[pid]?.flag = "timeout"
                }
            }
            // Reap.
            while true {
                var status: Int32 = 0
                var ru = rusage()
                let pid = wait4(-1, &status, WNOHANG, &ru)
                if pid <= 0 { break }
                guard let r = running.removeValue(forKey: pid) else { continue }
                // The shard's own children may outlive it; they belong to its process group.
                kill(-pid, SIGKILL)
                let (code, sig) = Spawn.decode(waitStatus: status)
                let cpu = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
                    + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
                let what = code != nil ? "exit \(code!)" : "signal \(sig!)"
                LocalEvents.append("E \(r.index) \(what) \(r.start) \(Self.now()) \(cpu) \(ru.ru_maxrss) \(r.flag)",
                                   fd: eventsFD)
                release(slot: r.slot)
                progressed = true
            }
            // Start more.
            while let next = queue.last {
                guard let slot = acquireSlot() else { break }
                queue.removeLast()
                let start = Self.now()
                do {
                    let pid = try launch(next)
                    running[pid] = Running(index: next.index, pid: pid, slot: slot, start: start,
                                           deadline: next.timeLimitSeconds > 0
                                               ? start + Double(next.timeLimitSeconds) : nil)
                    LocalEvents.append("S \(next.index) \(pid) \(start)", fd: eventsFD)
                } catch {
                    // Launch failure: exit 127 like a shell, with the reason in the shard's stderr file.
                    try? Data("calibctl local executor: \(error)\n".utf8)
                        .write(to: URL(fileURLWithPath: byIndex[next.index]?.stderrPath ?? "/dev/null"))
                    LocalEvents.append("E \(next.index) exit 127 \(start) \(Self.now()) 0 0 launch", fd: eventsFD)
                    release(slot: slot)
                }
                progressed = true
            }
            if progressed { idle = 0 } else {
                idle += 1
                usleep(useconds_t(min(50_000, 1_000 * idle)))
            }
        }
        close(eventsFD)
        for fd in slotFDs { close(fd) }
        ftruncate(pfd, 0)
        _ = "done \(Spawn.hostName)\n".withCString { pwrite(pfd, $0, strlen($0), 0) }
        close(pfd)
    }

    private func acquireSlot() -> Int? {
        for (k, fd) in slotFDs.enumerated() where !heldSlots.contains(k) {
            if flock(fd, LOCK_EX | LOCK_NB) == 0 {
                heldSlots.insert(k)
                return k
            }
        }
        return nil
    }

    private var heldSlots = Set<Int>()

    private func release(slot: Int) {
        heldSlots.remove(slot)
        flock(slotFDs[slot], LOCK_UN)
    }

    private func launch(_ s: ShardRequest) throws -> pid_t {
        var o = Spawn.Options()
        o.directory = s.workDirectory.isEmpty ? nil : s.workDirectory
        o.stdoutPath = s.stdoutPath
        o.stderrPath = s.stderrPath
        o.newProcessGroup = true
        var argv = s.command
        if manifest.enforceMemory && s.memoryMB > 0 {
            argv = ["/bin/sh", "-c", "ulimit -v \(s.memoryMB * 1024) 2>/dev/null; exec \"$@\"", "sh"] + argv
        }
        return try Spawn.spawn(argv, o)
    }
}
