import CalibIO
import Foundation

/// The state machine (docs/checklists.md, "Transitions"): every change re-reads the state inside one transaction,
/// checks the rule, writes the step row(s) and the log rows together.
extension CampaignStore {
    /// The commands a person can give (`calibctl step VERB`).
    public static let userCommands: [StepCommand] = [.start, .done, .approve, .fail, .skip, .reopen]

    /// Applies a command to a step.
    /// - Parameters:
    ///   - note: free text for the log; required for `skip` (the reason the step is not necessary).
    /// - Throws: `CampaignError.illegalTransition` naming the step, its state and the allowed commands;
    ///   `notIfNecessary` / `reasonRequired` for a bad skip; `unknownCampaign` / `unknownStep`.
    @discardableResult
    public func apply(_ command: StepCommand, campaign campaignName: String, step stepID: String,
                      by who: Identity = .current, note: String? = nil) throws -> TransitionResult {
        try database.transaction {
            let c = try campaign(named: campaignName)
            let (checklist, graph) = try checklist(of: c)
            guard let i = checklist.steps.firstIndex(where: { $0.id == stepID }) else {
                throw CampaignError.unknownStep(campaign: campaignName, step: stepID, known: checklist.steps.map(\.id))
            }
            let step = checklist.steps[i]
            let rows = try rows(c)
            let stored = try checklist.steps.map { s in
                guard let r = rows[s.id] else {
                    throw CampaignError.corruptCampaign(name: campaignName, detail: "step '\(s.id)' has no state row")
                }
                return r.stored
            }
            let row = rows[stepID]!
            let satisfied = graph.satisfied(stored)
            let unmet = graph.prerequisites[i].filter { !satisfied[$0] }.map { checklist.steps[$0].id }
            let from = row.stored.effective(prerequisitesSatisfied: unmet.isEmpty)
            func refuse() -> CampaignError {
                .illegalTransition(campaign: campaignName, step: stepID, state: from, command: command,
                                   allowed: Self.userCommands.filter { $0.allowedFrom.contains(from) }
                                       .filter { $0 != .skip || step.ifNecessary },
                                   unmet: unmet)
            }
            guard command.allowedFrom.contains(from), command != .create, command != .invalidate else { throw refuse() }
            if command == .start && !unmet.isEmpty { throw refuse() }
            if command == .approve && !step.approvers.isEmpty && !step.approvers.contains(who.user) {
                throw CampaignError.notAnApprover(campaign: campaignName, step: stepID, user: who.user,
                                                  approvers: step.approvers)
            }
            if command == .skip {
                guard step.ifNecessary else { throw CampaignError.notIfNecessary(campaign: campaignName, step: stepID) }
                guard let n = note, !n.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw CampaignError.reasonRequired(campaign: campaignName, step: stepID)
                }
            }

            if command == .reopen {
                // Jobs running on this step's current results would finish on stale inputs: refuse instead.
                let running = graph.downstream(of: i) { d in
                    stored[d] == .running
                        || StepCommand.invalidate.allowedFrom.contains(stored[d].effective(prerequisitesSatisfied: true))
                }.filter { stored[$0] == .running }.map { checklist.steps[$0].id }
                if !running.isEmpty {
                    throw CampaignError.downstreamRunning(campaign: campaignName, step: stepID, running: running)
                }
            }

            var new = row
            new.updatedAt = Date()
            new.updatedBy = who.user
            switch command {
            case .start:
                new.stored = .running
                new.iteration += 1
                new.approvedBy = nil; new.approvedAt = nil; new.gates = nil; new.reason = nil
            case .done:
                (new.stored, new.gates) = try completion(c, step, iteration: row.iteration, missingMeansWaiting: true)
            case .evaluate:
                (new.stored, new.gates) = try completion(c, step, iteration: row.iteration, missingMeansWaiting: false)
            case .approve:
                new.stored = .done
                new.approvedBy = who.user; new.approvedAt = new.updatedAt
            case .fail:
                new.stored = .failed
            case .skip:
                new.stored = .skipped
                new.reason = note
            case .reopen:
                new.approvedBy = nil; new.approvedAt = nil; new.gates = nil; new.reason = nil
                if unmet.isEmpty {
                    new.stored = .running
                    new.iteration += 1
                } else {
                    new.stored = .pending
                }
            case .create, .invalidate:
                throw refuse()
            }
            try write(c, stepID, new)
            try logTransition(c, stepID, command, from: row.stored, to: new.stored, iteration: new.iteration,
                              who: who, at: new.updatedAt, note: note, causedBy: nil)

            var staled: [String] = []
            if command == .reopen {
                // Staleness travels through steps whose results it invalidates and through skipped steps (a skipped
                // step passes its inputs on: CLAS12's DC re-alignment stales RF, FTOF and DC t0 even when the FMT
                // alignment between them was skipped). A pending, running or failed step stops it: nothing done is
                // built on the reopened result through it.
                let invalidatable = { (d: Int) in
                    StepCommand.invalidate.allowedFrom.contains(stored[d].effective(prerequisitesSatisfied: true))
                }
                let affected = graph.downstream(of: i) { d in invalidatable(d) || stored[d] == .skipped }
                    .filter(invalidatable)
                let why = "stale: \(stepID) reopened at \(Timestamp.string(new.updatedAt))"
                for d in affected {
                    let id = checklist.steps[d].id
                    var r = rows[id]!
                    let before = r.stored
                    r.stored = .stale
                    r.reason = why
                    r.approvedBy = nil; r.approvedAt = nil
                    r.updatedAt = new.updatedAt; r.updatedBy = who.user
                    try write(c, id, r)
                    try logTransition(c, id, .invalidate, from: before, to: .stale, iteration: r.iteration, who: who,
                                      at: r.updatedAt, note: "inputs changed: '\(stepID)' was reopened", causedBy: stepID)
                    staled.append(id)
                }
            }
            let satisfiedNow = unmet.isEmpty
            return TransitionResult(step: stepID, from: from,
                                    to: new.stored.effective(prerequisitesSatisfied: satisfiedNow),
                                    iteration: new.iteration, staled: staled, gates: new.gates)
        }
    }

    /// Moves a step towards a target state with the matching command: running -> `start` (or `reopen` from a
    /// finished state), done -> `done` (from running) or `approve`, failed -> `fail`, skipped -> `skip`,
    /// stale -> not a target (stale follows from `reopen` upstream).
    @discardableResult
    public func transition(campaign: String, step: String, to target: StepState, by who: Identity = .current,
                           note: String? = nil) throws -> TransitionResult {
        let current = try self.step(step, of: campaign).state
        let command: StepCommand
        switch target {
        case .running: command = [.done, .awaitingSignOff, .awaitingValidation, .skipped].contains(current) ? .reopen : .start
        case .done: command = current == .running ? .done : .approve
        case .failed: command = .fail
        case .skipped: command = .skip
        case .awaitingValidation, .awaitingSignOff: command = .done
        case .blocked, .ready, .stale:
            throw CampaignError.badValue(what: "target state", value: target.rawValue,
                                         expected: "running, done, failed or skipped (blocked/ready/stale are derived)")
        }
        return try apply(command, campaign: campaign, step: step, by: who, note: note)
    }

    /// The state a finished iteration goes to: gates failing -> awaiting-sign-off; metrics missing ->
    /// awaiting-validation when `missingMeansWaiting` (a person said done before the jobs reported), else a failure;
    /// manual checks -> awaiting-validation; otherwise done.
    func completion(_ c: Campaign, _ step: ChecklistStep, iteration: Int,
                    missingMeansWaiting: Bool) throws -> (StoredStepState, GateEvaluation?) {
        let gates = step.gates
        let manual = !step.manualChecks.isEmpty
        if gates.isEmpty { return (manual ? .awaitingValidation : .done, nil) }
        let values = try metrics(c, step.id, iteration: iteration)
        let eval = GateEvaluation(iteration: iteration, results: gates.map { g in
            let v = values[g.metric!]
            return GateResult(name: g.name, metric: g.metric!, condition: g.condition, value: v,
                              passed: v.map(g.accepts) ?? false)
        })
        if missingMeansWaiting && eval.results.contains(where: { $0.value == nil }) { return (.awaitingValidation, eval) }
        if !eval.passed { return (.awaitingSignOff, eval) }
        return (manual ? .awaitingValidation : .done, eval)
    }

    /// Sets the explanation shown with a step's state (e.g. why an automatic step waits for a sign-off) without
    /// changing the state.
    public func setReason(campaign campaignName: String, step stepID: String, reason: String) throws {
        try database.transaction {
            let c = try campaign(named: campaignName)
            try database.run("UPDATE campaign_steps SET reason = ? WHERE campaign_id = ? AND step_id = ?", reason, c.id, stepID)
        }
    }

    func write(_ c: Campaign, _ stepID: String, _ r: StepRow) throws {
        let gateJSON = try r.gates.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try database.run("""
            UPDATE campaign_steps SET state = ?, iteration = ?, updated_at = ?, updated_by = ?, reason = ?,
                   approved_by = ?, approved_at = ?, gate_report = ? WHERE campaign_id = ? AND step_id = ?
            """, r.stored.rawValue, r.iteration, Timestamp.string(r.updatedAt), r.updatedBy, r.reason, r.approvedBy,
            r.approvedAt.map(Timestamp.string), gateJSON, c.id, stepID)
    }

    func logTransition(_ c: Campaign, _ stepID: String, _ command: StepCommand, from: StoredStepState,
                       to: StoredStepState, iteration: Int, who: Identity, at: Date, note: String?,
                       causedBy: String?) throws {
        try database.run("""
            INSERT INTO step_transitions(campaign_id, step_id, command, from_state, to_state, iteration, actor, host,
                                         at, note, caused_by) VALUES(?,?,?,?,?,?,?,?,?,?,?)
            """, c.id, stepID, command.rawValue, from.rawValue, to.rawValue, iteration, who.user, who.host,
            Timestamp.string(at), note, causedBy)
    }
}
