import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// Engine operations the run.py-style front ends need besides `runStep` (docs/workflow.md).
extension WorkflowEngine {
    /// The job set of a step's current iteration; nil before it has one (or for an inline step).
    public func currentJobSet(campaign name: String, step stepID: String) throws -> String? {
        let c = try campaigns.campaign(named: name)
        let s = try campaigns.step(stepID, of: name)
        return try stepRun(c, stepID, iteration: s.iteration)?.text("job_set")
    }

    /// Sets campaign parameters (e.g. the payload year and version chosen by `calibctl payload RUN YEAR VERSION`).
    /// Refused while or after the steps `guarding` ran: parameters published work used are not changed under it.
    public func setParams(campaign name: String, _ params: [String: String], guarding steps: [String] = []) throws {
        try database.transaction {
            let c = try campaigns.campaign(named: name)
            for s in steps {
                let st = try campaigns.step(s, of: name)
                if ![.blocked, .ready, .failed, .stale].contains(st.state) {
                    throw CampaignError.illegalTransition(campaign: name, step: s, state: st.state, command: .start,
                                                          allowed: [.reopen], unmet: [])
                }
            }
            var settings = try settings(of: c)
            for (k, v) in params { settings.params[k] = v }
            let text = String(decoding: try Self.encoder.encode(settings), as: UTF8.self)
            if try database.run("UPDATE workflow_campaigns SET settings = ? WHERE campaign_id = ?", text, c.id) == 0 {
                try database.run("INSERT INTO workflow_campaigns(campaign_id, settings) VALUES(?, ?)", c.id, text)
            }
        }
    }

    /// Puts a completed jobs step (failed by its quorum, or awaiting a sign-off) whose job set got new attempts
    /// (`JobEngine.retry` of some shards, e.g. `calibctl resubmit`) back to running: the step is reopened (iteration
    /// + 1, logged with `note`) and the same job set becomes the new iteration's, so the engine completes it when its
    /// shards are final again. One transaction.
    public func resume(campaign name: String, step stepID: String, note: String) throws {
        try database.transaction {
            let c = try campaigns.campaign(named: name)
            let s = try campaigns.step(stepID, of: name)
            guard [.failed, .awaitingSignOff, .awaitingValidation].contains(s.state),
                  let row = try stepRun(c, stepID, iteration: s.iteration), row.text("job_set") != nil,
                  row.text("finished_at") != nil else {
                throw CampaignError.illegalTransition(campaign: name, step: stepID, state: s.state, command: .reopen,
                                                      allowed: [], unmet: s.unmetPrerequisites)
            }
            let r = try campaigns.apply(.reopen, campaign: name, step: stepID, by: identity, note: note)
            guard r.to == .running else {
                throw CampaignError.illegalTransition(campaign: name, step: stepID, state: r.to, command: .start,
                                                      allowed: [], unmet: s.unmetPrerequisites)
            }
            try database.run("""
                UPDATE step_runs SET iteration = ?, finished_at = NULL, outcome = NULL, failed_units = NULL
                WHERE campaign_id = ? AND step_id = ? AND iteration = ?
                """, r.iteration, c.id, stepID, s.iteration)
        }
    }

    /// The directory of a step's latest recorded output named `name` (nil if none).
    public func latestOutput(campaign name: String, step stepID: String, named output: String) throws -> UnitOutput? {
        let c = try campaigns.campaign(named: name)
        return (try? latestOutputs(campaign: c, step: stepID))?.first { $0.name == output }
    }
}
