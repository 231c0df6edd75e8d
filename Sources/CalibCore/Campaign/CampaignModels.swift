import Foundation

/// A checklist instantiated for a data set.
public struct Campaign: Sendable, Equatable, Codable {
    public var id: Int64
    public var name: String
    public var checklistName: String
    /// The checklist file it was created from (the text is kept in the database; later edits to the file do not
    /// change the campaign).
    public var checklistFile: String
    public var checklistSHA256: String
    public var runs: RunSet
    public var createdAt: Date
    public var createdBy: String
    public var note: String?
}

/// A step of a campaign: the checklist step plus its state.
public struct CampaignStep: Sendable, Equatable, Codable {
    public var step: ChecklistStep
    /// The shown state (blocked / ready derived from prerequisites).
    public var state: StepState
    public var storedState: StoredStepState
    /// How many times the step has been started (0 = never).
    public var iteration: Int
    /// Prerequisites not yet done or skipped.
    public var unmetPrerequisites: [String]
    public var reason: String?
    public var approvedBy: String?
    public var approvedAt: Date?
    public var updatedAt: Date
    public var updatedBy: String
    /// The last gate evaluation of this iteration, if any.
    public var gates: GateEvaluation?

    public var id: String { step.id }
}

/// One recorded state change.
public struct TransitionRecord: Sendable, Equatable, Codable {
    public var sequence: Int64
    public var campaign: String
    public var step: String
    public var command: StepCommand
    public var from: StoredStepState
    public var to: StoredStepState
    public var iteration: Int
    public var actor: String
    public var host: String
    public var at: Date
    public var note: String?
    /// For `invalidate`: the reopened step that made this one stale.
    public var causedBy: String?
}

/// The outcome of a transition: the step's new state and the steps it made stale.
public struct TransitionResult: Sendable, Equatable, Codable {
    public var step: String
    public var from: StepState
    public var to: StepState
    public var iteration: Int
    public var staled: [String]
    public var gates: GateEvaluation?
}

/// One gate checked against a metric.
public struct GateResult: Sendable, Equatable, Codable {
    public var name: String
    public var metric: String
    public var condition: String
    /// nil when the step's jobs did not report the metric (counts as failing).
    public var value: Double?
    public var passed: Bool
}

/// All gates of a step for one iteration.
public struct GateEvaluation: Sendable, Equatable, Codable {
    public var iteration: Int
    public var results: [GateResult]
    public var passed: Bool { results.allSatisfy(\.passed) }
    public var failing: [GateResult] { results.filter { !$0.passed } }

    /// "fraction_good = 0.95 (needs fraction_good >= 0.98); mean_gain not reported".
    public var failingSummary: String {
        failing.map { r in
            r.value.map { "\(r.metric) = \(ValidationItem.format($0)) (needs \(r.condition))" }
                ?? "\(r.metric) not reported (needs \(r.condition))"
        }.joined(separator: "; ")
    }
}

/// Resources one iteration of a step used; additive (several records per iteration add up).
public struct EffortRecord: Sendable, Equatable, Codable {
    public var runs: Int
    public var events: Int64
    public var jobs: Int
    public var cpuSeconds: Double
    public var wallSeconds: Double
    public var diskBytesWritten: Int64
    /// Bytes still occupied on transient disk by this iteration's output.
    public var diskBytesHeld: Int64

    public init(runs: Int = 0, events: Int64 = 0, jobs: Int = 0, cpuSeconds: Double = 0, wallSeconds: Double = 0,
                diskBytesWritten: Int64 = 0, diskBytesHeld: Int64 = 0) {
        self.runs = runs
        self.events = events
        self.jobs = jobs
        self.cpuSeconds = cpuSeconds
        self.wallSeconds = wallSeconds
        self.diskBytesWritten = diskBytesWritten
        self.diskBytesHeld = diskBytesHeld
    }

    public static func + (a: EffortRecord, b: EffortRecord) -> EffortRecord {
        EffortRecord(runs: a.runs + b.runs, events: a.events + b.events, jobs: a.jobs + b.jobs,
                     cpuSeconds: a.cpuSeconds + b.cpuSeconds, wallSeconds: a.wallSeconds + b.wallSeconds,
                     diskBytesWritten: a.diskBytesWritten + b.diskBytesWritten,
                     diskBytesHeld: a.diskBytesHeld + b.diskBytesHeld)
    }
}

/// The sign-off status of a step's current iteration (what a publishing step checks).
public struct SignOff: Sendable, Equatable, Codable {
    public var step: String
    public var state: StepState
    public var iteration: Int
    /// nil when the step has no gates or they were not evaluated.
    public var gatesPassed: Bool?
    public var approvedBy: String?
    public var approvedAt: Date?
    public var note: String?

    /// True when the current iteration may be published: done, and its gates passed (or it has none) or a person
    /// approved it.
    public var isApproved: Bool { state == .done && (gatesPassed != false || approvedBy != nil) }
}
