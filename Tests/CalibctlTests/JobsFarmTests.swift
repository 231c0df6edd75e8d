import CalibIO
import CalibTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Issue 14 through the CLI: refusals and exit codes, a killed `jobs submit` with a slow sbatch, `status --history`
/// in text, `--json` times, `jobs delete`, `jobs retry` and the attempt cap. Slurm is `FakeSlurm` (scripted tools).
@Suite struct JobsFarmTests {
    func run(_ ws: JobsWorkspace, _ args: [String], _ env: [String: String] = [:]) throws -> ProcessResult {
        try calibctl(args + ["--home", ws.home], environment: ["CALIBCTL_LOCAL_GRACE": "1"].merging(env) { _, b in b })
    }

    /// Defect 3: `jobs submit` refused by Slurm exits 65 naming the refusal and Slurm's message; the shards are
    /// failed (launch-failure) and ticks neither resubmit nor exit 69. Unreachable: 69, and the next tick submits.
    @Test func refusalExits65AndTicksDoNotRetryIt() throws {
        let ws = JobsWorkspace()
        let fake = try FakeSlurm()
        var env = ["CALIBCTL_SLURM_BIN": fake.bin, "CALIBCTL_POLL_INTERVAL": "0", "FAKE_SBATCH_MODE": "refuse"]
        #expect(try run(ws, ["jobs", "create", "r", "--scheduler", "slurm", "--shards", "2", "--shell", "true"], env).status == 0)
        let sub = try run(ws, ["jobs", "submit", "r"], env)
        #expect(sub.status == 65, "\(sub.stderr)")
        #expect(sub.stderr.contains("refused") && sub.stderr.contains("Invalid partition name specified"), "\(sub.stderr)")
        let t = try run(ws, ["tick"], env)
        #expect(t.status == 0, "\(t.stderr)")
        #expect(fake.calls("sbatch").count == 1)
        let st = try run(ws, ["jobs", "status", "r"], env)
        #expect(st.status == 1)
        #expect(st.stdout.contains("launch-failure") && st.stdout.contains("Invalid partition name"), "\(st.stdout)")

        env["FAKE_SBATCH_MODE"] = "unreachable"
        #expect(try run(ws, ["jobs", "create", "u", "--scheduler", "slurm", "--shards", "1", "--shell", "true"], env).status == 0)
        let u = try run(ws, ["jobs", "submit", "u"], env)
        #expect(u.status == 69 && u.stderr.contains("transient"), "\(u.stderr)")
        #expect(try run(ws, ["tick"], env).status == 69)
        env["FAKE_SBATCH_MODE"] = nil
        #expect(try run(ws, ["tick"], env).status == 0)
        #expect(try ws.status("u")["counts"].flatMap { ($0 as? [String: Int])?["pending"] } == 1)
    }

