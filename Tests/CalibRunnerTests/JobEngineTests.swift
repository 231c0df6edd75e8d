@testable import CalibRunner
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// A real local scheduler that "crashes" (throws, as a SIGKILL would stop the caller) just before or just after
/// handing a submission to the executor, to test recovery at those exact points.
struct CrashingScheduler: BatchScheduler {
    let inner: LocalScheduler
    let crashAfterSubmit: Bool
    var name: String { inner.name }
    var minimumPollInterval: TimeInterval { 0 }
    struct Crash: Error {}
    func submit(_ s: Submission) throws -> [Int: String] {
        if !crashAfterSubmit { throw Crash() }
        _ = try inner.submit(s)
        throw Crash()
    }
    func findSubmitted(_ s: Submission) throws -> [Int: String] { try inner.findSubmitted(s) }
    func poll(_ ids: [String]) throws -> [String: ObservedJob] { try inner.poll(ids) }
    func cancel(_ ids: [String]) throws { try inner.cancel(ids) }
}

struct EngineFixture {
    let tmp = TemporaryDirectory("engine")
    var ws: Workspace { Workspace(home: tmp.path) }
    /// The local scheduler as calibctl configures it: the executor runs `command` shards itself.
    var local: LocalScheduler {
        LocalScheduler(root: tmp.path + "/local", executorCommand: [TestPaths.calibctl, "job", "local-executor"],
                       concurrency: 4, graceSeconds: 1, enforceMemory: true,
                       directWorker: [TestPaths.calibctl, "job", "run"])
    }

    /// The local scheduler starting `calibctl job run` for every shard (`"local": {"runCommandsDirectly": false}`).
    var localExec: LocalScheduler {
        var l = local
        l.directWorker = nil
        return l
    }

    /// An engine over `s`. Jobs on a real batch scheduler run `workerCommand` (pass the worker-node binary there,
    /// `WorkerBinary.path()`, as farms run it); the default is the calibctl built beside the tests.
    func engine(_ s: any BatchScheduler, workerCommand: [String] = [TestPaths.calibctl, "job", "run"]) throws -> JobEngine {
        try JobEngine(database: SQLiteDatabase(path: ws.databasePath), workspace: ws, schedulers: [s],
                      workerCommand: workerCommand)
    }

    func create(_ e: JobEngine, _ name: String, _ shells: [String], outputs: [String: String] = [:], memoryMB: Int = 500,
                timeLimit: Int = 30) throws {
        try e.createJobSet(JobSetDefinition(name: name, scheduler: "local", memoryMB: memoryMB, timeLimitSeconds: timeLimit,
                                            shards: shells.enumerated().map {
            ShardDefinition(key: "i=\($0.offset)", spec: JobSpec(kind: "command", outputs: outputs, parameters: ["shell": $0.element]))
        }))
    }

    func wait(_ e: JobEngine, _ name: String, timeout: Double = 30) throws -> JobSetStatus {
        let t0 = Date()
        var s = try e.status(jobSet: name, history: true)
        while !s.finished && Date().timeIntervalSince(t0) < timeout {
            Thread.sleep(forTimeInterval: 0.2)
            try e.update(force: true)
            s = try e.status(jobSet: name, history: true)
        }
        return s
    }

    func runs(_ name: String, _ n: Int) -> [Int] {
        (0..<n).map { ((try? String(contentsOfFile: "\(tmp.path)/jobs/\(name)/shard-\($0)/runs", encoding: .utf8)) ?? "")
            .split(separator: "\n").count }
    }
}

