@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// HTCondorScheduler against a REAL HTCondor pool (scripts/condor-up.sh; CALIBCTL_TEST_CONDOR=PREFIX, set by
/// scripts/test.sh). HTCondor refuses root-owned jobs: the pool's wrappers (PREFIX/bin) run the tools as the test user,
/// and every submission directory is inside PREFIX/shared, owned by that user.
@Suite(.enabled(if: !SchedulerTestEnvironment.skipRequested, SchedulerTestEnvironment.skipComment))
struct HTCondorSchedulerTests {
    typealias Env = SchedulerTestEnvironment

    /// The pool's test user (PREFIX/env.sh says which; `calibtest` by default).
    static func poolUser(_ prefix: String) -> (uid: uid_t, gid: gid_t)? {
        let envFile = (try? String(contentsOfFile: prefix + "/env.sh", encoding: .utf8)) ?? ""
        let name = envFile.split(separator: "\n").first { $0.hasPrefix("export CALIBCTL_CONDOR_USER=") }
            .map { String($0.dropFirst("export CALIBCTL_CONDOR_USER=".count)) } ?? "calibtest"
        return OSUser.ids(name)
    }

    /// A fresh directory inside the pool's shared directory, owned by the pool's user.
    static func sharedDirectory(_ prefix: String) throws -> String {
        let dir = "\(prefix)/shared/test-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let user = try #require(poolUser(prefix), "the HTCondor test user of \(prefix) does not exist on this host")
        #expect(chown(dir, user.uid, user.gid) == 0)
        return dir
    }

    func scheduler(_ prefix: String, extra: [String] = []) -> HTCondorScheduler {
        HTCondorScheduler(tools: SchedulerTools(binDirectory: prefix + "/bin", timeoutSeconds: 30),
                          extraSubmitLines: extra)
    }

    /// Success, exit 3, kill -9, time limit (allowed_job_duration -> hold 46), cancelled, condor_hold, output
    /// redirection and an unknown id, all in one cluster; then the removed jobs are read back from condor_history.
    @Test(.timeLimit(.minutes(4))) func everyOutcomeOfRealJobs() throws {
        guard let prefix = Env.prefix("CALIBCTL_TEST_CONDOR", what: "HTCondor") else { return }
        let dir = try Self.sharedDirectory(prefix)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let condor = scheduler(prefix)
        let sub = Submission(jobSetID: "set-\(UUID().uuidString.prefix(6))", name: Env.uniqueName("condor-mixed"), shards: [
            Env.shard(0, ["/bin/true"], in: dir),
            Env.shard(1, ["/bin/sh", "-c", "exit 3"], in: dir),
            Env.shard(2, ["/bin/sh", "-c", "kill -9 $$"], in: dir),
            Env.shard(3, ["/bin/sleep", "300"], in: dir, seconds: 4),
            Env.shard(4, ["/bin/sleep", "300"], in: dir),
            Env.shard(5, ["/bin/echo", "hello from shard 5", "it's quoted"], in: dir),
            Env.shard(6, ["/bin/sleep", "300"], in: dir),
        ], directory: dir)
        let ids = try condor.submit(sub)
        #expect(ids.count == 7)
        let cluster = try #require(ids[0]).split(separator: ".")[0]
        #expect(ids[6] == "\(cluster).6")
        #expect(try condor.findSubmitted(sub) == ids)
        let unknown = Submission(jobSetID: "x", name: Env.uniqueName("never-submitted"), shards: sub.shards, directory: dir)
        #expect(try condor.findSubmitted(unknown).isEmpty)

        let id3 = ids[3]!, id4 = ids[4]!, id6 = ids[6]!
        let started = try Env.pollUntil(condor, [id4, id6], timeout: 60) { v in v.values.allSatisfy { $0.state == .running } }
        #expect(started[id4]?.state == .running && started[id6]?.state == .running)
        try condor.cancel([id4])
        let hold = try condor.tools.run("condor_hold", [id6], scheduler: "htcondor", operation: "test hold")
        #expect(hold.status == 0, "\(hold.stderr)")

        let all = Array(ids.values) + ["99999.0"]
        let view = try Env.pollUntil(condor, all, timeout: 90) { v in
            v.filter { $0.key != id6 }.values.allSatisfy { $0.state.isFinal } && v[id6]?.state == .held
        }
        func check(_ id: String?, _ state: JobState, _ cls: FailureClass?, sourceLocation: SourceLocation = #_sourceLocation) {
            let job = id.flatMap { view[$0] }
            #expect(job?.state == state, "\(id ?? "nil"): \(String(describing: job))", sourceLocation: sourceLocation)
            #expect(job?.failureClass == cls, "\(id ?? "nil")", sourceLocation: sourceLocation)
        }
        check(ids[0], .succeeded, nil)
        check(ids[1], .failed, .userError)
        #expect(view[ids[1]!]?.exitCode == 3)
        check(ids[2], .failed, .nodeFailure)
        #expect(view[ids[2]!]?.signal == 9)
        check(id3, .failed, .timeLimit)
        #expect(view[id3]?.reason?.contains("allowed job duration") == true)
        check(id4, .cancelled, .cancelled)
        check(ids[5], .succeeded, nil)
        check(id6, .held, nil)
        #expect(view[id6]?.reason?.contains("condor_hold") == true)
        check("99999.0", .lost, .lost)
        let out = try String(contentsOfFile: sub.shards[5].stdoutPath, encoding: .utf8)
        #expect(out == "hello from shard 5 it's quoted\n")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/\(sub.name).log"))  // the user event log

        // Remove the held ones; once out of the queue they are read from condor_history.
        try condor.cancel([id3, id6])
        try condor.cancel(["99999.0"])  // unknown ids are not an error
        let gone = try Env.pollUntil(condor, [id3, id6], timeout: 60) { v in v[id6]?.state == .cancelled }
        #expect(gone[id6]?.state == .cancelled)
        #expect(gone[id3]?.state == .failed && gone[id3]?.failureClass == .timeLimit)
    }