    /// Defect 6: `jobs submit` is SIGKILLed while its sbatch is still running (a slow controller), and a tick follows
    /// at once. The orphaned sbatch must not submit a second array: every shard is submitted exactly once.
    @Test func killedSubmitWithSlowSbatchSubmitsOnce() throws {
        let ws = JobsWorkspace()
        let fake = try FakeSlurm()
        let env = ["CALIBCTL_SLURM_BIN": fake.bin, "CALIBCTL_POLL_INTERVAL": "0", "FAKE_SBATCH_SLEEP": "2"]
        #expect(try run(ws, ["jobs", "create", "slow", "--scheduler", "slurm", "--shards", "3", "--shell", "true"], env).status == 0)
        let p = try startCalibctl(["jobs", "submit", "slow", "--home", ws.home], environment: env)
        let t0 = Date()
        while fake.calls("sbatch").isEmpty && Date().timeIntervalSince(t0) < 20 { usleep(20_000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        // The tick right after (its own sbatch is slow too).
        let t = try run(ws, ["tick"], env)
        #expect(t.status == 0 || t.status == 69, "\(t.stderr)")
        Thread.sleep(forTimeInterval: 3)  // an orphaned sbatch would have finished by now
        _ = try run(ws, ["tick"], env)
        let arrays = Set(fake.jobs.map { $0.split(separator: "|")[2] })
        #expect(arrays.count == 1, "\(fake.jobs)")
        #expect(try ws.status("slow")["counts"].flatMap { ($0 as? [String: Int])?["pending"] } == 3)
    }

    /// Issue 14: `jobs submit` of six arrays (MaxArraySize 10, 55 shards), four sbatch calls at a time, SIGKILLed
    /// after the first four arrays were accepted (but not recorded) and while the last two are in flight; a tick
    /// follows at once. Every array is submitted exactly once: the accepted ones are found by their names, the
    /// killed ones (their sbatch died with calibctl) are submitted again by the tick, and all 55 shards are pending.
    @Test func killedConcurrentSubmitOfSeveralArraysSubmitsEachOnce() throws {
        let ws = JobsWorkspace()
        let fake = try FakeSlurm(maxArraySize: 10)
        let env = ["CALIBCTL_SLURM_BIN": fake.bin, "CALIBCTL_POLL_INTERVAL": "0", "FAKE_SBATCH_SLEEP": "1.5"]
        #expect(try run(ws, ["jobs", "create", "many", "--scheduler", "slurm", "--shards", "55", "--shell", "true"], env).status == 0)
        let p = try startCalibctl(["jobs", "submit", "many", "--home", ws.home], environment: env)
        let t0 = Date()
        func accepted() -> Int { fake.calls("submitted").count }
        while (accepted() < 4 || fake.calls("sbatch").count < 6) && Date().timeIntervalSince(t0) < 30 { usleep(10_000) }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        #expect(accepted() == 4, "kill came too late: \(accepted()) arrays accepted")
        let t = try run(ws, ["tick"], env)
        #expect(t.status == 0 || t.status == 69, "\(t.stderr)")
        Thread.sleep(forTimeInterval: 2)  // an orphaned sbatch would have finished by now
        _ = try run(ws, ["tick"], env)
        let names = fake.calls("sbatch").compactMap { $0.split(separator: " ").first { $0.hasPrefix("--job-name=") }?.dropFirst(11) }
        let submitted = Set(fake.jobs.map { $0.split(separator: "|")[8] })
        #expect(fake.calls("submitted").count == 6, "\(names)")
        #expect(submitted.count == 6 && Set(names) == submitted, "\(names)")
        #expect(try ws.status("many")["counts"].flatMap { ($0 as? [String: Int])?["pending"] } == 55)
    }

    /// Defects 8 and 9: `status --history` lists attempts in text; `--json` is schema 2 with sub-second times;
    /// `jobs retry` stops at the attempt cap unless --force; `jobs delete` frees the name and keeps the files.
    @Test func historyJsonRetryCapAndDelete() throws {
        let ws = JobsWorkspace()
        #expect(try run(ws, ["jobs", "create", "h", "--shards", "1", "--shell", "exit 3", "--submit"]).status == 0)
        try ws.tickUntilFinished("h")
        for _ in 0..<5 {
            _ = try run(ws, ["jobs", "retry", "h"])
            try ws.tickUntilFinished("h")
        }
        let capped = try run(ws, ["jobs", "retry", "h"])
        #expect(capped.stdout.contains("retried 0 shard(s)"), "\(capped.stdout)")
        #expect(capped.stderr.contains("attempt cap"), "\(capped.stderr)")
        let text = try run(ws, ["jobs", "status", "h", "--history"])
        #expect(text.stdout.contains("attempt 1 failed user-error [submit]"), "\(text.stdout)")
        #expect(text.stdout.contains("attempt 5 failed user-error [retry]"), "\(text.stdout)")
        let json = try ws.status("h")
        #expect(json["schemaVersion"] as? Int == 2)
        let created = try #require(json["created"] as? String)
        #expect(created.contains("."), "\(created)")  // fractional seconds
        #expect(try run(ws, ["jobs", "retry", "h", "--force"]).stdout.contains("retried 1 shard(s)"))
        try ws.tickUntilFinished("h")

        let del = try run(ws, ["jobs", "delete", "h"])
        #expect(del.status == 0, "\(del.stderr)")
        #expect(del.stdout.contains("moved to"))
        #expect(FileManager.default.fileExists(atPath: ws.home + "/jobs/.deleted"))
        #expect(try run(ws, ["jobs", "create", "h", "--shards", "1", "--shell", "true"]).status == 0)
        // A live job set is refused (65).
        #expect(try run(ws, ["jobs", "create", "live", "--shards", "1", "--shell", "sleep 30", "--submit"]).status == 0)
        let refused = try run(ws, ["jobs", "delete", "live"])
        #expect(refused.status == 65 && refused.stderr.contains("live shard"), "\(refused.stderr)")
        _ = try run(ws, ["jobs", "cancel", "live"])
    }
}