@Suite struct JobEngineTests {
    /// The local executor runs `command` shards itself (no `calibctl job run` process per shard) and writes the same
    /// result record, exit status, metrics, outputs and stderr note as `calibctl job run` does: the same job set run
    /// both ways gives the same recorded outcome, shard by shard.
    @Test func directCommandsMatchCalibctlJobRun() throws {
        let shells = [
            "echo hi; echo 'gain=2.5' >> $CALIBCTL_METRICS_FILE; printf {key} > {output:o}",  // success, metric, output
            "exit 3",                                   // user error
            "kill -9 $$",                               // killed by a signal
            "true",                                     // output not written: exit 66
            "sleep 30",                                 // time limit
            "cd /nonexistent-dir-\(1)",                // shell error, exit 2
        ]
        var recorded: [[String]] = []
        for mode in ["direct", "exec"] {
            let f = EngineFixture()
            let e = try f.engine(mode == "direct" ? f.local : f.localExec)
            try e.createJobSet(JobSetDefinition(name: "d", scheduler: "local", memoryMB: 500, timeLimitSeconds: 2,
                                                policy: RetryPolicy(maxAttempts: 1), shards: shells.enumerated().map {
                ShardDefinition(key: "i=\($0.offset)", spec: JobSpec(kind: "command", outputs: $0.offset == 1 ? [:] : ["o": "o.txt"],
                                                                   parameters: ["shell": $0.element]))
            }))
            try e.submit(jobSet: "d")
            let s = try f.wait(e, "d", timeout: 60)
            #expect(s.finished, "\(mode)")
            var rows: [String] = []
            for shard in s.shards ?? [] {
                let dir = f.tmp.path + "/jobs/d/shard-\(shard.index)"
                let res = try? JobResult.read(dir + "/attempt-1.result.json")
                let err = (try? String(contentsOfFile: dir + "/attempt-1.err", encoding: .utf8)) ?? ""
                rows.append([shard.state?.rawValue ?? "-", shard.failureClass?.rawValue ?? "-", "\(res?.exitCode ?? -1)",
                             "\(res?.signal ?? 0)", res?.message ?? "-", res?.metrics["gain"].map { "\($0)" } ?? "-",
                             res?.outputs.map { "\($0.name) \($0.size)" }.joined() ?? "-",
                             "\(res?.metrics["wall_seconds"] != nil)", "\(err.contains("calibctl: error: job "))"]
                    .joined(separator: " | ").replacingOccurrences(of: f.tmp.path, with: "TMP"))
            }
            if mode == "direct" {
                let executor = try String(contentsOfFile: f.tmp.path + "/local/" + (try FileManager.default
                    .contentsOfDirectory(atPath: f.tmp.path + "/local").first { $0 != "slots" } ?? "") + "/executor.log",
                                          encoding: .utf8)
                #expect(executor.isEmpty, "\(executor)")
            }
            recorded.append(rows)
        }
        #expect(recorded[0] == recorded[1], "direct:\n\(recorded[0].joined(separator: "\n"))\nexec:\n\(recorded[1].joined(separator: "\n"))")
        #expect(recorded[0].first?.hasPrefix("succeeded | - | 0 | 0 | - | 2.5 | o 3") == true, "\(recorded[0])")
        #expect(recorded[0][3].contains("| 66 |"), "\(recorded[0])")
    }

    @Test(arguments: [false, true]) func crashAroundSchedulerSubmitIsRecovered(after: Bool) throws {
        let f = EngineFixture()
        let crashing = try f.engine(CrashingScheduler(inner: f.local, crashAfterSubmit: after))
        try f.create(crashing, "c", Array(repeating: "echo x >> {dir}/runs", count: 5))
        #expect(throws: CrashingScheduler.Crash.self) { try crashing.submit(jobSet: "c") }
        let states = try crashing.database.query("SELECT state FROM attempts").compactMap { $0.text("state") }
        #expect(states == Array(repeating: "created", count: 5), "recorded before the scheduler was called")

        let e = try f.engine(f.local)
        let r = try e.update(force: true)
        // After the scheduler took the jobs they are found, not submitted again; before, they are submitted now.
        #expect(r.recovered == (after ? 5 : 0) && r.submitted == (after ? 0 : 5))
        let s = try f.wait(e, "c")
        #expect(s.counts == ["succeeded": 5])
        #expect(f.runs("c", 5) == [1, 1, 1, 1, 1])
        #expect(try e.database.first("SELECT COUNT(*) AS n FROM attempts")?.int("n") == 5)
    }

