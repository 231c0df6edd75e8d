import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import Foundation

/// Moves any campaign on, driven by its checklist alone (docs/workflow.md):
///
/// - a **ready** step with an action is started (iteration N) and, in the same database transaction, given its job
///   set `<campaign>.<step>.<N>` with one shard per unit (or, for an inline action, a `step_runs` row); the job set is
///   then submitted (crash-safe in `JobEngine`);
/// - a **running** step's job set is followed; when it is final, the units' metrics and outputs are recorded, the
///   step's aggregate metrics and effort written, the quorum rule applied (failed: the step fails, naming the units)
///   and the gates evaluated (done, or awaiting sign-off); with `repeat:` a failing gate runs the step again.
///
/// Every change of a step and its records happens in one transaction keyed by (campaign, step, iteration), so a
/// tick killed at any point is completed by the next one: no job set is duplicated or lost.
public final class WorkflowEngine {
    public let jobs: JobEngine
    public let campaigns: CampaignStore
    public let actions: ActionRegistry
    public var workspace: Workspace { jobs.workspace }
    var database: SQLiteDatabase { jobs.database }
    private var openedStore: ConstantsStore?
    /// Who is acting (recorded on transitions).
    public var identity: Identity = .current

    public init(jobs: JobEngine, actions: ActionRegistry) throws {
        self.jobs = jobs
        self.actions = actions
        campaigns = try CampaignStore(database: jobs.database)
        try WorkflowSchema.migrate(jobs.database)
    }

    /// The constants store of the workspace (opened on first use; it must exist: `calibctl store init`).
    public func store() throws -> ConstantsStore {
        if let s = openedStore { return s }
        let s = try ConstantsStore(directory: workspace.store)
        openedStore = s
        return s
    }

    // MARK: - Campaigns

    /// Creates a campaign with its settings in one transaction. Unit axes the checklist's actions need are checked
    /// now where they can be (a declared axis with no values and none given is refused).
    @discardableResult
    public func createCampaign(name: String, checklistYAML: String, file: String, runs: RunSet,
                               settings: CampaignSettings, note: String? = nil) throws -> Campaign {
        let checklist = try ChecklistLoader.load(yaml: checklistYAML, file: file)
        for (axis, values) in settings.units {
            guard !values.isEmpty, values.allSatisfy({ !$0.isEmpty && !$0.contains(",") && !$0.contains("=") && !$0.contains("/") }) else {
                throw WorkflowEngineError.badSetting(what: "--units \(axis)", value: values.joined(separator: ","),
                                                     fix: "give non-empty values without ',', '=' or '/', e.g. --units \(axis)=A,B")
            }
        }
        for s in checklist.steps {
            for axis in s.action?.axes ?? [] where axis != "run" && axis != "fed" && axis != "gain-mode" {
                if (settings.units[axis] ?? checklist.units[axis] ?? []).isEmpty {
                    throw WorkflowEngineError.noUnits(campaign: name, step: s.id, axis: axis)
                }
            }
        }
        return try database.transaction {
            let c = try campaigns.create(name: name, checklistYAML: checklistYAML, file: file, runs: runs, note: note,
                                         by: identity)
            try database.run("INSERT INTO workflow_campaigns(campaign_id, settings) VALUES(?, ?)", c.id,
                             String(decoding: try Self.encoder.encode(settings), as: UTF8.self))
            return c
        }
    }

    /// A campaign's settings (defaults for campaigns created without the engine).
    public func settings(of c: Campaign) throws -> CampaignSettings {
        guard let row = try database.first("SELECT settings FROM workflow_campaigns WHERE campaign_id = ?", c.id),
              let text = row.text("settings") else { return CampaignSettings() }
        do { return try JSONDecoder().decode(CampaignSettings.self, from: Data(text.utf8)) } catch {
            throw CampaignError.corruptCampaign(name: c.name, detail: "its workflow settings cannot be read: \(error)")
        }
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    // MARK: - Paths and names

    /// `HOME/campaigns/<campaign>/<step>/i<iteration>`.
    public func stepDirectory(campaign: String, step: String, iteration: Int) -> String {
        [workspace.home, "campaigns", Self.safe(campaign), Self.safe(step), "i\(iteration)"]
            .joined(separator: "/")
    }

    /// The deterministic job set name of a step iteration: `<campaign>.<step>.<iteration>` (characters outside
    /// `[A-Za-z0-9._-]` become `_`, and a hash keeps such names and long names unique).
    public static func jobSetName(campaign: String, step: String, iteration: Int) -> String {
        let plain = "\(campaign).\(step).\(iteration)"
        let safe = "\(safe(campaign)).\(safe(step)).\(iteration)"
        if safe == plain && plain.count <= 100, JobSetDefinition.isValidName(plain) { return plain }
        let hash = SHA256Hasher.hex(Array(plain.utf8)).prefix(10)
        return "w" + String(safe.prefix(80)) + "." + hash
    }

    static func safe(_ s: String) -> String {
        String(s.unicodeScalars.map { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) ? Character($0) : "_" })
    }

