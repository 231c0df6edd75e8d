import CalibCore
import CalibIO
import Foundation

/// The job lifecycle over the workspace database: create job sets of shards, submit them through a `BatchScheduler`,
/// follow them (`update`, called by `tick`), apply the retry policy, cancel, retry on request, report status.
///
/// Crash safety (docs/runner.md): every attempt is recorded as `created`, with its deterministic submission name, in
/// a committed transaction before the scheduler is called; the scheduler call and the recording of batch ids happen
/// in one write transaction, and a `created` attempt found later (the process was killed in between) is resolved with
/// `findSubmitted` before anything is submitted again. So a kill at any point neither loses nor duplicates a job.
/// Workers never write the database: they write result files that `update` reads.
public final class JobEngine {
    public let database: SQLiteDatabase
    public let workspace: Workspace
    public let schedulers: [String: any BatchScheduler]
    /// The command prefix a worker runs for a shard; `SPEC --attempt N` is appended (normally `calibctl job run`).
    public let workerCommand: [String]
    /// Who is acting (recorded in job sets and cancel reasons).
    public var user: String = Identity.current.user
    /// A job held (HTCondor hold other than memory/time/launch, Slurm JobHeldUser/Admin) longer than this is recorded
    /// as failed (`launch-failure`, with the hold reason) and removed from the queue (docs/runner.md). Default 1 hour.
    public var heldLimitSeconds: TimeInterval = 3600

