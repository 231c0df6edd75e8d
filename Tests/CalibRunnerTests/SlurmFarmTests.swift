@testable import CalibRunner
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// Issue 14: the runner on a farm's Slurm (default limits, refusals, forgotten jobs, slurmdbd), with scripted Slurm
/// tools (`FakeSlurm`) that behave like Slurm 22.05 with its defaults. Each test failed before its fix.
@Suite struct SlurmFarmTests {
    typealias Env = SchedulerTestEnvironment

    func slurm(_ fake: FakeSlurm, _ env: [String: String] = [:]) -> SlurmScheduler {
        SlurmScheduler(tools: SchedulerTools(binDirectory: fake.bin, environment: env, timeoutSeconds: 20),
                       minimumPollInterval: 0)
    }

    /// 80-character directory, as a home on a farm.
    func longDirectory(_ tmp: TemporaryDirectory) -> String {
        let d = tmp.path + "/" + String(repeating: "h", count: max(1, 80 - tmp.path.count - 1))
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Defect 1: a submission larger than MaxArraySize (1001 by default) is split into arrays the controller
    /// accepts; the limit is asked once (`scontrol show config`) and cached; findSubmitted maps the arrays back.
    @Test func arraysAreSplitAtMaxArraySizeAskedOnce() throws {
        let fake = try FakeSlurm(maxArraySize: 1001)
        let dir = TemporaryDirectory("farm-split")
        let s = slurm(fake)
        let sub = Submission(jobSetID: "big", name: "big.s1-0000abcd",
                             shards: (0..<2500).map { Env.shard($0, ["/bin/true"], in: dir.path) }, directory: dir.path)
        let ids = try s.submit(sub)
        #expect(ids.count == 2500)
        let calls = fake.calls("sbatch")
        #expect(calls.count == 3)
        // The three sbatch calls run concurrently (issue 14): their order in the log varies.
        #expect(calls.filter { $0.contains("--array=0-1000 ") }.count == 2)
        #expect(calls.filter { $0.contains("--array=0-497 ") && $0.contains("--job-name=big.s1-0000abcd.c2002 ") }.count == 1)
        #expect(Set(ids.values).count == 2500)
        // The same adapter value (and copies of it) does not ask the controller again.
        let again = Submission(jobSetID: "big", name: "big.s2-0000abcd",
                               shards: (0..<1002).map { Env.shard($0, ["/bin/true"], in: dir.path) }, directory: dir.path)
        let copy = s
        _ = try copy.submit(again)
        #expect(fake.calls("config").count == 1)
        // A crash after sbatch: findSubmitted finds every shard of every array, by its deterministic names.
        #expect(try s.findSubmitted(sub) == ids)
        #expect(try s.findSubmitted(Submission(jobSetID: "big", name: "big.s9-00000000", shards: sub.shards,
                                               directory: dir.path)).isEmpty)
    }

    /// Defect 2: the batch script does not grow with the number of shards (Slurm's max_script_size is 4 MB; 10,000
    /// shards under an 80-character home made a 5.6 MB script). The task list is a separate file.
    @Test func batchScriptSizeDoesNotGrowWithShards() throws {
        let fake = try FakeSlurm(maxArraySize: 100_001, maxScriptSize: 4_194_304)
        let tmp = TemporaryDirectory("farm-script")
        let dir = longDirectory(tmp)
        func submission(_ n: Int) -> Submission {
            Submission(jobSetID: "many", name: "many.s\(n)-0000abcd", shards: (0..<n).map { i in
                ShardRequest(index: i, command: ["/opt/calibctl/bin/calibctl", "job", "run", "\(dir)/jobs/many/shard-\(i)/spec.json",
                                                 "--attempt", "1"],
                             workDirectory: "\(dir)/jobs/many/shard-\(i)", stdoutPath: "\(dir)/jobs/many/shard-\(i)/attempt-1.out",
                             stderrPath: "\(dir)/jobs/many/shard-\(i)/attempt-1.err", memoryMB: 100, timeLimitSeconds: 60)
            }, directory: dir)
        }
        let s = slurm(fake)
        let small = try s.submit(submission(10)), large = try s.submit(submission(10_000))
        #expect(small.count == 10 && large.count == 10_000)
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/many.s10-0000abcd.sbatch"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/many.s10000-0000abcd.sbatch"))
        #expect(a.count == b.count && b.count < 2048)
        #expect(fake.calls("sbatch").count == 2)
    }

    /// Defect 3: a refusal is permanent (named so, the scheduler's message, exit 65, the shards failed as
    /// launch-failure, never resubmitted by a tick); an unreachable controller is transient (exit 69, retried).
    @Test func refusalIsPermanentAndUnreachableIsTransient() throws {
        let fake = try FakeSlurm()
        let dir = TemporaryDirectory("farm-refuse")
        let sub = Submission(jobSetID: "r", name: "r.s1-0000abcd", shards: [Env.shard(0, ["/bin/true"], in: dir.path)],
                             directory: dir.path)
        do {
            _ = try slurm(fake, ["FAKE_SBATCH_MODE": "refuse"]).submit(sub)
            Issue.record("a refused submission did not throw")
        } catch let e as SchedulerError {
            #expect(e.permanent)
            #expect(e.exitStatus == .dataError)
            #expect(e.message.contains("refused") && e.message.contains("Invalid partition name specified"))
            #expect(e.message.contains("permanent"))
        }
        do {
            _ = try slurm(fake, ["FAKE_SBATCH_MODE": "unreachable"]).submit(sub)
            Issue.record("an unreachable controller did not throw")
        } catch let e as SchedulerError {
            #expect(!e.permanent)
            #expect(e.exitStatus == .unavailable)
            #expect(e.message.contains("transient") && e.message.contains("Unable to contact"))
        }

        // Through the engine: recorded as failed with Slurm's message; later updates do not submit again.
        let f = EngineFixture()
        let e = try f.engine(slurm(fake, ["FAKE_SBATCH_MODE": "refuse"]))
        try e.createJobSet(JobSetDefinition(name: "refused", scheduler: "slurm", memoryMB: 100, timeLimitSeconds: 60,
                                            shards: (0..<3).map { ShardDefinition(key: "i=\($0)", spec: JobSpec(kind: "command", parameters: ["shell": "true"])) }))
        let before = fake.calls("sbatch").count
        #expect(throws: SchedulerError.self) { try e.submit(jobSet: "refused") }
        let st = try e.status(jobSet: "refused")
        #expect(st.counts["failed"] == 3)
        #expect(st.failed.allSatisfy { $0.failureClass == .launchFailure && ($0.reason ?? "").contains("Invalid partition name") })
        #expect(st.finished)
        let r1 = try e.update(force: true), r2 = try e.update(force: true)
        #expect(r1.errors.isEmpty && r2.errors.isEmpty)
        #expect(fake.calls("sbatch").count == before + 1)
    }

    /// Defect 3 (transient side, through the engine): an unreachable controller leaves the shards `created`; the
    /// next update submits them.
    @Test func unreachableControllerIsRetriedByTheNextUpdate() throws {
        let fake = try FakeSlurm()
        let f = EngineFixture()
        let down = try f.engine(slurm(fake, ["FAKE_SBATCH_MODE": "unreachable"]))
        try down.createJobSet(JobSetDefinition(name: "later", scheduler: "slurm", memoryMB: 100, timeLimitSeconds: 60,
                                               shards: [ShardDefinition(key: "i=0", spec: JobSpec(kind: "command", parameters: ["shell": "true"]))]))
        do { try down.submit(jobSet: "later"); Issue.record("no error") } catch let e as SchedulerError { #expect(!e.permanent) }
        #expect(try down.status(jobSet: "later").counts["created"] == 1)
        let up = try f.engine(slurm(fake))
        let r = try up.update(force: true)
        #expect(r.submitted == 1 && r.errors.isEmpty)
    }

    /// Defect 4: Slurm forgot finished jobs (MinJobAge passed, no jobcomp, no slurmdbd): the shards' result records
    /// say exit 0, so they succeeded — not lost and run again. After a controller restart that reports finished jobs
    /// as CANCELLED, the result records win too.
    @Test func forgottenOrMislabelledFinishedJobsAreNotRerun() throws {
        let fake = try FakeSlurm()
        let f = EngineFixture()
        let e = try f.engine(slurm(fake))
        try e.createJobSet(JobSetDefinition(name: "forgot", scheduler: "slurm", memoryMB: 100, timeLimitSeconds: 60,
                                            shards: (0..<6).map { ShardDefinition(key: "i=\($0)", spec: JobSpec(kind: "command", parameters: ["shell": "true"])) }))
        #expect(try e.submit(jobSet: "forgot") == 6)
        // Every shard ran and wrote its result record (what `calibctl job run` does last, in its shard directory).
        for i in 0..<6 {
            let dir = f.tmp.path + "/jobs/forgot/shard-\(i)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try JobResult(kind: "command", exitCode: i == 5 ? 3 : 0, startTime: Date(), endTime: Date())
                .write(to: JobRunner.resultPath(directory: dir, attempt: 1))
        }
        // Shards 0-2: forgotten; shards 3-5: CANCELLED after a slurmctld restart.
        try fake.setJobs(fake.jobs.filter { !$0.hasPrefix("100_0|") && !$0.hasPrefix("100_1|") && !$0.hasPrefix("100_2|") }
            .map { $0.replacingOccurrences(of: "|PENDING|", with: "|CANCELLED|") })
        let sbatchBefore = fake.calls("sbatch").count
        try e.update(force: true)
        try e.update(force: true)
        let st = try e.status(jobSet: "forgot", history: true)
        #expect(st.counts["succeeded"] == 5, "\(st.counts)")
        #expect(st.failed.map(\.index) == [5])
        #expect(st.failed.first?.failureClass == .userError)
        #expect(st.shards?.allSatisfy { $0.attempts == 1 } == true)
        #expect(fake.calls("sbatch").count == sbatchBefore)  // nothing ran twice
    }

    /// Defect 4 (sacct): where slurmdbd exists, ONE sacct call answers for every job squeue no longer shows.
    @Test func sacctAnswersForForgottenJobsInOneCall() throws {
        let fake = try FakeSlurm()
        let dir = TemporaryDirectory("farm-sacct")
        let s = slurm(fake)
        let a = try s.submit(Submission(jobSetID: "x", name: "x.s1-0000abcd",
                                        shards: (0..<2).map { Env.shard($0, ["/bin/true"], in: dir.path) }, directory: dir.path))
        let b = try s.submit(Submission(jobSetID: "x", name: "x.s2-0000abcd",
                                        shards: [Env.shard(0, ["/bin/true"], in: dir.path)], directory: dir.path))
        try fake.setJobs([])
        try fake.setSacct([
            "\(a[0]!)|x.s1-0000abcd|COMPLETED|0:0|2026-12-06T01:00:00|2026-12-06T01:00:01",
            "\(a[1]!)|x.s1-0000abcd|FAILED|3:0|2026-12-06T01:00:00|2026-12-06T01:00:01",
            "\(b[0]!)|x.s2-0000abcd|CANCELLED by 0|0:15|2026-12-06T01:00:00|2026-12-06T01:00:01",
        ])
        let o = try s.poll([a[0]!, a[1]!, b[0]!, "999_0"])
        #expect(o[a[0]!]?.state == .succeeded)
        #expect(o[a[1]!]?.failureClass == .userError && o[a[1]!]?.exitCode == 3)
        #expect(o[b[0]!]?.state == .cancelled)
        #expect(o["999_0"]?.state == .lost)
        #expect(fake.calls("sacct").count == 1)
        // Without accounting, sacct is asked once per process and then left alone.
        let fake2 = try FakeSlurm()
        let s2 = slurm(fake2)
        _ = try s2.poll(["5_0"])
        _ = try s2.poll(["5_0"])
        #expect(fake2.calls("sacct").count == 1)
    }

    /// Defect 6: an sbatch still in flight (its calibctl was killed) is found before anything is submitted again.
    @Test func submissionInFlightIsNotSubmittedAgain() throws {
        let fake = try FakeSlurm()
        let dir = TemporaryDirectory("farm-inflight")
        let sub = Submission(jobSetID: "f", name: "f.s1-0000abcd", shards: [Env.shard(0, ["/bin/true"], in: dir.path)],
                             directory: dir.path)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["30"]
        try sleeper.run()
        try SlurmScheduler.taskList(sub.shards).write(toFile: dir.file("f.s1-0000abcd.tasks"), atomically: true, encoding: .utf8)
        let pid = sleeper.processIdentifier
        try "\(pid) \(Spawn.processStart(pid)!.start)\n".write(toFile: dir.file("f.s1-0000abcd.inflight"), atomically: true, encoding: .utf8)
        do {
            _ = try slurm(fake).findSubmitted(sub)
            Issue.record("an in-flight sbatch was not noticed")
        } catch let e as SchedulerError {
            #expect(!e.permanent && e.detail.contains("still running"))
        }
        kill(pid, SIGKILL)
        while Spawn.isAlive(pid) { usleep(10_000) }
        #expect(try slurm(fake).findSubmitted(sub).isEmpty)
    }

    /// Issue 14 (submit of 100,000 shards < 5 s): the arrays of one submission are submitted by up to
    /// `submitConcurrency` sbatch calls at once (the fake's sbatch takes 1 s and logs when it ran: the calls
    /// overlap, which a timing threshold could only suggest on a loaded machine); every array keeps its own name,
    /// task list and in-flight marker, so findSubmitted maps them back exactly.
    @Test func arraysAreSubmittedConcurrently() throws {
        let fake = try FakeSlurm(maxArraySize: 1001)
        let dir = TemporaryDirectory("farm-concurrent")
        let s = slurm(fake, ["FAKE_SBATCH_SLEEP": "1"])
        #expect(s.submitConcurrency == 4)
        let sub = Submission(jobSetID: "c", name: "c.s1-0000abcd",
                             shards: (0..<4500).map { Env.shard($0, ["/bin/true"], in: dir.path) }, directory: dir.path)
        let ids = try s.submit(sub)
        let overlap = fake.sbatchMaxConcurrency()
        #expect(overlap >= 2 && overlap <= 4, "at most \(overlap) sbatch call(s) ran at once: \(fake.sbatchIntervals())")
        #expect(ids.count == 4500 && Set(ids.values).count == 4500)
        let names = fake.calls("sbatch").compactMap { $0.split(separator: " ").first { $0.hasPrefix("--job-name=") } }
        #expect(names.count == 5 && Set(names).count == 5)
        #expect(Set(ids.values.map { $0.split(separator: "_")[0] }).count == 5)
        #expect(try s.findSubmitted(sub) == ids)
        #expect(try !FileManager.default.contentsOfDirectory(atPath: dir.path).contains { $0.hasSuffix(".inflight") })
        // One array refused, the others taken: the refusal is thrown, and findSubmitted finds the taken ones.
        let mixed = SlurmScheduler(tools: SchedulerTools(binDirectory: fake.bin, timeoutSeconds: 20), minimumPollInterval: 0,
                                   maxArraySize: 2000)
        try "1500\n".write(toFile: fake.directory + "/maxarray", atomically: true, encoding: .utf8)
        let sub2 = Submission(jobSetID: "c", name: "c.s2-0000abcd",
                              shards: (0..<3000).map { Env.shard($0, ["/bin/true"], in: dir.path) }, directory: dir.path)
        do {
            _ = try mixed.submit(sub2)
            Issue.record("a refused array was not reported")
        } catch let e as SchedulerError {
            #expect(e.permanent && e.detail.contains("Invalid job array specification"), "\(e)")
        }
        let found = try mixed.findSubmitted(sub2)
        #expect(found.count == 1000 && found.keys.min() == 2000, "\(found.count)")
    }

    /// Issue 14 (tick over 100,000 tasks < 2 s): ONE squeue call without `-r`; the pending tasks of each array come
    /// back as one line and are expanded in calibctl; split-off tasks (running, finished) keep their own lines.
    @Test func pollReadsPendingArraysFromOneCombinedLine() throws {
        let fake = try FakeSlurm(maxArraySize: 1001)
        let dir = TemporaryDirectory("farm-combined")
        let s = slurm(fake)
        let ids = try s.submit(Submission(jobSetID: "p", name: "p.s1-0000abcd",
                                          shards: (0..<2500).map { Env.shard($0, ["/bin/true"], in: dir.path) }, directory: dir.path))
        // Task 7 of the first array was split off and runs; task 9 finished with exit 3.
        let array = ids[0]!.split(separator: "_")[0]
        try fake.setJobs(fake.jobs.map { row in
            if row.hasPrefix("\(array)_7|") { return "\(array)_7|9007|\(array)|7|RUNNING|0|2026-12-06T01:00:00|NONE|p.s1-0000abcd.c0|c|None|" }
            if row.hasPrefix("\(array)_9|") { return "\(array)_9|9009|\(array)|9|FAILED|768|2026-12-06T01:00:00|2026-12-06T01:00:01|p.s1-0000abcd.c0|c|NonZeroExitCode|" }
            return row
        })
        let before = fake.calls("squeue").count
        let o = try s.poll(Array(ids.values))
        let calls = Array(fake.calls("squeue").dropFirst(before))
        #expect(calls.count == 1 && !calls[0].split(separator: " ").contains("-r"), "\(calls)")
        #expect(o.count == 2500)
        #expect(o[ids[7]!]?.state == .running)
        #expect(o[ids[9]!]?.state == .failed && o[ids[9]!]?.exitCode == 3)
        #expect(o.values.filter { $0.state == .pending }.count == 2498)
        #expect(o[ids[2499]!]?.batchID == ids[2499]!)
    }

    /// Defect 6: scheduler tools run in calibctl's process group, and die with it (PR_SET_PDEATHSIG).
    @Test func toolsRunInTheCallersProcessGroup() throws {
        let out = try SchedulerTools().run("sh", ["-c", "ps -o pgid= -p $$; ps -o sid= -p $$"], scheduler: "test", operation: "pgid")
        let f = out.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(f.first == String(getpgrp()), "\(out)")
        #expect(f.last == String(getsid(0)), "\(out)")
    }
}