    /// Two workspaces share one batch system (here one local scheduler root, as two workspaces share a Slurm cluster
    /// or an HTCondor pool) and both have a job set of the same name: each runs its own jobs; the second never adopts
    /// the first one's submission through `findSubmitted`.
    @Test func sameJobSetNameInTwoWorkspacesRunsTwice() throws {
        let a = EngineFixture(), b = EngineFixture()
        let shared = a.local
        let ea = try a.engine(shared), eb = try b.engine(shared)
        try a.create(ea, "same", ["echo x >> {dir}/runs"])
        try b.create(eb, "same", ["echo x >> {dir}/runs"])
        try ea.submit(jobSet: "same")
        try eb.submit(jobSet: "same")
        #expect(try a.wait(ea, "same").counts == ["succeeded": 1])
        #expect(try b.wait(eb, "same").counts == ["succeeded": 1])
        #expect(a.runs("same", 1) == [1] && b.runs("same", 1) == [1])
        // Adopting the other workspace's jobs would show as a missing-output first attempt, then a retry.
        for e in [ea, eb] {
            #expect(try e.database.first("SELECT COUNT(*) AS n FROM attempts")?.int("n") == 1)
        }
        let names = try [ea, eb].map { try $0.database.first("SELECT submission FROM attempts")?.text("submission") ?? "" }
        #expect(names[0] != names[1] && names.allSatisfy { $0.hasPrefix("same.s1-") }, "\(names)")
    }

    @Test func changedOutputIsMissingOutputAndRetried() throws {
        let f = EngineFixture()
        let e = try f.engine(f.local)
        try f.create(e, "m", ["echo {attempt} > {output:o}"], outputs: ["o": "o.txt"])
        try e.submit(jobSet: "m")
        // Let the job end, then damage its output before calibctl looks.
        let out = f.tmp.path + "/jobs/m/shard-0/attempt-1.result.json"
        let t0 = Date()
        while !FileManager.default.fileExists(atPath: out) && Date().timeIntervalSince(t0) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        Thread.sleep(forTimeInterval: 0.2)
        try Data("tampered\n".utf8).write(to: URL(fileURLWithPath: f.tmp.path + "/jobs/m/shard-0/o.txt"))
        let s = try f.wait(e, "m")
        let h = s.shards?.first?.history
        #expect(h?.first?.failureClass == .missingOutput && h?.first?.reason?.contains("o.txt") == true, "\(String(describing: h))")
        #expect(s.shards?.first?.state == .succeeded && h?.last?.trigger == "auto:missing-output")
        #expect(try e.results(jobSet: "m").first?.outputs.first?.size == 2)
    }

    @Test func outOfMemoryIsRetriedWithMoreMemory() throws {
        let f = EngineFixture()
        let e = try f.engine(f.local)
        // 250 MB under a 200 MB address-space limit fails with MemoryError; the retry gets 400 MB.
        try f.create(e, "oom", ["\(TestPaths.python) -c 'b = bytearray(250 * 1024 * 1024)'"], memoryMB: 200)
        try e.submit(jobSet: "oom")
        let s = try f.wait(e, "oom")
        let h = s.shards?.first?.history ?? []
        #expect(h.first?.failureClass == .outOfMemory && h.first?.memoryMB == 200, "\(h)")
        #expect(h.last?.memoryMB == 400 && h.last?.state == .succeeded && h.count == 2, "\(h)")
    }

    @Test func userErrorsAreNotRetriedAndBoundsHold() throws {
        let f = EngineFixture()
        let e = try f.engine(f.local)
        // A node failure every time: retried twice (policy), then left alone.
        try f.create(e, "b", ["kill -9 $$", "exit 5"])
        try e.submit(jobSet: "b")
        let s = try f.wait(e, "b")
        #expect(s.shards?[0].attempts == 3 && s.shards?[0].failureClass == .nodeFailure)
        #expect(s.shards?[0].nextAction?.contains("exhausted") == true)
        #expect(s.shards?[1].attempts == 1 && s.shards?[1].failureClass == .userError)
        #expect(s.finished && !s.succeeded)
    }

