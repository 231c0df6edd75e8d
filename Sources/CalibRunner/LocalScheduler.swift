import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The embedded default scheduler: runs shards as detached processes on this machine, at most `concurrency` at a
/// time across all submissions of the workspace. Each submission gets one detached `LocalExecutor` process
/// (`calibctl job local-executor DIR`) that survives the submitting command; state comes from the executor's pid and
/// its append-only `events.log` (see `LocalManifest`). Batch ids are `SUBMISSION:INDEX`.
public struct LocalScheduler: BatchScheduler {
    public let name = "local"
    public var minimumPollInterval: TimeInterval
    /// Where submissions live (`HOME/local`).
    public let root: String
    public var concurrency: Int
    /// Seconds between SIGTERM and SIGKILL (time limit, cancel).
    public var graceSeconds: Double
    public var enforceMemory: Bool
    /// The command that runs an executor; the submission directory is appended.
    public let executorCommand: [String]
    /// The worker command prefix (`calibctl job run`, the executor's own binary) whose `command` shards the executor
    /// runs itself, writing the same result record (nil: every shard runs its command as given). See `LocalManifest`.
    public var directWorker: [String]?

    public init(root: String, executorCommand: [String], concurrency: Int = ProcessInfo.processInfo.activeProcessorCount,
                minimumPollInterval: TimeInterval = 0, graceSeconds: Double = 5, enforceMemory: Bool = false,
                directWorker: [String]? = nil) {
        self.directWorker = directWorker
        self.root = root
        self.executorCommand = executorCommand
        self.concurrency = max(1, concurrency)
        self.minimumPollInterval = minimumPollInterval
        self.graceSeconds = graceSeconds
        self.enforceMemory = enforceMemory
    }

    func directory(_ submission: String) -> String { (root as NSString).appendingPathComponent(submission) }

    static func batchID(_ submission: String, _ index: Int) -> String { "\(submission):\(index)" }

    static func split(_ batchID: String) -> (String, Int)? {
        guard let c = batchID.lastIndex(of: ":"), let i = Int(batchID[batchID.index(after: c)...]) else { return nil }
        return (String(batchID[..<c]), i)
    }

    public func submit(_ submission: Submission) throws -> [Int: String] {
        let dir = directory(submission.name)
        try JobFiles.mkdirs(dir)
        let manifest = LocalManifest(submission: submission, concurrency: concurrency, graceSeconds: graceSeconds,
                                     slotDirectory: (root as NSString).appendingPathComponent("slots"),
                                     enforceMemory: enforceMemory, directWorker: directWorker)
        let path = (dir as NSString).appendingPathComponent(LocalManifest.name)
        if FileManager.default.fileExists(atPath: path) {
            throw SchedulerError(scheduler: name, operation: "submit \(submission.name)",
                                 detail: "a submission with this name already exists in \(dir)")
        }
        try JobFiles.writeReplacing(try JSONEncoder().encode(manifest), to: path)
        try startExecutor(dir)
        return Dictionary(uniqueKeysWithValues: submission.shards.map { ($0.index, Self.batchID(submission.name, $0.index)) })
    }

    /// Starts the detached executor and waits (up to 10 s) until it has claimed the submission.
    private func startExecutor(_ dir: String) throws {
        try Spawn.detach(executorCommand + [dir], logPath: (dir as NSString).appendingPathComponent("executor.log"))
        let pidPath = (dir as NSString).appendingPathComponent("executor.pid")
        let t0 = Date()
        while Date().timeIntervalSince(t0) < 10 {
            if let t = try? String(contentsOfFile: pidPath, encoding: .utf8), !t.isEmpty { return }
            usleep(2000)
        }
        throw SchedulerError(scheduler: name, operation: "start executor for \(dir)",
                             detail: "it did not start within 10 s; see \(dir)/executor.log")
    }

    public func findSubmitted(_ submission: Submission) throws -> [Int: String] {
        let dir = directory(submission.name)
        let path = (dir as NSString).appendingPathComponent(LocalManifest.name)
        guard let data = FileManager.default.contents(atPath: path),
              let manifest = try? JSONDecoder().decode(LocalManifest.self, from: data) else { return [:] }
        // Written but never started (killed between the two): start it now; the executor refuses a second copy.
        if executorState(dir) == .neverStarted { try startExecutor(dir) }
        return Dictionary(uniqueKeysWithValues: manifest.submission.shards.map {
            ($0.index, Self.batchID(submission.name, $0.index))
        })
    }

