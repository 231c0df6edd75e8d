import CalibIO
import Foundation

/// Reading step states: stored rows joined with the checklist; blocked / ready derived here.
extension CampaignStore {
    struct StepRow {
        var stored: StoredStepState
        var iteration: Int
        var reason: String?
        var approvedBy: String?
        var approvedAt: Date?
        var updatedAt: Date
        var updatedBy: String
        var gates: GateEvaluation?
    }

    func rows(_ campaign: Campaign) throws -> [String: StepRow] {
        var out: [String: StepRow] = [:]
        try database.forEachRow("SELECT * FROM campaign_steps WHERE campaign_id = ?", parameters: [campaign.id]) { r in
            guard let id = r.text("step_id"), let st = r.text("state"), let stored = StoredStepState(rawValue: st) else {
                throw CampaignError.corruptCampaign(name: campaign.name, detail: "a step row has an unknown state")
            }
            var gates: GateEvaluation?
            if let g = r.text("gate_report") { gates = try? JSONDecoder().decode(GateEvaluation.self, from: Data(g.utf8)) }
            out[id] = StepRow(stored: stored, iteration: Int(r.int("iteration") ?? 0), reason: r.text("reason"),
                              approvedBy: r.text("approved_by"), approvedAt: Timestamp.date(r.text("approved_at")),
                              updatedAt: Timestamp.date(r.text("updated_at")) ?? Date(timeIntervalSince1970: 0),
                              updatedBy: r.text("updated_by") ?? "", gates: gates)
        }
        return out
    }

    /// The steps of a campaign in checklist order, with their shown states.
    public func steps(of campaignName: String) throws -> [CampaignStep] {
        try steps(of: campaign(named: campaignName))
    }

    public func steps(of campaign: Campaign) throws -> [CampaignStep] {
        let (checklist, graph) = try checklist(of: campaign)
        let rows = try rows(campaign)
        var stored: [StoredStepState] = []
        stored.reserveCapacity(checklist.steps.count)
        for s in checklist.steps {
            guard let r = rows[s.id] else {
                throw CampaignError.corruptCampaign(name: campaign.name, detail: "step '\(s.id)' has no state row")
            }
            stored.append(r.stored)
        }
        let satisfied = graph.satisfied(stored)
        return checklist.steps.enumerated().map { i, s in
            let r = rows[s.id]!
            let unmet = graph.prerequisites[i].filter { !satisfied[$0] }.map { checklist.steps[$0].id }
            return CampaignStep(step: s, state: r.stored.effective(prerequisitesSatisfied: unmet.isEmpty),
                                storedState: r.stored, iteration: r.iteration, unmetPrerequisites: unmet,
                                reason: r.reason, approvedBy: r.approvedBy, approvedAt: r.approvedAt,
                                updatedAt: r.updatedAt, updatedBy: r.updatedBy, gates: r.gates)
        }
    }

    /// One step of a campaign; throws `unknownStep` with a suggestion.
    public func step(_ stepID: String, of campaignName: String) throws -> CampaignStep {
        let all = try steps(of: campaignName)
        guard let s = all.first(where: { $0.id == stepID }) else {
            throw CampaignError.unknownStep(campaign: campaignName, step: stepID, known: all.map(\.id))
        }
        return s
    }

    /// Steps that can start now (state ready) and have an action the runner can execute, in checklist order.
    public func readySteps(campaign campaignName: String) throws -> [CampaignStep] {
        try steps(of: campaignName).filter { $0.state == .ready && $0.step.action != nil }
    }

    /// Every step that can start now (state ready), with or without an action.
    public func startableSteps(campaign campaignName: String) throws -> [CampaignStep] {
        try steps(of: campaignName).filter { $0.state == .ready }
    }

    /// The sign-off status of a step's current iteration. A publishing step refuses unless `isApproved`.
    public func signOff(campaign campaignName: String, step stepID: String) throws -> SignOff {
        let s = try step(stepID, of: campaignName)
        let note = try database.first("""
            SELECT t.note FROM step_transitions t JOIN campaigns c ON c.id = t.campaign_id
            WHERE c.name = ? AND t.step_id = ? AND t.command = 'approve' ORDER BY t.id DESC LIMIT 1
            """, campaignName, stepID)?.text("note")
        let gatesPassed = s.gates.flatMap { $0.iteration == s.iteration ? $0.passed : nil }
        return SignOff(step: stepID, state: s.state, iteration: s.iteration, gatesPassed: gatesPassed,
                       approvedBy: s.approvedBy, approvedAt: s.approvedAt, note: s.approvedBy == nil ? nil : note)
    }

    /// True when the step's current iteration is done and its gates passed, or a named person approved it.
    public func isApproved(campaign: String, step: String) throws -> Bool {
        try signOff(campaign: campaign, step: step).isApproved
    }

    /// The transitions log of a campaign (optionally one step), oldest first.
    public func log(campaign campaignName: String, step stepID: String? = nil) throws -> [TransitionRecord] {
        let c = try campaign(named: campaignName)
        if let stepID { _ = try step(stepID, of: campaignName) }
        var sql = "SELECT * FROM step_transitions WHERE campaign_id = ?"
        var params: [SQLBindable] = [c.id]
        if let stepID { sql += " AND step_id = ?"; params.append(stepID) }
        return try database.query(sql + " ORDER BY id", parameters: params).map { r in
            TransitionRecord(sequence: r.int("id") ?? 0, campaign: campaignName, step: r.text("step_id") ?? "",
                             command: StepCommand(rawValue: r.text("command") ?? "") ?? .create,
                             from: StoredStepState(rawValue: r.text("from_state") ?? "") ?? .pending,
                             to: StoredStepState(rawValue: r.text("to_state") ?? "") ?? .pending,
                             iteration: Int(r.int("iteration") ?? 0), actor: r.text("actor") ?? "",
                             host: r.text("host") ?? "", at: Timestamp.date(r.text("at")) ?? Date(timeIntervalSince1970: 0),
                             note: r.text("note"), causedBy: r.text("caused_by"))
        }
    }
}