    @Test func policyArithmetic() {
        let p = RetryPolicy.default
        #expect(p.shouldRetry(history: [.nodeFailure]) && p.shouldRetry(history: [.nodeFailure, .nodeFailure]))
        #expect(!p.shouldRetry(history: [.nodeFailure, .nodeFailure, .nodeFailure]))
        #expect(!p.shouldRetry(history: [.userError]) && !p.shouldRetry(history: [.cancelled]))
        #expect(!p.shouldRetry(history: [.launchFailure]) && p.shouldRetry(history: [.lost]))
        #expect(!p.shouldRetry(history: [.lost, .timeLimit, .timeLimit, .nodeFailure, .nodeFailure]), "maxAttempts 5")
        #expect(p.nextResources(after: .outOfMemory, memoryMB: 3000, timeLimitSeconds: 60) == (6000, 60))
        #expect(p.nextResources(after: .timeLimit, memoryMB: 3000, timeLimitSeconds: 60) == (3000, 120))
        #expect(p.nextResources(after: .outOfMemory, memoryMB: 50_000, timeLimitSeconds: 60).memoryMB == 64_000)
        #expect(p.nextResources(after: .lost, memoryMB: 1, timeLimitSeconds: 2) == (1, 2))
    }

    @Test func specPlaceholdersExpand() {
        let s = JobSpec(kind: "command", key: "fed=1200", index: 7, inputs: ["raw": "/data/r.h5"],
                        outputs: ["g": "gains.h5"], parameters: ["vcal": "tag1"])
        #expect(s.expand("{key} {index} {attempt} {input:raw} {output:g} {param:vcal} {dir}", attempt: 2,
                         specPath: "/w/shard-7/spec.json")
                == "fed=1200 7 2 /data/r.h5 /w/shard-7/gains.h5 tag1 /w/shard-7")
    }

    @Test func jobSetNames() {
        #expect(JobSetDefinition.isValidName("gain-5000_v2.1"))
        for bad in ["", "-x", "a/b", "a b", "é", String(repeating: "a", count: 101)] {
            #expect(!JobSetDefinition.isValidName(bad), "\(bad)")
        }
    }

    @Test func tickLockIsExclusiveAndReleased() throws {
        let tmp = TemporaryDirectory("lock")
        let a = TickLock(path: tmp.file("tick.lock"))
        try a.acquire()
        let b = TickLock(path: tmp.file("tick.lock"))
        #expect(throws: TickLock.Held.self) { try b.acquire() }
        a.release()
        try b.acquire()
        #expect(b.tookOverFrom == nil)
    }
}

@Suite struct PollIntervalTests {
    @Test func minimumPollIntervalIsRespectedUnlessForced() throws {
        let f = EngineFixture()
        var sched = f.local
        sched.minimumPollInterval = 3600
        let e = try f.engine(sched)
        try f.create(e, "p", ["sleep 2"])
        try e.submit(jobSet: "p")
        let first = try e.update()
        #expect(first.polled == ["local"] && first.jobsPolled == 1)
        let second = try e.update()
        #expect(second.polled.isEmpty && second.skipped == ["local"], "within the interval: no query")
        let forced = try e.update(force: true)
        #expect(forced.polled == ["local"])
        #expect(try e.cancel(jobSet: "p") == 1)
    }
}

/// Issue 14 ("keep per-shard files to what a person needs to debug a failure"): one spec file per job set, shard
/// directories only for shards that ran, holding their result record and non-empty logs.
@Suite struct JobSetLayoutTests {
    /// Every file and directory under `dir`, relative, sorted (directories end in `/`).
    func tree(_ dir: String) -> [String] {
        (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).map { p in
            var isDir: ObjCBool = false
            _ = FileManager.default.fileExists(atPath: dir + "/" + p, isDirectory: &isDir)
            return isDir.boolValue ? p + "/" : p
        }.sorted()
    }

