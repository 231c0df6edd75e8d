import ArgumentParser
import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// `calibctl bench jobs`: a job set of N trivial shards on the local scheduler: create, submit, track to completion,
/// status --json; then a tick over N tracked (queued) jobs.
struct BenchJobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Benchmark the job engine: N trivial local shards from creation to status, and a tick over N jobs.",
        discussion: reflow("""
        Phases: create (specs + rows), submit (one local submission), track (ticks until every shard is final), status
        (in process and as `calibctl jobs status --json`), and a tick (`calibctl tick --force --json`) over N tracked
        jobs that are still queued, then cancel. --worker shell runs a minimal /bin/sh worker that writes the result
        record (isolates calibctl's own overhead); --worker calibctl is the real worker (`calibctl job run`, whose
        `command` shards the local executor runs itself); --worker calibctl-exec starts one `calibctl job run` process
        per shard (local setting runCommandsDirectly false). The executor's CPU and that of the shards it ran are
        reported per shard (executorCPUPerShardMs).
        Figures go to stdout (--json for machines). Results: docs/benchmarks-runner.md.

        Example: swift build -c release && .build/release/calibctl bench jobs --shards 10000
        """))

    @Option(help: "Shards per job set.") var shards = 10_000
    @Option(help: "Worker: shell (minimal, writes the result record) or calibctl (`calibctl job run`).")
    var worker = "shell"
    @Option(help: "Local concurrency slots (default: CPU count).") var slots: Int?
    @Option(help: "Workspace to use (default: a fresh temporary directory, removed afterwards).") var home: String?
    @Flag(help: "Print JSON.") var json = false
    @Option(help: "Scheduler: local, or slurm (the Slurm of SLURM_CONF; jobs are submitted held, so nothing runs: create, submit, status, tick and cancel are measured; implies --no-track).")
    var scheduler = "local"
    @Flag(help: "Do not run the first job set to completion: status is measured on it while it runs (for 100,000 shards, whose running takes minutes), then it is cancelled.")
    var noTrack = false

    struct Figures: Codable {
        var shards = 0, worker = "", slots = 0, scheduler = ""
        var createSeconds = 0.0, submitSeconds = 0.0, trackSeconds = 0.0, ticksToComplete = 0, maxTickSeconds = 0.0
        var statusInProcessSeconds = 0.0, statusJSONBytes = 0, statusCommandSeconds = 0.0
        var tickCommandSeconds = 0.0, tickJobsPolled = 0, tickSchedulerQueries = 0, tickInProcessSeconds = 0.0
        var cancelSeconds = 0.0
        /// CPU of the detached local executor and of every shard it ran (the commands and their workers), in total
        /// and per shard: the per-job overhead of the local scheduler (a trivial shard's own work is one /bin/sh).
        var executorCPUSeconds = 0.0, executorCPUPerShardMs = 0.0
        /// CPU seconds (user + system, this process and waited-for children) of the same phases: the machine may be
        /// shared, so wall times are upper bounds.
        var cpu: [String: Double] = [:]
        var loadAverage1m = 0.0
    }

    func run() throws {
        guard shards > 0, ["shell", "calibctl", "calibctl-exec"].contains(worker), ["local", "slurm"].contains(scheduler) else {
            throw UsageError("--shards must be positive, --worker shell, calibctl or calibctl-exec, --scheduler local or slurm")
        }
        let noTrack = noTrack || scheduler == "slurm"
        let dir = home ?? (NSTemporaryDirectory() as NSString).appendingPathComponent("calibctl-bench-\(getpid())")
        defer { if home == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let ws = Workspace(home: dir)
        try ws.ensureHome()
        var f = Figures()
        f.shards = shards
        f.worker = worker
        f.scheduler = scheduler
        f.slots = slots ?? ProcessInfo.processInfo.activeProcessorCount
        setenv("CALIBCTL_LOCAL_SLOTS", String(f.slots), 1)
        if worker == "shell" {
            // A worker that does what `job run` must do at minimum: write the result record last, atomically.
            let rec = #"{"formatVersion":1,"kind":"command","exitCode":0,"metrics":{},"outputs":[],"startTime":0,"endTime":0,"host":"bench"}"#
            let settings = ["workerCommand": ["/bin/sh", "-c",
                // Arguments: SPECS --shard I --attempt N; the shard directory exists (the executor made it).
                "r=\"${0%/*}/shard-$2/attempt-$4.result.json\"; printf '%s' '\(rec)' > \"$r.tmp\" && mv \"$r.tmp\" \"$r\""]]
            try JSONEncoder().encode(settings).write(to: URL(fileURLWithPath: dir + "/schedulers.json"))
        } else if worker == "calibctl-exec" {
            try Data(#"{"local": {"runCommandsDirectly": false}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/schedulers.json"))
        }
        if scheduler == "slurm" {
            // Held jobs: Slurm queues them (MaxArraySize splits, one squeue per poll) but runs none of them.
            let conf = ProcessInfo.processInfo.environment["SLURM_CONF"].map { ["SLURM_CONF": $0] } ?? [:]
            let settings: [String: Any] = ["slurm": ["environment": conf, "minimumPollInterval": 0,
                                                     "extraSubmitArguments": ["--hold"]]]
            try JSONSerialization.data(withJSONObject: settings).write(to: URL(fileURLWithPath: dir + "/schedulers.json"))
        }
        let ctx = try JobsContext(ws)
        let e = ctx.engine
        let cpuNow: () -> Double = {
            var a = rusage(), b = rusage()
            getrusage(RUSAGE_SELF.rawValue, &a)
            getrusage(RUSAGE_CHILDREN.rawValue, &b)
            let t = { (r: rusage) in Double(r.ru_utime.tv_sec + r.ru_stime.tv_sec)
                + Double(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6 }
            return t(a) + t(b)
        }
        var lastCPU = 0.0
        let clock = { (body: () throws -> Void) throws -> Double in
            let c0 = cpuNow()
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            lastCPU = cpuNow() - c0
            return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        }
        let spec = JobSpec(kind: CommandJobKind.name, parameters: ["shell": "true"])
        let defs = (0..<shards).map { ShardDefinition(key: "chunk=\($0)", spec: spec) }
        f.createSeconds = try clock {
            try e.createJobSet(JobSetDefinition(name: "bench", scheduler: scheduler, timeLimitSeconds: 600, shards: defs))
        }
        f.cpu["create"] = lastCPU
        progress("created \(shards) shards in \(fmt(f.createSeconds)) (CPU \(fmt(lastCPU)))")
        f.submitSeconds = try clock { try e.submit(jobSet: "bench") }
        f.cpu["submit"] = lastCPU
        progress("submitted in \(fmt(f.submitSeconds)) (CPU \(fmt(lastCPU)))")
        let t0 = Date()
        let trackCPU0 = cpuNow()
        while !noTrack {
            var done = false
            let t = try clock {
                try e.update(force: true)
                done = try e.status(jobSet: "bench", failedOnly: true).finished
            }
            f.ticksToComplete += 1
            f.maxTickSeconds = max(f.maxTickSeconds, t)
            if done { break }
            if Date().timeIntervalSince(t0) > 3600 { throw UsageError("bench did not finish within an hour") }
            Thread.sleep(forTimeInterval: 0.5)
        }
        f.trackSeconds = Date().timeIntervalSince(t0)
        f.cpu["track (calibctl only; workers run detached)"] = cpuNow() - trackCPU0
        progress("all \(shards) final after \(fmt(f.trackSeconds)) (\(f.ticksToComplete) updates, slowest \(fmt(f.maxTickSeconds)))")
        f.executorCPUSeconds = noTrack ? 0 : Self.executorCPU(localRoot: dir + "/local", waitSeconds: 10)
        f.executorCPUPerShardMs = f.executorCPUSeconds / Double(shards) * 1000
        progress(String(format: "local executor + shards: %.3f s CPU, %.2f ms per shard", f.executorCPUSeconds,
                        f.executorCPUPerShardMs))
        var bytes = 0
        f.statusInProcessSeconds = try clock {
            let s = try e.status(jobSet: "bench")
            bytes = try StatusJSONWriter.encode(s, time: JobsCommand.fastISOTime).count  // as `jobs status --json`
        }
        f.cpu["status in process"] = lastCPU
        f.statusJSONBytes = bytes
        f.statusCommandSeconds = try clock {
            _ = try Self.runSelf(["jobs", "status", "bench", "--json", "--home", dir])
        }
        f.cpu["status command"] = lastCPU
        progress("status --json: \(fmt(f.statusInProcessSeconds)) in process, \(fmt(f.statusCommandSeconds)) as a command")

        if noTrack { _ = try e.cancel(jobSet: "bench") }  // so that the tick below tracks N jobs, not 2N
        // A tick over N tracked jobs: a second set whose shards stay queued behind long sleepers.
        let slow = (0..<shards).map { ShardDefinition(key: "chunk=\($0)", spec: JobSpec(kind: CommandJobKind.name,
                                                                                           parameters: ["shell": "sleep 600"])) }
        try e.createJobSet(JobSetDefinition(name: "bench-tracked", scheduler: scheduler, timeLimitSeconds: 3600, shards: slow))
        try e.submit(jobSet: "bench-tracked")
        var tickOut = Data()
        f.tickCommandSeconds = try clock { tickOut = try Self.runSelf(["tick", "--force", "--json", "--home", dir]) }
        f.cpu["tick command"] = lastCPU
        if let rep = try? JSONDecoder.iso.decode(TickReport.self, from: tickOut) {
            f.tickJobsPolled = rep.update.jobsPolled
            f.tickSchedulerQueries = rep.update.polled.count
        }
        f.tickInProcessSeconds = try clock { try e.update(force: true) }
        f.cpu["tick in process"] = lastCPU
        progress("tick over \(f.tickJobsPolled) tracked jobs: \(fmt(f.tickCommandSeconds)) as a command "
                 + "(\(f.tickSchedulerQueries) scheduler query), \(fmt(f.tickInProcessSeconds)) in process")
        f.cancelSeconds = try clock { try e.cancel(jobSet: "bench-tracked") }
        f.cpu["cancel"] = lastCPU
        var load = [Double](repeating: 0, count: 3)
        if getloadavg(&load, 3) > 0 { f.loadAverage1m = load[0] }
        progress("cancelled \(shards) in \(fmt(f.cancelSeconds))")
        progress(String(format: "load average (1 min) at the end: %.2f", f.loadAverage1m))
        if json { try printJSON(f) }
    }

    /// CPU seconds of every finished local executor under `localRoot` and of the shards each ran (`executor.pid` of a
    /// finished executor: `done HOST CPU CHILDREN_CPU`); waits up to `waitSeconds` for them to finish.
    static func executorCPU(localRoot: String, waitSeconds: Double) -> Double {
        let deadline = Date().addingTimeInterval(waitSeconds)
        while true {
            var total = 0.0, pending = false
            for sub in (try? FileManager.default.contentsOfDirectory(atPath: localRoot)) ?? [] where sub != "slots" {
                let text = (try? String(contentsOfFile: "\(localRoot)/\(sub)/executor.pid", encoding: .utf8)) ?? ""
                let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
                if f.first == "done", f.count >= 4 { total += (Double(f[2]) ?? 0) + (Double(f[3]) ?? 0) } else { pending = true }
            }
            if !pending || Date() > deadline { return total }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    private func fmt(_ s: Double) -> String { String(format: "%.3f s", s) }

    private func progress(_ s: String) {
        if json { Diagnostics.info(s) } else { print(s) }
    }

    static func runSelf(_ args: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: JobsContext.selfPath)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return data
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }
}