    public init(database: SQLiteDatabase, workspace: Workspace, schedulers: [any BatchScheduler],
                workerCommand: [String]) throws {
        self.database = database
        self.workspace = workspace
        self.schedulers = Dictionary(schedulers.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.workerCommand = workerCommand
        try JobSchema.migrate(database)
    }

    static let liveStates = "('submitted','pending','running','held')"

    // MARK: - Job sets

    struct JobSetRow {
        var id: Int64, name: String, scheduler: String, campaign: String?, step: String?, created: Date
        var memoryMB: Int, timeLimit: Int, policy: RetryPolicy, directory: String
    }

    func jobSetRow(_ name: String) throws -> JobSetRow {
        guard let r = try database.first("SELECT * FROM job_sets WHERE name = ?", name) else {
            throw JobError.unknownJobSet(name)
        }
        return try Self.jobSetRow(r)
    }

    static func jobSetRow(_ r: SQLRow) throws -> JobSetRow {
        let policy = (try? JSONDecoder().decode(RetryPolicy.self, from: Data((r.text("policy") ?? "").utf8))) ?? .default
        return JobSetRow(id: r.int("id") ?? 0, name: r.text("name") ?? "", scheduler: r.text("scheduler") ?? "",
                         campaign: r.text("campaign"), step: r.text("step"),
                         created: Date(timeIntervalSince1970: r.double("created") ?? 0),
                         memoryMB: Int(r.int("memory_mb") ?? 0), timeLimit: Int(r.int("time_limit_s") ?? 0),
                         policy: policy, directory: r.text("directory") ?? "")
    }

    func scheduler(_ name: String) throws -> any BatchScheduler {
        guard let s = schedulers[name] else { throw JobError.unknownScheduler(name, known: schedulers.keys.sorted()) }
        return s
    }

    /// Creates a job set: writes ONE spec file for all its shards (`jobs/NAME/specs.jsonl`, `JobSetSpec`), then
    /// records the set and its shards in one transaction. Nothing is submitted yet (`submit(jobSet:)`). Shard
    /// directories (`jobs/NAME/shard-I`) are made when the shards start: a shard that never ran leaves no file.
    public func createJobSet(_ def: JobSetDefinition) throws {
        guard JobSetDefinition.isValidName(def.name) else { throw JobError.badName(def.name) }
        _ = try scheduler(def.scheduler)
        guard !def.shards.isEmpty else {
            throw JobError.badParameter("job set \(def.name)", detail: "has no shards; give at least one")
        }
        guard def.memoryMB > 0, def.timeLimitSeconds > 0 else {
            throw JobError.badParameter("job set \(def.name)", detail: "memory and time limit must be positive")
        }
        if try database.first("SELECT id FROM job_sets WHERE name = ?", def.name) != nil {
            throw JobError.jobSetExists(def.name)
        }
        let dir = (workspace.jobsDirectory as NSString).appendingPathComponent(def.name)
        try JobFiles.mkdirs(dir)
        let specPath = (dir as NSString).appendingPathComponent(JobSetSpec.fileName)
        try JobSetSpec(specs: def.shards.enumerated().map { i, s in
            var spec = s.spec
            spec.index = i
            spec.key = s.key
            return spec
        }).write(to: specPath)
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        try database.transaction {
            try database.run("""
                INSERT INTO job_sets(name, campaign, step, scheduler, created, created_by, kind, parameters, policy,
                                     memory_mb, time_limit_s, directory) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)
                """, def.name, def.campaign, def.step, def.scheduler, Date().timeIntervalSince1970, user,
                def.shards[0].spec.kind, String(decoding: try enc.encode(def.parameters), as: UTF8.self),
                String(decoding: try enc.encode(def.policy), as: UTF8.self), def.memoryMB, def.timeLimitSeconds, dir)
            let id = database.lastInsertRowID
            for (i, s) in def.shards.enumerated() {
                try database.run("""
                    INSERT INTO shards(job_set, idx, key, spec_path, outputs, memory_mb, time_limit_s) VALUES(?,?,?,?,?,?,?)
                    """, id, i, s.key, specPath, String(decoding: try enc.encode(s.spec.outputs), as: UTF8.self),
                    s.memoryMB, s.timeLimitSeconds)
            }
        }
    }

    static func shardDirectory(_ jobSetDir: String, _ i: Int) -> String {
        (jobSetDir as NSString).appendingPathComponent("shard-\(i)")
    }

    /// Job sets, newest first, with their shard counts per state.
    public func listJobSets(campaign: String? = nil) throws -> [JobSetSummary] {
        var out: [JobSetSummary] = []
        for r in try database.query("SELECT * FROM job_sets ORDER BY created DESC, id DESC") {
            let js = try Self.jobSetRow(r)
            if let campaign, js.campaign != campaign { continue }
            var counts: [String: Int] = [:]
            var total = 0
            for c in try database.query("""
                SELECT a.state AS state, COUNT(*) AS n FROM shards s
                LEFT JOIN attempts a ON a.shard = s.id AND a.number = s.attempts
                WHERE s.job_set = ? GROUP BY a.state
                """, js.id) {
                let n = Int(c.int("n") ?? 0)
                counts[c.text("state") ?? "not-submitted", default: 0] += n
                total += n
            }
            out.append(JobSetSummary(name: js.name, campaign: js.campaign, step: js.step, scheduler: js.scheduler,
                                     created: js.created, shards: total, counts: counts))
        }
        return out
    }

    // MARK: - Submission

    /// Submits every shard of the job set that has no attempt yet (one scheduler call); returns how many.
    /// Running it again submits nothing new.
    @discardableResult
    public func submit(jobSet name: String) throws -> Int {
        let js = try jobSetRow(name)
        try database.transaction {
            let rows = try database.query("""
                SELECT id, memory_mb, time_limit_s FROM shards WHERE job_set = ? AND attempts = 0 ORDER BY idx
                """, js.id)
            guard !rows.isEmpty else { return }
            try createAttempts(js, rows.map {
                AttemptPlan(shard: $0.int("id")!, number: 1, memoryMB: $0.int("memory_mb").map { Int($0) } ?? js.memoryMB,
                            timeLimit: $0.int("time_limit_s").map { Int($0) } ?? js.timeLimit, trigger: "submit")
            })
        }
        var report = UpdateReport()
        try resolveCreated(jobSetID: js.id, report: &report, throwErrors: true)
        return report.submitted + report.recovered
    }

    struct AttemptPlan {
        var shard: Int64, number: Int, memoryMB: Int, timeLimit: Int, trigger: String
    }

    /// Records new attempts as `created` under new deterministic submission names (caller holds a transaction).
    func createAttempts(_ js: JobSetRow, _ items: [AttemptPlan]) throws {
        guard !items.isEmpty else { return }
        // One submission per distinct resource request: a Slurm array or HTCondor cluster carries one request.
        var groups: [[AttemptPlan]] = []
        var groupOf: [String: Int] = [:]
        for it in items {
            let k = "\(it.memoryMB)/\(it.timeLimit)"
            if let g = groupOf[k] { groups[g].append(it) } else { groupOf[k] = groups.count; groups.append([it]) }
        }
        var seq = try database.first("SELECT next_submission FROM job_sets WHERE id = ?", js.id)?.int("next_submission") ?? 1
        let now = Date().timeIntervalSince1970
        for group in groups {
            // The random token makes the name unique beyond this workspace: another workspace (or user) on the same
            // Slurm cluster or HTCondor pool may have a job set of the same name, whose jobs `findSubmitted` must never
            // adopt. It is recorded with the attempts before the scheduler is called, so crash recovery still works.
            let submission = "\(js.name).s\(seq)-" + String(format: "%08x", UInt32.random(in: 0...UInt32.max))
            seq += 1
            for it in group {
                try database.run("""
                    INSERT INTO attempts(shard, number, scheduler, submission, name, state, created, memory_mb, time_limit_s,
                                         trigger) VALUES(?,?,?,?,?,'created',?,?,?,?)
                    """, it.shard, it.number, js.scheduler, submission, "\(submission).\(it.shard)", now, it.memoryMB,
                    it.timeLimit, it.trigger)
                try database.run("UPDATE shards SET attempts = ? WHERE id = ?", it.number, it.shard)
            }
        }
        try database.run("UPDATE job_sets SET next_submission = ? WHERE id = ?", seq, js.id)
    }

    /// Submits (or, after a crash, finds) every attempt still in `created` state.
    func resolveCreated(jobSetID: Int64?, report: inout UpdateReport, throwErrors: Bool = false) throws {
        let subs = try database.query("""
            SELECT DISTINCT a.submission AS submission, a.scheduler AS scheduler FROM attempts a
            JOIN shards s ON s.id = a.shard WHERE a.state = 'created' AND (? IS NULL OR s.job_set = ?)
            ORDER BY a.submission
            """, jobSetID, jobSetID)
        for sub in subs {
            let subName = sub.text("submission") ?? "", schedName = sub.text("scheduler") ?? ""
            var refused: SchedulerError?
            do {
                let sched = try scheduler(schedName)
                try database.transaction {
                    let rows = try database.query("""
                        SELECT a.id AS id, a.number AS number, a.memory_mb AS memory_mb, a.time_limit_s AS time_limit_s,
                               s.idx AS idx, s.spec_path AS spec_path, j.name AS jobset, j.directory AS dir
                        FROM attempts a JOIN shards s ON s.id = a.shard JOIN job_sets j ON j.id = s.job_set
                        WHERE a.submission = ? AND a.state = 'created' ORDER BY s.idx
                        """, subName)
                    guard let first = rows.first else { return }
                    let submission = Submission(
                        jobSetID: first.text("jobset") ?? "", name: subName,
                        shards: rows.map { request($0) },
                        directory: ((first.text("dir") ?? "") as NSString).appendingPathComponent("scheduler"))
                    try JobFiles.mkdirs(submission.directory)
                    let byIndex = Dictionary(rows.map { (Int($0.int("idx") ?? 0), $0.int("id") ?? 0) },
                                             uniquingKeysWith: { a, _ in a })
                    let now = Date().timeIntervalSince1970
                    // Jobs already submitted under this name (a calibctl killed after or during the scheduler call)
                    // are recorded, never submitted again; only the shards the scheduler does not have are submitted.
                    var ids = try sched.findSubmitted(submission)
                    report.recovered += ids.count
                    var rest = submission
                    rest.shards = submission.shards.filter { ids[$0.index] == nil }
                    var refusal: SchedulerError?
                    if !rest.shards.isEmpty {
                        do {
                            let new = try sched.submit(rest)
                            report.submitted += new.count
                            ids.merge(new) { a, _ in a }
                        } catch let e as SchedulerError where e.permanent {
                            // Refused (not unreachable): part of it may have been taken (several arrays), the rest is
                            // recorded as failed with the scheduler's message and not submitted again by itself.
                            let taken = (try? sched.findSubmitted(submission)) ?? [:]
                            report.submitted += taken.count - ids.count
                            ids.merge(taken) { a, _ in a }
                            refusal = e
                            report.refused.append("\(schedName): \(e.message)")
                        }
                    }
                    for (idx, attemptID) in byIndex {
                        if let b = ids[idx] {
                            try database.run("UPDATE attempts SET state = 'submitted', batch_id = ?, submitted = ?, updated = ? WHERE id = ?",
                                             b, now, now, attemptID)
                        } else if let refusal {
                            try database.run("""
                                UPDATE attempts SET state = 'failed', failure_class = 'launch-failure', ended = ?, updated = ?,
                                reason = ? WHERE id = ?
                                """, now, now, "\(schedName) refused the submission: \(refusal.detail)", attemptID)
                        } else {
                            try database.run("""
                                UPDATE attempts SET state = 'lost', failure_class = 'lost', ended = ?, updated = ended,
                                reason = 'the scheduler has no job for it under submission ' || ? WHERE id = ?
                                """, now, subName, attemptID)
                        }
                    }
                    refused = refusal
                }
                if let refused { throw refused }
            } catch {
                if throwErrors { throw error }
                if (error as? SchedulerError)?.permanent != true {
                    report.errors.append("\(schedName): submitting \(subName): \(error)")
                }
            }
        }
    }

    func request(_ r: SQLRow) -> ShardRequest {
        let spec = r.text("spec_path") ?? ""
        let idx = Int(r.int("idx") ?? 0)
        let dir = JobSetSpec.shardDirectory(specPath: spec, index: idx)
        let n = Int(r.int("number") ?? 1)
        // `calibctl job run specs.jsonl --shard I --attempt N`; a job set made before version 2 has one spec per shard.
        let args = JobSetSpec.isJobSetSpec(spec) ? [spec, "--shard", String(idx), "--attempt", String(n)]
                                                 : [spec, "--attempt", String(n)]
        return ShardRequest(index: idx, command: workerCommand + args,
                            workDirectory: dir,
                            stdoutPath: dir + "/attempt-\(n).out", stderrPath: dir + "/attempt-\(n).err",
                            memoryMB: Int(r.int("memory_mb") ?? 0), timeLimitSeconds: Int(r.int("time_limit_s") ?? 0))
    }
}
