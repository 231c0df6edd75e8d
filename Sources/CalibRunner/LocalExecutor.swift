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
        /// Set when the executor runs the shard's `command` spec itself (see `LocalManifest.directWorker`).
        var direct: Direct?
    }

    /// A `command` shard the executor runs itself: what `calibctl job run` would have prepared, and the command.
    private struct Direct {
        var prepared: JobRunner.Prepared
        var plan: CommandJobKind.Plan
        var stderrPath: String
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
                var (code, sig) = Spawn.decode(waitStatus: status)
                if let d = r.direct {
                    // What `calibctl job run` does after its command ends: outputs renamed and checksummed, the
                    // result record written last; its exit status (e.g. 66 for a missing output) is the shard's.
                    (code, sig) = Self.finish(d, waitStatus: status, wallSeconds: Self.now() - r.start)
                }
                let cpu = Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
                    + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
                let what = code != nil ? "exit \(code!)" : "signal \(sig!)"
                LocalEvents.append("E \(r.index) \(what) \(r.start) \(Self.now()) \(cpu) \(ru.ru_maxrss) \(r.flag)",
                                   fd: eventsFD)
                release(slot: r.slot)
                // Empty logs are not kept (`calibctl jobs log` prints nothing for them).
                if let s = byIndex[r.index] {
                    JobFiles.removeIfEmpty(s.stdoutPath)
                    if s.stderrPath != s.stdoutPath { JobFiles.removeIfEmpty(s.stderrPath) }
                }
                progressed = true
            }
            // Start more.
            while let next = queue.last {
                guard let slot = acquireSlot() else { break }
                queue.removeLast()
                let start = Self.now()
                do {
                    let (pid, direct) = try launch(next)
                    running[pid] = Running(index: next.index, pid: pid, slot: slot, start: start,
                                           deadline: next.timeLimitSeconds > 0
                                               ? start + Double(next.timeLimitSeconds) : nil, direct: direct)
                    LocalEvents.append("S \(next.index) \(pid) \(start)", fd: eventsFD)
                } catch is DirectStartFailed {
                    LocalEvents.append("E \(next.index) exit 127 \(start) \(Self.now()) 0 0 -", fd: eventsFD)
                    release(slot: slot)
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
        // `done HOST CPU CHILDREN_CPU`: CPU seconds of this executor and of the shards it waited for (benchmarks).
        let cpu = { (who: Int32) -> Double in
            var u = rusage()
            getrusage(__rusage_who_t(who), &u)
            return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
        }
        let finished = String(format: "done %@ %.6f %.6f\n", Spawn.hostName, cpu(RUSAGE_SELF.rawValue), cpu(RUSAGE_CHILDREN.rawValue))
        ftruncate(pfd, 0)
        _ = finished.withCString { pwrite(pfd, $0, strlen($0), 0) }
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

    private func launch(_ s: ShardRequest) throws -> (pid_t, Direct?) {
        // A job set spec's shards get their directory when they start (it holds their logs and result records).
        if !s.workDirectory.isEmpty { try? JobFiles.mkdirs(s.workDirectory) }
        var o = Spawn.Options()
        o.directory = s.workDirectory.isEmpty ? nil : s.workDirectory
        o.stdoutPath = s.stdoutPath
        o.stderrPath = s.stderrPath
        o.newProcessGroup = true
        var argv = s.command
        var direct: Direct?
        if let d = directCommand(s) {
            // The shard's command itself, as `calibctl job run` would start it (its directory and environment).
            argv = d.plan.argv
            o.directory = d.plan.directory
            o.environment = d.plan.environment
            direct = d
        }
        if manifest.enforceMemory && s.memoryMB > 0 {
            argv = ["/bin/sh", "-c", "ulimit -v \(s.memoryMB * 1024) 2>/dev/null; exec \"$@\"", "sh"] + argv
        }
        do {
            return (try Spawn.spawn(argv, o), direct)
        } catch where direct != nil {
            // `calibctl job run` reports a command it cannot start as exit 127 in the result record: so does this.
            let outcome = JobOutcome(exitCode: 127, message: "cannot start \(argv[0]): \(error)")
            _ = try? JobRunner.finish(direct!.prepared, outcome: outcome)
            Self.note(outcome.message, stderrPath: s.stderrPath, spec: direct!.prepared.context.specName)
            throw DirectStartFailed()
        }
    }

    /// A directly run command could not be started; its result record says so (exit 127).
    private struct DirectStartFailed: Error {}

    /// The shard as a command the executor can run itself: its command is `directWorker SPEC --attempt N` and the
    /// spec's kind is `command`. Anything else (another kind, an unreadable spec) runs as given, so that
    /// `calibctl job run` reports it exactly as on a batch scheduler.
    private func directCommand(_ s: ShardRequest) -> Direct? {
        guard let prefix = manifest.directWorker, !prefix.isEmpty, s.command.starts(with: prefix) else { return nil }
        let args = Array(s.command.dropFirst(prefix.count))
        // `SPEC --attempt N` (a per-shard spec) or `SPECS --shard I --attempt N` (a job set spec).
        let shard: Int?
        switch args.count {
        case 3: shard = nil
        case 5 where args[1] == "--shard": guard let i = Int(args[2]) else { return nil }; shard = i
        default: return nil
        }
        guard args[args.count - 2] == "--attempt", let attempt = Int(args[args.count - 1]) else { return nil }
        let specPath = args[0]
        // Cheap pre-check before unlinking anything: a spec of another kind is left to the worker untouched.
        guard let spec = try? JobSpec.read(specPath, shard: shard), spec.kind == CommandJobKind.name,
              let prepared = try? JobRunner.prepare(specPath: specPath, shard: shard, attempt: attempt),
              let plan = try? CommandJobKind.plan(spec: prepared.spec, context: prepared.context,
                                                  tag: "x\(getpid())-\(s.index)") else { return nil }
        unlink(plan.metricsFile)
        return Direct(prepared: prepared, plan: plan, stderrPath: s.stderrPath)
    }

    /// Writes the result record of a directly run shard; returns the (exit, signal) the shard ends with.
    private static func finish(_ d: Direct, waitStatus: Int32, wallSeconds: Double) -> (Int32?, Int32?) {
        let outcome = CommandJobKind.outcome(d.plan, waitStatus: waitStatus, wallSeconds: wallSeconds)
        do {
            let r = try JobRunner.finish(d.prepared, outcome: outcome)
            if r.exitCode != 0, let m = r.message { note(m, stderrPath: d.stderrPath, spec: d.prepared.context.specName) }
            return r.signal != nil ? (nil, r.signal) : (r.exitCode, nil)
        } catch {
            note("cannot write the result record: \(error)", stderrPath: d.stderrPath, spec: d.prepared.context.specName)
            return (74, nil)
        }
    }

    /// Appends the line `calibctl job run` prints on failure to the shard's stderr file.
    private static func note(_ message: String?, stderrPath: String, spec: String) {
        guard let message else { return }
        let fd = open(stderrPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return }
        let line = "calibctl: error: job \(spec): \(message)\n"
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}
