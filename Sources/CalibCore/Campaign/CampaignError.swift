import CalibIO

/// Campaign failures, each naming the campaign / step, its state and what to do (docs/exit-codes.md).
public enum CampaignError: DiagnosableError, Sendable, Equatable {
    case unknownCampaign(name: String, known: [String])
    case campaignExists(name: String)
    case unknownStep(campaign: String, step: String, known: [String])
    /// The command is not allowed from the step's state.
    case illegalTransition(campaign: String, step: String, state: StepState, command: StepCommand,
                           allowed: [StepCommand], unmet: [String])
    case notIfNecessary(campaign: String, step: String)
    /// A reopen would change the inputs of steps whose jobs are running now.
    case downstreamRunning(campaign: String, step: String, running: [String])
    case reasonRequired(campaign: String, step: String)
    /// The step names its approvers and the user is not one of them.
    case notAnApprover(campaign: String, step: String, user: String, approvers: [String])
    case badRuns(text: String, part: String)
    case badValue(what: String, value: String, expected: String)
    /// The campaign's stored checklist no longer parses (the database was edited by hand).
    case corruptCampaign(name: String, detail: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .unknownCampaign, .unknownStep, .reasonRequired, .badRuns, .badValue, .campaignExists: .usage
        case .illegalTransition, .notIfNecessary, .corruptCampaign, .downstreamRunning: .dataError
        case .notAnApprover: .permissionDenied
        }
    }

    public var message: String {
        switch self {
        case let .unknownCampaign(name, _): "no campaign named '\(name)'"
        case let .campaignExists(name): "a campaign named '\(name)' already exists"
        case let .unknownStep(c, s, _): "campaign '\(c)' has no step '\(s)'"
        case let .illegalTransition(c, s, state, cmd, _, unmet):
            "cannot \(cmd.rawValue) step '\(s)' of campaign '\(c)': it is \(state.rawValue)"
                + (unmet.isEmpty ? "" : " (waiting for \(Self.list(unmet)))")
        case let .notIfNecessary(c, s): "step '\(s)' of campaign '\(c)' cannot be skipped: it is not an `if necessary` step"
        case let .downstreamRunning(c, s, running):
            "cannot reopen step '\(s)' of campaign '\(c)': \(Self.list(running)) downstream \(running.count == 1 ? "is" : "are") running on its current results"
        case let .reasonRequired(c, s): "skipping step '\(s)' of campaign '\(c)' needs a reason"
        case let .notAnApprover(c, s, user, _): "\(user) may not sign off step '\(s)' of campaign '\(c)'"
        case let .badRuns(text, part): "--runs '\(text)': '\(part)' is not a run or a range FIRST-LAST"
        case let .badValue(what, value, expected): "\(what) '\(value)' is not \(expected)"
        case let .corruptCampaign(name, detail): "campaign '\(name)' is damaged: \(detail)"
        }
    }

    /// "a, b, c" or "a, b, c, d, e and 12 more".
    static func list(_ xs: [String], limit: Int = 5) -> String {
        xs.count <= limit ? xs.joined(separator: ", ")
            : xs.prefix(limit).joined(separator: ", ") + " and \(xs.count - limit) more"
    }

    public var fix: String? {
        switch self {
        case let .unknownCampaign(name, known):
            if let s = Suggestions.closest(to: name, in: known) { return "did you mean '\(s)'?" }
            return known.isEmpty ? "create one with `calibctl campaign create NAME --checklist FILE --runs A-B`"
                : "known campaigns: \(known.joined(separator: ", "))"
        case let .campaignExists(name): return "choose another name, or inspect it with `calibctl checklist show --campaign \(name)`"
        case let .unknownStep(_, s, known):
            return Suggestions.didYouMean(s, in: known) ?? "`calibctl checklist show --campaign NAME` lists the steps"
        case let .illegalTransition(_, _, state, cmd, allowed, unmet):
            let from = cmd.allowedFrom.map(\.rawValue).joined(separator: ", ")
            var s = "`\(cmd.rawValue)` applies to steps that are \(from)"
            s += allowed.isEmpty ? "; nothing can be done to a \(state.rawValue) step now"
                : "; from \(state.rawValue) you can: \(allowed.map(\.rawValue).joined(separator: ", "))"
            if !unmet.isEmpty { s += "; finish (or skip) \(Self.list(unmet)) first" }
            return s
        case let .downstreamRunning(c, _, running):
            return "wait for \(Self.list(running)) to finish, or stop \(running.count == 1 ? "it" : "them") with `calibctl step fail \(c) STEP`, then reopen"
        case .notIfNecessary: return "only steps marked `if_necessary: true` in the checklist may be skipped"
        case .reasonRequired: return "pass --note \"why it is not necessary\""
        case let .notAnApprover(_, s, _, approvers):
            return "ask \(approvers.count == 1 ? approvers[0] : "one of " + Self.list(approvers, limit: 8)) to approve it, "
                + "or add the user to `approvers:` of step '\(s)' in the checklist (for new campaigns)"
        case .badRuns: return "write e.g. --runs 5000-5100 or --runs 5000-5100,5200"
        case .badValue: return nil
        case .corruptCampaign: return "restore the database from a backup; `calibctl campaign verify NAME` lists the damage"
        }
    }
}
