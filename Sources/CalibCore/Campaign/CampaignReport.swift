import Foundation

/// The task-force survey table, generated from the records instead of by hand: per step iterations, runs, events,
/// jobs, CPU hours, wall time, disk written and still held, and the calendar time from first start to done.
public struct CampaignReport: Sendable, Codable, Equatable {
    public var schema = "calibctl.report/1"
    public var campaign: String
    public var checklist: String
    public var runs: String
    public var generatedAt: Date
    public var steps: [Row]
    public var totals: Row
    /// The cores a group may use on the farm under its fair share (the divisor of `fairshareDays`), and where that
    /// number came from (`--fairshare-cores`, the campaign parameter `fairshare_cores`, or the default).
    public var fairshareCores: Int?
    /// Where each derived column comes from (column key -> one sentence), for the survey's readers.
    public var sources: [String: String]?

    /// The cores assumed when neither `--fairshare-cores` nor the campaign parameter `fairshare_cores` says.
    public static let defaultFairshareCores = 100

    public struct Row: Sendable, Codable, Equatable {
        public var id: String
        public var number: Int?
        public var title: String
        public var phase: String
        public var state: StepState?
        public var iterations: Int
        public var runs: Int
        public var events: Int64
        public var jobs: Int
        public var cpuHours: Double
        public var wallHours: Double
        /// Units of the step's latest iteration that failed (key -> why), filled in by the workflow engine: a step
        /// that completed by its quorum rule names what it went on without.
        public var failedUnits: [String: String]?
        public var diskBytesWritten: Int64
        public var diskBytesHeld: Int64
        /// Days from the first start to the last time it became done (nil if never both).
        public var elapsedDays: Double?
        /// Calendar days the CPU hours take at the group's fair share: CPU hours / (24 x fairshare cores).
        public var fairshareDays: Double?
        /// Disk written per iteration in TB (powers of 1000): disk written / iterations (totals: the sum over the
        /// steps, i.e. one pass of every step).
        public var diskTBPerIteration: Double?
    }
}

extension CampaignStore {
    /// Builds the survey table of a campaign.
    /// `fairshareCores`: the cores the group may use (`fairshareDays` = CPU hours / (24 x cores)); `coresSource` says
    /// where that number came from.
    public func report(campaign campaignName: String, fairshareCores: Int = CampaignReport.defaultFairshareCores,
                       coresSource: String = "default") throws -> CampaignReport {
        let c = try campaign(named: campaignName)
        let steps = try steps(of: c)
        let effort = try effort(campaign: campaignName)
        var spans: [String: (Date?, Date?)] = [:]
        try database.forEachRow("""
            SELECT step_id,
                   MIN(CASE WHEN to_state = 'running' THEN at END) AS first_start,
                   MAX(CASE WHEN to_state = 'done' THEN at END) AS last_done
            FROM step_transitions WHERE campaign_id = ? GROUP BY step_id
            """, parameters: [c.id]) { r in
            spans[r.text("step_id") ?? ""] = (Timestamp.date(r.text("first_start")), Timestamp.date(r.text("last_done")))
        }
        var rows: [CampaignReport.Row] = []
        var total = EffortRecord()
        var totalIterations = 0
        for s in steps {
            let e = effort[s.id] ?? EffortRecord()
            total = total + e
            totalIterations += s.iteration
            var elapsed: Double?
            if let span = spans[s.id], let a = span.0, let b = span.1, b >= a { elapsed = b.timeIntervalSince(a) / 86400 }
            rows.append(CampaignReport.Row(id: s.id, number: s.step.number, title: s.step.title, phase: s.step.phase,
                                           state: s.state, iterations: s.iteration, runs: e.runs, events: e.events,
                                           jobs: e.jobs, cpuHours: e.cpuSeconds / 3600, wallHours: e.wallSeconds / 3600,
                                           diskBytesWritten: e.diskBytesWritten, diskBytesHeld: e.diskBytesHeld,
                                           elapsedDays: elapsed))
        }
        var elapsedTotal: Double?
        let starts = spans.values.compactMap(\.0), dones = spans.values.compactMap(\.1)
        if let a = starts.min(), let b = dones.max(), b >= a { elapsedTotal = b.timeIntervalSince(a) / 86400 }
        let totals = CampaignReport.Row(id: "totals", number: nil, title: "totals", phase: "", state: nil,
                                        iterations: totalIterations, runs: total.runs, events: total.events,
                                        jobs: total.jobs, cpuHours: total.cpuSeconds / 3600,
                                        wallHours: total.wallSeconds / 3600, diskBytesWritten: total.diskBytesWritten,
                                        diskBytesHeld: total.diskBytesHeld, elapsedDays: elapsedTotal)
        let cores = max(fairshareCores, 1)
        for i in rows.indices {
            rows[i].fairshareDays = rows[i].cpuHours / (24 * Double(cores))
            rows[i].diskTBPerIteration = rows[i].iterations > 0 ? Double(rows[i].diskBytesWritten) / 1e12 / Double(rows[i].iterations) : 0
        }
        var t = totals
        t.fairshareDays = t.cpuHours / (24 * Double(cores))
        t.diskTBPerIteration = rows.reduce(0) { $0 + ($1.diskTBPerIteration ?? 0) }
        let sources = [
            "fairshareDays": "CPU hours from the jobs' effort records / (24 x \(cores) cores; \(coresSource))",
            "diskTBPerIteration": "disk written (effort records) / the step's iterations, in TB (10^12 bytes); totals: the sum over the steps (one pass of each)",
        ]
        return CampaignReport(campaign: c.name, checklist: c.checklistName, runs: c.runs.description,
                              generatedAt: Date(), steps: rows, totals: t, fairshareCores: cores, sources: sources)
    }
}