    // MARK: - Units

    /// The values of one axis for a step: the campaign's (`--units`), else the checklist's (`units:`), else the
    /// built-in ones (`run`: the campaign's runs; `gain-mode`: 0, 1, 2), else what the action finds.
    public func unitValues(axis: String, context: ActionContext, action: any WorkflowAction) throws -> [String] {
        if let v = context.settings.units[axis], !v.isEmpty { return v }
        if let v = context.checklist.units[axis], !v.isEmpty { return v }
        if axis == "run" { return context.campaign.runs.runs.map(String.init) }
        if let v = try action.discoverUnits(axis: axis, context: context), !v.isEmpty { return v }
        if axis == "gain-mode" { return ["0", "1", "2"] }
        throw WorkflowEngineError.noUnits(campaign: context.campaign.name, step: context.step.id, axis: axis)
    }

    /// The units of a step: the product of its axes' values in axis order (one unit without axes).
    public func units(context: ActionContext, action: any WorkflowAction) throws -> [WorkUnit] {
        var out: [[(String, String)]] = [[]]
        for axis in context.action.axes {
            let values = try unitValues(axis: axis, context: context, action: action)
            out = out.flatMap { prefix in values.map { prefix + [(axis, $0)] } }
        }
        return out.map(WorkUnit.init)
    }

    func context(_ c: Campaign, _ step: ChecklistStep, iteration: Int) throws -> ActionContext {
        let (checklist, _) = try campaigns.checklist(of: c)
        return ActionContext(engine: self, campaign: c, checklist: checklist, settings: try settings(of: c),
                             step: step, iteration: iteration)
    }

    // MARK: - Step runs

    func stepRun(_ c: Campaign, _ step: String, iteration: Int) throws -> SQLRow? {
        try database.first("SELECT * FROM step_runs WHERE campaign_id = ? AND step_id = ? AND iteration = ?",
                           c.id, step, iteration)
    }

    /// Every recorded iteration of a step, oldest first, with its aggregate metrics.
    public func stepRuns(campaign name: String, step stepID: String) throws -> [StepRunRecord] {
        let c = try campaigns.campaign(named: name)
        return try database.query("SELECT * FROM step_runs WHERE campaign_id = ? AND step_id = ? ORDER BY iteration",
                                  c.id, stepID).map { r in
            let it = Int(r.int("iteration") ?? 0)
            let failed = (r.text("failed_units")).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
            return StepRunRecord(step: stepID, iteration: it, mode: r.text("mode") ?? "jobs", jobSet: r.text("job_set"),
                                 units: Int(r.int("units") ?? 0),
                                 startedAt: Self.date(r.text("started_at")) ?? Date(timeIntervalSince1970: 0),
                                 finishedAt: Self.date(r.text("finished_at")), outcome: r.text("outcome"),
                                 failedUnits: failed,
                                 metrics: (try? campaigns.metrics(campaign: name, step: stepID, iteration: it)) ?? [:])
        }
    }

