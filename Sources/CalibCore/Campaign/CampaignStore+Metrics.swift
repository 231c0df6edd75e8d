import CalibIO
import Foundation

/// Metrics reported by a step's jobs, quality-gate evaluation and effort records.
extension CampaignStore {
    /// Records metrics for the step's current iteration (replacing earlier values of the same name). Allowed while
    /// the step is running or awaiting validation. Values must be finite.
    public func recordMetrics(campaign campaignName: String, step stepID: String, metrics: [String: Double],
                              by who: Identity = .current) throws {
        for (k, v) in metrics where !v.isFinite || k.isEmpty {
            throw CampaignError.badValue(what: "metric \(k)", value: "\(v)", expected: "a finite number with a name")
        }
        try database.transaction {
            let c = try campaign(named: campaignName)
            let s = try step(stepID, of: campaignName)
            guard s.state == .running || s.state == .awaitingValidation else {
                throw CampaignError.illegalTransition(campaign: campaignName, step: stepID, state: s.state,
                                                      command: .evaluate, allowed: [], unmet: s.unmetPrerequisites)
            }
            let now = Timestamp.string(Date())
            for (k, v) in metrics.sorted(by: { $0.key < $1.key }) {
                try database.run("""
                    INSERT OR REPLACE INTO step_metrics(campaign_id, step_id, iteration, name, value, recorded_at,
                                                        recorded_by) VALUES(?,?,?,?,?,?,?)
                    """, c.id, stepID, s.iteration, k, v, now, who.user)
            }
        }
    }

    /// The metrics of one iteration of a step (default: the current one).
    public func metrics(campaign campaignName: String, step stepID: String, iteration: Int? = nil) throws -> [String: Double] {
        let c = try campaign(named: campaignName)
        let s = try step(stepID, of: campaignName)
        return try metrics(c, stepID, iteration: iteration ?? s.iteration)
    }

    func metrics(_ c: Campaign, _ stepID: String, iteration: Int) throws -> [String: Double] {
        var out: [String: Double] = [:]
        try database.forEachRow("SELECT name, value FROM step_metrics WHERE campaign_id = ? AND step_id = ? AND iteration = ?",
                                parameters: [c.id, stepID, iteration]) { r in
            if let n = r.text("name"), let v = r.double("value") { out[n] = v }
        }
        return out
    }

    /// Checks the recorded metrics against the step's gates and moves the step: all inside -> done (or
    /// awaiting-validation if it also has manual checks); any outside or not reported -> awaiting-sign-off with the
    /// failing metrics in the result (`gates.failingSummary`).
    @discardableResult
    public func evaluateGates(campaign: String, step: String, by who: Identity = .current,
                              note: String? = nil) throws -> TransitionResult {
        try apply(.evaluate, campaign: campaign, step: step, by: who, note: note)
    }

    /// Adds resources used by the step's current iteration (several records add up).
    public func recordEffort(campaign campaignName: String, step stepID: String, effort e: EffortRecord,
                             source: String? = nil) throws {
        for (what, v) in [("runs", Double(e.runs)), ("events", Double(e.events)), ("jobs", Double(e.jobs)),
                          ("cpu seconds", e.cpuSeconds), ("wall seconds", e.wallSeconds),
                          ("disk bytes written", Double(e.diskBytesWritten)), ("disk bytes held", Double(e.diskBytesHeld))]
        where !(v >= 0 && v.isFinite) {
            throw CampaignError.badValue(what: "effort \(what)", value: "\(v)", expected: "a finite number >= 0")
        }
        try database.transaction {
            let c = try campaign(named: campaignName)
            let s = try step(stepID, of: campaignName)
            try database.run("""
                INSERT INTO step_effort(campaign_id, step_id, iteration, runs, events, jobs, cpu_seconds, wall_seconds,
                                        disk_bytes_written, disk_bytes_held, recorded_at, source)
                VALUES(?,?,?,?,?,?,?,?,?,?,?,?)
                """, c.id, stepID, s.iteration, e.runs, e.events, e.jobs, e.cpuSeconds, e.wallSeconds,
                e.diskBytesWritten, e.diskBytesHeld, Timestamp.string(Date()), source)
        }
    }

    /// Total effort per step id (all iterations).
    public func effort(campaign campaignName: String) throws -> [String: EffortRecord] {
        let c = try campaign(named: campaignName)
        var out: [String: EffortRecord] = [:]
        try database.forEachRow("""
            SELECT step_id, SUM(runs) r, SUM(events) e, SUM(jobs) j, SUM(cpu_seconds) cpu, SUM(wall_seconds) wall,
                   SUM(disk_bytes_written) dw, SUM(disk_bytes_held) dh FROM step_effort WHERE campaign_id = ? GROUP BY step_id
            """, parameters: [c.id]) { r in
            out[r.text("step_id") ?? ""] = EffortRecord(
                runs: Int(r.int("r") ?? 0), events: r.int("e") ?? 0, jobs: Int(r.int("j") ?? 0),
                cpuSeconds: r.double("cpu") ?? 0, wallSeconds: r.double("wall") ?? 0,
                diskBytesWritten: r.int("dw") ?? 0, diskBytesHeld: r.int("dh") ?? 0)
        }
        return out
    }
}
