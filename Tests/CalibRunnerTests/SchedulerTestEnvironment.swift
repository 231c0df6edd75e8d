@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// Where the real schedulers started by scripts/test.sh are, for the adapter tests.
///
/// scripts/test.sh runs scripts/slurm-up.sh and scripts/condor-up.sh and exports CALIBCTL_TEST_SLURM and
/// CALIBCTL_TEST_CONDOR (their prefixes). Without them the adapter tests FAIL with a message saying so, unless
/// CALIBCTL_SKIP_SCHEDULERS=1 asks to skip them (reported as skipped, with that reason).
enum SchedulerTestEnvironment {
    static let environment = ProcessInfo.processInfo.environment
    static let skipRequested = environment["CALIBCTL_SKIP_SCHEDULERS"] == "1"
    static let skipComment: Comment = "real-scheduler test skipped: CALIBCTL_SKIP_SCHEDULERS=1"

    /// The prefix in `variable`, or a recorded failure explaining how to provide it.
    static func prefix(_ variable: String, what: String, sourceLocation: SourceLocation = #_sourceLocation) -> String? {
        guard let p = environment[variable], !p.isEmpty else {
            Issue.record("""
                \(variable) is not set, so there is no real \(what) to test against. Run the tests with scripts/test.sh \
                (it starts \(what) on loopback and sets \(variable)), or start one with scripts/\(what == "Slurm" ? "slurm" : "condor")-up.sh PREFIX \
                and export \(variable)=PREFIX; set CALIBCTL_SKIP_SCHEDULERS=1 to skip these tests explicitly.
                """, sourceLocation: sourceLocation)
            return nil
        }
        return p
    }

    /// Runs one of the project's scripts (scripts/NAME) and fails the test with its stderr when it fails.
    @discardableResult
    static func script(_ name: String, _ arguments: [String]) throws -> ProcessResult {
        let r = try runProcess("/bin/bash", [TestPaths.packageRoot + "/scripts/" + name] + arguments)
        if r.status != 0 {
            Issue.record("scripts/\(name) \(arguments.joined(separator: " ")) exited \(r.status): \(r.stderr)")
            throw SchedulerError(scheduler: "test", operation: name, detail: r.stderr)
        }
        return r
    }

    /// Polls `scheduler` until `done` holds for the observed jobs or `timeout` seconds pass; returns the last view.
    static func pollUntil(_ scheduler: any BatchScheduler, _ ids: [String], timeout: Double, every: Double = 1,
                          _ done: ([String: ObservedJob]) -> Bool) throws -> [String: ObservedJob] {
        let deadline = Date().addingTimeInterval(timeout)
        var last = try scheduler.poll(ids)
        while !done(last) && Date() < deadline {
            Thread.sleep(forTimeInterval: every)
            last = try scheduler.poll(ids)
        }
        return last
    }

    static func allFinal(_ jobs: [String: ObservedJob]) -> Bool { jobs.values.allSatisfy { $0.state.isFinal } }

    /// A shard running `command` whose files live in `directory`.
    static func shard(_ index: Int, _ command: [String], in directory: String, memoryMB: Int = 64,
                      seconds: Int = 600) -> ShardRequest {
        ShardRequest(index: index, command: command, workDirectory: directory,
                     stdoutPath: "\(directory)/shard-\(index).out", stderrPath: "\(directory)/shard-\(index).err",
                     memoryMB: memoryMB, timeLimitSeconds: seconds)
    }

    /// A short unique name for a submission.
    static func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())" }
}
