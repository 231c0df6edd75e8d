import CalibIO
import Foundation

extension JobEngine {
    /// The job set's status: counts per state and failure class of each shard's latest attempt, the failed shards
    /// with their reasons and next action, and (unless `failedOnly`) every shard; `history` adds all attempts.
    public func status(jobSet name: String, failedOnly: Bool = false, history: Bool = false) throws -> JobSetStatus {
        let js = try jobSetRow(name)
        var counts: [String: Int] = [:], classes: [String: Int] = [:]
        var all: [ShardStatus] = [], failed: [ShardStatus] = [], held: [ShardStatus] = []
        var warnings: [String] = []
        var anyRetryPending = false
        var histories: [Int64: [AttemptStatus]] = [:]
        do {
            // One query for the failure-class histories (needed for next actions) and optional full histories.
            try database.forEachRow("""
                SELECT a.*, s.idx AS idx FROM attempts a JOIN shards s ON s.id = a.shard
                WHERE s.job_set = ? AND (? OR a.shard IN (SELECT a2.shard FROM attempts a2 JOIN shards s2 ON s2.id = a2.shard
                      WHERE s2.job_set = ? AND a2.state IN ('failed','lost','cancelled')))
                ORDER BY a.shard, a.number
                """, parameters: [js.id, history, js.id]) { r in
                histories[r.int("shard") ?? 0, default: []].append(Self.attempt(r))
            }
        }
        try database.forEachRow("""
            SELECT s.id AS shard_id, s.idx AS idx, s.key AS key, s.attempts AS attempts, a.*
            FROM shards s LEFT JOIN attempts a ON a.shard = s.id AND a.number = s.attempts
            WHERE s.job_set = ? ORDER BY s.idx
            """, parameters: [js.id]) { r in
            let state = JobState(rawValue: r.text("state") ?? "")
            counts[state?.rawValue ?? "not-submitted", default: 0] += 1
            let a = state == nil ? nil : Self.attempt(r)
            var s = ShardStatus(index: Int(r.int("idx") ?? 0), key: r.text("key") ?? "", state: state,
                                attempts: Int(r.int("attempts") ?? 0), failureClass: a?.failureClass,
                                reason: a?.reason, exitCode: a?.exitCode, signal: a?.signal, batchID: a?.batchID,
                                started: a?.started, ended: a?.ended, cpuSeconds: a?.cpuSeconds,
                                peakMemoryMB: a?.peakMemoryMB, nextAction: nil, history: nil)
            let h = histories[r.int("shard_id") ?? 0]
            if history { s.history = h ?? [] }
            if state == .held { held.append(s) }
            // A job that used far more memory than it asked for passes on a scheduler that does not enforce memory,
            // and fails (or is killed) on one that does: say so while the peak is known.
            if let peak = a?.peakMemoryMB, let req = a?.memoryMB, req > 0, peak > Double(req) * Self.memoryWarningFactor {
                warnings.append(String(format: "shard %d [%@] attempt %d used %.0f MB of memory, %.1f times the %d MB it requested; ask for more (--memory)",
                                       s.index, s.key, s.attempts, peak, peak / Double(req), req))
            }
            if let st = state, st.isFinal, st != .succeeded {
                if let c = a?.failureClass { classes[c.rawValue, default: 0] += 1 }
                let hist = (h ?? []).map(\.failureClass)
                s.nextAction = js.policy.nextAction(history: hist)
                if st != .cancelled && js.policy.shouldRetry(history: hist) { anyRetryPending = true }
                failed.append(s)
            }
            if !failedOnly { all.append(s) }
        }
        let total = counts.values.reduce(0, +)
        let finalCount = ["succeeded", "failed", "lost", "cancelled"].reduce(0) { $0 + (counts[$1] ?? 0) }
        return JobSetStatus(name: js.name, campaign: js.campaign, step: js.step, scheduler: js.scheduler,
                            created: js.created, shardCount: total, counts: counts, failureClasses: classes,
                            finished: finalCount == total && !anyRetryPending,
                            succeeded: (counts["succeeded"] ?? 0) == total, policy: js.policy, failed: failed,
                            held: held, warnings: warnings, shards: failedOnly ? nil : all)
    }

    /// Peak memory above this multiple of the request is reported as a warning by `status`.
    public static let memoryWarningFactor = 1.5

    static func attempt(_ r: SQLRow) -> AttemptStatus {
        let d = { (k: String) in r.double(k).map { Date(timeIntervalSince1970: $0) } }
        return AttemptStatus(number: Int(r.int("number") ?? 0), scheduler: r.text("scheduler") ?? "",
                             name: r.text("name") ?? "", batchID: r.text("batch_id"),
                             state: JobState(rawValue: r.text("state") ?? "") ?? .created,
                             exitCode: r.int("exit_code").map { Int32($0) }, signal: r.int("signal").map { Int32($0) },
                             failureClass: r.text("failure_class").flatMap(FailureClass.init(rawValue:)),
                             reason: r.text("reason"), trigger: r.text("trigger") ?? "", submitted: d("submitted"),
                             started: d("started"), ended: d("ended"), cpuSeconds: r.double("cpu_s"),
                             peakMemoryMB: r.double("peak_mem_mb"), memoryMB: Int(r.int("memory_mb") ?? 0),
                             timeLimitSeconds: Int(r.int("time_limit_s") ?? 0))
    }

    /// Metrics and outputs (with sizes and SHA-256) of every shard whose latest attempt succeeded.
    public func results(jobSet name: String) throws -> [ShardResult] {
        let js = try jobSetRow(name)
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .secondsSince1970
        var out: [ShardResult] = []
        try database.forEachRow("""
            SELECT s.idx AS idx, s.key AS key, a.number AS number, a.result AS result
            FROM shards s JOIN attempts a ON a.shard = s.id AND a.number = s.attempts
            WHERE s.job_set = ? AND a.state = 'succeeded' ORDER BY s.idx
            """, parameters: [js.id]) { r in
            guard let text = r.text("result"), let res = try? dec.decode(JobResult.self, from: Data(text.utf8)) else { return }
            out.append(ShardResult(index: Int(r.int("idx") ?? 0), key: r.text("key") ?? "",
                                   attempt: Int(r.int("number") ?? 0), metrics: res.metrics, outputs: res.outputs))
        }
        return out
    }

    /// Files of one shard's attempt (default: the latest): stdout, stderr and result record paths.
    public func logFiles(jobSet name: String, shard: Int, attempt: Int? = nil) throws
        -> (attempt: Int, stdout: String, stderr: String, result: String) {
        let js = try jobSetRow(name)
        try checkShards(js, [shard])
        guard let r = try database.first("SELECT spec_path, attempts FROM shards WHERE job_set = ? AND idx = ?", js.id, shard) else {
            throw JobError.noSuchShards(jobSet: name, shards: [shard])
        }
        let n = attempt ?? Int(r.int("attempts") ?? 0)
        guard n >= 1, n <= Int(r.int("attempts") ?? 0) else {
            throw JobError.badParameter("shard \(shard) of \(name)",
                                        detail: "has \(r.int("attempts") ?? 0) attempt(s); there is no attempt \(n)")
        }
        let dir = JobSetSpec.shardDirectory(specPath: r.text("spec_path") ?? "", index: shard) as NSString
        return (n, dir.appendingPathComponent("attempt-\(n).out"), dir.appendingPathComponent("attempt-\(n).err"),
                JobRunner.resultPath(directory: dir as String, attempt: n))
    }
}
