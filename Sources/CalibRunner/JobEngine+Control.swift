import CalibIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

extension JobEngine {
    /// Cancels the live attempts of the job set (all shards, or those listed): asks the scheduler to cancel them and
    /// records them as cancelled. Returns how many were cancelled. Cancelled shards are never retried automatically.
    @discardableResult
    public func cancel(jobSet name: String, shards: [Int]? = nil) throws -> Int {
        let js = try jobSetRow(name)
        try checkShards(js, shards)
        var report = UpdateReport()
        try resolveCreated(jobSetID: js.id, report: &report)
        let rows = try database.query("""
            SELECT a.id AS id, a.batch_id AS batch_id, a.scheduler AS scheduler, a.state AS state, s.idx AS idx
            FROM attempts a JOIN shards s ON s.id = a.shard AND a.number = s.attempts
            WHERE s.job_set = ? AND a.state IN ('created','submitted','pending','running','held')
            """, js.id).filter { r in shards.map { $0.contains(Int(r.int("idx") ?? -1)) } ?? true }
        for (schedName, group) in Dictionary(grouping: rows, by: { $0.text("scheduler") ?? "" }) {
            let ids = group.compactMap { $0.text("batch_id") }
            if !ids.isEmpty { try scheduler(schedName).cancel(ids) }
        }
        let now = Date().timeIntervalSince1970
        return try database.transaction {
            var n = 0
            for r in rows {
                n += try database.run("""
                    UPDATE attempts SET state = 'cancelled', failure_class = 'cancelled', reason = ?, ended = ?, updated = ?
                    WHERE id = ? AND state = ?
                    """, "cancelled by \(user)", now, now, r.int("id"), r.text("state"))
            }
            return n
        }
    }

    /// What `retry` did.
    public struct RetryReport: Sendable, Codable, Equatable {
        public var retried: [Int] = []
        /// Shards left alone, with why (still running, succeeded without --force, never submitted).
        public var skipped: [String: String] = [:]
    }

    /// Retries on request: a new attempt for every listed shard (default: every shard whose latest attempt failed,
    /// was lost or cancelled), including user errors, which are never retried automatically. Out-of-memory and
    /// time-limit failures get more memory / time per the policy. With `force`, succeeded shards run again too.
    @discardableResult
    public func retry(jobSet name: String, shards: [Int]? = nil, force: Bool = false) throws -> RetryReport {
        let js = try jobSetRow(name)
        try checkShards(js, shards)
        var out = RetryReport()
        try database.transaction {
            let rows = try database.query("""
                SELECT s.id AS shard, s.idx AS idx, s.attempts AS attempts, a.state AS state,
                       a.failure_class AS failure_class, a.memory_mb AS memory_mb, a.time_limit_s AS time_limit_s
                FROM shards s LEFT JOIN attempts a ON a.shard = s.id AND a.number = s.attempts
                WHERE s.job_set = ? ORDER BY s.idx
                """, js.id)
            var items: [AttemptPlan] = []
            for r in rows {
                let idx = Int(r.int("idx") ?? 0)
                if let shards, !shards.contains(idx) { continue }
                guard let state = JobState(rawValue: r.text("state") ?? "") else {
                    out.skipped[String(idx)] = "never submitted (use `calibctl jobs submit`)"
                    continue
                }
                if !state.isFinal { out.skipped[String(idx)] = "still \(state.rawValue)"; continue }
                if state == .succeeded && !force {
                    if shards != nil { out.skipped[String(idx)] = "succeeded (add --force to run it again)" }
                    continue
                }
                let attempts = Int(r.int("attempts") ?? 0)
                if attempts >= js.policy.maxAttempts && !force {
                    out.skipped[String(idx)] = "reached the attempt cap (\(attempts) of \(js.policy.maxAttempts)); add --force to run it anyway"
                    continue
                }
                let c = FailureClass(rawValue: r.text("failure_class") ?? "")
                let res = js.policy.nextResources(after: c, memoryMB: Int(r.int("memory_mb") ?? Int64(js.memoryMB)),
                                                  timeLimitSeconds: Int(r.int("time_limit_s") ?? Int64(js.timeLimit)))
                items.append(AttemptPlan(shard: r.int("shard") ?? 0, number: Int(r.int("attempts") ?? 0) + 1,
                                         memoryMB: res.memoryMB, timeLimit: res.timeLimitSeconds,
                                         trigger: force && state == .succeeded ? "retry --force" : "retry"))
                out.retried.append(idx)
            }
            try createAttempts(js, items)
        }
        var report = UpdateReport()
        try resolveCreated(jobSetID: js.id, report: &report, throwErrors: true)
        return out
    }

