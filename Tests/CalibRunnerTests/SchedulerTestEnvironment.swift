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

    /// Whether the shared cluster under `prefix` enforces memory as farms do (scripts/test.sh starts both with
    /// SLURM_UP_ENFORCE_MEMORY=1 / CONDOR_UP_ENFORCE_MEMORY=1); records a failure saying how to fix it when not.
    static func enforcesMemory(_ prefix: String, slurm: Bool, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let (file, marker) = slurm ? (prefix + "/etc/slurm.conf", "OverMemoryKill")
            : (prefix + "/root/etc/condor/config.d/99-calibctl-test.config", "HOLD_IF_MEMORY_EXCEEDED")
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        if text.contains(marker) { return true }
        let (script, knob) = slurm ? ("slurm", "SLURM_UP_ENFORCE_MEMORY") : ("condor", "CONDOR_UP_ENFORCE_MEMORY")
        Issue.record("""
            the test \(slurm ? "Slurm" : "HTCondor") under \(prefix) does not enforce memory (no \(marker) in \(file)):             start it as scripts/test.sh does, \(knob)=1 scripts/\(script)-up.sh \(prefix)
            """, sourceLocation: sourceLocation)
        return false
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
