@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// SlurmScheduler against a REAL Slurm (scripts/slurm-up.sh; CALIBCTL_TEST_SLURM=PREFIX, set by scripts/test.sh).
@Suite(.enabled(if: !SchedulerTestEnvironment.skipRequested, SchedulerTestEnvironment.skipComment))
struct SlurmSchedulerTests {
    typealias Env = SchedulerTestEnvironment

    func scheduler(_ prefix: String, extra: [String] = []) -> SlurmScheduler {
        SlurmScheduler(tools: SchedulerTools(environment: ["SLURM_CONF": prefix + "/etc/slurm.conf"], timeoutSeconds: 30),
                       extraSubmitArguments: extra)
    }

    /// Success, exit 3, kill -9, cancelled, output redirection and an unknown id, in one array; a time limit in a
    /// second array (Slurm limits are per array, at least one minute, checked every 30 s: this test takes ~1.5 min).
    @Test(.timeLimit(.minutes(5))) func everyOutcomeOfRealJobs() throws {
        guard let prefix = Env.prefix("CALIBCTL_TEST_SLURM", what: "Slurm") else { return }
        let dir = TemporaryDirectory("slurm-adapter")
        let slurm = scheduler(prefix)
        let mixed = Submission(jobSetID: "set-\(UUID().uuidString.prefix(6))", name: Env.uniqueName("slurm-mixed"), shards: [
            Env.shard(0, ["/bin/true"], in: dir.path),
            Env.shard(1, ["/bin/sh", "-c", "exit 3"], in: dir.path),
            Env.shard(2, ["/bin/sh", "-c", "kill -9 $$"], in: dir.path),
            Env.shard(4, ["/bin/sleep", "300"], in: dir.path),
            Env.shard(5, ["/bin/echo", "hello from shard 5", "it's quoted"], in: dir.path),
        ], directory: dir.path)
        let timed = Submission(jobSetID: mixed.jobSetID, name: Env.uniqueName("slurm-timed"),
                               shards: [Env.shard(3, ["/bin/sleep", "300"], in: dir.path, seconds: 30)],
                               directory: dir.path)
        let ids = try slurm.submit(mixed)
        let timedIDs = try slurm.submit(timed)
        #expect(Set(ids.keys) == [0, 1, 2, 4, 5])
        let array = try #require(ids[0]).split(separator: "_")[0]
        #expect(ids[5] == "\(array)_4")  // task k = k-th shard of the array (task list), not the shard index

        // A crash between submit and recording it: findSubmitted finds the same jobs by name.
        #expect(try slurm.findSubmitted(mixed) == ids)
        #expect(try slurm.findSubmitted(timed) == timedIDs)
        let unknown = Submission(jobSetID: "x", name: Env.uniqueName("never-submitted"), shards: mixed.shards,
                                 directory: dir.path)
        #expect(try slurm.findSubmitted(unknown).isEmpty)

        // Cancel shard 4 once it runs.
        let id4 = try #require(ids[4])
        let running = try Env.pollUntil(slurm, [id4], timeout: 60) { $0[id4]?.state == .running }
        #expect(running[id4]?.state == .running)
        try slurm.cancel([id4])
        try slurm.cancel(["99999999_0"])  // unknown ids are not an error

        let all = Array(ids.values) + Array(timedIDs.values) + ["99999999_0"]
        let final = try Env.pollUntil(slurm, all, timeout: 200, every: 2, Env.allFinal)
        func check(_ id: String?, _ state: JobState, _ cls: FailureClass?, sourceLocation: SourceLocation = #_sourceLocation) {
            let job = id.flatMap { final[$0] }
            #expect(job?.state == state, "\(id ?? "nil"): \(String(describing: job))", sourceLocation: sourceLocation)
            #expect(job?.failureClass == cls, "\(id ?? "nil")", sourceLocation: sourceLocation)
        }
        check(ids[0], .succeeded, nil)
        check(ids[1], .failed, .userError)
        #expect(final[ids[1]!]?.exitCode == 3)
        check(ids[2], .failed, .nodeFailure)
        #expect(final[ids[2]!]?.signal == 9)
        check(ids[4], .cancelled, .cancelled)
        check(ids[5], .succeeded, nil)
        check(timedIDs[3], .failed, .timeLimit)
        check("99999999_0", .lost, .lost)
        #expect(final[ids[0]!]?.startTime != nil && final[ids[0]!]?.endTime != nil)
        // The batch script sent shard 5's output where the shard asked, arguments intact.
        let out = try String(contentsOfFile: mixed.shards[4].stdoutPath, encoding: .utf8)
        #expect(out == "hello from shard 5 it's quoted\n")
    }

