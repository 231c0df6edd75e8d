import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// A workspace for the workflow engine driven through the built binary, as cron and people use it.
struct WorkflowWorkspace {
    let root: String
    let environment: [String: String]
    var launcher: [String] = []

    init(_ prefix: String = "workflow-cli", in base: String? = nil, extra: [String: String] = [:], launcher: [String] = []) {
        let tmp = TemporaryDirectory(prefix, in: base)
        root = tmp.path
        environment = ["CALIBCTL_HOME": tmp.path + "/home", "CALIBCTL_STORE": tmp.path + "/store", "CALIBCTL_LOCAL_GRACE": "1"]
            .merging(extra) { _, b in b }
        self.launcher = launcher
        keep = tmp
    }
    private let keep: TemporaryDirectory

    @discardableResult
    func cli(_ args: [String], expect status: Int32? = 0) throws -> ProcessResult {
        let r = launcher.isEmpty
            ? try calibctl(args, environment: environment, currentDirectory: root)
            : try runProcess(launcher[0], Array(launcher.dropFirst()) + [TestPaths.calibctl] + args,
                             environment: environment, currentDirectory: root)
        if let status {
            #expect(r.status == status, "calibctl \(args.joined(separator: " ")) exited \(r.status)\nstdout: \(r.stdout)\nstderr: \(r.stderr)")
        }
        return r
    }

    func json(_ args: [String]) throws -> Any? {
        try JSONSerialization.jsonObject(with: try cli(args + ["--json"]).stdoutData)
    }

    /// `checklist show --campaign C --json` rows by step id.
    func steps(_ campaign: String) throws -> [String: [String: Any]] {
        let o = try json(["checklist", "show", "--campaign", campaign]) as? [String: Any] ?? [:]
        var out: [String: [String: Any]] = [:]
        for r in o["steps"] as? [[String: Any]] ?? [] { out[r["id"] as? String ?? ""] = r }
        return out
    }

    func state(_ campaign: String, _ step: String) throws -> String {
        try steps(campaign)[step]?["state"] as? String ?? "?"
    }

    /// Writes `yaml` as checklist file ROOT/FILE and creates campaign `name` from it with `arguments`
    /// (`--runs ...`, `--scheduler ...`); returns the file's path.
    @discardableResult
    func campaign(_ name: String, file: String, checklist yaml: String, _ arguments: [String]) throws -> String {
        let path = root + "/" + file
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        try cli(["campaign", "create", name, "--checklist", path] + arguments)
        return path
    }

    /// Ticks until `done` (bounded); returns the ticks' output.
    @discardableResult
    func tickUntil(timeout: Double = 120, _ done: () throws -> Bool) throws -> String {
        var out = ""
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            let r = try cli(["tick"], expect: nil)
            out += r.stdout + r.stderr
            if try done() { return out }
            Thread.sleep(forTimeInterval: 0.3)
        }
        Issue.record("not there after \(timeout) s of ticks:\n\(out.suffix(3000))")
        return out
    }
}