    /// What `delete` did.
    public struct DeleteReport: Sendable, Codable, Equatable {
        public var jobSet: String
        public var shards: Int
        public var attempts: Int
        /// Where the job set's directory (specs, logs, result records, OUTPUTS) was moved; nothing is deleted.
        public var movedTo: String?
    }

    /// Deletes a finished job set's records (job set, shards, attempts) so that its name can be used again. Refused
    /// while a shard is live (cancel it first) and for a job set of a campaign step (the campaign refers to it). Files
    /// are never deleted: the job set's directory is moved to `HOME/jobs/.deleted/NAME-<time>`.
    @discardableResult
    public func delete(jobSet name: String) throws -> DeleteReport {
        let js = try jobSetRow(name)
        if let c = js.campaign {
            throw JobError.refused("job set '\(name)' belongs to campaign \(c), step \(js.step ?? "?")",
                                   fix: "the campaign refers to it; it cannot be deleted")
        }
        let live = try database.first("""
            SELECT COUNT(*) AS n FROM attempts a JOIN shards s ON s.id = a.shard
            WHERE s.job_set = ? AND a.state IN ('created','submitted','pending','running','held')
            """, js.id)?.int("n") ?? 0
        if live > 0 {
            throw JobError.refused("job set '\(name)' has \(live) live shard(s)",
                                   fix: "wait for them or `calibctl jobs cancel \(name)`, then delete it")
        }
        var report = DeleteReport(jobSet: name, shards: 0, attempts: 0, movedTo: nil)
        try database.transaction {
            report.attempts = Int(try database.first("""
                SELECT COUNT(*) AS n FROM attempts WHERE shard IN (SELECT id FROM shards WHERE job_set = ?)
                """, js.id)?.int("n") ?? 0)
            report.shards = Int(try database.first("SELECT COUNT(*) AS n FROM shards WHERE job_set = ?", js.id)?.int("n") ?? 0)
            try database.run("DELETE FROM attempts WHERE shard IN (SELECT id FROM shards WHERE job_set = ?)", js.id)
            try database.run("DELETE FROM shards WHERE job_set = ?", js.id)
            try database.run("DELETE FROM job_sets WHERE id = ?", js.id)
            if FileManager.default.fileExists(atPath: js.directory) {
                let trash = (workspace.jobsDirectory as NSString).appendingPathComponent(".deleted")
                try JobFiles.mkdirs(trash)
                let stamp = String(format: "%.0f", Date().timeIntervalSince1970)
                let dest = (trash as NSString).appendingPathComponent("\(name)-\(stamp)")
                guard rename(js.directory, dest) == 0 else {
                    throw JobError.io(path: js.directory, detail: "cannot move it to \(dest): \(String(cString: strerror(errno)))")
                }
                report.movedTo = dest
            }
        }
        return report
    }

    func checkShards(_ js: JobSetRow, _ shards: [Int]?) throws {
        guard let shards, !shards.isEmpty else { return }
        let n = Int(try database.first("SELECT COUNT(*) AS n FROM shards WHERE job_set = ?", js.id)?.int("n") ?? 0)
        let bad = shards.filter { $0 < 0 || $0 >= n }
        if !bad.isEmpty { throw JobError.noSuchShards(jobSet: js.name, shards: bad) }
    }
}