    /// A job vanishes for real: on a private pool (so other tests' jobs are untouched) the schedd is stopped, its job
    /// queue (spool/job_queue.log) deleted, and started again, as after losing its spool. An idle job is then unknown
    /// to condor_q and condor_history -> lost; a job that had finished is still found in condor_history.
    @Test(.timeLimit(.minutes(4))) func vanishedJobIsLostAndFinishedJobComesFromHistory() throws {
        guard Env.prefix("CALIBCTL_TEST_CONDOR", what: "HTCondor") != nil else { return }
        let prefix = "/tmp/calibctl-condor-private-\(UUID().uuidString.prefix(8).lowercased())"
        try Env.script("condor-up.sh", [prefix])
        defer { _ = try? Env.script("condor-down.sh", [prefix, "--purge"]) }
        let dir = try Self.sharedDirectory(prefix)
        let condor = scheduler(prefix)
        let idle = scheduler(prefix, extra: ["requirements = False"])

        let done = Submission(jobSetID: "vanish", name: Env.uniqueName("condor-done"),
                              shards: [Env.shard(0, ["/bin/true"], in: dir)], directory: dir)
        let doneID = try #require(try condor.submit(done)[0])
        let finished = try Env.pollUntil(condor, [doneID], timeout: 90, Env.allFinal)
        #expect(finished[doneID]?.state == .succeeded)
        let waiting = Submission(jobSetID: "vanish", name: Env.uniqueName("condor-idle"),
                                 shards: [Env.shard(0, ["/bin/true"], in: dir)], directory: dir)
        let idleID = try #require(try idle.submit(waiting)[0])
        #expect(try condor.poll([idleID])[idleID]?.state == .pending)

        try Env.script("condor-down.sh", [prefix, "--keep-jobs"])
        let queue = prefix + "/root/var/spool/condor/job_queue.log"
        #expect(FileManager.default.fileExists(atPath: queue))
        try FileManager.default.removeItem(atPath: queue)
        try Env.script("condor-up.sh", [prefix])

        let after = try condor.poll([doneID, idleID])
        #expect(after[doneID]?.state == .succeeded)
        #expect(after[idleID]?.state == .lost)
        #expect(after[idleID]?.failureClass == .lost)
        #expect(try condor.findSubmitted(done) == [0: doneID])  // found by name in condor_history
    }
}

/// HTCondor adapter behaviour that needs no running pool (runs even with CALIBCTL_SKIP_SCHEDULERS=1).
@Suite struct HTCondorAdapterOfflineTests {
    @Test func submitFileHasOneQueueStatementAndTheTags() {
        let shards = (0..<3).map {
            ShardRequest(index: $0 * 2, command: ["/bin/true"], workDirectory: "/w", stdoutPath: "/w/o\($0)",
                         stderrPath: "/w/e\($0)", memoryMB: 100 * ($0 + 1), timeLimitSeconds: $0 == 1 ? 0 : 60)
        }
        let sub = Submission(jobSetID: "js-1", name: "js-1-a1", shards: shards, directory: "/w/sub")
        let text = HTCondorScheduler().submitFile(sub, scriptPath: "/w/sub/js-1-a1.sh")
        #expect(text.components(separatedBy: "\nqueue ").count == 2)
        #expect(text.contains("+CalibJobSet = \"js-1\""))
        #expect(text.contains("JobBatchName = js-1-a1"))
        #expect(text.contains("+CalibShard = $(CalibShardIndex)"))
        #expect(text.contains("\n0, 100, 60\n2, 200, \(HTCondorScheduler.noTimeLimitSeconds)\n4, 300, 60\n)"))
    }

    @Test func directoriesHTCondorWouldExpandAreRefused() {
        let sub = Submission(jobSetID: "a", name: "b", shards: [
            ShardRequest(index: 0, command: ["/bin/true"], workDirectory: "/w", stdoutPath: "/w/o", stderrPath: "/w/e",
                         memoryMB: 1, timeLimitSeconds: 1),
        ], directory: "/tmp/$(Cluster)")
        let condor = HTCondorScheduler(tools: SchedulerTools(binDirectory: "/nonexistent"))
        #expect(throws: SchedulerError.self) { try condor.submit(sub) }
    }
}
