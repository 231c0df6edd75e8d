import Foundation

/// States of one job attempt, the same for every scheduler.
public enum JobState: String, Sendable, Codable, CaseIterable {
    case created, submitted, pending, running, succeeded, failed, held, cancelled, lost

    /// True when the attempt will not change any more.
    public var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled || self == .lost }
}

/// One failure taxonomy across schedulers (docs/runner.md). Each class has its own retry policy.
public enum FailureClass: String, Sendable, Codable, CaseIterable {
    /// Non-zero exit of the job's own command: never retried automatically.
    case userError = "user-error"
    /// Killed for exceeding its memory: retried with more memory.
    case outOfMemory = "out-of-memory"
    /// Killed at its time limit: retried with more time.
    case timeLimit = "time-limit"
    /// Node or system failure (NODE_FAIL, BOOT_FAIL, killed by a signal it did not send itself): retried (bounded).
    case nodeFailure = "node-failure"
    /// The scheduler could not start the job (bad script, unopenable output): not retried.
    case launchFailure = "launch-failure"
    /// Cancelled by a person or by calibctl: not retried.
    case cancelled
    /// Vanished from the scheduler without a final record: retried (bounded).
    case lost
    /// Exited 0 but its outputs or result record are missing or fail their checksum: retried (bounded).
    case missingOutput = "missing-output"
}

/// One shard to submit: the command a worker runs and its resource requests.
public struct ShardRequest: Sendable, Codable, Equatable {
    /// Shard index within the job set (0-based), also the array task id / HTCondor item.
    public var index: Int
    /// The command line the worker runs (normally `calibctl job run SPEC`).
    public var command: [String]
    public var workDirectory: String
    public var stdoutPath: String
    public var stderrPath: String
    public var memoryMB: Int
    public var timeLimitSeconds: Int

    public init(index: Int, command: [String], workDirectory: String, stdoutPath: String, stderrPath: String,
                memoryMB: Int, timeLimitSeconds: Int) {
        self.index = index
        self.command = command
        self.workDirectory = workDirectory
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        self.memoryMB = memoryMB
        self.timeLimitSeconds = timeLimitSeconds
    }
}

/// A batch of shards submitted together (one Slurm array / one HTCondor cluster / one local launch).
public struct Submission: Sendable, Codable, Equatable {
    /// The job set these shards belong to (carried in the job's name / comment / custom attribute).
    public var jobSetID: String
    /// Deterministic name of this submission (job set + attempt), so a retry after a crash finds what it already
    /// submitted instead of submitting twice.
    public var name: String
    public var shards: [ShardRequest]
    /// A directory for scheduler files (submit scripts, logs) of this submission.
    public var directory: String

    public init(jobSetID: String, name: String, shards: [ShardRequest], directory: String) {
        self.jobSetID = jobSetID
        self.name = name
        self.shards = shards
        self.directory = directory
    }
}

/// What a scheduler said about one job attempt.
public struct ObservedJob: Sendable, Codable, Equatable {
    public var batchID: String
    public var state: JobState
    public var exitCode: Int32?
    public var signal: Int32?
    public var failureClass: FailureClass?
    /// The scheduler's own words (hold reason, Slurm reason), shown to the user.
    public var reason: String?
    public var startTime: Date?
    public var endTime: Date?
    public var cpuSeconds: Double?
    public var peakMemoryMB: Double?

    public init(batchID: String, state: JobState, exitCode: Int32? = nil, signal: Int32? = nil,
                failureClass: FailureClass? = nil, reason: String? = nil, startTime: Date? = nil,
                endTime: Date? = nil, cpuSeconds: Double? = nil, peakMemoryMB: Double? = nil) {
        self.batchID = batchID
        self.state = state
        self.exitCode = exitCode
        self.signal = signal
        self.failureClass = failureClass
        self.reason = reason
        self.startTime = startTime
        self.endTime = endTime
        self.cpuSeconds = cpuSeconds
        self.peakMemoryMB = peakMemoryMB
    }
}