    /// A job vanishes for real: a held job, then slurmctld is cold-started without its state
    /// (scripts/slurm-restart-controller.sh --forget-jobs) on a private cluster (so other tests' jobs are untouched).
    /// The held job is then unknown everywhere -> lost; a job that had finished is found in the jobcomp file.
    @Test(.timeLimit(.minutes(3))) func vanishedJobIsLostAndFinishedJobComesFromJobcomp() throws {
        guard Env.prefix("CALIBCTL_TEST_SLURM", what: "Slurm") != nil else { return }
        let tmp = TemporaryDirectory("slurm-private")
        let prefix = tmp.path + "/slurm"
        try Env.script("slurm-up.sh", [prefix])
        defer { _ = try? Env.script("slurm-down.sh", [prefix, "--purge"]) }
        let slurm = scheduler(prefix)
        let holding = scheduler(prefix, extra: ["--hold"])

        let done = Submission(jobSetID: "vanish", name: Env.uniqueName("slurm-done"),
                              shards: [Env.shard(0, ["/bin/true"], in: tmp.path)], directory: tmp.path)
        let doneID = try #require(try slurm.submit(done)[0])
        let doneView = try Env.pollUntil(slurm, [doneID], timeout: 60, Env.allFinal)
        #expect(doneView[doneID]?.state == .succeeded)

        let held = Submission(jobSetID: "vanish", name: Env.uniqueName("slurm-held"),
                              shards: [Env.shard(0, ["/bin/true"], in: tmp.path)], directory: tmp.path)
        let heldID = try #require(try holding.submit(held)[0])
        #expect(try slurm.poll([heldID])[heldID]?.state == .held)

        try Env.script("slurm-restart-controller.sh", [prefix, "--forget-jobs"])
        // The controller really forgot both.
        let show = try slurm.tools.run("scontrol", ["show", "job", "-o", doneID], scheduler: "slurm", operation: "test")
        #expect(SlurmOutputParser.isInvalidJobID(show.stderr))

        let after = try slurm.poll([doneID, heldID])
        #expect(after[doneID]?.state == .succeeded)  // from the jobcomp file
        #expect(after[heldID]?.state == .lost)
        #expect(after[heldID]?.failureClass == .lost)
        #expect(try slurm.findSubmitted(done) == [0: doneID])  // found by name in the jobcomp file

        // Job ids stay unique after the cold start.
        let next = Submission(jobSetID: "vanish", name: Env.uniqueName("slurm-next"),
                              shards: [Env.shard(0, ["/bin/true"], in: tmp.path)], directory: tmp.path)
        let nextID = try #require(try holding.submit(next)[0])
        #expect(Int(nextID.split(separator: "_")[0])! > Int(heldID.split(separator: "_")[0])!)
    }

}

/// Adapter behaviour that needs no running scheduler (runs even with CALIBCTL_SKIP_SCHEDULERS=1).
@Suite struct SlurmAdapterOfflineTests {
    typealias Env = SchedulerTestEnvironment

