@testable import CalibRunner
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// How the scenario suite drives one real scheduler.
struct SchedulerHarness: Sendable {
    var name: String
    /// Builds the scheduler for a workspace (real processes / daemons).
    var make: @Sendable (Workspace) throws -> any BatchScheduler
    /// Makes one job vanish from the scheduler without a final record.
    var vanish: @Sendable (any BatchScheduler, Workspace, String) throws -> Void
    /// The class of a job whose command was killed by SIGKILL (the scheduler did not send it).
    var signalClass: FailureClass = .nodeFailure
    /// Seconds the whole scenario may take.
    var timeout: Double = 90
    /// Where the workspace lives (nil: a temporary directory).
    var home: @Sendable () throws -> String? = { nil }
    /// The worker command (`calibctl job run` as the batch nodes can run it).
    var workerCommand: [String] = [TestPaths.calibctl, "job", "run"]
    /// Called after the job set is created (e.g. to hand its directory to the batch system's user).
    var prepare: @Sendable (Workspace, String) throws -> Void = { _, _ in }
    /// Called at the end (stop private daemons).
    var cleanup: @Sendable () -> Void = {}
    /// Check at the end that no process of the scenario is left (killed, timed-out and cancelled jobs included).
    var checkNoStrayProcesses = false
    /// Checks of the scheduler's own queue once every shard but the one about to vanish is final, before the vanish
    /// step disturbs the scheduler (e.g. no held jobs left in the queue).
    var queueCheck: @Sendable () throws -> Void = {}
}

/// The scenario suite (issue 6): all succeed; some fail with exit codes; one is killed by a signal; one exceeds its
/// time limit; one is cancelled; one vanishes. Runs against any `BatchScheduler` with real jobs; asserts states,
/// failure classes and retries.
enum SchedulerScenarios {
    struct Shard { var key: String; var shell: String; var output: Bool = false; var timeLimit: Int? = nil }

    static let shards: [Shard] = [
        Shard(key: "ok-a", shell: "echo {key} > {output:out}; echo 'answer=42' >> \"$CALIBCTL_METRICS_FILE\"", output: true),
        Shard(key: "ok-b", shell: "echo {key} > {output:out}", output: true),
        Shard(key: "exit-3", shell: "echo failing >&2; exit 3"),
        Shard(key: "exit-42", shell: "exit 42"),
        Shard(key: "signal", shell: "if [ {attempt} -eq 1 ]; then kill -9 $$; fi; echo {key} > {output:out}", output: true),
        // Sleeps far beyond any limit (Slurm's are whole minutes, checked every 30 s).
        Shard(key: "timeout", shell: "if [ {attempt} -eq 1 ]; then sleep 900; fi; true"),
        Shard(key: "cancel", shell: "sleep 900", timeLimit: 1200),
        Shard(key: "vanish", shell: "if [ {attempt} -eq 1 ]; then sleep 900; fi; true", timeLimit: 1200),
    ]

