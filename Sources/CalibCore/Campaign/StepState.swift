/// The state of a step in a campaign (docs/checklists.md, "States").
///
/// `blocked` and `ready` are never stored: the database keeps `pending` and they are derived from the prerequisites
/// each time (so they can never disagree with them). A stored `stale` step shows as `stale` while a prerequisite is
/// unfinished and as `ready` once all are done again.
public enum StepState: String, Sendable, Codable, CaseIterable {
    case blocked, ready, running
    case awaitingValidation = "awaiting-validation"
    case awaitingSignOff = "awaiting-sign-off"
    case done, failed, skipped, stale

    /// True when dependents may proceed (done, or an `if necessary` step declared unnecessary).
    public var satisfiesDependents: Bool { self == .done || self == .skipped }
}

/// What is stored in `campaign_steps.state`: the explicit states plus `pending` (not started; blocked or ready).
public enum StoredStepState: String, Sendable, Codable, CaseIterable {
    case pending, running
    case awaitingValidation = "awaiting-validation"
    case awaitingSignOff = "awaiting-sign-off"
    case done, failed, skipped, stale

    public var satisfiesDependents: Bool { self == .done || self == .skipped }

    /// The shown state given whether every prerequisite is satisfied.
    public func effective(prerequisitesSatisfied: Bool) -> StepState {
        switch self {
        case .pending: prerequisitesSatisfied ? .ready : .blocked
        case .stale: prerequisitesSatisfied ? .ready : .stale
        case .running: .running
        case .awaitingValidation: .awaitingValidation
        case .awaitingSignOff: .awaitingSignOff
        case .done: .done
        case .failed: .failed
        case .skipped: .skipped
        }
    }
}

/// A command that moves a step (`calibctl step VERB`), and the job engine's equivalents.
public enum StepCommand: String, Sendable, Codable, CaseIterable {
    /// ready (or stale with prerequisites done, or failed: retry) -> running; iteration + 1.
    case start
    /// running -> done, awaiting-validation (manual checks or metrics not yet reported) or awaiting-sign-off (a gate
    /// failed).
    case done
    /// awaiting-validation / awaiting-sign-off -> done, recording the approver.
    case approve
    /// running / awaiting-validation / awaiting-sign-off -> failed.
    case fail
    /// (`if necessary` steps only) blocked / ready / stale / failed -> skipped, with a reason.
    case skip
    /// done / awaiting-* / failed / skipped -> running (iteration + 1; or back to pending if a prerequisite is
    /// unfinished); every downstream done / awaiting step becomes stale. Refused while a downstream step is running.
    case reopen
    /// Internal: gates evaluated after metrics were recorded (running / awaiting-validation -> done or
    /// awaiting-sign-off).
    case evaluate
    /// Internal: marked stale because an upstream step was reopened.
    case invalidate
    /// Internal: campaign created.
    case create

    /// The effective states this command may be applied from.
    public var allowedFrom: [StepState] {
        switch self {
        case .start: [.ready, .failed]
        case .done: [.running]
        case .approve: [.awaitingValidation, .awaitingSignOff]
        case .fail: [.running, .awaitingValidation, .awaitingSignOff]
        case .skip: [.blocked, .ready, .stale, .failed]
        case .reopen: [.done, .awaitingValidation, .awaitingSignOff, .failed, .skipped]
        case .evaluate: [.running, .awaitingValidation]
        case .invalidate: [.done, .awaitingValidation, .awaitingSignOff]
        case .create: []
        }
    }
}
