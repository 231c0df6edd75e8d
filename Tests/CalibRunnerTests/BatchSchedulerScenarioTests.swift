@testable import CalibRunner
import CalibCore
import CalibTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The scenario suite against REAL Slurm and HTCondor. Each test starts a PRIVATE instance with the project's scripts
/// (so making a job vanish — a cold-started controller / a lost job queue — touches no other test's jobs). They run
/// when scripts/test.sh has verified the batch systems (CALIBCTL_TEST_SLURM / CALIBCTL_TEST_CONDOR set); without
/// that they fail with a message, unless CALIBCTL_SKIP_SCHEDULERS=1 skips them explicitly.
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["CALIBCTL_SKIP_SCHEDULERS"] != "1",
                             "real-scheduler test skipped: CALIBCTL_SKIP_SCHEDULERS=1"))
struct BatchSchedulerScenarioTests {
    static let env = ProcessInfo.processInfo.environment

    static func required(_ variable: String, _ what: String) -> Bool {
        guard let v = env[variable], !v.isEmpty else {
            let script = what == "Slurm" ? "slurm" : "condor"
            let text = "\(variable) is not set: no real \(what) to test against. Run the tests with scripts/test.sh, "
                + "or start one with scripts/\(script)-up.sh PREFIX and export \(variable)=PREFIX; "
                + "CALIBCTL_SKIP_SCHEDULERS=1 skips these tests explicitly."
            Issue.record(Comment(rawValue: text))
            return false
        }
        return true
    }

    /// Runs scripts/NAME with posix_spawn + waitpid (output to a file: the daemons a script starts keep inheriting
    /// whatever it had open, and Foundation's Process was seen never to reap such a script).
    @discardableResult
    static func script(_ name: String, _ args: [String]) throws -> String {
        let log = NSTemporaryDirectory() + "calibctl-script-\(UUID().uuidString.prefix(8)).log"
        defer { try? FileManager.default.removeItem(atPath: log) }
        var o = Spawn.Options()
        o.stdoutPath = log
        o.stderrPath = log
        let pid = try Spawn.spawn(["/bin/bash", TestPaths.packageRoot + "/scripts/" + name] + args, o)
        var status: Int32 = 0
        var rc: pid_t
        repeat { rc = waitpid(pid, &status, 0) } while rc < 0 && errno == EINTR
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        let (code, sig) = Spawn.decode(waitStatus: status)
        guard rc == pid, code == 0 else {
            throw SchedulerError(scheduler: "test", operation: "scripts/\(name)",
                                 detail: "exit \(code.map(String.init) ?? "signal \(sig ?? 0)"): \(text)")
        }
        return text
    }

    @Test(.timeLimit(.minutes(8))) func slurmScenarioSuite() throws {
        guard Self.required("CALIBCTL_TEST_SLURM", "Slurm") else { return }
        let prefix = "/tmp/calibctl-runner-slurm-\(UUID().uuidString.prefix(8).lowercased())"
        try Self.script("slurm-up.sh", [prefix])
        let conf = prefix + "/etc/slurm.conf"
        // The workers run calibctl's worker-node binary (the release build), as a farm does.
        let worker = try WorkerBinary.path()
        let h = SchedulerHarness(
            name: "slurm",
            make: { _ in
                SlurmScheduler(tools: SchedulerTools(environment: ["SLURM_CONF": conf], timeoutSeconds: 30),
                               minimumPollInterval: 0)
            },
            vanish: { _, _, _ in
                // The controller loses its state (cold start without it): the job is unknown everywhere.
                try Self.script("slurm-restart-controller.sh", [prefix, "--forget-jobs"])
            },
            timeout: 420,
            workerCommand: [worker, "job", "run"],
            cleanup: { _ = try? Self.script("slurm-down.sh", [prefix, "--purge"]) })
        try SchedulerScenarios.run(h)
    }

    @Test(.timeLimit(.minutes(8))) func htcondorScenarioSuite() throws {
        guard Self.required("CALIBCTL_TEST_CONDOR", "HTCondor") else { return }
        let prefix = "/tmp/calibctl-runner-condor-\(UUID().uuidString.prefix(8).lowercased())"
        try Self.script("condor-up.sh", [prefix])
        let envText = (try? String(contentsOfFile: prefix + "/env.sh", encoding: .utf8)) ?? ""
        let userName = envText.split(separator: "\n").first { $0.hasPrefix("export CALIBCTL_CONDOR_USER=") }
            .map { String($0.dropFirst("export CALIBCTL_CONDOR_USER=".count)) } ?? "calibtest"
        let (uid, gid) = try #require(OSUser.ids(userName))
        let home = prefix + "/shared/ws"
        // Jobs run inside the pool's chroot as its user: the worker-node binary is deployed to the pool's shared
        // directory, as a site deploys it to a shared file system (one file; the chroot has its OS libraries).
        let worker = try WorkerBinary.deploy(to: prefix + "/shared/calibctl-worker")
        let chownAll = { @Sendable (path: String) in
            _ = try? runProcess("/bin/chown", ["-R", "\(uid):\(gid)", path])
        }
        let h = SchedulerHarness(
            name: "htcondor",
            make: { _ in
                HTCondorScheduler(tools: SchedulerTools(binDirectory: prefix + "/bin", timeoutSeconds: 30),
                                  minimumPollInterval: 0)
            },
            vanish: { _, _, _ in
                // The schedd loses its spool (job queue and history), as after a disk loss: the job is unknown
                // everywhere. (condor-down.sh removes live jobs first; losing the history drops that record too.
                // Every other shard is final in calibctl's database by now, so only this job is affected.)
                try Self.script("condor-down.sh", [prefix])
                let spool = prefix + "/root/var/spool/condor/"
                for f in (try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []
                where f.hasPrefix("job_queue.log") || f.hasPrefix("history") {
                    try FileManager.default.removeItem(atPath: spool + f)
                }
                try Self.script("condor-up.sh", [prefix])
            },
            timeout: 420,
            home: { home },
            workerCommand: [worker, "job", "run"],
            prepare: { ws, set in
                try FileManager.default.createDirectory(atPath: ws.jobsDirectory + "/\(set)/scheduler",
                                                        withIntermediateDirectories: true)
                chownAll(ws.home)
            },
            cleanup: { _ = try? Self.script("condor-down.sh", [prefix, "--purge"]) },
            queueCheck: {
                // The time-limited first attempt was held by HTCondor; the engine must have removed it.
                let q = try runProcess(prefix + "/bin/condor_q", ["-allusers", "-af:j", "JobStatus", "HoldReason"],
                                       currentDirectory: home)
                #expect(q.status == 0, "\(q.stderr)")
                let held = q.stdout.split(separator: "\n").filter { $0.split(separator: " ").dropFirst().first == "5" }
                #expect(held.isEmpty, "held jobs left in the queue: \(held)")
            })
        try SchedulerScenarios.run(h)
    }
}
