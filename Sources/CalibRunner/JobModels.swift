import Foundation

/// One shard of a new job set: its key (e.g. `fed=1200`) and the spec the worker runs.
public struct ShardDefinition: Sendable, Codable, Equatable {
    public var key: String
    public var spec: JobSpec
    /// Overrides of the job set's memory and time limit for this shard (e.g. a FED with more modules).
    public var memoryMB: Int?
    public var timeLimitSeconds: Int?

    public init(key: String, spec: JobSpec, memoryMB: Int? = nil, timeLimitSeconds: Int? = nil) {
        self.key = key
        self.spec = spec
        self.memoryMB = memoryMB
        self.timeLimitSeconds = timeLimitSeconds
    }
}

/// Everything needed to create a job set.
public struct JobSetDefinition: Sendable, Codable, Equatable {
    /// Unique name (letters, digits, `.`, `_`, `-`); also the prefix of every scheduler job name.
    public var name: String
    public var scheduler: String
    public var campaign: String?
    public var step: String?
    /// Requested memory and time per shard (first attempt).
    public var memoryMB: Int
    public var timeLimitSeconds: Int
    public var policy: RetryPolicy
    /// Free-form parameters of the whole set (recorded; the specs carry what workers need).
    public var parameters: [String: String]
    public var shards: [ShardDefinition]

    public init(name: String, scheduler: String, campaign: String? = nil, step: String? = nil, memoryMB: Int = 2000,
                timeLimitSeconds: Int = 3 * 3600, policy: RetryPolicy = .default, parameters: [String: String] = [:],
                shards: [ShardDefinition]) {
        self.name = name
        self.scheduler = scheduler
        self.campaign = campaign
        self.step = step
        self.memoryMB = memoryMB
        self.timeLimitSeconds = timeLimitSeconds
        self.policy = policy
        self.parameters = parameters
        self.shards = shards
    }

    /// Valid job set names: 1-100 of `[A-Za-z0-9._-]`, starting with a letter or digit.
    public static func isValidName(_ n: String) -> Bool {
        guard let f = n.unicodeScalars.first, n.count <= 100,
              CharacterSet.alphanumerics.contains(f), f.isASCII else { return false }
        return n.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) }
    }
}

/// One attempt as status and --json show it.
public struct AttemptStatus: Sendable, Codable, Equatable {
    public var number: Int
    public var scheduler: String
    public var name: String
    public var batchID: String?
    public var state: JobState
    public var exitCode: Int32?
    public var signal: Int32?
    public var failureClass: FailureClass?
    public var reason: String?
    public var trigger: String
    public var submitted: Date?
    public var started: Date?
    public var ended: Date?
    public var cpuSeconds: Double?
    public var peakMemoryMB: Double?
    public var memoryMB: Int
    public var timeLimitSeconds: Int
}

/// One shard's current state: its latest attempt, and (on request) all of them.
public struct ShardStatus: Sendable, Codable, Equatable {
    public var index: Int
    public var key: String
    /// The latest attempt's state; nil before the first submission.
    public var state: JobState?
    public var attempts: Int
    public var failureClass: FailureClass?
    public var reason: String?
    public var exitCode: Int32?
    public var signal: Int32?
    public var batchID: String?
    public var started: Date?
    public var ended: Date?
    public var cpuSeconds: Double?
    public var peakMemoryMB: Double?
    /// What happens next for a failed shard ("retried automatically", "fix the cause, then `calibctl jobs retry`").
    public var nextAction: String?
    public var history: [AttemptStatus]?
}

/// Summary of a job set for `calibctl jobs status` (Codable: `--json`, schema version 2, docs/jobs-status-json.md).
public struct JobSetStatus: Sendable, Codable, Equatable {
    /// 2: times with fractional seconds, `held` and `warnings` added (1: whole seconds).
    public var schemaVersion = 2
    public var name: String
    public var campaign: String?
    public var step: String?
    public var scheduler: String
    public var created: Date
    public var shardCount: Int
    /// Shards per state of their latest attempt (`not-submitted` for shards without attempts).
    public var counts: [String: Int]
    /// Shards per failure class of their latest attempt (failed, lost and cancelled shards).
    public var failureClasses: [String: Int]
    /// True when every shard's latest attempt is final and none will be retried automatically.
    public var finished: Bool
    /// True when every shard succeeded.
    public var succeeded: Bool
    /// The job set's retry policy (automatic retries per failure class, resource factors).
    public var policy: RetryPolicy
    /// Shards whose latest attempt failed, was lost or cancelled, with the reason.
    public var failed: [ShardStatus]
    /// Shards whose latest attempt is held, with the hold reason.
    public var held: [ShardStatus] = []
    /// Things a person should look at although nothing failed (e.g. peak memory far above the request).
    public var warnings: [String] = []
    /// Every shard (omitted with `--failed-only`).
    public var shards: [ShardStatus]?

    /// One line: `NAME: 10 shards: 7 succeeded, 1 running, 2 failed (user-error 1, time-limit 1)`.
    public var summaryLine: String {
        let order = ["succeeded", "running", "pending", "submitted", "created", "held", "not-submitted", "failed",
                     "lost", "cancelled"]
        let parts = order.compactMap { k in counts[k].map { "\($0) \(k)" } }
        var s = "\(name): \(shardCount) shard\(shardCount == 1 ? "" : "s"): " + parts.joined(separator: ", ")
        if !failureClasses.isEmpty {
            s += " (" + failureClasses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        }
        return s
    }
}

/// Metrics and outputs of one succeeded shard.
public struct ShardResult: Sendable, Codable, Equatable {
    public var index: Int
    public var key: String
    public var attempt: Int
    public var metrics: [String: Double]
    public var outputs: [OutputRecord]
}

/// What one `update()` did.
public struct UpdateReport: Sendable, Codable, Equatable {
    /// Schedulers queried (one query each) and those skipped because their minimum poll interval had not passed.
    public var polled: [String] = []
    public var skipped: [String] = []
    public var jobsPolled = 0
    public var transitions = 0
    public var submitted = 0
    public var retried = 0
    public var recovered = 0
    /// Transient scheduler problems: unreachable, timed out (the command goes on with the other schedulers; the next
    /// tick repeats what failed).
    public var errors: [String] = []
    /// Permanent refusals: the scheduler refused a submission; its shards are recorded as failed (launch-failure).
    public var refused: [String] = []
    public var budgetExhausted = false

    public init() {}
}

/// A job set in `calibctl jobs list`.
public struct JobSetSummary: Sendable, Codable, Equatable {
    public var name: String
    public var campaign: String?
    public var step: String?
    public var scheduler: String
    public var created: Date
    public var shards: Int
    public var counts: [String: Int]
}
