@testable import CalibWorkflow
import CalibCore
import CalibIO
import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// A workspace with a real local scheduler whose workers are the built `calibctl job run`, and a workflow engine.
final class EngineWorkspace {
    let tmp = TemporaryDirectory("workflow")
    let ws: Workspace
    let engine: WorkflowEngine

    init() throws {
        ws = Workspace(home: tmp.path + "/home")
        try ws.ensureHome()
        let local = LocalScheduler(root: ws.home + "/local", executorCommand: [TestPaths.calibctl, "job", "local-executor"],
                                   concurrency: 4, graceSeconds: 1, enforceMemory: false)
        let jobs = try JobEngine(database: SQLiteDatabase(path: ws.databasePath), workspace: ws, schedulers: [local],
                                 workerCommand: [TestPaths.calibctl, "job", "run"])
        engine = try WorkflowEngine(jobs: jobs, actions: .standard)
    }

    @discardableResult
    func create(_ name: String, _ yaml: String, runs: String = "1", settings: CampaignSettings = CampaignSettings())
        throws -> Campaign {
        var s = settings
        if s.environment.isEmpty { s.environment = CampaignSettings.capturedEnvironment() }
        return try engine.createCampaign(name: name, checklistYAML: yaml, file: "\(name).yaml",
                                         runs: try RunSet(parsing: runs), settings: s)
    }

    /// Polls the jobs and advances the campaign until `done` says so or the timeout passes.
    func advance(_ name: String, timeout: Double = 60, until done: () throws -> Bool) throws {
        let t0 = Date()
        while Date().timeIntervalSince(t0) < timeout {
            _ = try engine.jobs.update(force: true)
            try engine.advance(campaign: name)
            if try done() { return }
            Thread.sleep(forTimeInterval: 0.1)
        }
        Issue.record("campaign \(name) did not get there in \(timeout) s: \(try engine.summaryLine(engine.campaigns.campaign(named: name)))")
    }

    func state(_ c: String, _ s: String) throws -> StepState { try engine.campaigns.step(s, of: c).state }
}

@Suite(.serialized) struct WorkflowEngineTests {
    static let loop = """
        checklist: loop
        units:
          telescope: [T1, T2, T3]
        steps:
          - id: calib
            title: Iterate until the shift is small
            phase: p
            action:
              per: telescope
              command: >-
                if [ {telescope} = T3 ]; then exit 3; fi;
                echo "shift=$(( 100 / ({iteration} * {iteration}) ))" >> $CALIBCTL_METRICS_FILE;
                echo "{shard} {iteration}" > {output}/out.txt
            success: {max_failed: MAXFAILED}
            repeat: {max_iterations: MAXIT}
            validation:
              - {name: converged, metric: shift, max: 10}
          - id: after
            title: Uses the result
            phase: p
            prerequisites: [calib]
            action: {command: "cat {workdir:calib}/telescope=T1/out.txt > {output}/copy.txt"}
        """

    static func loop(maxFailed: Int, maxIterations: Int) -> String {
        loop.replacingOccurrences(of: "MAXFAILED", with: String(maxFailed))
            .replacingOccurrences(of: "MAXIT", with: String(maxIterations))
    }

    /// An axis, a command writing a metric, a quorum rule (one dead unit allowed) and a convergence loop: the shift
    /// 100/i^2 passes the gate (<= 10) at iteration 4, so the step runs exactly four job sets, then `after` runs.
    @Test func quorumAndConvergenceLoopRunToTheExpectedIteration() throws {
        let w = try EngineWorkspace()
        try w.create("c", Self.loop(maxFailed: 1, maxIterations: 5))
        try w.advance("c") { try w.state("c", "after") == .done }
        #expect(try w.state("c", "calib") == .done)
        let runs = try w.engine.stepRuns(campaign: "c", step: "calib")
        #expect(runs.map(\.iteration) == [1, 2, 3, 4])
        #expect(runs.map { $0.jobSet } == (1...4).map { "c.calib.\($0)" })
        #expect(runs.map { $0.metrics["shift"] } == [100, 25, 11, 6])
        #expect(runs.allSatisfy { $0.failedUnits.keys.sorted() == ["telescope=T3"] && $0.metrics["failed_shards"] == 1 })
        #expect(runs.allSatisfy { $0.outcome == "succeeded" && $0.units == 3 })
        // Aggregates: mean, min, max, sum over the two good units.
        #expect(runs[0].metrics["shift.sum"] == 200 && runs[0].metrics["shift.max"] == 100)
        // The downstream step read the converged iteration's output.
        let copy = try String(contentsOfFile: w.engine.stepDirectory(campaign: "c", step: "after", iteration: 1)
                                + "/campaign/copy.txt", encoding: .utf8)
        #expect(copy == "telescope=T1 4\n")
        // Effort recorded without any `step effort`: 4 iterations x 3 jobs.
        let effort = try w.engine.campaigns.effort(campaign: "c")
        #expect(effort["calib"]?.jobs == 12)
        #expect((effort["calib"]?.wallSeconds ?? 0) > 0 && (effort["calib"]?.diskBytesWritten ?? 0) > 0)
        #expect(try w.engine.campaigns.verify(campaign: "c").isEmpty)
    }

