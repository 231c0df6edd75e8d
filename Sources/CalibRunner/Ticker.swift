import CalibCore
import Foundation

/// Extra work a tick does after the job sets are updated (calibctl adds campaigns: starting ready steps, quality
/// gates). Participants run in order, only while the time budget lasts, and return one summary line per object.
public protocol TickParticipant {
    var name: String { get }
    func tick(_ context: TickContext) throws -> TickContribution
}

/// What a participant did in one tick: its lines, the jobs it submitted, and the problems of single objects
/// (campaigns) that did not stop the others.
public struct TickContribution: Sendable, Equatable {
    public var lines: [String]
    public var submitted: Int
    public var errors: [String]

    public init(lines: [String] = [], submitted: Int = 0, errors: [String] = []) {
        self.lines = lines
        self.submitted = submitted
        self.errors = errors
    }
}

/// What a participant gets: the engine (to create and submit job sets), the deadline and the job update's report.
public struct TickContext {
    public let engine: JobEngine
    public let deadline: Date
    public let update: UpdateReport

    /// True when the time budget is spent; participants stop and leave the rest to the next tick.
    public var isPastDeadline: Bool { Date() > deadline }
}

/// What one tick did (`calibctl tick --json`).
public struct TickReport: Sendable, Codable, Equatable {
    public var schemaVersion = 1
    public var started: Date
    public var seconds: Double
    public var update: UpdateReport
    /// One line per active job set (and per campaign from participants).
    public var lines: [String]
    /// Set when a stale lock of a dead tick was taken over.
    public var tookOverStaleLockFrom: String?
    public var budgetExhausted: Bool
    /// Participant failures (the tick goes on with the others).
    public var errors: [String]
    /// Jobs submitted by participants (campaign steps started); `update.submitted` counts the engine's own.
    public var campaignSubmitted = 0
    /// Problems of single campaigns (the others went on).
    public var campaignErrors: [String] = []
    /// Every job submitted in this tick.
    public var totalSubmitted: Int { update.submitted + campaignSubmitted }
}

/// `calibctl tick`: what batch-farm cron jobs run. Takes the non-blocking tick lock (exit 75 if held), polls each
/// scheduler once (respecting its minimum interval), updates states, applies retry policies, lets participants do
/// campaign work, writes one summary line per active job set, and stops within the time budget.
/// Idempotent: a second tick right after the first changes nothing; a tick killed at any point loses and duplicates
/// nothing (see `JobEngine`).
public final class Ticker {
    public let workspace: Workspace
    public let engine: JobEngine
    public var participants: [any TickParticipant]
    /// Seconds a tick may take (the scheduler poll itself is not interrupted).
    public var budget: TimeInterval

    public init(workspace: Workspace, engine: JobEngine, participants: [any TickParticipant] = [], budget: TimeInterval = 50) {
        self.workspace = workspace
        self.engine = engine
        self.participants = participants
        self.budget = budget
    }

    public var lockPath: String { (workspace.home as NSString).appendingPathComponent("tick.lock") }

    /// Runs one tick. Throws `TickLock.Held` when another tick is running.
    public func run(force: Bool = false) throws -> TickReport {
        let start = Date()
        let deadline = start.addingTimeInterval(budget)
        try workspace.ensureHome()
        let lock = TickLock(path: lockPath)
        try lock.acquire()
        defer { lock.release() }
        let update = try engine.update(force: force, deadline: deadline)
        var lines: [String] = []
        var errors: [String] = update.errors
        var exhausted = update.budgetExhausted
        let context = TickContext(engine: engine, deadline: deadline, update: update)
        var submitted = 0
        var campaignErrors: [String] = []
        for p in participants {
            if context.isPastDeadline { exhausted = true; break }
            do {
                let c = try p.tick(context)
                lines += c.lines
                submitted += c.submitted
                campaignErrors += c.errors
            } catch { errors.append("\(p.name): \(error)") }
        }
        // One line per job set that is active or changed during this tick.
        for name in try activeJobSets(since: start.timeIntervalSince1970) {
            lines.append(try engine.status(jobSet: name, failedOnly: true).summaryLine)
        }
        if Date() > deadline { exhausted = true }
        return TickReport(started: start, seconds: Date().timeIntervalSince(start), update: update, lines: lines,
                          tookOverStaleLockFrom: lock.tookOverFrom?.description, budgetExhausted: exhausted,
                          errors: errors, campaignSubmitted: submitted, campaignErrors: campaignErrors)
    }

    func activeJobSets(since: Double) throws -> [String] {
        try engine.database.query("""
            SELECT DISTINCT j.name AS name FROM job_sets j JOIN shards s ON s.job_set = j.id
            JOIN attempts a ON a.shard = s.id AND a.number = s.attempts
            WHERE a.state IN ('created','submitted','pending','running','held') OR a.updated >= ?
            ORDER BY j.name
            """, since).compactMap { $0.text("name") }
    }
}