/// Issue 14 on a REAL private Slurm configured like a farm: Slurm's default MaxArraySize (1001) and max_script_size
/// (4 MB), a short MinJobAge (2 s) and no jobcomp file (sites that rely on slurmdbd). Started with
/// scripts/slurm-up.sh under a temporary prefix (SLURM_UP_MAX_ARRAY_SIZE=default SLURM_UP_MIN_JOB_AGE=2
/// SLURM_UP_JOBCOMP=none); the shared test cluster is not touched. ~1.5 min (Slurm purges old jobs every 60 s).
/// The two tests run one after the other, on their own port ranges (other suites start private clusters from 6817 up,
/// and two clusters starting at once could pick the same free port).
@Suite(.serialized, .enabled(if: !SchedulerTestEnvironment.skipRequested, SchedulerTestEnvironment.skipComment))
struct SlurmFarmClusterTests {
    typealias Env = SchedulerTestEnvironment

    @Test(.timeLimit(.minutes(5))) func defaultLimitsAndForgottenJobsOnARealCluster() throws {
        guard Env.prefix("CALIBCTL_TEST_SLURM", what: "Slurm") != nil else { return }
        let tmp = TemporaryDirectory("slurm-farm")
        let prefix = tmp.path + "/slurm"
        let up = try runProcess("/bin/bash", [TestPaths.packageRoot + "/scripts/slurm-up.sh", prefix], environment: [
            "SLURM_UP_MAX_ARRAY_SIZE": "default", "SLURM_UP_MIN_JOB_AGE": "2", "SLURM_UP_JOBCOMP": "none", "SLURM_UP_PORT": "7117"])
        defer { _ = try? runProcess("/bin/bash", [TestPaths.packageRoot + "/scripts/slurm-down.sh", prefix, "--purge"]) }
        try #require(up.status == 0, "\(up.stderr)")
        let tools = SchedulerTools(environment: ["SLURM_CONF": prefix + "/etc/slurm.conf"], timeoutSeconds: 30)
        let slurm = SlurmScheduler(tools: tools, minimumPollInterval: 0)
        #expect(try slurm.maxArraySize() == 1001)

        // Defect 1 for real: 3,500 held shards are accepted as four arrays, submitted concurrently (issue 14), and
        // found again by name.
        let holding = SlurmScheduler(tools: tools, extraSubmitArguments: ["--hold"])
        let big = Submission(jobSetID: "farm", name: Env.uniqueName("farm-big"),
                             shards: (0..<3500).map { Env.shard($0, ["/bin/true"], in: tmp.path) }, directory: tmp.path)
        let ids = try holding.submit(big)
        #expect(ids.count == 3500)
        let arrays = Set(ids.values.map { String($0.split(separator: "_")[0]) })
        #expect(arrays.count == 4)
        #expect(try holding.findSubmitted(big) == ids)
        // Issue 14: one squeue without -r (a line per array) says every task is held; after one task is released,
        // its array's line mixes reasons and scontrol tells that task apart.
        let held = try slurm.poll(Array(ids.values))
        #expect(held.count == 3500 && held.values.allSatisfy { $0.state == .held })
        _ = try tools.run("scontrol", ["release", ids[5]!], scheduler: "slurm", operation: "test")
        let after = try slurm.poll(Array(ids.values))
        #expect(after.count == 3500 && after[ids[5]!]?.state != .held && after[ids[5]!]?.state != .lost, "\(String(describing: after[ids[5]!]))")
        #expect(after.values.filter { $0.state == .held }.count == 3499)
        // Cancelling by task: all but ten held tasks, and an unknown id, go as one task-list expression per array
        // (`A_[0-349,351-699,...]`) in one scancel call; exactly the ten stay held.
        let keep = Set((0..<10).map { ids[$0 * 350 + 7]! })
        let cancelIDs = ids.values.filter { !keep.contains($0) } + ["99999999_0"]
        #expect(SlurmOutputParser.cancelArguments(cancelIDs).count == 5)
        try slurm.cancel(cancelIDs)
        let left = try slurm.poll(Array(ids.values))
        #expect(Set(left.filter { $0.value.state == .held }.keys) == keep)
        // The others are gone from the queue: cancelled, or (pending tasks cancelled whole, with no jobcomp on this
        // cluster) unknown to the controller; the engine records them cancelled itself when it cancels.
        #expect(left.filter { !keep.contains($0.key) }.allSatisfy { $0.value.state == .cancelled || $0.value.state == .lost },
                "\(Dictionary(grouping: left.values, by: \.state).mapValues(\.count))")
        try slurm.cancel(arrays.sorted())

