@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// Issue 14, defect 5 for real: a private HTCondor pool with the farm's memory policy (`use POLICY :
/// HOLD_IF_MEMORY_EXCEEDED`, scripts/condor-up.sh with CONDOR_UP_ENFORCE_MEMORY=1, started from the chroot cache in
/// ~11 s; the shared test pool is not touched). A job that uses 200 MB with 50 MB requested is held by the startd
/// (code 21, subcode 102): calibctl sees out-of-memory, not `held` forever.
@Suite(.enabled(if: !SchedulerTestEnvironment.skipRequested, SchedulerTestEnvironment.skipComment))
struct HTCondorFarmTests {
    typealias Env = SchedulerTestEnvironment

    @Test(.timeLimit(.minutes(4))) func memoryPolicyHoldIsOutOfMemory() throws {
        guard Env.prefix("CALIBCTL_TEST_CONDOR", what: "HTCondor") != nil else { return }
        let tmp = TemporaryDirectory("condor-oom")
        let prefix = tmp.path + "/condor"
        let up = try runProcess("/bin/bash", [TestPaths.packageRoot + "/scripts/condor-up.sh", prefix],
                                environment: ["CONDOR_UP_ENFORCE_MEMORY": "1", "CONDOR_UP_PORT": "9718"])
        defer { _ = try? runProcess("/bin/bash", [TestPaths.packageRoot + "/scripts/condor-down.sh", prefix, "--purge"]) }
        try #require(up.status == 0, "\(up.stderr)")
        let dir = try HTCondorSchedulerTests.sharedDirectory(prefix)
        let condor = HTCondorScheduler(tools: SchedulerTools(binDirectory: prefix + "/bin", timeoutSeconds: 30),
                                       minimumPollInterval: 0)
        let hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 60"
        let sub = Submission(jobSetID: "oom", name: Env.uniqueName("condor-oom"), shards: [
            Env.shard(0, ["/bin/sh", "-c", hog], in: dir, memoryMB: 50),
            Env.shard(1, ["/bin/true"], in: dir, memoryMB: 50),
        ], directory: dir)
        let ids = try condor.submit(sub)
        let final = try Env.pollUntil(condor, Array(ids.values), timeout: 120, every: 2, Env.allFinal)
        let o = try #require(final[ids[0]!])
        #expect(o.state == .failed && o.failureClass == .outOfMemory, "\(o)")
        #expect(o.reason?.contains("memory usage exceeded request_memory") == true, "\(o)")
        #expect(final[ids[1]!]?.state == .succeeded)
        try condor.cancel([ids[0]!])
    }
}