    static func run(_ h: SchedulerHarness) throws {
        defer { h.cleanup() }
        let tmp = TemporaryDirectory("scenario-\(h.name)")
        let ws = Workspace(home: try h.home() ?? tmp.path)
        try ws.ensureHome()
        let sched = try h.make(ws)
        let db = try SQLiteDatabase(path: ws.databasePath)
        let engine = try JobEngine(database: db, workspace: ws, schedulers: [sched], workerCommand: h.workerCommand)
        let defs = shards.map { s in
            ShardDefinition(key: s.key, spec: JobSpec(kind: "command", outputs: s.output ? ["out": "out.txt"] : [:],
                                                      parameters: ["shell": s.shell]),
                            timeLimitSeconds: s.timeLimit)
        }
        try engine.createJobSet(JobSetDefinition(name: "scen", scheduler: sched.name, memoryMB: 500,
                                                 timeLimitSeconds: 3, shards: defs))
        try h.prepare(ws, "scen")
        #expect(try engine.submit(jobSet: "scen") == shards.count)
        #expect(try engine.submit(jobSet: "scen") == 0, "a second submit submits nothing")

        let idx = { (k: String) in shards.firstIndex { $0.key == k }! }
        var cancelled = false, vanished = false
        let t0 = Date()
        var st = try engine.status(jobSet: "scen")
        while Date().timeIntervalSince(t0) < h.timeout {
            try engine.update(force: true)
            st = try engine.status(jobSet: "scen", history: true)
            let byKey = Dictionary(uniqueKeysWithValues: st.shards!.map { ($0.key, $0) })
            if !cancelled, byKey["cancel"]?.state == .running {
                #expect(try engine.cancel(jobSet: "scen", shards: [idx("cancel")]) == 1)
                cancelled = true
            }
            // Vanish the long sleeper once everything else is settled (so only it is affected).
            let others = st.shards!.filter { $0.key != "vanish" }
            if !vanished, cancelled, byKey["vanish"]?.state == .running,
               others.allSatisfy({ $0.state?.isFinal == true }) {
                try h.queueCheck()
                try h.vanish(sched, ws, byKey["vanish"]!.batchID!)
                vanished = true
            }
            if vanished && st.finished { break }
            Thread.sleep(forTimeInterval: 0.3)
        }
        let byKey = Dictionary(uniqueKeysWithValues: st.shards!.map { ($0.key, $0) })
        #expect(st.finished, "scenario did not finish in \(h.timeout) s: \(st.summaryLine)")

        for k in ["ok-a", "ok-b"] {
            #expect(byKey[k]?.state == .succeeded && byKey[k]?.attempts == 1, "\(k): \(String(describing: byKey[k]))")
        }
        for (k, code) in [("exit-3", Int32(3)), ("exit-42", Int32(42))] {
            let s = byKey[k]
            #expect(s?.state == .failed && s?.failureClass == .userError && s?.exitCode == code && s?.attempts == 1,
                    "\(k): \(String(describing: s))")
            #expect(s?.nextAction?.contains("calibctl jobs retry") == true)
        }
        let sig = byKey["signal"]
        #expect(sig?.history?.first?.state == .failed && sig?.history?.first?.signal == 9
                && sig?.history?.first?.failureClass == h.signalClass, "signal: \(String(describing: sig?.history))")
        #expect(sig?.state == .succeeded && sig?.attempts == 2 && sig?.history?.last?.trigger == "auto:\(h.signalClass.rawValue)")
        let to = byKey["timeout"]
        #expect(to?.history?.first?.failureClass == .timeLimit, "timeout: \(String(describing: to?.history))")
        #expect(to?.state == .succeeded && to?.attempts == 2 && to?.history?.last?.timeLimitSeconds == 6)
        let c = byKey["cancel"]
        #expect(c?.state == .cancelled && c?.failureClass == .cancelled && c?.attempts == 1)
        let v = byKey["vanish"]
        #expect(v?.history?.first?.state == .lost && v?.history?.first?.failureClass == .lost,
                "vanish: \(String(describing: v?.history))")
        #expect(v?.state == .succeeded && v?.attempts == 2)
        #expect(st.counts["succeeded"] == 5 && st.counts["failed"] == 2 && st.counts["cancelled"] == 1)
        #expect(st.failureClasses == ["user-error": 2, "cancelled": 1])

        // Results carry metrics and verified outputs.
        let results = try engine.results(jobSet: "scen")
        let a = results.first { $0.key == "ok-a" }
        #expect(a?.metrics["answer"] == 42 && a?.outputs.first?.size == 5)

        // Idempotent: another update changes nothing.
        let before = try db.query("SELECT * FROM attempts ORDER BY id").map { "\($0.values)" }
        let again = try engine.update(force: true)
        #expect(again.transitions == 0 && again.submitted == 0 && again.retried == 0)
        #expect(try db.query("SELECT * FROM attempts ORDER BY id").map { "\($0.values)" } == before)

        // Explicit retry of a user error: a new attempt that fails the same way.
        let r = try engine.retry(jobSet: "scen", shards: [idx("exit-3")])
        #expect(r.retried == [idx("exit-3")])
        let t1 = Date()
        var s3 = try engine.status(jobSet: "scen").shards![idx("exit-3")]
        while Date().timeIntervalSince(t1) < 30 && s3.state?.isFinal != true {
            Thread.sleep(forTimeInterval: 0.3)
            try engine.update(force: true)
            s3 = try engine.status(jobSet: "scen").shards![idx("exit-3")]
        }
        #expect(s3.attempts == 2 && s3.state == .failed && s3.exitCode == 3)

        if h.checkNoStrayProcesses {
            let t2 = Date()
            var strays = processes(under: ws.jobsDirectory)
            while !strays.isEmpty && Date().timeIntervalSince(t2) < 10 {
                Thread.sleep(forTimeInterval: 0.3)
                strays = processes(under: ws.jobsDirectory)
            }
            #expect(strays.isEmpty, "processes left behind: \(strays)")
        }
    }

    /// Processes whose working directory is inside `dir` (every shard runs in its shard directory).
    static func processes(under dir: String) -> [String] {
        let fm = FileManager.default
        return ((try? fm.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid in
            guard Int(pid) != nil, let cwd = try? fm.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd"),
                  cwd.hasPrefix(dir) else { return nil }
            let cmd = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
            return "\(pid): " + cmd.replacingOccurrences(of: "\0", with: " ")
        }
    }
}

@Suite(.serialized) struct LocalSchedulerScenarioTests {
    static let local = SchedulerHarness(
        name: "local",
        make: { ws in
            LocalScheduler(root: ws.home + "/local", executorCommand: [TestPaths.calibctl, "job", "local-executor"],
                           concurrency: 4, graceSeconds: 1)
        },
        vanish: { s, _, batchID in
            // The machine "loses" the job: its executor and the job die without a final record.
            let local = s as! LocalScheduler
            let (sub, i) = LocalScheduler.split(batchID)!
            let dir = local.directory(sub)
            let pidText = try String(contentsOfFile: dir + "/executor.pid", encoding: .utf8)
            let epid = pid_t(pidText.split(separator: " ")[0])!
            kill(epid, SIGKILL)
            let rec = LocalEvents.read(dir + "/events.log")[i]!
            kill(-rec.pid!, SIGKILL)
        },
        checkNoStrayProcesses: true)

    @Test func scenarioSuite() throws {
        try SchedulerScenarios.run(Self.local)
    }

    /// The same scenarios with the executor running the `command` shards itself, as calibctl configures it.
    @Test func scenarioSuiteWithDirectCommands() throws {
        var h = Self.local
        h.make = { ws in
            LocalScheduler(root: ws.home + "/local", executorCommand: [TestPaths.calibctl, "job", "local-executor"],
                           concurrency: 4, graceSeconds: 1, directWorker: [TestPaths.calibctl, "job", "run"])
        }
        try SchedulerScenarios.run(h)
    }
}
