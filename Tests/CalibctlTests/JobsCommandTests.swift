import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// End-to-end runs of `calibctl jobs ...` and `calibctl job run` with real local jobs.
@Suite struct JobsCommandTests {
    @Test func createSubmitFollowStatusLogResults() throws {
        let w = JobsWorkspace()
        let c = try w.run(["jobs", "create", "demo", "--key", "fed=1200", "--key", "fed=1201", "--key", "fed=1202",
                           "--shell", "echo gains for {key} > {output:gains}; echo 'pixels=66560' >> \"$CALIBCTL_METRICS_FILE\"; echo log {key}; [ {index} -ne 2 ] || exit 7",
                           "--output", "gains=gains.txt", "--time-limit", "30s", "--submit"])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("created job set demo: 3 shard(s)") && c.stdout.contains("submitted 3"))
        let s = try w.tickUntilFinished("demo")
        #expect(s["finished"] as? Bool == true)
        let counts = s["counts"] as? [String: Int]
        #expect(counts == ["succeeded": 2, "failed": 1], "\(s)")
        let failed = s["failed"] as? [[String: Any]]
        #expect(failed?.count == 1 && failed?.first?["failureClass"] as? String == "user-error"
                && failed?.first?["exitCode"] as? Int == 7 && failed?.first?["key"] as? String == "fed=1202")

        // Human status: summary line + the failed shard with its reason and the next action; exit 1 (failures found).
        let h = try w.run(["jobs", "status", "demo"])
        #expect(h.status == 1)
        #expect(h.stdout.contains("demo: 3 shards: 2 succeeded, 1 failed (user-error 1)"))
        #expect(h.stdout.contains("shard 2 [fed=1202] failed user-error") && h.stdout.contains("exited with status 7")
                && h.stdout.contains("calibctl jobs retry"), "\(h.stdout)")

        let log = try w.run(["jobs", "log", "demo", "1"])
        #expect(log.status == 0 && log.stdout == "log fed=1201\n")
        let res = try w.run(["jobs", "results", "demo", "--json"])
        let arr = try JSONSerialization.jsonObject(with: res.stdoutData) as? [[String: Any]]
        #expect(arr?.count == 2 && (arr?.first?["metrics"] as? [String: Double])?["pixels"] == 66560)
        let outs = arr?.first?["outputs"] as? [[String: Any]]
        let path = outs?.first?["path"] as? String ?? ""
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "gains for fed=1200\n")
        #expect(outs?.first?["size"] as? Int == 19)

        // No partial output is left behind by the failed shard; its result record says why.
        let rr = try w.run(["jobs", "log", "demo", "2", "--result"])
        let rec = try JSONSerialization.jsonObject(with: rr.stdoutData) as? [String: Any]
        #expect(rec?["exitCode"] as? Int == 7 && (rec?["outputs"] as? [Any])?.isEmpty == true)

        // Explicit retry of the user error, then list.
        let r = try w.run(["jobs", "retry", "demo"])
        #expect(r.status == 0 && r.stdout.contains("retried 1 shard(s) of demo: 2"))
        let s2 = try w.tickUntilFinished("demo")
        let f2 = (s2["failed"] as? [[String: Any]])?.first
        #expect(f2?["attempts"] as? Int == 2)
        let list = try w.run(["jobs", "list", "--json"])
        let sets = try JSONSerialization.jsonObject(with: list.stdoutData) as? [[String: Any]]
        #expect(sets?.first?["name"] as? String == "demo" && sets?.first?["shards"] as? Int == 3)
    }

    @Test func cancelStopsRunningShards() throws {
        let w = JobsWorkspace()
        #expect(try w.run(["jobs", "create", "long", "--shards", "2", "--shell", "sleep 60", "--submit"]).status == 0)
        Thread.sleep(forTimeInterval: 0.5)
        let c = try w.run(["jobs", "cancel", "long"])
        #expect(c.status == 0 && c.stdout.contains("cancelled 2 shard(s)"), "\(c.stderr)")
        let s = try w.tickUntilFinished("long", timeout: 10)
        #expect(s["counts"] as? [String: Int] == ["cancelled": 2] && s["failureClasses"] as? [String: Int] == ["cancelled": 2])
        // The processes are gone (the executor SIGTERMs their process groups).
        let t0 = Date()
        var alive = true
        while alive && Date().timeIntervalSince(t0) < 5 {
            alive = try runProcess("/usr/bin/pgrep", ["-f", "\(w.home)/jobs/long"]).status == 0
            if alive { Thread.sleep(forTimeInterval: 0.2) }
        }
        #expect(!alive)
    }

    @Test func badInputGivesDocumentedExitCodes() throws {
        let w = JobsWorkspace()
        let bad = try w.run(["jobs", "create", "no/slash", "--shards", "1", "--shell", "true"])
        #expect(bad.status == 64 && bad.stderr.contains("'no/slash' is not a valid job set name"))
        let none = try w.run(["jobs", "status", "nope"])
        #expect(none.status == 64 && none.stderr.contains("no job set named 'nope'") && none.stderr.contains("jobs list"))
        let sched = try w.run(["jobs", "create", "x", "--shards", "1", "--shell", "true", "--scheduler", "pbs"])
        #expect(sched.status == 78 && sched.stderr.contains("unknown scheduler 'pbs'"))
        let dur = try w.run(["jobs", "create", "x", "--shards", "1", "--shell", "true", "--time-limit", "soon"])
        #expect(dur.status == 64 && dur.stderr.contains("--time-limit"))
        #expect(try w.run(["jobs", "create", "x", "--shards", "1", "--shell", "true"]).status == 0)
        let dup = try w.run(["jobs", "create", "x", "--shards", "1", "--shell", "true"])
        #expect(dup.status == 64 && dup.stderr.contains("already exists"))
        let shard = try w.run(["jobs", "cancel", "x", "--shard", "5"])
        #expect(shard.status == 64 && shard.stderr.contains("has no shard(s) 5"))
        // A worker given a damaged spec fails with 65 and names the file.
        let spec = w.tmp.file("spec.json")
        try Data("{not json".utf8).write(to: URL(fileURLWithPath: spec))
        let run = try calibctl(["job", "run", spec])
        #expect(run.status == 65 && run.stderr.contains(spec))
    }

    /// The version check on the worker, end to end: a spec submitted by a newer calibctl is refused (exit 78, both
    /// versions and the fix on stderr, nothing run); one submitted by an older calibctl runs with a warning.
    @Test func jobRunChecksTheSubmittingVersion() throws {
        let tmp = TemporaryDirectory("jobrun-version")
        let spec = tmp.file("spec.json")
        try Data(#"{"formatVersion":1,"kind":"command","key":"k","index":0,"inputs":{},"outputs":{},"parameters":{"shell":"touch ran"},"calibctlVersion":"999.0.0"}"#.utf8)
            .write(to: URL(fileURLWithPath: spec))
        let refused = try calibctl(["job", "run", spec], currentDirectory: tmp.path)
        #expect(refused.status == 78, "\(refused.stderr)")
        #expect(refused.stderr.contains("is older than calibctl 999.0.0 that submitted the job"), "\(refused.stderr)")
        #expect(refused.stderr.contains("deploy the same calibctl build to the worker nodes"), "\(refused.stderr)")
        #expect(!FileManager.default.fileExists(atPath: tmp.file("ran")))

        try Data(#"{"formatVersion":1,"kind":"command","key":"k","index":0,"inputs":{},"outputs":{},"parameters":{"shell":"true"},"calibctlVersion":"0.0.1"}"#.utf8)
            .write(to: URL(fileURLWithPath: spec))
        let ran = try calibctl(["job", "run", spec, "--attempt", "2"])
        #expect(ran.status == 0, "\(ran.stderr)")
        #expect(ran.stderr.contains("warning:") && ran.stderr.contains("newer than calibctl 0.0.1"), "\(ran.stderr)")
    }

    @Test func jobRunWritesResultLastAndPropagatesSignals() throws {
        let tmp = TemporaryDirectory("jobrun")
        let spec = tmp.file("spec.json")
        try Data(#"{"formatVersion":1,"kind":"command","key":"k","index":0,"inputs":{},"outputs":{"o":"o.txt"},"parameters":{"shell":"printf abc > {output:o}"}}"#.utf8)
            .write(to: URL(fileURLWithPath: spec))
        let ok = try calibctl(["job", "run", spec, "--attempt", "3"])
        #expect(ok.status == 0, "\(ok.stderr)")
        let rec = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp.file("attempt-3.result.json")))) as? [String: Any]
        let out = (rec?["outputs"] as? [[String: Any]])?.first
        #expect(out?["size"] as? Int == 3
                && out?["sha256"] as? String == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(!FileManager.default.fileExists(atPath: tmp.file(".o.txt.partial")))

        try Data(#"{"formatVersion":1,"kind":"command","key":"k","index":0,"inputs":{},"outputs":{},"parameters":{"shell":"kill -TERM $$"}}"#.utf8)
            .write(to: URL(fileURLWithPath: spec))
        let sig = try runProcess("/bin/sh", ["-c", "\"$0\" job run \"$1\"; echo $?", TestPaths.calibctl, spec])
        #expect(sig.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "143", "dies by SIGTERM like its command")
        let rec2 = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: tmp.file("attempt-1.result.json")))) as? [String: Any]
        #expect(rec2?["signal"] as? Int == 15)
    }
}