/// One protocol for every batch system; one file per adapter (Local, Slurm, HTCondor).
public protocol BatchScheduler: Sendable {
    /// `local`, `slurm` or `htcondor`.
    var name: String { get }
    /// Sites limit how often their scheduler may be queried; `tick` never polls more often than this.
    var minimumPollInterval: TimeInterval { get }

    /// Submits every shard of `submission` in one scheduler call; returns the batch id of each shard, by shard index.
    func submit(_ submission: Submission) throws -> [Int: String]

    /// Finds jobs already submitted under `submission.name` (after a crash between submit and recording it);
    /// returns their batch ids by shard index, empty if none.
    func findSubmitted(_ submission: Submission) throws -> [Int: String]

    /// Learns the state of all these jobs with ONE scheduler query (plus fallbacks for jobs the query no longer
    /// shows). Jobs it cannot find anywhere come back as `.lost`.
    func poll(_ batchIDs: [String]) throws -> [String: ObservedJob]

    /// Cancels these jobs (SIGTERM, then SIGKILL after a grace period where the scheduler supports it).
    func cancel(_ batchIDs: [String]) throws

    /// True when the scheduler reports some jobs as failed while they still sit in its queue (HTCondor holds a job
    /// that hit its time or memory limit or could not start): the engine then removes them with `cancel` once it
    /// has recorded the failure, so they neither occupy the queue nor run again if someone releases them.
    var keepsFailedJobsQueued: Bool { get }
}

extension BatchScheduler {
    public var keepsFailedJobsQueued: Bool { false }
}

/// A scheduler that can refine a final observation with what it wrote into the submission directory (Slurm: its own
/// output file saying the job exceeded its memory). A separate protocol, so `BatchScheduler` conformers elsewhere
/// are unaffected.
public protocol ObservationRefining {
    func refine(_ observed: ObservedJob, submissionDirectory: String) -> ObservedJob
}

/// Scheduler failures. Two kinds, told apart because they need different reactions:
/// - transient (`permanent == false`): the batch system could not be reached or did not answer in time (controller
///   down, network, timeout). Nothing was decided; the same command is repeated by the next tick (exit 69).
/// - permanent (`permanent == true`): the batch system answered and REFUSED the request (invalid array specification,
///   script too large, unknown partition, memory that no node has). Repeating it cannot help: the engine records the
///   refused shards as failed (`launch-failure`, reason = the scheduler's own message) and never resubmits them by
///   itself (exit 65).
public struct SchedulerError: Error, Sendable {
    public let scheduler: String
    public let operation: String
    public let detail: String
    /// True when the scheduler refused the request (see above); false when it could not be reached.
    public let permanent: Bool

    public init(scheduler: String, operation: String, detail: String, permanent: Bool = false) {
        self.scheduler = scheduler
        self.operation = operation
        self.detail = detail
        self.permanent = permanent
    }

    /// Messages of Slurm and HTCondor clients that mean "could not reach / could not get an answer" rather than
    /// "refused": a non-zero exit whose stderr contains none of them is a refusal.
    public static let transientMarkers = [
        "unable to contact", "socket timed out", "connect failure", "connection refused", "zero bytes were transmitted",
        "temporarily", "try again", "communication connection failure", "not responding", "timed out",
        "network is unreachable", "transport endpoint", "munge", "authentication", "failed to connect",
        "can't find address", "cannot connect", "could not connect", "connection reset", "no route to host",
        "failed to start transaction", "too many open files", "interrupted system call",
    ]

    /// Classifies a submit tool's non-zero exit by its stderr: permanent unless it reads as unreachable.
    public static func isTransientMessage(_ stderr: String) -> Bool {
        let s = stderr.lowercased()
        return s.isEmpty || transientMarkers.contains { s.contains($0) }
    }
}
