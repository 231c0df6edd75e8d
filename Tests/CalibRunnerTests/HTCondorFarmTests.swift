@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// Issue 14, defect 5 for real, on the shared test pool: scripts/test.sh starts it with the farm's memory policy
/// (CONDOR_UP_ENFORCE_MEMORY=1: `use POLICY : HOLD_IF_MEMORY_EXCEEDED`, memory measured every 2 s). A job that uses
/// 200 MB with 50 MB requested is held by the startd (code 21, subcode 102): calibctl sees out-of-memory, not `held`
/// forever.
@Suite(.enabled(if: !SchedulerTestEnvironment.skipRequested, SchedulerTestEnvironment.skipComment))
struct HTCondorFarmTests {
    typealias Env = SchedulerTestEnvironment

    @Test(.timeLimit(.minutes(4))) func memoryPolicyHoldIsOutOfMemory() throws {
        guard let prefix = Env.prefix("CALIBCTL_TEST_CONDOR", what: "HTCondor"),
              Env.enforcesMemory(prefix, slurm: false) else { return }
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