    enum ExecutorState: Equatable { case alive, finished, dead, neverStarted, unknown(host: String) }

    func executorState(_ dir: String) -> ExecutorState {
        let p = (dir as NSString).appendingPathComponent("executor.pid")
        guard let text = try? String(contentsOfFile: p, encoding: .utf8) else { return .neverStarted }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        if f.first == "done" { return .finished }
        guard f.count >= 3, let pid = pid_t(f[0]) else {
            // Claimed (file created) but not yet written: treat as alive for a moment.
            return text.isEmpty ? .alive : .dead
        }
        if String(f[2]) != Spawn.hostName { return .unknown(host: String(f[2])) }
        return Spawn.isAlive(pid, start: UInt64(f[1])) ? .alive : .dead
    }

    public func poll(_ batchIDs: [String]) throws -> [String: ObservedJob] {
        var bySubmission: [String: [(String, Int)]] = [:]
        var out: [String: ObservedJob] = [:]
        for id in batchIDs {
            guard let (s, i) = Self.split(id) else {
                out[id] = ObservedJob(batchID: id, state: .lost, failureClass: .lost, reason: "not a local batch id")
                continue
            }
            bySubmission[s, default: []].append((id, i))
        }
        for (sub, ids) in bySubmission {
            let dir = directory(sub)
            let manifestPath = (dir as NSString).appendingPathComponent(LocalManifest.name)
            guard FileManager.default.fileExists(atPath: manifestPath) else {
                for (id, _) in ids {
                    out[id] = ObservedJob(batchID: id, state: .lost, failureClass: .lost,
                                          reason: "the local submission \(sub) has no record in \(root)")
                }
                continue
            }
            // Liveness first, then the log: an executor that ends in between has written its last records.
            var exec = executorState(dir)
            if exec == .neverStarted {
                // Recorded as submitted but its executor never ran (killed in between): start it now.
                try? startExecutor(dir)
                exec = executorState(dir)
            }
            let records = LocalEvents.read((dir as NSString).appendingPathComponent("events.log"))
            let cancels = LocalEvents.readCancels((dir as NSString).appendingPathComponent("cancel.log"))
            // The manifest (large for big submissions) is decoded only if a failure needs a shard's limits.
            var shards: [Int: ShardRequest]?
            let shard = { (i: Int) -> ShardRequest? in
                if shards == nil {
                    let m = (FileManager.default.contents(atPath: manifestPath))
                        .flatMap { try? JSONDecoder().decode(LocalManifest.self, from: $0) }
                    shards = Dictionary((m?.submission.shards ?? []).map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
                }
                return shards?[i]
            }
            for (id, i) in ids {
                out[id] = observe(id: id, record: records[i], shard: { shard(i) }, executor: exec,
                                  cancelRequested: cancels.all || cancels.indices.contains(i))
            }
        }
        return out
    }

    private func observe(id: String, record r: LocalShardRecord?, shard shardInfo: () -> ShardRequest?,
                         executor: ExecutorState, cancelRequested: Bool) -> ObservedJob {
        let executorGone = executor == .dead || executor == .finished || executor == .neverStarted
        let date = { (t: Double?) in t.map { Date(timeIntervalSince1970: $0) } }
        guard let r else {
            if !executorGone { return ObservedJob(batchID: id, state: .pending) }
            if cancelRequested { return ObservedJob(batchID: id, state: .cancelled, failureClass: .cancelled) }
            return ObservedJob(batchID: id, state: .lost, failureClass: .lost,
                               reason: "the local executor ended without starting it")
        }
        if r.cancelledBeforeStart {
            return ObservedJob(batchID: id, state: .cancelled, failureClass: .cancelled, reason: "cancelled before it started",
                               endTime: date(r.ended))
        }
        guard let ended = r.ended else {
            if !executorGone { return ObservedJob(batchID: id, state: .running, startTime: date(r.started)) }
            if let pid = r.pid, Spawn.isAlive(pid) {
                return ObservedJob(batchID: id, state: .running, reason: "its executor died; the process still runs",
                                   startTime: date(r.started))
            }
            return ObservedJob(batchID: id, state: .lost, failureClass: .lost,
                               reason: "vanished: its executor died before recording an end", startTime: date(r.started))
        }
        var o = ObservedJob(batchID: id, state: .failed, exitCode: r.exitCode, signal: r.signal,
                            startTime: date(r.started), endTime: date(ended), cpuSeconds: r.cpu,
                            peakMemoryMB: r.maxRSSKB.map { $0 / 1024 })
        if r.exitCode == 0 && r.flags == "-" { o.state = .succeeded; return o }
        let shard = shardInfo()
        switch (r.flags, r.exitCode, r.signal) {
        case ("cancel", _, _):
            o.state = .cancelled; o.failureClass = .cancelled; o.reason = "cancelled"
        case ("timeout", _, _):
            o.failureClass = .timeLimit
            o.reason = "killed at its time limit of \(shard?.timeLimitSeconds ?? 0) s"
        case ("launch", _, _):
            o.failureClass = .launchFailure; o.reason = "could not be started (see its stderr)"
        case (_, 0?, _):
            o.state = .succeeded
        case (_, let code?, _):
            o.failureClass = .userError; o.reason = "exited with status \(code)"
            if let s = shard, Self.looksOutOfMemory(shard: s, maxRSSKB: r.maxRSSKB, enforce: enforceMemory) {
                o.failureClass = .outOfMemory; o.reason = "exited with status \(code) after running out of memory"
            }
        case (_, _, let sig?):
            o.reason = "killed by signal \(sig) (\(Self.signalName(sig)))"
            if let s = shard, Self.looksOutOfMemory(shard: s, maxRSSKB: r.maxRSSKB, enforce: enforceMemory) {
                o.failureClass = .outOfMemory
            } else if [SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS].contains(sig) {
                o.failureClass = .userError; o.reason! += ": the program crashed"
            } else {
                o.failureClass = .nodeFailure; o.reason! += " that calibctl did not send"
            }
        default:
            o.state = .lost; o.failureClass = .lost
        }
        return o
    }

    /// Best effort (docs/runner.md): peak RSS within 10 % of the requested memory, or an allocation failure message
    /// at the end of the shard's stderr.
    static func looksOutOfMemory(shard: ShardRequest, maxRSSKB: Double?, enforce: Bool) -> Bool {
        if shard.memoryMB > 0, let kb = maxRSSKB, kb / 1024 >= 0.9 * Double(shard.memoryMB) { return true }
        guard let fh = FileHandle(forReadingAtPath: shard.stderrPath) else { return false }
        defer { try? fh.close() }
        let end = (try? fh.seekToEnd()) ?? 0
        try? fh.seek(toOffset: end > 4096 ? end - 4096 : 0)
        let tail = String(decoding: fh.readDataToEndOfFile(), as: UTF8.self).lowercased()
        return ["cannot allocate memory", "out of memory", "memoryerror", "std::bad_alloc", "can't allocate"]
            .contains { tail.contains($0) }
    }

    static func signalName(_ s: Int32) -> String {
        let names: [Int32: String] = [1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS",
                                      8: "SIGFPE", 9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM",
                                      15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ"]
        return names[s] ?? "signal \(s)"
    }

    public func cancel(_ batchIDs: [String]) throws {
        var bySubmission: [String: [Int]] = [:]
        for id in batchIDs { if let (s, i) = Self.split(id) { bySubmission[s, default: []].append(i) } }
        for (sub, indices) in bySubmission {
            let dir = directory(sub)
            let p = (dir as NSString).appendingPathComponent("cancel.log")
            let fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw SchedulerError(scheduler: name, operation: "cancel", detail: "cannot write \(p)")
            }
            LocalEvents.append(indices.map(String.init).joined(separator: "\n"), fd: fd)
            close(fd)
            // An executor that died leaves orphans: signal them directly.
            if executorState(dir) != .alive {
                let records = LocalEvents.read((dir as NSString).appendingPathComponent("events.log"))
                for i in indices {
                    if let r = records[i], r.ended == nil, let pid = r.pid, Spawn.isAlive(pid) { kill(-pid, SIGKILL) }
                }
            }
        }
    }
}