    @Test func oneSpecFilePerJobSetAndShardDirectoriesOnlyWhereShardsRan() throws {
        let f = EngineFixture()
        let e = try f.engine(f.local)
        // Shard 2 differs in its outputs; the shell and everything else is shared.
        let shells = ["true", "echo out; echo err >&2", "printf x > {output:o}", "exit 3"]
        try e.createJobSet(JobSetDefinition(name: "lay", scheduler: "local", memoryMB: 500, timeLimitSeconds: 30,
                                            policy: RetryPolicy(maxAttempts: 1), shards: shells.enumerated().map { i, sh in
            ShardDefinition(key: "i=\(i)", spec: JobSpec(kind: "command", outputs: i == 2 ? ["o": "o.txt"] : [:],
                                                        parameters: ["shell": sh]))
        }))
        let dir = f.tmp.path + "/jobs/lay"
        #expect(tree(dir) == ["specs.jsonl"], "created: one file, no shard directory")
        let lines = try String(contentsOfFile: dir + "/specs.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 5)
        #expect(lines[0].contains("\"formatVersion\":2") && lines[0].contains("\"shards\":4") && lines[0].contains("\"kind\":\"command\""))
        #expect(lines[1] == #"{"index":0,"key":"i=0","outputs":{},"parameters":{"shell":"true"}}"#, "\(lines[1])")
        #expect(lines[3].contains(#""outputs":{"o":"o.txt"}"#))
        // Each shard reads back as the spec it was created from.
        let spec2 = try JobSpec.read(dir + "/specs.jsonl", shard: 2)
        #expect(spec2.key == "i=2" && spec2.index == 2 && spec2.outputs == ["o": "o.txt"] && spec2.kind == "command")
        #expect(throws: JobError.self) { try JobSpec.read(dir + "/specs.jsonl", shard: nil) }
        #expect(throws: JobError.self) { try JobSpec.read(dir + "/specs.jsonl", shard: 4) }

        try e.submit(jobSet: "lay")
        let s = try f.wait(e, "lay")
        #expect(s.counts == ["succeeded": 3, "failed": 1], "\(s.counts)")
        #expect(s.failed.first?.exitCode == 3)
        // A trivial shard leaves its directory and result record; logs only when something was written.
        let files = tree(dir).filter { !$0.hasPrefix("scheduler/") }  // the local scheduler's (empty) submission directory
        #expect(Array(files.prefix(9)) == [
            "shard-0/", "shard-0/attempt-1.result.json",
            "shard-1/", "shard-1/attempt-1.err", "shard-1/attempt-1.out", "shard-1/attempt-1.result.json",
            "shard-2/", "shard-2/attempt-1.result.json", "shard-2/o.txt",
        ], "\(files)")
        #expect(files.last == "specs.jsonl" && files.contains("shard-3/attempt-1.result.json"), "\(files)")
    }

    /// A job set made before spec format version 2 (one `shard-I/spec.json` per shard, in the database as such) still
    /// runs: its workers get `SPEC --attempt N` without `--shard`.
    @Test func perShardSpecsOfOlderJobSetsStillRun() throws {
        let f = EngineFixture()
        for mode in [f.local, f.localExec] {
            let e = try f.engine(mode)
            let name = mode.directWorker == nil ? "old-exec" : "old"
            try f.create(e, name, ["echo {key} > {dir}/k; echo run >> {dir}/runs", "exit 4"])
            // Rewrite it as version 1 would have: per-shard spec files, and their paths in the database.
            let dir = f.tmp.path + "/jobs/" + name
            for i in 0..<2 {
                let spec = try JobSpec.read(dir + "/specs.jsonl", shard: i)
                try FileManager.default.createDirectory(atPath: dir + "/shard-\(i)", withIntermediateDirectories: true)
                try spec.write(to: dir + "/shard-\(i)/spec.json")
                try e.database.run("UPDATE shards SET spec_path = ? WHERE idx = ? AND job_set = (SELECT id FROM job_sets WHERE name = ?)",
                                   dir + "/shard-\(i)/spec.json", i, name)
            }
            try FileManager.default.removeItem(atPath: dir + "/specs.jsonl")
            try e.submit(jobSet: name)
            let s = try f.wait(e, name)
            #expect(s.counts == ["succeeded": 1, "failed": 1], "\(name) \(s.counts)")
            #expect(try String(contentsOfFile: dir + "/shard-0/k", encoding: .utf8) == "i=0\n")
            #expect(f.runs(name, 1) == [1])
        }
    }
}
