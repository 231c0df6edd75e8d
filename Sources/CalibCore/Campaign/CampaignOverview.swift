import Foundation

/// What `checklist show` prints: every step with its state, the ready set and the critical path to the final step.
/// Built from a campaign or from a bare checklist (every step pending).
public struct CampaignOverview: Sendable, Codable, Equatable {
    public var schema = "calibctl.checklist-show/1"
    public var checklist: String
    public var title: String
    public var campaign: String?
    public var runs: String?
    public var steps: [Row]
    /// Steps that can start now.
    public var readyNow: [String]
    /// The final step and the longest chain of unfinished steps leading to it (weighted by estimate_days).
    public var finalStep: String?
    public var criticalPath: [String]
    public var criticalPathDays: Double
    public var counts: [String: Int]

    public struct Row: Sendable, Codable, Equatable {
        public var id: String
        public var number: Int?
        public var title: String
        public var phase: String
        public var owner: String?
        public var state: StepState
        public var iteration: Int
        public var prerequisites: [String]
        public var unmet: [String]
        public var conditions: [String]
        public var outcomes: [String]
        public var ifNecessary: Bool
        public var action: String?
        public var reason: String?
        public var approvedBy: String?
        public var failingGates: String?
        /// Unit progress of the current iteration (`2/3 units`), filled in by the workflow engine.
        public var unitProgress: String?
        /// Per unit key: the state of its latest job attempt (`--json`).
        public var unitStates: [String: String]?
        /// The iteration's job set, if it has one.
        public var jobSet: String?
    }

    /// The overview of a bare checklist: nothing started.
    public init(checklist: Checklist) {
        let graph = ChecklistGraph(checklist)
        let stored = [StoredStepState](repeating: .pending, count: checklist.steps.count)
        self.init(checklist: checklist, graph: graph, stored: stored, campaignSteps: nil, campaign: nil)
    }

    /// The overview of a campaign.
    public init(campaign: Campaign, checklist: Checklist, graph: ChecklistGraph, steps: [CampaignStep]) {
        self.init(checklist: checklist, graph: graph, stored: steps.map(\.storedState), campaignSteps: steps,
                  campaign: campaign)
    }

    init(checklist: Checklist, graph: ChecklistGraph, stored: [StoredStepState], campaignSteps: [CampaignStep]?,
         campaign: Campaign?) {
        self.checklist = checklist.name
        self.title = checklist.title
        self.campaign = campaign?.name
        self.runs = campaign?.runs.description
        let satisfied = graph.satisfied(stored)
        var rows: [Row] = []
        rows.reserveCapacity(checklist.steps.count)
        for (i, s) in checklist.steps.enumerated() {
            let unmet = graph.prerequisites[i].filter { !satisfied[$0] }.map { checklist.steps[$0].id }
            let cs = campaignSteps?[i]
            rows.append(Row(id: s.id, number: s.number, title: s.title, phase: s.phase, owner: s.owner,
                            state: stored[i].effective(prerequisitesSatisfied: unmet.isEmpty),
                            iteration: cs?.iteration ?? 0, prerequisites: s.prerequisites, unmet: unmet,
                            conditions: s.conditions, outcomes: s.outcomes, ifNecessary: s.ifNecessary,
                            action: s.action?.summary, reason: cs?.reason, approvedBy: cs?.approvedBy,
                            failingGates: cs?.gates.flatMap { $0.passed ? nil : $0.failingSummary }))
        }
        steps = rows
        readyNow = rows.filter { $0.state == .ready }.map(\.id)
        finalStep = checklist.finalStepID
        criticalPath = []
        criticalPathDays = 0
        if let f = checklist.finalStepID, let target = checklist.indexByID()[f], let order = graph.topologicalOrder() {
            let cp = graph.criticalPath(to: target, order: order, weight: checklist.steps.map(\.estimateDays),
                                        finished: satisfied)
            criticalPath = cp.path.map { checklist.steps[$0].id }
            criticalPathDays = cp.length
        }
        var counts: [String: Int] = [:]
        for r in rows { counts[r.state.rawValue, default: 0] += 1 }
        self.counts = counts
    }
}

extension CampaignStore {
    /// The overview of a campaign (steps, ready set, critical path).
    public func overview(campaign campaignName: String) throws -> CampaignOverview {
        let c = try campaign(named: campaignName)
        let (checklist, graph) = try checklist(of: c)
        return CampaignOverview(campaign: c, checklist: checklist, graph: graph, steps: try steps(of: c))
    }
}