        // Defect 4 for real: three shards finish, Slurm forgets them (MinJobAge 2 s, no jobcomp, no slurmdbd) before
        // calibctl looks; their result records make them succeeded, and nothing runs twice.
        let f = EngineFixture()
        let e = try f.engine(slurm, workerCommand: [try WorkerBinary.path(), "job", "run"])
        try e.createJobSet(JobSetDefinition(name: "forget", scheduler: "slurm", memoryMB: 100, timeLimitSeconds: 120,
                                            shards: (0..<3).map { ShardDefinition(key: "i=\($0)", spec: JobSpec(kind: "command", parameters: ["shell": "echo run >> {dir}/runs"])) }))
        #expect(try e.submit(jobSet: "forget") == 3)
        let batch = try e.status(jobSet: "forget").shards!.compactMap(\.batchID)
        let array = String(batch[0].split(separator: "_")[0])
        let deadline = Date().addingTimeInterval(150)
        var forgotten = false
        while !forgotten && Date() < deadline {
            Thread.sleep(forTimeInterval: 3)
            let show = try tools.run("scontrol", ["show", "job", "-o", array], scheduler: "slurm", operation: "test")
            forgotten = SlurmOutputParser.isInvalidJobID(show.stderr)
        }
        try #require(forgotten, "Slurm did not purge array \(array) within 150 s")
        try e.update(force: true)
        try e.update(force: true)
        let st = try e.status(jobSet: "forget", history: true)
        #expect(st.counts["succeeded"] == 3, "\(st.counts) \(st.failed.map { $0.reason ?? "" })")
        #expect(st.shards?.allSatisfy { $0.attempts == 1 } == true)
        #expect(st.shards?.first?.history?.first?.reason?.contains("forgotten") == true)
        #expect(f.runs("forget", 3) == [1, 1, 1])
    }

    /// Out-of-memory for real on the shared test Slurm, which enforces memory as a farm does (scripts/test.sh starts
    /// it with SLURM_UP_ENFORCE_MEMORY=1: OverMemoryKill, sampled every second, CR_Core_Memory): a shard that touches
    /// 150 MB with 120 MB requested is killed, classified out-of-memory (Slurm itself says FAILED 0:9; its output file
    /// says "exceeded memory limit"), and retried with 240 MB, which suffices.
    @Test(.timeLimit(.minutes(4))) func outOfMemoryOnASlurmThatEnforcesMemory() throws {
        guard let prefix = Env.prefix("CALIBCTL_TEST_SLURM", what: "Slurm"), Env.enforcesMemory(prefix, slurm: true) else { return }
        let slurm = SlurmScheduler(tools: SchedulerTools(environment: ["SLURM_CONF": prefix + "/etc/slurm.conf"], timeoutSeconds: 30),
                                   minimumPollInterval: 0)
        let f = EngineFixture()
        let e = try f.engine(slurm, workerCommand: [try WorkerBinary.path(), "job", "run"])
        let py = "a = bytearray(150 * 1024 * 1024)\nfor i in range(0, len(a), 4096): a[i] = 1\nimport time; time.sleep(4)"
        try e.createJobSet(JobSetDefinition(name: "oom", scheduler: "slurm", memoryMB: 120, timeLimitSeconds: 120,
                                            shards: [ShardDefinition(key: "i=0", spec: JobSpec(kind: "command", parameters: ["argv": "[\"\(TestPaths.python)\", \"-c\", \"\(py.replacingOccurrences(of: "\n", with: "\\n"))\"]"]))]))
        try e.submit(jobSet: "oom")
        let st = try f.wait(e, "oom", timeout: 150)
        let h = try #require(st.shards?.first?.history)
        #expect(h.first?.failureClass == .outOfMemory, "\(h.map { "\($0.state) \($0.failureClass?.rawValue ?? "-") \($0.reason ?? "")" })")
        #expect(h.first?.reason?.contains("memory limit") == true)
        #expect(h.count == 2 && h.last?.memoryMB == 240 && h.last?.state == .succeeded,
                "\(h.map { "\($0.state) \($0.memoryMB) \($0.reason ?? "")" })")
    }
}
