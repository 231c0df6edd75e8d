import CalibTestSupport
import Foundation
import Testing

/// Many `calibctl step ...` commands, some SIGKILLed at random moments; the database must stay consistent.
@Suite struct ChecklistKillTests {
    @Test func killNineLeavesAConsistentDatabase() throws {
        let tmp = TemporaryDirectory()
        let home = tmp.file("home")
        let created = try calibctl(["campaign", "create", "rgx", "--checklist", TestPaths.fixtures + "/checklists/clas12-rgx.yaml",
                                    "--runs", "5000-5100", "--home", home])
        #expect(created.status == 0, "\(created.stderr)")

        // A walk through the first steps (start, done, approve each), with reopens of the DC alignment (the
        // largest transactions: many steps go stale) mixed in; about half the commands are killed at a random moment.
        let steps = ["dc-alignment", "cvt-alignment", "fd-alignment", "fmt-alignment", "beam-offset", "rf-global-offsets",
                     "ftof-calibration", "rf-calibration", "ftof-second-calibration", "ctof-calibration"]
        var script: [[String]] = []
        for round in 0..<2 {
            for s in steps {
                for verb in ["start", "done", "approve"] { script.append(["step", verb, "rgx", s, "--note", "round \(round)"]) }
            }
            script.append(["step", "reopen", "rgx", "dc-alignment", "--note", "redo"])
        }
        var seed: UInt64 = 0x9E3779B97F4A7C15
        func next(_ n: Int) -> Int {
            seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
            return Int(seed % UInt64(n))
        }
        var killed = 0, finished = 0
        // Kill within the time a command really takes on this machine (measured on the commands left alone), so the
        // kills land mid-flight on a fast idle machine as on a loaded one.
        var typicalMicros: UInt32 = 100_000
        for command in script {
            let args = command + ["--home", home]
            let t0 = Date()
            let p = try startCalibctl(args)
            let victim = next(2) == 0
            if victim {
                usleep(UInt32(next(Int(typicalMicros) * 8 / 10)))
                kill(p.processIdentifier, SIGKILL)
            }
            p.waitUntilExit()
            if !victim { typicalMicros = max(20_000, UInt32(Date().timeIntervalSince(t0) * 1_000_000)) }
            if p.terminationReason == .uncaughtSignal { killed += 1 } else { finished += 1 }
        }
        #expect(killed > 5, "the test must actually kill commands mid-flight")
        #expect(finished > 5)

        // calibctl's own check: integrity, a state per step, a log that chains and ends in each state.
        let v = try calibctl(["campaign", "verify", "rgx", "--home", home, "--json"])
        #expect(v.status == 0, "\(v.stdout)\(v.stderr)")

        // An independent reader (Python's sqlite3) agrees.
        let py = try runProcess(TestPaths.python, ["-c", """
            import sqlite3, sys
            db = sqlite3.connect(sys.argv[1])
            assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
            valid = {'pending','running','awaiting-validation','awaiting-sign-off','done','failed','skipped','stale'}
            rows = db.execute('SELECT step_id, state, iteration FROM campaign_steps').fetchall()
            assert len(rows) == 42, len(rows)
            moved = 0
            for step, state, it in rows:
                assert state in valid, (step, state)
                last = db.execute('SELECT to_state, iteration FROM step_transitions WHERE step_id=? ORDER BY id DESC LIMIT 1', (step,)).fetchone()
                assert last == (state, it), (step, state, it, last)
                starts = db.execute("SELECT COUNT(*) FROM step_transitions WHERE step_id=? AND to_state='running' AND command IN ('start','reopen')", (step,)).fetchone()[0]
                assert starts == it, (step, starts, it)
                moved += state != 'pending'
            print(moved)
            """, home + "/calibctl.db"])
        #expect(py.status == 0, "\(py.stderr)")
        #expect((Int(py.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0)

        // And the campaign keeps working afterwards.
        let after = try calibctl(["checklist", "show", "--campaign", "rgx", "--home", home, "--json"])
        #expect(after.status == 0)
    }
}