    /// A scheduler command that hangs is killed after the configured time and reported, not waited for.
    @Test func hungSchedulerCommandIsKilled() throws {
        let bin = TemporaryDirectory("slurm-hung")
        let fake = bin.file("squeue")
        try "#!/bin/sh\nexec sleep 30\n".write(toFile: fake, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fake)
        let slurm = SlurmScheduler(tools: SchedulerTools(binDirectory: bin.path, timeoutSeconds: 1))
        let started = Date()
        #expect(throws: SchedulerError.self) { try slurm.poll(["1_0"]) }
        #expect(Date().timeIntervalSince(started) < 20)
        do {
            _ = try slurm.poll(["1_0"])
        } catch let e as SchedulerError {
            #expect(e.detail.contains("did not finish within 1.0 s"))
        }
    }

    @Test func missingToolIsReportedWithItsLocation() throws {
        let slurm = SlurmScheduler(tools: SchedulerTools(binDirectory: "/nonexistent/slurm/bin"))
        do {
            _ = try slurm.poll(["1_0"])
            Issue.record("poll with no squeue did not throw")
        } catch let e as SchedulerError {
            #expect(e.detail.contains("/nonexistent/slurm/bin/squeue"))
        }
    }

    @Test func badSubmissionNamesAreRefusedBeforeSubmitting() throws {
        let dir = TemporaryDirectory("slurm-badname")
        let slurm = SlurmScheduler(tools: SchedulerTools(binDirectory: "/nonexistent"))
        let bad = Submission(jobSetID: "ok", name: "has space", shards: [Env.shard(0, ["/bin/true"], in: dir.path)],
                             directory: dir.path)
        #expect(throws: SchedulerError.self) { try slurm.submit(bad) }
        #expect(!FileManager.default.fileExists(atPath: dir.file("has space.sbatch")))
    }

    /// The generated batch script run by a real shell maps each array task, through the task list, to its shard
    /// (no scheduler needed).
    @Test func batchScriptMapsArrayTaskToShard() throws {
        let dir = TemporaryDirectory("slurm-script")
        let sub = Submission(jobSetID: "s", name: "script-test", shards: [
            Env.shard(0, ["/bin/sh", "-c", "echo zero; echo err >&2"], in: dir.path),
            Env.shard(7, ["/bin/sh", "-c", "pwd; exit 4"], in: dir.path),
        ], directory: dir.path)
        let path = dir.file("s.sh"), tasks = dir.file("s.tasks")
        try SlurmScheduler().batchScript(sub).write(toFile: path, atomically: true, encoding: .utf8)
        try SlurmScheduler.taskList(sub.shards).write(toFile: tasks, atomically: true, encoding: .utf8)
        let r0 = try runProcess("/bin/sh", [path, tasks], environment: ["SLURM_ARRAY_TASK_ID": "0"])
        #expect(r0.status == 0)
        #expect(try String(contentsOfFile: sub.shards[0].stdoutPath, encoding: .utf8) == "zero\n")
        #expect(try String(contentsOfFile: sub.shards[0].stderrPath, encoding: .utf8) == "err\n")
        let r1 = try runProcess("/bin/sh", [path, tasks], environment: ["SLURM_ARRAY_TASK_ID": "1"])  // shard 7
        #expect(r1.status == 4)
        #expect(try String(contentsOfFile: sub.shards[1].stdoutPath, encoding: .utf8) == dir.path + "\n")
        let r3 = try runProcess("/bin/sh", [path, tasks], environment: ["SLURM_ARRAY_TASK_ID": "3"])
        #expect(r3.status == ShardScript.unknownShardStatus)
        #expect(r3.stderr.contains("array task 3 is not in"))
        let args = SlurmScheduler().submitArguments(sub, scriptPath: path, taskListPath: tasks)
        #expect(args.contains("--array=0-1"))
        #expect(args.suffix(2) == [path, tasks])
        #expect(args.contains("--time=10"))
        #expect(args.contains("--mem=64M"))
        #expect(args.contains("--comment=s"))
    }
}