    static func date(_ s: String?) -> Date? {
        s.flatMap { try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) }
    }
    static func now() -> String { Date().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }

    /// Outputs of a step's latest finished iteration.
    func latestOutputs(campaign c: Campaign, step: String) throws -> [UnitOutput] {
        guard let r = try database.first("""
            SELECT iteration FROM step_runs WHERE campaign_id = ? AND step_id = ? AND finished_at IS NOT NULL
            ORDER BY iteration DESC LIMIT 1
            """, c.id, step), let it = r.int("iteration") else {
            throw WorkflowEngineError.actionFailed(campaign: c.name, step: step, detail: "step \(step) has no finished run with outputs")
        }
        return try database.query("""
            SELECT unit, name, path, size, sha256 FROM step_outputs WHERE campaign_id = ? AND step_id = ? AND iteration = ?
            ORDER BY unit, name
            """, c.id, step, it).map {
            UnitOutput(unit: $0.text("unit") ?? "", name: $0.text("name") ?? "", path: $0.text("path") ?? "",
                       size: $0.int("size") ?? 0, sha256: $0.text("sha256") ?? "")
        }
    }

    // MARK: - Moving campaigns

    /// What `advance` did to one campaign.
    public struct Report: Sendable, Codable, Equatable {
        public var campaign: String
        /// Steps started, job sets submitted, steps completed, as sentences.
        public var actions: [String] = []
        /// The one-line state of the campaign.
        public var line: String = ""
        public var submitted = 0
    }

    /// Moves every campaign created through the engine on (campaigns made by the checklist engine alone, e.g. by an
    /// older calibctl, are left to people); one campaign's error never stops the others (it becomes its line and
    /// an error).
    public func advanceAll(deadline: Date? = nil) -> (reports: [Report], errors: [String]) {
        var reports: [Report] = [], errors: [String] = []
        let all: [Campaign]
        do {
            let ids = Set(try database.query("SELECT campaign_id FROM workflow_campaigns").compactMap { $0.int("campaign_id") })
            all = try campaigns.campaigns().filter { ids.contains($0.id) }
        } catch { return ([], ["campaigns: \(error)"]) }
        for c in all {
            if let d = deadline, Date() > d { break }
            do {
                let r = try advance(campaign: c.name, deadline: deadline)
                if !r.actions.isEmpty || !isSettled(r.line) { reports.append(r) }
            } catch {
                let msg = (error as? DiagnosableError).map { $0.message + ($0.fix.map { "; fix: \($0)" } ?? "") } ?? "\(error)"
                reports.append(Report(campaign: c.name, actions: [], line: "\(c.name): error: \(msg)"))
                errors.append("campaign \(c.name): \(msg)")
            }
        }
        return (reports, errors)
    }

    private func isSettled(_ line: String) -> Bool { line.hasSuffix(": complete") }

    /// Moves one campaign on as far as it can go now: starts ready steps with actions, follows running ones, and
    /// repeats while something changed (so inline steps follow each other in one tick).
    @discardableResult
    public func advance(campaign name: String, deadline: Date? = nil, only stepFilter: String? = nil) throws -> Report {
        var report = Report(campaign: name)
        let c = try campaigns.campaign(named: name)
        for _ in 0..<64 {
            if let d = deadline, Date() > d { break }
            var progressed = false
            for s in try campaigns.steps(of: c) {
                if let f = stepFilter, s.id != f { continue }
                let hasAction = s.step.action != nil
                switch s.state {
                case .ready where hasAction:
                    if try start(c, s, report: &report) { progressed = true }
                case .running:
                    if try follow(c, s, report: &report) { progressed = true }
                default: break
                }
            }
            if !progressed { break }
        }
        report.line = try summaryLine(c)
        return report
    }

    /// Starts a ready (or, with `retry`, failed) step: iteration + 1 and its job set or inline run, in one
    /// transaction; then submits. Returns false when the units cannot be determined (reported, step unchanged).
    func start(_ c: Campaign, _ s: CampaignStep, report: inout Report, note: String? = nil) throws -> Bool {
        guard let action = actions.action(for: s.step) else {
            report.actions.append("\(s.id): no action named \(s.step.action?.summary ?? "?") in this calibctl")
            return false
        }
        let iteration = s.iteration + 1
        let ctx = try context(c, s.step, iteration: iteration)
        let units = try units(context: ctx, action: action)
        try database.transaction {
            let r = try campaigns.apply(.start, campaign: c.name, step: s.id, by: identity,
                                        note: note ?? "started by the workflow engine: \(units.count) unit(s)")
            guard r.iteration == iteration else {
                throw CampaignError.corruptCampaign(name: c.name, detail: "step \(s.id) moved to iteration \(r.iteration) while starting \(iteration)")
            }
            try createRun(c, s.step, iteration: iteration, action: action, context: ctx, units: units)
        }
        report.actions.append("\(s.id): started iteration \(iteration) (\(units.count) unit\(units.count == 1 ? "" : "s"), \(action.mode == .inline ? "inline" : "jobs"))")
        if action.mode == .jobs { report.submitted += try submit(c, s.id, iteration: iteration, report: &report) }
        return true
    }

    /// Records the run of an iteration (and creates its job set); caller holds a transaction.
    func createRun(_ c: Campaign, _ step: ChecklistStep, iteration: Int, action: any WorkflowAction,
                   context ctx: ActionContext, units: [WorkUnit]) throws {
        var jobSet: String? = nil
        if action.mode == .jobs {
            let name = Self.jobSetName(campaign: c.name, step: step.id, iteration: iteration)
            if try database.first("SELECT id FROM job_sets WHERE name = ?", name) == nil {
                var shards: [ShardDefinition] = []
                for u in units {
                    var spec = try action.spec(for: u, context: ctx)
                    spec.key = u.key
                    if spec.environment == nil && !ctx.settings.environment.isEmpty { spec.environment = ctx.settings.environment }
                    shards.append(ShardDefinition(key: u.key, spec: spec))
                }
                let a = step.action
                try jobs.createJobSet(JobSetDefinition(
                    name: name, scheduler: a?.scheduler ?? ctx.settings.scheduler, campaign: c.name, step: step.id,
                    memoryMB: a?.memoryMB ?? ctx.settings.memoryMB,
                    timeLimitSeconds: a?.timeLimitSeconds ?? ctx.settings.timeLimitSeconds,
                    parameters: ["iteration": String(iteration), "action": action.name], shards: shards))
            }
            jobSet = name
        }
        try database.run("""
            INSERT OR IGNORE INTO step_runs(campaign_id, step_id, iteration, mode, job_set, units, started_at)
            VALUES(?,?,?,?,?,?,?)
            """, c.id, step.id, iteration, action.mode.rawValue, jobSet, units.count, Self.now())
    }

    /// Submits what is not submitted yet of the iteration's job set (nothing if all is); scheduler errors are
    /// reported and retried at the next tick.
    func submit(_ c: Campaign, _ stepID: String, iteration: Int, report: inout Report) throws -> Int {
        guard let row = try stepRun(c, stepID, iteration: iteration), let js = row.text("job_set") else { return 0 }
        do {
            let n = try jobs.submit(jobSet: js)
            if n > 0 { report.actions.append("\(stepID): submitted \(n) job(s) of \(js)") }
            return n
        } catch {
            report.actions.append("\(stepID): submitting \(js) failed, retried next tick: \((error as? DiagnosableError)?.message ?? "\(error)")")
            return 0
        }
    }

    /// Follows a running step: creates its run if a kill (or `step start` by a person) left none, submits what is
    /// unsubmitted, and completes it when its job set is final (or runs it, if inline). True when it changed.
    func follow(_ c: Campaign, _ s: CampaignStep, report: inout Report) throws -> Bool {
        let row = try stepRun(c, s.id, iteration: s.iteration)
        if row == nil {
            guard let action = actions.action(for: s.step) else { return false }
            let ctx = try context(c, s.step, iteration: s.iteration)
            let units = try units(context: ctx, action: action)
            try database.transaction {
                try createRun(c, s.step, iteration: s.iteration, action: action, context: ctx, units: units)
            }
            report.actions.append("\(s.id): iteration \(s.iteration) given its \(action.mode == .inline ? "inline run" : "job set")")
            if action.mode == .jobs { report.submitted += try submit(c, s.id, iteration: s.iteration, report: &report) }
            return true
        }
        guard let row, row.text("finished_at") == nil else { return false }
        if let js = row.text("job_set") {
            report.submitted += try submit(c, s.id, iteration: s.iteration, report: &report)
            let st = try jobs.status(jobSet: js, history: true)
            guard st.finished else { return false }
            try completeJobs(c, s, jobSet: js, status: st, report: &report)
            return true
        }
        try runInline(c, s, report: &report)
        return true
    }

    // MARK: - Completion

    func completeJobs(_ c: Campaign, _ s: CampaignStep, jobSet: String, status st: JobSetStatus,
                      report: inout Report) throws {
        let results = try jobs.results(jobSet: jobSet)
        var unitResults: [UnitResult] = []
        for r in results {
            var outs = r.outputs.map { UnitOutput(unit: r.key, name: $0.name, path: $0.path, size: $0.size, sha256: $0.sha256) }
            // A command's files under its unit directory are its outputs too.
            let path = try specPath(jobSet: jobSet, index: r.index)
            if let spec = try? JobSpec.read(path, shard: JobSetSpec.isJobSetSpec(path) ? r.index : nil),
               let dir = spec.workDirectory {
                outs += try Self.filesUnder(dir, unit: r.key).filter { f in !outs.contains { $0.path == f.path } }
            }
            unitResults.append(UnitResult(unit: WorkUnit(key: r.key), metrics: r.metrics, outputs: outs))
        }
        var failed: [String: String] = [:]
        for f in st.failed { failed[f.key] = [f.failureClass?.rawValue, f.reason].compactMap { $0 }.joined(separator: ": ") }
        let shards = st.shards ?? []
        var effort = EffortRecord()
        for sh in shards {
            for a in sh.history ?? [] {
                effort.jobs += 1
                effort.cpuSeconds += a.cpuSeconds ?? 0
                if let b = a.started, let e = a.ended { effort.wallSeconds += max(0, e.timeIntervalSince(b)) }
            }
        }
        try finish(c, s, total: st.shardCount, results: unitResults, failed: failed, effort: effort,
                   source: "job set \(jobSet)", report: &report)
    }

    func specPath(jobSet: String, index: Int) throws -> String {
        guard let r = try database.first("""
            SELECT s.spec_path AS p FROM shards s JOIN job_sets j ON j.id = s.job_set WHERE j.name = ? AND s.idx = ?
            """, jobSet, index), let p = r.text("p") else { throw JobError.unknownJobSet(jobSet) }
        return p
    }

    /// Regular files under `dir` (recursively), with size and SHA-256, named by their relative path.
    static func filesUnder(_ dir: String, unit: String) throws -> [UnitOutput] {
        guard let e = FileManager.default.enumerator(atPath: dir) else { return [] }
        var out: [UnitOutput] = []
        for case let rel as String in e {
            let p = (dir as NSString).appendingPathComponent(rel)
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir), !isDir.boolValue,
                  !(rel as NSString).lastPathComponent.hasPrefix(".") else { continue }
            out.append(UnitOutput(unit: unit, name: rel, path: p, size: JobFiles.size(p) ?? 0,
                                  sha256: try JobFiles.sha256(ofFile: p)))
        }
        return out.sorted { $0.name < $1.name }
    }

    func runInline(_ c: Campaign, _ s: CampaignStep, report: inout Report) throws {
        guard let action = actions.action(for: s.step) else { return }
        let ctx = try context(c, s.step, iteration: s.iteration)
        let units = try units(context: ctx, action: action)
        var results: [UnitResult] = [], failed: [String: String] = [:]
        var usage0 = rusage(), usage1 = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage0)
        let t0 = Date()
        try FileManager.default.createDirectory(atPath: ctx.stepDirectory, withIntermediateDirectories: true)
        for u in units {
            do {
                let r = try action.runInline(unit: u, context: ctx)
                var outs: [UnitOutput] = []
                for (n, p) in r.outputs.sorted(by: { $0.key < $1.key }) {
                    outs.append(UnitOutput(unit: u.key, name: n, path: p, size: JobFiles.size(p) ?? 0,
                                           sha256: try JobFiles.sha256(ofFile: p)))
                }
                results.append(UnitResult(unit: u, metrics: r.metrics, outputs: outs))
            } catch let e as DiagnosableError {
                failed[u.key] = e.message + (e.fix.map { "; fix: \($0)" } ?? "")
            } catch {
                // Any other error of an inline action fails its unit too: the step must not stay running forever.
                failed[u.key] = "\(error)"
            }
        }
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage1)
        func sec(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        let cpu = sec(usage1.ru_utime) - sec(usage0.ru_utime) + sec(usage1.ru_stime) - sec(usage0.ru_stime)
        let effort = EffortRecord(jobs: 0, cpuSeconds: max(0, cpu), wallSeconds: Date().timeIntervalSince(t0))
        try finish(c, s, total: units.count, results: results, failed: failed, effort: effort,
                   source: "inline \(action.name)", report: &report)
    }

    /// Records units, metrics, outputs and effort, then applies the quorum rule, the gates and the repeat rule, all
    /// in one transaction.
    func finish(_ c: Campaign, _ s: CampaignStep, total: Int, results: [UnitResult], failed: [String: String],
                effort baseEffort: EffortRecord, source: String, report: inout Report) throws {
        var metrics = Self.aggregate(results.map(\.metrics))
        if let action = actions.action(for: s.step) {
            let ctx = try context(c, s.step, iteration: s.iteration)
            for (k, v) in try action.aggregate(results, context: ctx) where v.isFinite { metrics[k] = v }
        }
        metrics["shards"] = Double(total)
        metrics["failed_shards"] = Double(total - results.count)
        metrics["succeeded_shards"] = Double(results.count)
        var effort = baseEffort
        effort.diskBytesWritten = results.flatMap(\.outputs).reduce(Int64(0)) { $0 + $1.size }
        effort.diskBytesHeld = effort.diskBytesWritten
        // Runs processed: distinct `run` units; else distinct values of a `run` metric (units of one run fanned out
        // per FED or telescope each report the run they read); else the sum of `runs` metrics.
        let runValues = Set(results.compactMap { $0.unit.value("run") })
        let runMetrics = Set(results.compactMap { $0.metrics["run"] })
        effort.runs = !runValues.isEmpty ? runValues.count
            : !runMetrics.isEmpty ? runMetrics.count : Int(results.compactMap { $0.metrics["runs"] }.reduce(0, +))
        effort.events = Int64(results.compactMap { $0.metrics["events"] }.reduce(0, +))
        let rule = s.step.success ?? .all
        let quorumOK = rule.accepts(failed: failed.count, total: total)
        let failedText = failed.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ")
        try database.transaction {
            // Re-read inside the transaction: another process may have finished this iteration meanwhile.
            let now = try campaigns.step(s.id, of: c.name)
            guard now.state == .running, now.iteration == s.iteration,
                  let row = try stepRun(c, s.id, iteration: s.iteration), row.text("finished_at") == nil else { return }
            try database.run("DELETE FROM unit_metrics WHERE campaign_id = ? AND step_id = ? AND iteration = ?", c.id, s.id, s.iteration)
            try database.run("DELETE FROM step_outputs WHERE campaign_id = ? AND step_id = ? AND iteration = ?", c.id, s.id, s.iteration)
            for r in results {
                for (k, v) in r.metrics where v.isFinite {
                    try database.run("INSERT OR REPLACE INTO unit_metrics VALUES(?,?,?,?,?,?)", c.id, s.id, s.iteration, r.unit.key, k, v)
                }
                for o in r.outputs {
                    try database.run("INSERT OR REPLACE INTO step_outputs VALUES(?,?,?,?,?,?,?,?)", c.id, s.id, s.iteration,
                                     o.unit, o.name, o.path, o.size, o.sha256)
                }
            }
            try campaigns.recordMetrics(campaign: c.name, step: s.id, metrics: metrics.filter { $0.value.isFinite }, by: identity)
            try campaigns.recordEffort(campaign: c.name, step: s.id, effort: effort, source: source)
            let outcome = quorumOK ? "succeeded" : "quorum-failed"
            try database.run("""
                UPDATE step_runs SET finished_at = ?, outcome = ?, failed_units = ? WHERE campaign_id = ? AND step_id = ? AND iteration = ?
                """, Self.now(), outcome, String(decoding: try Self.encoder.encode(failed), as: UTF8.self), c.id, s.id, s.iteration)
            if !quorumOK {
                let why = "\(failed.count) of \(total) unit(s) failed (needs: \(rule.text)): \(failedText)"
                try campaigns.apply(.fail, campaign: c.name, step: s.id, by: identity, note: why)
                try campaigns.setReason(campaign: c.name, step: s.id, reason: why)
                report.actions.append("\(s.id): failed: \(why)")
                return
            }
            let note = "\(results.count)/\(total) unit(s) succeeded" + (failed.isEmpty ? "" : "; failed by rule (\(rule.text)): \(failedText)")
            let r = try campaigns.apply(.evaluate, campaign: c.name, step: s.id, by: identity, note: note)
            if r.to == .awaitingSignOff, let rep = s.step.repeatRule {
                let history = try gateHistory(c, s.step)
                if s.iteration < rep.maxIterations {
                    try campaigns.apply(.reopen, campaign: c.name, step: s.id, by: identity,
                                        note: "repeat: iteration \(s.iteration) of at most \(rep.maxIterations): \(r.gates?.failingSummary ?? "gates failed"); \(history)")
                    report.actions.append("\(s.id): gates failed in iteration \(s.iteration), running iteration \(s.iteration + 1)")
                    return
                }
                report.actions.append("\(s.id): gates still fail after \(s.iteration) iteration(s) (the cap): awaiting sign-off; \(history)")
                try campaigns.setReason(campaign: c.name, step: s.id,
                                        reason: "repeat cap \(rep.maxIterations) reached; \(history)")
                return
            }
            report.actions.append("\(s.id): \(r.to.rawValue) (\(note))" + (r.gates.map { $0.passed ? "" : "; gates: \($0.failingSummary)" } ?? ""))
        }
    }

    /// `mean_shift per iteration: 0.8, 0.4, 0.2` for each gate metric of the step.
    func gateHistory(_ c: Campaign, _ step: ChecklistStep) throws -> String {
        let metricsByIteration = try database.query("""
            SELECT iteration, name, value FROM step_metrics WHERE campaign_id = ? AND step_id = ? ORDER BY iteration
            """, c.id, step.id)
        var series: [String: [String]] = [:]
        for g in step.gates {
            series[g.metric!] = metricsByIteration.filter { $0.text("name") == g.metric }
                .map { ValidationItem.format($0.double("value") ?? .nan) }
        }
        return series.sorted { $0.key < $1.key }.map { "\($0.key) per iteration: \($0.value.joined(separator: ", "))" }
            .joined(separator: "; ")
    }

    /// Per metric `m` over the units: `m` (mean), `m.min`, `m.max`, `m.sum`. Non-finite values are left out.
    public static func aggregate(_ perUnit: [[String: Double]]) -> [String: Double] {
        var values: [String: [Double]] = [:]
        for m in perUnit { for (k, v) in m where v.isFinite { values[k, default: []].append(v) } }
        var out: [String: Double] = [:]
        for (k, vs) in values where !vs.isEmpty {
            let sum = vs.reduce(0, +)
            out[k] = sum / Double(vs.count)
            out[k + ".min"] = vs.min()!
            out[k + ".max"] = vs.max()!
            out[k + ".sum"] = sum
        }
        return out
    }

    // MARK: - Reading

    /// Per step with a run in its current iteration: unit progress.
    public func progress(campaign name: String) throws -> [String: StepProgress] {
        let c = try campaigns.campaign(named: name)
        var out: [String: StepProgress] = [:]
        for s in try campaigns.steps(of: c) where s.iteration > 0 {
            guard let row = try stepRun(c, s.id, iteration: s.iteration) else { continue }
            let total = Int(row.int("units") ?? 0)
            var p = StepProgress(step: s.id, iteration: s.iteration, jobSet: row.text("job_set"), total: total,
                                 succeeded: 0, failed: 0, running: 0, units: [:])
            if let js = row.text("job_set"), let st = try? jobs.status(jobSet: js) {
                for sh in st.shards ?? [] {
                    let state = sh.state?.rawValue ?? "not-submitted"
                    p.units[sh.key] = state
                    switch sh.state {
                    case .succeeded?: p.succeeded += 1
                    case .failed?, .lost?, .cancelled?: p.failed += 1
                    default: p.running += 1
                    }
                }
            } else if row.text("finished_at") != nil {
                let failed = (row.text("failed_units")).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
                p.failed = failed.count
                p.succeeded = total - failed.count
                for k in failed.keys { p.units[k] = "failed" }
            } else {
                p.running = total
            }
            out[s.id] = p
        }
        return out
    }

    /// One line: where the campaign stands and what it waits for.
    public func summaryLine(_ c: Campaign) throws -> String {
        let steps = try campaigns.steps(of: c)
        if let w = steps.first(where: { [.awaitingSignOff, .awaitingValidation].contains($0.state) }) {
            let why = w.gates?.failing.isEmpty == false ? w.gates!.failingSummary : "manual check"
            return "\(c.name): \(w.id) \(w.state.rawValue) (\(why)); sign off: calibctl step approve \(c.name) \(w.id) --note ..."
        }
        if let f = steps.first(where: { $0.state == .failed }) {
            return "\(c.name): \(f.id) failed; after fixing the cause: calibctl step run \(c.name) \(f.id)"
        }
        let running = steps.filter { $0.state == .running }
        if !running.isEmpty {
            let prog = (try? progress(campaign: c.name)) ?? [:]
            return "\(c.name): " + running.map { s in "\(s.id) running" + (prog[s.id].map { " \($0.text)" } ?? "") }
                .joined(separator: ", ")
        }
        let ready = steps.filter { $0.state == .ready }
        if !ready.isEmpty {
            return "\(c.name): ready for a person: " + ready.map(\.id).joined(separator: ", ")
                + " (no action: calibctl step start/done, or skip)"
        }
        if steps.allSatisfy({ $0.state.satisfiesDependents }) { return "\(c.name): complete" }
        return "\(c.name): waiting"
    }

    // MARK: - People's commands

    /// After a person failed a step (`calibctl step fail`): cancels what is still live of the job set of the
    /// iteration that failed, so the farm does not keep running jobs whose results nobody will record (tick follows
    /// running steps only). Returns the job set and how many attempts were cancelled; nil when the iteration has no
    /// job set (an inline or manual step).
    public func cancelJobsOfFailedStep(campaign name: String, step stepID: String, iteration: Int) throws -> (jobSet: String, cancelled: Int)? {
        let c = try campaigns.campaign(named: name)
        guard let js = try stepRun(c, stepID, iteration: iteration)?.text("job_set") else { return nil }
        return (js, try jobs.cancel(jobSet: js))
    }

    /// `calibctl step run CAMPAIGN STEP`: starts a ready step now (or runs a failed one again as a new iteration) and
    /// follows it once; for people who do not run cron. A running step is only followed.
    @discardableResult
    public func runStep(campaign name: String, step stepID: String, note: String? = nil) throws -> Report {
        var report = Report(campaign: name)
        let c = try campaigns.campaign(named: name)
        let s = try campaigns.step(stepID, of: name)
        guard s.step.action != nil else {
            throw WorkflowEngineError.actionFailed(campaign: name, step: stepID,
                                                   detail: "step \(stepID) has no action; a person does it (calibctl step start / done)")
        }
        switch s.state {
        case .ready, .failed:
            _ = try start(c, s, report: &report, note: note ?? "calibctl step run")
        case .running:
            _ = try follow(c, s, report: &report)
        default:
            throw CampaignError.illegalTransition(campaign: name, step: stepID, state: s.state, command: .start,
                                                  allowed: s.state == .blocked ? [] : [.reopen],
                                                  unmet: s.unmetPrerequisites)
        }
        let r = try advance(campaign: name, only: stepID)
        report.actions += r.actions
        report.submitted += r.submitted
        report.line = r.line
        return report
    }

    /// Adopts a job set created by hand (`calibctl jobs create --campaign C --step S`) as the step's current
    /// iteration's job set: starts the step if it is ready; refuses if the iteration has a job set already.
    public func adopt(jobSet: String, campaign name: String, step stepID: String) throws {
        try database.transaction {
            let c = try campaigns.campaign(named: name)
            var s = try campaigns.step(stepID, of: name)
            if s.state == .ready || s.state == .failed {
                try campaigns.apply(.start, campaign: name, step: stepID, by: identity, note: "job set \(jobSet) created by hand")
                s = try campaigns.step(stepID, of: name)
            }
            guard s.state == .running else {
                throw CampaignError.illegalTransition(campaign: name, step: stepID, state: s.state, command: .start,
                                                      allowed: [], unmet: s.unmetPrerequisites)
            }
            if let row = try stepRun(c, stepID, iteration: s.iteration) {
                throw WorkflowEngineError.jobSetConflict(campaign: name, step: stepID, iteration: s.iteration,
                                                         existing: row.text("job_set") ?? "an inline run")
            }
            let n = try jobs.status(jobSet: jobSet).shardCount
            try database.run("""
                INSERT INTO step_runs(campaign_id, step_id, iteration, mode, job_set, units, started_at) VALUES(?,?,?,'jobs',?,?,?)
                """, c.id, stepID, s.iteration, jobSet, n, Self.now())
        }
    }
}
