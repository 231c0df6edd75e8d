import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// The tick tests of issue 6: double run, kill in the middle, lock held, stale lock; and kills of `jobs submit`.
@Suite(.serialized) struct JobsTickTests {
    /// Lines in a shard's `runs` file = how many times its command really ran.
    static func runs(_ w: JobsWorkspace, _ set: String, _ n: Int) -> [Int] {
        (0..<n).map { i in
            let t = (try? String(contentsOfFile: "\(w.home)/jobs/\(set)/shard-\(i)/runs", encoding: .utf8)) ?? ""
            return t.split(separator: "\n").count
        }
    }

    @Test func secondTickChangesNothing() throws {
        let w = JobsWorkspace()
        #expect(try w.run(["jobs", "create", "d", "--shards", "5", "--shell", "echo x >> {dir}/runs; [ {index} -ne 4 ] || exit 2",
                           "--submit"]).status == 0)
        let s = try w.tickUntilFinished("d")
        #expect(s["finished"] as? Bool == true)
        let before = try w.attempts()
        let t1 = try w.run(["tick"])
        let t2 = try w.run(["tick", "--json"])
        #expect(t1.status == 0 && t2.status == 0)
        #expect(try w.attempts() == before)
        let rep = try JSONSerialization.jsonObject(with: t2.stdoutData) as? [String: Any]
        let u = rep?["update"] as? [String: Any]
        #expect(u?["transitions"] as? Int == 0 && u?["submitted"] as? Int == 0 && u?["retried"] as? Int == 0)
        #expect(Self.runs(w, "d", 5) == [1, 1, 1, 1, 1])
    }

    @Test func lockHeldExits75WithOneLine() throws {
        let w = JobsWorkspace()
        try FileManager.default.createDirectory(atPath: w.home, withIntermediateDirectories: true)
        // A live holder: flock taken and its record written, like a running tick.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: TestPaths.python)
        holder.arguments = ["-c", """
            import fcntl, os, socket, sys, time
            f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX)
            f.truncate(0); f.write(f"{os.getpid()} {socket.gethostname()} 0 {time.time()}\\n"); f.flush()
            print('held', flush=True); time.sleep(30)
            """, w.home + "/tick.lock"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        _ = out.fileHandleForReading.availableData  // "held"
        let t = try w.run(["tick"])
        #expect(t.status == 75)
        #expect(t.stdout.isEmpty)
        let lines = t.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines.first?.contains("another tick holds") == true
                && lines.first?.contains("pid \(holder.processIdentifier)") == true, "\(t.stderr)")
    }

    @Test func staleLockOfDeadTickIsTakenOver() throws {
        let w = JobsWorkspace()
        try FileManager.default.createDirectory(atPath: w.home, withIntermediateDirectories: true)
        let dead = try startCalibctl(["--version"])
        dead.waitUntilExit()
        let host = ProcessInfo.processInfo.hostName
        // 1. An unlocked file naming a dead tick (it was SIGKILLed): taken over, said so.
        try Data("\(dead.processIdentifier) \(host) 12345 1700000000\n".utf8).write(to: URL(fileURLWithPath: w.home + "/tick.lock"))
        let t = try w.run(["tick"])
        #expect(t.status == 0, "\(t.stderr)")
        #expect(t.stdout.contains("took over a stale tick lock (pid \(dead.processIdentifier) on \(host)"), "\(t.stdout)")
        // 2. A lock still flocked (as a dead NFS client's lock can be) whose recorded holder is dead on this host.
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: TestPaths.python)
        holder.arguments = ["-c", """
            import fcntl, sys, time
            f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX)
            f.truncate(0); f.write(sys.argv[2]); f.flush(); print('held', flush=True); time.sleep(30)
            """, w.home + "/tick.lock", "\(dead.processIdentifier) \(host) 12345 1700000000\n"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { kill(holder.processIdentifier, SIGKILL); holder.waitUntilExit() }
        _ = out.fileHandleForReading.availableData
        let t2 = try w.run(["tick"])
        #expect(t2.status == 0 && t2.stdout.contains("took over a stale tick lock"), "\(t2.stderr)")
        // 3. After a normal tick the lock is free and names nobody.
        #expect(try String(contentsOfFile: w.home + "/tick.lock", encoding: .utf8).isEmpty)
    }

    /// SIGKILL `jobs submit` at seeded random moments; after recovery each shard has exactly one attempt and ran once.
    @Test func killedSubmitNeitherLosesNorDuplicates() throws {
        let w = JobsWorkspace()
        var rng = SplitMix64(seed: 6)
        let n = 12
        for trial in 0..<6 {
            let name = "k\(trial)"
            #expect(try w.run(["jobs", "create", name, "--shards", String(n), "--shell", "echo x >> {dir}/runs"]).status == 0)
            let p = try startCalibctl(["jobs", "submit", name, "--home", w.home])
            Thread.sleep(forTimeInterval: 0.01 + 0.15 * rng.nextUniform())
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // Recovery: repeat the submit (idempotent), then tick until done.
            #expect(try w.run(["jobs", "submit", name]).status == 0)
            let s = try w.tickUntilFinished(name)
            #expect(s["counts"] as? [String: Int] == ["succeeded": n], "trial \(trial): \(s)")
            #expect(Self.runs(w, name, n) == Array(repeating: 1, count: n), "trial \(trial)")
            let shards = s["shards"] as? [[String: Any]] ?? []
            #expect(shards.allSatisfy { $0["attempts"] as? Int == 1 }, "trial \(trial)")
        }
    }

    /// SIGKILL `tick` at seeded random moments while it records failures and submits retries; after more ticks each
    /// shard has exactly two attempts (the node failure and one retry), one live attempt at most at any time, and the
    /// retry ran exactly once.
    @Test func killedTickNeitherLosesNorDuplicates() throws {
        let w = JobsWorkspace()
        var rng = SplitMix64(seed: 75)
        let n = 10
        for trial in 0..<4 {
            let name = "t\(trial)"
            #expect(try w.run(["jobs", "create", name, "--shards", String(n), "--shell",
                               "if [ {attempt} -eq 1 ]; then kill -9 $$; fi; echo x >> {dir}/runs", "--submit"]).status == 0)
            Thread.sleep(forTimeInterval: 1.0)  // let attempt 1 die everywhere
            for _ in 0..<3 {
                let p = try startCalibctl(["tick", "--home", w.home])
                Thread.sleep(forTimeInterval: 0.01 + 0.2 * rng.nextUniform())
                kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
                let db = try w.db()
                let live = try db.query("""
                    SELECT shard, COUNT(*) AS n FROM attempts WHERE state NOT IN ('succeeded','failed','cancelled','lost')
                    GROUP BY shard HAVING n > 1
                    """)
                #expect(live.isEmpty, "a shard has two live attempts")
            }
            let s = try w.tickUntilFinished(name)
            #expect(s["counts"] as? [String: Int] == ["succeeded": n], "trial \(trial): \(s)")
            #expect(Self.runs(w, name, n) == Array(repeating: 1, count: n), "trial \(trial)")
            let shards = s["shards"] as? [[String: Any]] ?? []
            #expect(shards.allSatisfy { $0["attempts"] as? Int == 2 }, "trial \(trial): \(shards.map { $0["attempts"] ?? -1 })")
        }
    }
}
