import ArgumentParser
import CalibCore
import CalibIO
import CalibWorkflow
import Foundation

/// `calibctl step start|done|approve|fail|skip|reopen|log|metrics|effort`: move a campaign's steps by hand.
struct StepGroupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Move a campaign step through its states, record metrics and effort, and list the log.",
        discussion: reflow("""
        States: blocked, ready, running, awaiting-validation, awaiting-sign-off, done, failed, skipped, stale
        (docs/checklists.md has the full transition table). An illegal move exits 65 naming the step, its state and
        what is allowed. Every transition is logged with the OS user, host, time and --note.

        Example:
          calibctl step start rgx-fall dc-alignment
          calibctl step done rgx-fall dc-alignment --note "residuals < 50 um"
          calibctl step reopen rgx-fall dc-alignment --note "wrong torus map"   # downstream done steps -> stale
          calibctl step log rgx-fall
        """),
        subcommands: [Run.self, Start.self, Done.self, Approve.self, Fail.self, Skip.self, Reopen.self, Log.self,
                      Metrics.self, Effort.self, Runs.self]
    )

    struct Target: ParsableArguments {
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.", completion: .campaignName) var campaign: String
        @Argument(help: "The step id.", completion: .stepName) var step: String
        @Option(help: "A note for the log (required for skip: why the step is not necessary).") var note: String?
        @Flag(help: "Print the result as JSON.") var json = false

        @discardableResult
        func apply(_ command: StepCommand) throws -> TransitionResult {
            let store = try CampaignContext.open(ws)
            let r = try store.apply(command, campaign: campaign, step: step, note: note)
            if json { try printJSON(r); return r }
            var line = "\(campaign) \(step): \(r.from.rawValue) -> \(r.to.rawValue) (iteration \(r.iteration))"
            if let g = r.gates, !g.passed, r.to == .awaitingSignOff { line += "; gates failed: \(g.failingSummary)" }
            print(line)
            if !r.staled.isEmpty { print("stale now (inputs changed): \(r.staled.joined(separator: ", "))") }
            return r
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a step's action now: start a ready step (or a failed one again) and submit its jobs.",
            discussion: reflow("""
            For people who do not run cron: does for one step what `calibctl tick` does for every step. A ready
            step becomes iteration N+1 with its job set (one job per unit) or runs inline; a running step is
            followed (completed when its jobs are final); a failed step runs again as a new iteration. Follow it
            with `calibctl checklist show --campaign C` or let `calibctl tick` finish it.
            """) + "\n\nExample: calibctl step run d1 dark-process")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.") var campaign: String
        @Argument(help: "The step id.") var step: String
        @Option(help: "A note for the log.") var note: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let engine = try JobsContext(ws.workspace).workflowEngine()
            let r = try engine.runStep(campaign: campaign, step: step, note: note)
            if json { try printJSON(r); return }
            for a in r.actions { print("\(campaign): \(a)") }
            print(r.line)
        }
    }

    struct Runs: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The iterations of a step: job set, units, outcome, failed units and metrics per iteration.",
            discussion: "Example: calibctl step runs d1 dark-process --json")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.") var campaign: String
        @Argument(help: "The step id.") var step: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let engine = try JobsContext(ws.workspace).workflowEngine()
            _ = try engine.campaigns.step(step, of: campaign)
            let runs = try engine.stepRuns(campaign: campaign, step: step)
            if json { try printJSON(runs); return }
            if runs.isEmpty { Diagnostics.info("\(campaign) \(step): never run by the workflow engine"); return }
            let gates = try engine.campaigns.step(step, of: campaign).step.gates.compactMap(\.metric)
            let rows = runs.map { r in
                [String(r.iteration), r.jobSet ?? r.mode, String(r.units), r.outcome ?? "running",
                 r.failedUnits.keys.sorted().joined(separator: ","),
                 gates.map { g in "\(g)=\(r.metrics[g].map(ValidationItem.format) ?? "-")" }.joined(separator: " ")]
            }
            print(ChecklistRendering.align([["iter", "job set", "units", "outcome", "failed units", "gate metrics"]] + rows),
                  terminator: "")
        }
    }

    struct Start: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "ready (or failed: retry) -> running; iteration + 1.",
            discussion: "Example: calibctl step start rgx-fall dc-alignment --note \"pass0 runs 5032-5040\"")
        @OptionGroup var target: Target
        func run() throws { try target.apply(.start) }
    }
    struct Done: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "running -> done, or awaiting-sign-off if a quality gate fails, or awaiting-validation (manual checks / metrics not reported yet).",
            discussion: "Example: calibctl step done gain-2026a gain-fit --json   # shows the gate results")
        @OptionGroup var target: Target
        func run() throws { try target.apply(.done) }
    }
    struct Approve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "awaiting-validation / awaiting-sign-off -> done; records you as the approver.",
            discussion: "The approver is the OS user running calibctl. Example: calibctl step approve gain-2026a gain-fit --note \"FED 1231 known dead\"")
        @OptionGroup var target: Target
        func run() throws { try target.apply(.approve) }
    }
    struct Fail: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "running / awaiting-* -> failed; cancels the step's live jobs.",
            discussion: reflow("""
            A failed step can be started again (a new iteration). If the failed iteration has a job set, its jobs \
            that are still queued or running are cancelled (tick does not follow a failed step, so their results \
            would never be recorded); if the scheduler cannot be reached the step stays failed and a warning names \
            `calibctl jobs cancel SET`.
            """) + "\n\nExample: calibctl step fail rgx-fall beam-offset --note \"pass0 incomplete\"")
        @OptionGroup var target: Target
        func run() throws {
            let r = try target.apply(.fail)
            do {
                let engine = try JobsContext(target.ws.workspace).workflowEngine()
                if let (set, n) = try engine.cancelJobsOfFailedStep(campaign: target.campaign, step: target.step,
                                                                     iteration: r.iteration), n > 0 {
                    Diagnostics.info("cancelled \(n) live job(s) of job set \(set)")
                }
            } catch {
                Diagnostics.warning("the step is failed, but its jobs could not be cancelled: \(error.localizedDescription); "
                    + "cancel them with `calibctl jobs cancel \(WorkflowEngine.jobSetName(campaign: target.campaign, step: target.step, iteration: r.iteration))`")
            }
        }
    }
    struct Skip: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare an `if necessary` step unnecessary (needs --note); dependents treat it as satisfied.",
            discussion: "Example: calibctl step skip rgx-fall fmt-alignment --note \"no FMT in this run group\"")
        @OptionGroup var target: Target
        func run() throws { try target.apply(.skip) }
    }
    struct Reopen: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Redo a finished step: iteration + 1, running again; every downstream done step becomes stale.",
            discussion: "Refused while a downstream step is running. Example: calibctl step reopen rgx-fall dc-alignment --note \"wrong torus map\"")
        @OptionGroup var target: Target
        func run() throws { try target.apply(.reopen) }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the transitions of a campaign (or one step): who, when, from, to, note.",
            discussion: "Example: calibctl step log rgx-fall dc-alignment --json")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.", completion: .campaignName) var campaign: String
        @Argument(help: "Only this step.", completion: .stepName) var step: String?
        @Flag(help: "Include the `create` entries.") var all = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let store = try CampaignContext.open(ws)
            let log = try store.log(campaign: campaign, step: step).filter { all || $0.command != .create }
            if json { try printJSON(log); return }
            let rows = log.map { t in
                [ISO8601DateFormatter().string(from: t.at), t.step, t.command.rawValue, "\(t.from.rawValue) -> \(t.to.rawValue)",
                 String(t.iteration), "\(t.actor)@\(t.host)", t.note ?? ""]
            }
            print(ChecklistRendering.align([["time", "step", "command", "transition", "iter", "who", "note"]] + rows),
                  terminator: "")
        }
    }

    struct Metrics: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record metrics NAME=VALUE for the step's current iteration; a step awaiting validation is then checked against its gates.",
            discussion: "Example: calibctl step metrics gain-2026a gain-fit fraction_good=0.991 mean_gain=152.3")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.", completion: .campaignName) var campaign: String
        @Argument(help: "The step id.", completion: .stepName) var step: String
        @Argument(help: "Metrics as NAME=VALUE.") var values: [String]
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            var metrics: [String: Double] = [:]
            for v in values {
                let parts = v.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, let d = Double(parts[1]), d.isFinite else {
                    throw UsageError("metric '\(v)' is not NAME=NUMBER", fix: "write e.g. fraction_good=0.991")
                }
                metrics[parts[0]] = d
            }
            guard !metrics.isEmpty else { throw UsageError("no metrics given", fix: "write e.g. fraction_good=0.991") }
            let store = try CampaignContext.open(ws)
            try store.recordMetrics(campaign: campaign, step: step, metrics: metrics)
            var result: TransitionResult?
            if try store.step(step, of: campaign).state == .awaitingValidation,
               !(try store.step(step, of: campaign).step.gates.isEmpty) {
                result = try store.evaluateGates(campaign: campaign, step: step)
            }
            if json {
                struct R: Codable { var recorded: [String: Double]; var transition: TransitionResult? }
                try printJSON(R(recorded: metrics, transition: result)); return
            }
            print("recorded \(metrics.count) metric\(metrics.count == 1 ? "" : "s") for \(campaign) \(step)")
            if let r = result {
                print("\(campaign) \(step): \(r.from.rawValue) -> \(r.to.rawValue)"
                      + (r.gates.map { $0.passed ? "; all gates passed" : "; gates failed: \($0.failingSummary)" } ?? ""))
            }
        }
    }

    struct Effort: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add resources used by the step's current iteration (runs, events, jobs, CPU, wall time, disk).",
            discussion: "Example: calibctl step effort rgx-fall ftof-calibration --runs 45 --events 4500000000 --cpu-hours 5000 --disk-written 52TB")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.", completion: .campaignName) var campaign: String
        @Argument(help: "The step id.", completion: .stepName) var step: String
        @Option(help: "Runs processed in this iteration.") var runs: Int = 0
        @Option(help: "Events processed.") var events: Int64 = 0
        @Option(help: "Batch jobs run (including retries).") var jobs: Int = 0
        @Option(name: .customLong("cpu-hours"), help: "CPU time used, in hours (summed over jobs).") var cpuHours: Double = 0
        @Option(name: .customLong("wall-hours"), help: "Wall-clock time used, in hours (summed over jobs).") var wallHours: Double = 0
        @Option(name: .customLong("disk-written"), help: "Bytes, or with a unit: 52TB, 800GB.") var diskWritten: String = "0"
        @Option(name: .customLong("disk-held"), help: "Bytes still held on transient disk.") var diskHeld: String = "0"

        func run() throws {
            let e = EffortRecord(runs: runs, events: events, jobs: jobs, cpuSeconds: cpuHours * 3600,
                                 wallSeconds: wallHours * 3600, diskBytesWritten: try Self.bytes(diskWritten),
                                 diskBytesHeld: try Self.bytes(diskHeld))
            let store = try CampaignContext.open(ws)
            try store.recordEffort(campaign: campaign, step: step, effort: e, source: "calibctl step effort")
            print("recorded effort for \(campaign) \(step)")
        }

        static func bytes(_ s: String) throws -> Int64 {
            let units: [(String, Double)] = [("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3), ("KB", 1e3), ("B", 1)]
            for (u, f) in units where s.hasSuffix(u) {
                if let v = Double(s.dropLast(u.count).trimmingCharacters(in: .whitespaces)), v >= 0 { return Int64(v * f) }
            }
            if let v = Int64(s), v >= 0 { return v }
            throw UsageError("'\(s)' is not a size", fix: "write bytes or a number with a unit, e.g. 52TB, 800GB")
        }
    }
}