    /// At the iteration cap the step waits for a sign-off, showing the gate metric per iteration.
    @Test func convergenceCapWaitsForASignOffWithTheHistory() throws {
        let w = try EngineWorkspace()
        try w.create("c", Self.loop(maxFailed: 1, maxIterations: 2))
        try w.advance("c") { try w.state("c", "calib") == .awaitingSignOff }
        let s = try w.engine.campaigns.step("calib", of: "c")
        #expect(s.iteration == 2)
        #expect(s.reason?.contains("shift per iteration: 100, 25") == true, "\(s.reason ?? "-")")
        #expect(try w.state("c", "after") == .blocked)
        try w.engine.campaigns.apply(.approve, campaign: "c", step: "calib", note: "good enough")
        try w.advance("c") { try w.state("c", "after") == .done }
    }

    /// With the default rule (every unit succeeds) one dead unit fails the step, naming it; a person's `step run`
    /// starts a new iteration.
    @Test func quorumFailureNamesTheUnits() throws {
        let w = try EngineWorkspace()
        try w.create("c", Self.loop(maxFailed: 0, maxIterations: 5))
        try w.advance("c") { try w.state("c", "calib") == .failed }
        let s = try w.engine.campaigns.step("calib", of: "c")
        #expect(s.reason?.contains("1 of 3 unit(s) failed") == true && s.reason?.contains("telescope=T3") == true,
                "\(s.reason ?? "-")")
        let line = try w.engine.summaryLine(w.engine.campaigns.campaign(named: "c"))
        #expect(line.contains("calibctl step run c calib"))
        let r = try w.engine.runStep(campaign: "c", step: "calib")
        #expect(r.actions.contains { $0.contains("started iteration 2") })
        #expect(try w.engine.campaigns.step("calib", of: "c").iteration == 2)
    }

    /// Units are the product of the axes in order; placeholders expand to values, `{shard}` to the key.
    @Test func unitsAreTheProductOfTheAxes() throws {
        let w = try EngineWorkspace()
        let c = try w.create("p", """
            checklist: p
            units: {telescope: [LST1, LST2]}
            steps:
              - id: s
                title: S
                phase: p
                action: {per: [run, telescope], command: "echo {run}/{telescope}/{shard}/{param:x} > {output}/o"}
            """, runs: "5-6", settings: CampaignSettings(params: ["x": "X1"]))
        let step = try #require(w.engine.campaigns.checklist(of: c).checklist.step("s"))
        let ctx = try w.engine.context(c, step, iteration: 1)
        let units = try w.engine.units(context: ctx, action: CommandAction())
        #expect(units.map(\.key) == ["run=5,telescope=LST1", "run=5,telescope=LST2", "run=6,telescope=LST1", "run=6,telescope=LST2"])
        let cmd = try CommandAction.expand("echo {run}/{telescope}/{shard}/{param:x} ${HOME} { print $1 }", unit: units[1], context: ctx)
        #expect(cmd == "echo 5/LST2/run=5,telescope=LST2/X1 ${HOME} { print $1 }")
        // Campaign units restrict the checklist's.
        try w.create("q", """
            checklist: q
            units: {telescope: [LST1, LST2]}
            steps:
              - {id: s, title: S, phase: p, action: {per: telescope, command: "true"}}
            """, settings: CampaignSettings(units: ["telescope": ["LST2"]]))
        try w.advance("q") { try w.state("q", "s") == .done }
        #expect(try w.engine.progress(campaign: "q")["s"]?.units == ["telescope=LST2": "succeeded"])
        // An axis without values is refused when the campaign is created.
        #expect(throws: WorkflowEngineError.self) {
            try w.create("r", "checklist: r\nunits: {det: []}\nsteps:\n  - {id: s, title: S, phase: p, action: {per: det, command: 'true'}}\n")
        }
    }

    /// The jobs run in the environment captured at campaign creation, not the ticking process's.
    @Test func jobsRunInTheCreatorsEnvironment() throws {
        let w = try EngineWorkspace()
        var env = CampaignSettings.capturedEnvironment()
        env["CALIB_TEST_MARK"] = "from-the-creator"
        try w.create("e", """
            checklist: e
            steps:
              - {id: s, title: S, phase: p, action: {command: 'echo "$CALIB_TEST_MARK" > {output}/env.txt'}}
            """, settings: CampaignSettings(environment: env))
        try w.advance("e") { try w.state("e", "s") == .done }
        let text = try String(contentsOfFile: w.engine.stepDirectory(campaign: "e", step: "s", iteration: 1) + "/campaign/env.txt",
                              encoding: .utf8)
        #expect(text == "from-the-creator\n")
        #expect(ProcessInfo.processInfo.environment["CALIB_TEST_MARK"] == nil)
    }

    /// Reopening a step stales what was built on it, also across a skipped step, and says why.
    @Test func reopenStalesThroughSkippedSteps() throws {
        let w = try EngineWorkspace()
        let cs = w.engine.campaigns
        try w.create("s", """
            checklist: s
            steps:
              - {id: align, title: A, phase: p}
              - {id: fmt, title: F, phase: p, prerequisites: [align], if_necessary: true}
              - {id: rf, title: R, phase: p, prerequisites: [fmt]}
              - {id: other, title: O, phase: p}
            """)
        for (cmd, step) in [(StepCommand.start, "align"), (.done, "align"), (.skip, "fmt"), (.start, "rf"), (.done, "rf"),
                            (.start, "other"), (.done, "other")] {
            try cs.apply(cmd, campaign: "s", step: step, note: cmd == .skip ? "not installed" : nil)
        }
        let r = try cs.apply(.reopen, campaign: "s", step: "align", note: "new field map")
        #expect(r.staled == ["rf"])
        #expect(try w.state("s", "fmt") == .skipped && w.state("s", "other") == .done)
        let rf = try cs.step("rf", of: "s")
        #expect(rf.state == .stale && rf.reason?.hasPrefix("stale: align reopened at ") == true)
        try cs.apply(.done, campaign: "s", step: "align")
        let again = try cs.step("rf", of: "s")
        #expect(again.state == .ready && again.reason?.hasPrefix("stale: align reopened") == true)
    }

    /// Validation: unknown builtin, unknown axis, repeat without gates, an axis placeholder without the axis,
    /// success without an action; each with its line.
    @Test func validationNamesFileAndLine() throws {
        let (_, issues) = ChecklistLoader.parse(yaml: """
            checklist: v
            steps:
              - id: a
                title: A
                phase: p
                action: {builtin: dark-proces, per: gain-mode}
              - id: b
                title: B
                phase: p
                action: {command: "x {telescope}", per: detector}
                repeat: {max_iterations: 3}
              - id: c
                title: C
                phase: p
                success: {max_failed: 1}
            """, file: "v.yaml")
        let c = try #require(ChecklistLoader.parse(yaml: "checklist: v\nsteps:\n  - {id: a, title: A, phase: p, action: {command: 'x {run}'}}\n").0)
        let all = issues + ChecklistValidator.validate(c)
        let text = all.map(\.description).joined(separator: "\n")
        #expect(text.contains("unknown builtin action 'dark-proces'") && text.contains("did you mean 'dark-process'"), "\(text)")
        #expect(text.contains("repeat runs the step again while a gate fails, but the step has no gates"))
        #expect(text.contains("success applies to an action's units, but the step has no action"))
        #expect(text.contains("placeholder {run} needs the step to run per run"))
        let b = try #require(ChecklistLoader.parse(yaml: """
            checklist: v
            steps:
              - id: b
                title: B
                phase: p
                action: {command: "x {telescope}", per: detector}
            """).0)
        let axisText = ChecklistValidator.validate(b).map(\.description).joined(separator: "\n")
        #expect(axisText.contains("<string>:6:") && axisText.contains("unknown axis 'detector'"), "\(axisText)")
        #expect(axisText.contains("unknown placeholder {telescope}"))
    }

    /// Every builtin the checklist format names has an action, and every registered action is named.
    @Test func builtinNamesMatchTheRegistry() {
        let registered = Set(ActionRegistry.standard.actions.keys).subtracting([CommandAction.actionName])
        #expect(registered == Set(StepAction.builtinNames), "registered \(registered.sorted())")
    }

    /// A killed tick (simulated: the step started and its transaction committed, nothing more) is completed by the
    /// next advance: one job set per iteration, never two.
    @Test func aRunningStepWithoutItsRunIsGivenExactlyOne() throws {
        let w = try EngineWorkspace()
        try w.create("k", "checklist: k\nsteps:\n  - {id: s, title: S, phase: p, action: {per: run, command: 'echo x >> {output}/runs'}}\n",
                     runs: "1-3")
        try w.engine.campaigns.apply(.start, campaign: "k", step: "s")   // as `step start` by a person, or a kill
        try w.advance("k") { try w.state("k", "s") == .done }
        #expect(try w.engine.jobs.listJobSets().map(\.name) == ["k.s.1"])
        for run in 1...3 {
            let t = try String(contentsOfFile: w.engine.stepDirectory(campaign: "k", step: "s", iteration: 1) + "/run=\(run)/runs",
                               encoding: .utf8)
            #expect(t == "x\n")
        }
    }
}