@Suite(.serialized) struct WorkflowCLITests {
    /// The issue's sequence: from a clean HOME and store, on the local scheduler, with no command but `tick` and the
    /// sign-offs a gate demands, the shipped lcls-dark checklist runs to its final step; the deployed pedestals are
    /// in the store for run 105 and the dark-process effort (jobs, CPU, wall) was recorded without `step effort`.
    @Test func lclsDarkRunsFromTickWithOnlySignOffs() throws {
        let home = TemporaryDirectory("workflow-home")
        let w = WorkflowWorkspace("lcls-dark", extra: ["HOME": home.path, "CALIBCTL_HOME": "", "CALIBCTL_STORE": ""])
        try w.cli(["simulate", "dark", "-o", "D/dark.h5", "--shape", "2x64x128", "--frames", "200", "--gain-modes", "3", "--seed", "5"])
        try w.cli(["store", "init"])
        try w.cli(["store", "detector", "add", "jungfrau", "--kind", "jungfrau"])
        try w.cli(["campaign", "create", "d1", "--checklist", "lcls-dark", "--runs", "100-110", "--param", "input=D"])
        var approvals: [String] = []
        let end = Date().addingTimeInterval(120)
        while try w.state("d1", "lcls-export") != "done" && Date() < end {
            let t = try w.cli(["tick"])
            #expect(!t.stdout.contains("0 submitted") || !t.stdout.contains("submitted 1 job") && !t.stdout.contains("submitted 3 job"),
                    "the summary line counts the campaign's submissions: \(t.stdout)")
            for (id, row) in try w.steps("d1") where ["awaiting-sign-off", "awaiting-validation"].contains(row["state"] as? String) {
                try w.cli(["step", "approve", "d1", id, "--note", "checked"])
                approvals.append(id)
            }
            Thread.sleep(forTimeInterval: 0.3)
        }
        #expect(try w.state("d1", "lcls-export") == "done")
        #expect(approvals == ["dark-runs"], "only the e-log check needs a person on a first calibration: \(approvals)")
        let get = try w.cli(["get", "jungfrau", "pedestals", "--run", "105", "-o", "ped.h5"])
        #expect(get.stdout.contains("pedestals: float32 3x2x64x128"), "\(get.stdout)")
        #expect(FileManager.default.fileExists(atPath: w.root + "/ped.h5"))
        let report = try w.json(["report", "--campaign", "d1"]) as? [String: Any] ?? [:]
        let dp = (report["steps"] as? [[String: Any]] ?? []).first { $0["id"] as? String == "dark-process" } ?? [:]
        #expect(dp["jobs"] as? Int == 3, "\(dp)")
        #expect((dp["cpuHours"] as? Double ?? 0) > 0 && (dp["wallHours"] as? Double ?? 0) > 0, "\(dp)")
        let log = try w.cli(["step", "log", "d1"]).stdout
        #expect(!log.contains("effort"), "no effort was recorded by hand")
        // A second tick changes nothing.
        let again = try w.cli(["tick"])
        #expect(again.stdout.contains("0 submitted") && !again.stdout.contains("started iteration"))
    }

    /// A facility's own file layout (psana's LCLS export: /jungfrau4m/raw with the gain mode in bits 14-15) goes
    /// through the shipped lcls-dark checklist by campaign parameters alone.
    @Test func lclsDarkReadsAFacilityLayoutByParameters() throws {
        let w = WorkflowWorkspace("dark-layout")
        try w.cli(["simulate", "dark", "-o", "D/r0123.h5", "--layout", "lcls", "--shape", "2x32x64", "--frames", "150",
                   "--gain-modes", "3", "--seed", "4"])
        try FileManager.default.removeItem(atPath: w.root + "/D/r0123.truth.h5")
        try w.cli(["store", "init"])
        try w.cli(["store", "detector", "add", "jungfrau", "--kind", "jungfrau"])
        try w.cli(["campaign", "create", "lay", "--checklist", "lcls-dark", "--runs", "300-301", "--param", "input=D",
                   "--param", "dataset=/jungfrau4m/raw", "--param", "gain_source=bits"])
        try w.tickUntil { try w.state("lay", "dark-runs") == "awaiting-validation" }
        try w.cli(["step", "approve", "lay", "dark-runs", "--note", "logged"])
        try w.tickUntil { try w.state("lay", "lcls-export") == "done" }
        let runs = try w.json(["step", "runs", "lay", "dark-process"]) as? [[String: Any]] ?? []
        #expect((runs.first?["metrics"] as? [String: Double])?["frames.sum"] == 150, "\(runs)")
        #expect(try w.cli(["get", "jungfrau", "pedestals", "--run", "300"]).stdout.contains("float32 3x2x32x64"))
    }

    /// The CTA example: four telescopes' pedestal and flat-field commands, then the array step, from `tick` alone;
    /// `checklist show --json` gives the per-unit states.
    @Test(arguments: schedulers) func ctaArrayRunsFromTick(scheduler: String) throws {
        if let w = try Self.workspace("cta", scheduler: scheduler) { try Self.ctaArrayRuns(w, scheduler: scheduler) }
    }

    static func ctaArrayRuns(_ w: WorkflowWorkspace, scheduler: String) throws {
        try w.cli(["campaign", "create", "oct", "--checklist", "cta-array", "--runs", "1", "--scheduler", scheduler])
        try w.tickUntil(timeout: 300) { try w.state("oct", "array-summary") == "done" }
        let rows = try w.steps("oct")
        #expect(rows["flat-field"]?["unitStates"] as? [String: String] == Dictionary(uniqueKeysWithValues:
            ["LST1", "LST2", "LST3", "LST4"].map { ("telescope=\($0)", "succeeded") }))
        let runs = try w.json(["step", "runs", "oct", "array-summary"]) as? [[String: Any]] ?? []
        #expect((runs.first?["metrics"] as? [String: Double])?["telescopes"] == 4, "\(runs)")
        #expect(((runs.first?["metrics"] as? [String: Double])?["pixels_total"] ?? 0) == 4 * 1855)
    }

    /// CLAS12: command actions per run; a person does the manual steps; reopening the DC alignment stales RF, FTOF
    /// and DC t0 across the skipped FMT alignment, says why, and `tick` re-runs the automatic ones; on the batch
    /// schedulers the per-run command steps of clas12-rgx run as Slurm / HTCondor jobs from tick.
    @Test(arguments: schedulers) func clas12ReopenStalesAndTickReruns(scheduler: String) throws {
        if let w = try Self.workspace("clas12", scheduler: scheduler) { try Self.clas12Reruns(w, scheduler: scheduler) }
    }

    static func clas12Reruns(_ w: WorkflowWorkspace, scheduler: String) throws {
        try w.cli(["campaign", "create", "rgx", "--checklist", "clas12-rgx", "--runs", "5000-5001", "--scheduler", scheduler])
        try w.tickUntil(timeout: 300) { try w.state("rgx", "dc-alignment") == "done" }
        try w.cli(["step", "skip", "rgx", "fmt-alignment", "--note", "no FMT in RG-X"])
        for cmd in ["start", "done", "approve"] { try w.cli(["step", cmd, "rgx", "rf-global-offsets", "--note", "timelines ok"]) }
        try w.tickUntil(timeout: 300) { ["awaiting-validation", "done"].contains(try w.state("rgx", "dc-t0-calibration")) }
        try w.cli(["step", "approve", "rgx", "dc-t0-calibration", "--note", "timelines ok"])
        try w.tickUntil(timeout: 300) { try w.state("rgx", "ftof-calibration") == "done" }

        let reopen = try w.cli(["step", "reopen", "rgx", "dc-alignment", "--note", "wrong torus map"])
        #expect(reopen.stdout.contains("rf-global-offsets") && reopen.stdout.contains("ftof-calibration")
                && reopen.stdout.contains("dc-t0-calibration"), "\(reopen.stdout)")
        let show = try w.cli(["checklist", "show", "--campaign", "rgx"]).stdout
        #expect(show.contains("ftof-calibration: stale: dc-alignment reopened at "), "\(show)")
        try w.tickUntil(timeout: 300) { try w.state("rgx", "dc-alignment") == "done" }
        let sets = try w.json(["jobs", "list"]) as? [[String: Any]] ?? []
        #expect(sets.contains { $0["name"] as? String == "rgx.dc-alignment.2" && $0["scheduler"] as? String == scheduler })
        #expect(try w.state("rgx", "ftof-calibration") == "stale")   // waits for the RF offsets, redone by a person
        for cmd in ["start", "done", "approve"] { try w.cli(["step", cmd, "rgx", "rf-global-offsets", "--note", "redone"]) }
        try w.tickUntil(timeout: 300) { try w.state("rgx", "ftof-calibration") == "done" }
        #expect(try w.steps("rgx")["ftof-calibration"]?["iteration"] as? Int == 2)
        let out = try String(contentsOfFile: w.root + "/home/campaigns/rgx/ftof-calibration/i2/run=5001/ftof.txt", encoding: .utf8)
        #expect(out.contains("dc-alignment/i2"), "the re-run used the new alignment: \(out)")
        #expect(try w.cli(["campaign", "verify", "rgx"]).status == 0)
    }

    /// `jobs create --campaign C --step S` checks the names, makes the job set the step's iteration, and the engine
    /// records its metrics and effort when it finishes; the tick's summary counts what the campaigns submitted.
    @Test func jobSetsMadeByHandBelongToTheirStep() throws {
        let w = WorkflowWorkspace("adopt")
        try w.campaign("m", file: "m.yaml", checklist: """
            checklist: m
            steps:
              - {id: manual, title: M, phase: p, validation: [{name: g, metric: v, max: 5}]}
              - {id: auto, title: A, phase: p, prerequisites: [manual], action: {per: run, command: "true"}}
            """, ["--runs", "1-3"])
        let typo = try w.cli(["jobs", "create", "x", "--shards", "2", "--shell", "true", "--campaign", "m", "--step", "manul"], expect: 64)
        #expect(typo.stderr.contains("did you mean 'manual'"), "\(typo.stderr)")
        #expect(try w.cli(["jobs", "list"]).stdout.contains("x") == false)
        try w.cli(["jobs", "create", "by-hand", "--shards", "2", "--shell", "echo v=3 >> $CALIBCTL_METRICS_FILE",
                   "--campaign", "m", "--step", "manual", "--submit"])
        #expect(try w.state("m", "manual") == "running")
        var out = try w.tickUntil { try w.state("m", "manual") == "done" }
        let report = try w.json(["report", "--campaign", "m"]) as? [String: Any] ?? [:]
        let manual = (report["steps"] as? [[String: Any]] ?? []).first { $0["id"] as? String == "manual" } ?? [:]
        #expect(manual["jobs"] as? Int == 2, "\(manual)")
        out += try w.tickUntil { try w.state("m", "auto") == "done" }
        #expect(out.contains(", 3 submitted,"), "the tick line counts the 3 jobs the engine submitted: \(out)")
    }

    /// A watched directory: each <inbox>/<RUN>/ with its READY marker becomes campaign NAME-RUN at the next tick,
    /// with input=<inbox>/<RUN>; a directory still being written (no marker) waits.
    @Test func watchedDirectoryStartsCampaignsForNewRuns() throws {
        let w = WorkflowWorkspace("watch")
        let yaml = w.root + "/count.yaml"
        try """
            checklist: count
            steps:
              - {id: count, title: Count the files of the run, phase: p,
                 action: {command: "ls {param:input} | wc -l | awk '{ print \\"files=\\" $1 }' >> $CALIBCTL_METRICS_FILE"}}
            """.write(toFile: yaml, atomically: true, encoding: .utf8)
        let inbox = w.root + "/inbox"
        for run in [7001, 7002] {
            try FileManager.default.createDirectory(atPath: "\(inbox)/\(run)", withIntermediateDirectories: true)
            try "x".write(toFile: "\(inbox)/\(run)/data.bin", atomically: true, encoding: .utf8)
        }
        try "".write(toFile: "\(inbox)/7001/READY", atomically: true, encoding: .utf8)
        try w.cli(["campaign", "watch", "add", "cnt", "--checklist", yaml, "--inbox", inbox])
        #expect(try w.cli(["campaign", "watch", "list"]).stdout.contains("cnt"))
        try w.tickUntil { try w.state("cnt-7001", "count") == "done" }
        let names = (try w.json(["campaign", "list"]) as? [[String: Any]] ?? []).compactMap {
            ($0["campaign"] as? [String: Any])?["name"] as? String }
        #expect(names == ["cnt-7001"], "7002 has no READY marker yet: \(names)")
        let runs = try w.json(["step", "runs", "cnt-7001", "count"]) as? [[String: Any]] ?? []
        #expect((runs.first?["metrics"] as? [String: Double])?["files"] == 2)   // data.bin and READY
        try "".write(toFile: "\(inbox)/7002/READY", atomically: true, encoding: .utf8)
        try w.tickUntil { (try? w.state("cnt-7002", "count")) == "done" }
        try w.cli(["campaign", "watch", "remove", "cnt"])
    }

    /// One campaign that cannot move (its command needs a parameter it lacks) is reported, exit 1; the other runs on.
    @Test func oneBrokenCampaignNeverStopsTheOthers() throws {
        let w = WorkflowWorkspace("isolation")
        let yaml = try w.campaign("broken", file: "needs.yaml", checklist: """
            checklist: needs
            steps:
              - {id: s, title: S, phase: p, action: {command: "echo {param:input} > {output}/x"}}
            """, ["--runs", "1"])
        try w.cli(["campaign", "create", "fine", "--checklist", yaml, "--runs", "1", "--param", "input=here"])
        let t = try w.cli(["tick"], expect: 1)
        #expect(t.stderr.contains("campaign broken") && t.stderr.contains("--param input=VALUE"), "\(t.stderr)")
        try w.tickUntil { try w.state("fine", "s") == "done" }
        #expect(try w.state("broken", "s") == "ready")
    }

    /// A person fails a step whose jobs are still running: the step is failed, its live jobs are cancelled (the
    /// processes are gone, the attempts recorded as cancelled), and a later `step run` starts iteration 2 with a new
    /// job set that runs to its end.
    @Test func failingAStepCancelsItsLiveJobs() throws {
        let w = WorkflowWorkspace("fail-cancels")
        _ = FileManager.default.createFile(atPath: w.root + "/slow", contents: Data())
        try w.campaign("f", file: "f.yaml", checklist: """
            checklist: f
            steps:
              - {id: s, title: S, phase: p, action: {per: run, command: "echo $$ > {output}/pid; if test -e \(w.root)/slow; then sleep 60; fi; echo done > {output}/x"}}
            """, ["--runs", "1-2"])
        try w.cli(["tick"])
        // Both unit jobs started (each wrote its pid).
        let pidFiles = (1...2).map { w.root + "/home/campaigns/f/s/i1/run=\($0)/pid" }
        let end = Date().addingTimeInterval(30)
        while !pidFiles.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) && Date() < end { Thread.sleep(forTimeInterval: 0.1) }
        let pids = pidFiles.compactMap { (try? String(contentsOfFile: $0, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) }
            .compactMap { pid_t($0) }
        #expect(pids.count == 2 && pids.allSatisfy { kill($0, 0) == 0 }, "units not running: \(pids)")
        let failed = try w.cli(["step", "fail", "f", "s", "--note", "wrong inputs"])
        #expect(failed.stdout.contains("running -> failed") && failed.stderr.contains("cancelled 2 live job(s) of job set f.s.1"),
                "\(failed.stdout)\(failed.stderr)")
        #expect(try w.state("f", "s") == "failed")
        let gone = Date().addingTimeInterval(20)
        while pids.contains(where: { kill($0, 0) == 0 }) && Date() < gone { Thread.sleep(forTimeInterval: 0.1) }
        #expect(!pids.contains { kill($0, 0) == 0 }, "the unit processes still run after step fail")
        // `jobs status` exits 1 for a job set with failed or cancelled shards (docs/exit-codes).
        let st = try JSONSerialization.jsonObject(with: try w.cli(["jobs", "status", "f.s.1", "--json"], expect: 1).stdoutData) as? [String: Any]
        #expect((st?["counts"] as? [String: Int])?["cancelled"] == 2, "\(String(describing: st))")
        // Failing again (nothing live) and a failed step run again as iteration 2, quick this time.
        try FileManager.default.removeItem(atPath: w.root + "/slow")
        try w.cli(["step", "run", "f", "s"])
        try w.tickUntil { try w.state("f", "s") == "done" }
        #expect(FileManager.default.fileExists(atPath: w.root + "/home/campaigns/f/s/i2/run=2/x"))
        #expect(!FileManager.default.fileExists(atPath: w.root + "/home/campaigns/f/s/i1/run=1/x"))
    }

    /// SIGKILL `tick` at 100 seeded random moments while a three-step campaign (units per run, a quorum rule) runs;
    /// afterwards: exactly one job set per step iteration, every unit's command ran exactly once, effort recorded
    /// once per iteration, and every step consistent with its job set.
    @Test func killedTicksNeitherLoseNorDuplicateJobSets() throws {
        let w = WorkflowWorkspace("kills")
        try w.campaign("k", file: "k.yaml", checklist: """
            checklist: k
            steps:
              - id: a
                title: A
                phase: p
                action: {per: run, command: "echo x >> {output}/runs; echo m=1 >> $CALIBCTL_METRICS_FILE"}
                validation: [{name: g, metric: m, min: 1}]
              - id: b
                title: B
                phase: p
                prerequisites: [a]
                action: {per: run, command: "echo x >> {output}/runs"}
                success: {min_fraction: 0.5}
              - id: c
                title: C
                phase: p
                prerequisites: [b]
                action: {command: "echo x >> {output}/runs"}
            """, ["--runs", "1-4"])
        var rng = SplitMix64(seed: 2026)
        for _ in 0..<100 {
            let p = try startCalibctl(["tick"], environment: w.environment)
            Thread.sleep(forTimeInterval: 0.005 + 0.12 * rng.nextUniform())
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
        }
        try w.tickUntil { try w.state("k", "c") == "done" }
        let sets = (try w.json(["jobs", "list"]) as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }.sorted()
        #expect(sets == ["k.a.1", "k.b.1", "k.c.1"], "\(sets)")
        for (step, units) in [("a", (1...4).map { "run=\($0)" }), ("b", (1...4).map { "run=\($0)" }), ("c", ["campaign"])] {
            for u in units {
                let t = (try? String(contentsOfFile: w.root + "/home/campaigns/k/\(step)/i1/\(u)/runs", encoding: .utf8)) ?? ""
                #expect(t == "x\n", "\(step) \(u) ran \(t.split(separator: "\n").count) times")
            }
        }
        let report = try w.json(["report", "--campaign", "k"]) as? [String: Any] ?? [:]
        let jobs = Dictionary(uniqueKeysWithValues: (report["steps"] as? [[String: Any]] ?? []).map {
            ($0["id"] as? String ?? "", $0["jobs"] as? Int ?? -1) })
        #expect(jobs == ["a": 4, "b": 4, "c": 1], "effort recorded exactly once per iteration: \(jobs)")
        #expect(try w.cli(["campaign", "verify", "k"]).status == 0)
    }

    static let loopChecklist = """
        checklist: loop
        units:
          telescope: [T1, T2, T3]
        steps:
          - id: calib
            title: Iterate until the shift is small
            phase: p
            action:
              per: telescope
              memory: 200M
              time: 10m
              command: >-
                if [ {telescope} = T3 ]; then exit 3; fi;
                echo "shift=$(( 100 / ({iteration} * {iteration}) ))" >> $CALIBCTL_METRICS_FILE;
                echo "{shard} {iteration}" > {output}/out.txt
            success: {max_failed: 1}
            repeat: {max_iterations: 5}
            validation:
              - {name: converged, metric: shift, max: 10}
          - id: after
            title: Uses the converged result
            phase: p
            prerequisites: [calib]
            action: {command: "cat {workdir:calib}/telescope=T1/out.txt > {output}/copy.txt", memory: 200M, time: 10m}
        """

    /// An axis, a command writing a metric, a quorum rule and a convergence loop under `tick` on a scheduler: the
    /// shift 100/i^2 passes at iteration 4, with the dead unit T3 allowed by the rule each time.
    static func loopRuns(_ w: WorkflowWorkspace, scheduler: String) throws {
        let yaml = w.root + "/loop.yaml"
        try loopChecklist.write(toFile: yaml, atomically: true, encoding: .utf8)
        try w.cli(["campaign", "create", "lp", "--checklist", yaml, "--runs", "1", "--scheduler", scheduler])
        try w.tickUntil(timeout: 400) { try w.state("lp", "after") == "done" }
        let runs = try w.json(["step", "runs", "lp", "calib"]) as? [[String: Any]] ?? []
        #expect(runs.map { $0["iteration"] as? Int } == [1, 2, 3, 4], "\(scheduler): \(runs)")
        #expect(runs.map { ($0["metrics"] as? [String: Double])?["shift"] } == [100, 25, 11, 6])
        #expect(runs.allSatisfy { ($0["failedUnits"] as? [String: String])?.keys.sorted() == ["telescope=T3"] })
        let sets = (try w.json(["jobs", "list"]) as? [[String: Any]] ?? []).compactMap { $0["scheduler"] as? String }
        #expect(!sets.isEmpty && sets.allSatisfy { $0 == scheduler }, "\(sets)")
        let copy = try String(contentsOfFile: w.root + "/home/campaigns/lp/after/i1/campaign/copy.txt", encoding: .utf8)
        #expect(copy == "telescope=T1 4\n")
        // The report names the unit the step went on without (by its quorum rule).
        let report = try w.json(["report", "--campaign", "lp"]) as? [String: Any] ?? [:]
        let calib = (report["steps"] as? [[String: Any]] ?? []).first { $0["id"] as? String == "calib" } ?? [:]
        #expect((calib["failedUnits"] as? [String: String])?.keys.sorted() == ["telescope=T3"], "\(calib)")
        #expect(try w.cli(["report", "--campaign", "lp"]).stdout.contains("calib: 1 unit(s) failed: telescope=T3"))
    }

    /// Locally and on the real Slurm and HTCondor that scripts/test.sh starts (CALIBCTL_TEST_SLURM / _CONDOR).
    @Test(arguments: schedulers) func convergenceLoop(scheduler: String) throws {
        if let w = try Self.workspace("loop", scheduler: scheduler) { try Self.loopRuns(w, scheduler: scheduler) }
    }

    /// The schedulers the workflow tests run on.
    static let schedulers = ["local", "slurm", "htcondor"]

    /// A workspace whose jobs go to `scheduler`: "local", or the real "slurm" / "htcondor" of scripts/test.sh
    /// (`slurmWorkspace` / `condorWorkspace`: nil, with a recorded issue, when that scheduler is not running).
    static func workspace(_ name: String, scheduler: String) throws -> WorkflowWorkspace? {
        switch scheduler {
        case "slurm": return try slurmWorkspace(name + "-slurm")
        case "htcondor": return try condorWorkspace(name + "-condor")
        default: return WorkflowWorkspace(name)
        }
    }

    /// A workspace whose jobs go to the real Slurm that scripts/test.sh starts; nil (with a recorded issue unless
    /// CALIBCTL_SKIP_SCHEDULERS=1 asked for it) without one.
    static func slurmWorkspace(_ name: String) throws -> WorkflowWorkspace? {
        let env = ProcessInfo.processInfo.environment
        if env["CALIBCTL_SKIP_SCHEDULERS"] == "1" { return nil }  // explicitly asked for; scripts/test.sh never sets it
        guard let prefix = env["CALIBCTL_TEST_SLURM"] else {
            Issue.record("CALIBCTL_TEST_SLURM is not set: run the tests with scripts/test.sh, which starts Slurm")
            return nil
        }
        // The workers run calibctl's worker-node binary (the release build), as a farm does.
        return WorkflowWorkspace(name, extra: ["SLURM_CONF": prefix + "/etc/slurm.conf", "CALIBCTL_POLL_INTERVAL": "0",
                                               "CALIBCTL_WORKER": try WorkerBinary.path() + " job run"])
    }

    /// A workspace whose jobs go to the real HTCondor pool that scripts/test.sh starts: jobs run in the pool's chroot
    /// as its user, so the workspace lives under PREFIX/shared and the CLI runs with umask 000 (as the pixel gain
    /// test does); the worker is calibctl's worker-node binary deployed to PREFIX/shared (`WorkerBinary`).
    static func condorWorkspace(_ name: String) throws -> WorkflowWorkspace? {
        let env = ProcessInfo.processInfo.environment
        if env["CALIBCTL_SKIP_SCHEDULERS"] == "1" { return nil }  // explicitly asked for; scripts/test.sh never sets it
        guard let prefix = env["CALIBCTL_TEST_CONDOR"] else {
            Issue.record("CALIBCTL_TEST_CONDOR is not set: run the tests with scripts/test.sh, which starts HTCondor")
            return nil
        }
        let worker = try WorkerBinary.deploy(to: prefix + "/shared/calibctl-worker")
        let w = WorkflowWorkspace(name, in: prefix + "/shared", extra: [
            "CALIBCTL_HTCONDOR_BIN": prefix + "/bin", "CALIBCTL_POLL_INTERVAL": "0", "CALIBCTL_WORKER": worker + " job run",
        ], launcher: ["/bin/sh", "-c", "umask 000 && exec \"$0\" \"$@\""])
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: w.root)
        return w
    }

    /// The shipped lcls-dark checklist with its dark-process jobs on a batch scheduler, from tick and one sign-off.
    static func lclsDarkOn(_ w: WorkflowWorkspace, scheduler: String) throws {
        try w.cli(["simulate", "dark", "-o", "D/dark.h5", "--shape", "2x32x64", "--frames", "150", "--gain-modes", "3", "--seed", "9"])
        try w.cli(["store", "init"])
        try w.cli(["store", "detector", "add", "jungfrau", "--kind", "jungfrau"])
        try w.cli(["campaign", "create", "dk", "--checklist", "lcls-dark", "--runs", "200-210", "--param", "input=D",
                   "--scheduler", scheduler, "--memory", "500M", "--time", "10m"])
        try w.tickUntil(timeout: 300) { try w.state("dk", "dark-runs") == "awaiting-validation" }
        try w.cli(["step", "approve", "dk", "dark-runs", "--note", "logged"])
        try w.tickUntil(timeout: 300) { try w.state("dk", "lcls-export") == "done" }
        let sets = (try w.json(["jobs", "list"]) as? [[String: Any]] ?? [])
        #expect(sets.contains { $0["name"] as? String == "dk.dark-process.1" && $0["scheduler"] as? String == scheduler })
        let get = try w.cli(["get", "jungfrau", "pedestals", "--run", "205"])
        #expect(get.stdout.contains("pedestals: float32 3x2x32x64"), "\(get.stdout)")
    }

    @Test(arguments: ["slurm", "htcondor"]) func lclsDarkOnBatch(scheduler: String) throws {
        if let w = try Self.workspace("dark", scheduler: scheduler) { try Self.lclsDarkOn(w, scheduler: scheduler) }
    }
}
