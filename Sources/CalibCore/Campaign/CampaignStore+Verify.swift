import CalibIO

/// Consistency checks of a campaign's records (used after crashes and by the kill -9 test).
extension CampaignStore {
    /// Problems found, empty when consistent: SQLite's integrity check, a state row per checklist step, and for each
    /// step a transitions log that chains (each `from` equals the previous `to`), ends in the stored state and
    /// iteration, and counts one start/reopen-into-running per iteration.
    public func verify(campaign campaignName: String) throws -> [String] {
        var problems: [String] = []
        let integrity = try database.query("PRAGMA integrity_check").compactMap { $0.values.first }
        if integrity != [.text("ok")] { problems.append("integrity_check: \(integrity)") }
        let c = try campaign(named: campaignName)
        let (checklist, _) = try checklist(of: c)
        let rows = try rows(c)
        let ids = Set(checklist.steps.map(\.id))
        for extra in Set(rows.keys).subtracting(ids).sorted() { problems.append("state row for unknown step '\(extra)'") }
        var log: [String: [(from: String, to: String, iteration: Int, command: String)]] = [:]
        try database.forEachRow("""
            SELECT step_id, command, from_state, to_state, iteration FROM step_transitions WHERE campaign_id = ? ORDER BY id
            """, parameters: [c.id]) { r in
            log[r.text("step_id") ?? "", default: []].append(
                (r.text("from_state") ?? "", r.text("to_state") ?? "", Int(r.int("iteration") ?? -1), r.text("command") ?? ""))
        }
        for s in checklist.steps {
            guard let row = rows[s.id] else { problems.append("step '\(s.id)' has no state row"); continue }
            let entries = log[s.id] ?? []
            guard let first = entries.first, first.command == "create" else {
                problems.append("step '\(s.id)': log does not start with create"); continue
            }
            var prev = first.to
            var starts = 0
            for e in entries.dropFirst() {
                if e.from != prev { problems.append("step '\(s.id)': log jumps from \(prev) to a transition out of \(e.from)") }
                if StoredStepState(rawValue: e.to) == nil { problems.append("step '\(s.id)': log has unknown state \(e.to)") }
                if e.to == "running" && (e.command == "start" || e.command == "reopen") { starts += 1 }
                prev = e.to
            }
            if prev != row.stored.rawValue {
                problems.append("step '\(s.id)': state \(row.stored.rawValue) but the log ends in \(prev)")
            }
            if let last = entries.last, last.iteration != row.iteration {
                problems.append("step '\(s.id)': iteration \(row.iteration) but the log's last entry has \(last.iteration)")
            }
            if starts != row.iteration {
                problems.append("step '\(s.id)': iteration \(row.iteration) but the log records \(starts) start(s)")
            }
        }
        return problems
    }
}
