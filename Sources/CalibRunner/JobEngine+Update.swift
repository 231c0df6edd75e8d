import CalibIO
import Foundation

extension JobEngine {
    /// Follows every live job: submits or recovers `created` attempts, polls each scheduler ONCE (unless its minimum
    /// poll interval has not passed, or `force`), records state changes, verifies the result records of jobs that
    /// exited 0, and applies the retry policy. Stops early (between stages) when `deadline` passes.
    /// Running it twice in a row changes nothing the second time unless a job changed in between.
    @discardableResult
    public func update(force: Bool = false, deadline: Date? = nil) throws -> UpdateReport {
        var report = UpdateReport()
        try resolveCreated(jobSetID: nil, report: &report)
        let live = try database.query("""
            SELECT a.id AS id, a.batch_id AS batch_id, a.scheduler AS scheduler, a.state AS state,
                   a.started AS started, a.number AS number, a.updated AS updated, a.reason AS reason,
                   s.spec_path AS spec_path, s.idx AS idx, j.directory AS dir
            FROM attempts a JOIN shards s ON s.id = a.shard JOIN job_sets j ON j.id = s.job_set
            WHERE a.state IN \(Self.liveStates) AND a.batch_id IS NOT NULL
            """)
        let bySched = Dictionary(grouping: live) { $0.text("scheduler") ?? "" }
        for (name, rows) in bySched.sorted(by: { $0.key < $1.key }) {
            if let d = deadline, Date() > d { report.budgetExhausted = true; return report }
            guard let sched = schedulers[name] else {
                report.errors.append("\(name): no such scheduler configured; \(rows.count) job(s) not polled")
                continue
            }
            let last = try database.first("SELECT last_poll FROM scheduler_polls WHERE scheduler = ?", name)?
                .double("last_poll") ?? 0
            let now = Date().timeIntervalSince1970
            if !force && now - last < sched.minimumPollInterval {
                report.skipped.append(name)
                continue
            }
            let observed: [String: ObservedJob]
            do {
                observed = try sched.poll(rows.compactMap { $0.text("batch_id") })
            } catch {
                report.errors.append("\(name): poll failed: \(error)")
                try database.run("""
                    INSERT INTO scheduler_polls(scheduler, last_poll, jobs, ok, detail) VALUES(?,?,?,0,?)
                    ON CONFLICT(scheduler) DO UPDATE SET last_poll = excluded.last_poll, jobs = excluded.jobs, ok = 0,
                    detail = excluded.detail
                    """, name, now, rows.count, "\(error)")
                continue
            }
            report.polled.append(name)
            report.jobsPolled += rows.count
            try database.transaction {
                try database.run("""
                    INSERT INTO scheduler_polls(scheduler, last_poll, jobs, ok, detail) VALUES(?,?,?,1,NULL)
                    ON CONFLICT(scheduler) DO UPDATE SET last_poll = excluded.last_poll, jobs = excluded.jobs, ok = 1,
                    detail = NULL
                    """, name, now, rows.count)
                var failedInQueue: [String] = []
                for r in rows {
                    guard let b = r.text("batch_id"), var o = observed[b] else { continue }
                    if o.state.isFinal, let refining = sched as? any ObservationRefining {
                        o = refining.refine(o, submissionDirectory: ((r.text("dir") ?? "") as NSString).appendingPathComponent("scheduler"))
                    }
                    if let recorded = try applyRecording(o, to: r) {
                        report.transitions += 1
                        // Failed while still queued (HTCondor holds; a hold past the limit on any scheduler): removed.
                        if recorded == .failed && (sched.keepsFailedJobsQueued || r.text("state") == "held" || o.state == .held) {
                            failedInQueue.append(b)
                        }
                    }
                }
                // One call removes every job that failed but is still queued (held); the failure is recorded first,
                // so a crash in between only leaves a held job that the next update removes again.
                if !failedInQueue.isEmpty {
                    do { try sched.cancel(failedInQueue) } catch {
                        report.errors.append("\(name): could not remove \(failedInQueue.count) failed job(s) still queued: \(error)")
                    }
                }
            }
        }
        if let d = deadline, Date() > d { report.budgetExhausted = true; return report }
        report.retried = try applyRetryPolicy()
        if report.retried > 0 { try resolveCreated(jobSetID: nil, report: &report) }
        return report
    }

    /// Records one observation; returns true if the attempt changed.
    func apply(_ o: ObservedJob, to r: SQLRow) throws -> Bool { try applyRecording(o, to: r) != nil }

    /// Records one observation; returns the state recorded, nil if the attempt did not change.
    func applyRecording(_ o: ObservedJob, to r: SQLRow) throws -> JobState? {
        guard let id = r.int("id"), let current = JobState(rawValue: r.text("state") ?? "") else { return nil }
        var o = o
        var resultJSON: String?
        let number = Int(r.int("number") ?? 1)
        let resultPath = JobRunner.resultPath(
            directory: JobSetSpec.shardDirectory(specPath: r.text("spec_path") ?? "", index: Int(r.int("idx") ?? 0)),
            attempt: number)
        // The shard's own result record is evidence the scheduler may have lost: a job Slurm forgot (MinJobAge passed,
        // no jobcomp, no slurmdbd), or one reported cancelled / failed by a node failure after a controller restart,
        // whose record says it finished, did finish: it is never re-run nor mislabelled.
        // A record of a command killed by a signal proves nothing about the kill (time limit, node): not used.
        if o.state == .lost || o.state == .cancelled || (o.state == .failed && o.failureClass == .nodeFailure),
           let res = try? JobResult.read(resultPath), res.signal == nil {
            let said = o.state == .lost ? "was forgotten by the scheduler" : "was reported \(o.state.rawValue) by the scheduler"
            o.endTime = res.endTime
            o.startTime = o.startTime ?? res.startTime
            if res.exitCode == 0 {
                o.state = .succeeded; o.failureClass = nil; o.exitCode = 0; o.signal = nil
                o.reason = "\(said); its result record says it finished with exit 0"
            } else {
                o.state = .failed; o.failureClass = .userError; o.exitCode = res.exitCode; o.signal = res.signal
                o.reason = res.message ?? "\(said); its result record says exit status \(res.exitCode)"
            }
        }
        // A hold that lasts too long counts as a failure (the engine then removes the job from the queue).
        if o.state == .held {
            let since = o.endTime?.timeIntervalSince1970
                ?? (current == .held ? r.double("updated") : nil) ?? Date().timeIntervalSince1970
            o.endTime = nil
            if Date().timeIntervalSince1970 - since > heldLimitSeconds {
                o.state = .failed; o.failureClass = .launchFailure
                o.reason = "held for more than \(Int(heldLimitSeconds / 60)) min: \(o.reason ?? r.text("reason") ?? "no reason given")"
            } else if current == .held && o.reason == r.text("reason") {
                return nil
            }
        }
        if o.state == .succeeded {
            // Success = exit 0 AND a result record AND outputs that match it.
            if let res = try? JobResult.read(resultPath) {
                if res.exitCode != 0 {
                    o.state = .failed; o.failureClass = .userError; o.exitCode = res.exitCode
                    o.reason = res.message ?? "the job's result records exit status \(res.exitCode)"
                } else if let problem = res.verifyOutputs() {
                    o.state = .failed; o.failureClass = .missingOutput; o.reason = problem
                } else {
                    resultJSON = Self.encodeResult(res)
                }
            } else {
                o.state = .failed; o.failureClass = .missingOutput
                o.reason = "exited 0 but its result record \(resultPath) is missing or unreadable"
            }
        } else if o.state == .failed, o.failureClass == .userError || o.failureClass == nil,
                  let res = try? JobResult.read(resultPath) {
            if let m = res.message { o.reason = m }
            if o.failureClass == nil { o.failureClass = .userError }
        }
        if o.state.isFinal && o.failureClass == nil && o.state != .succeeded {
            o.failureClass = o.state == .cancelled ? .cancelled : (o.state == .lost ? .lost : .userError)
        }
        let startedChanged = (r.double("started") == nil) != (o.startTime == nil)
        let reasonChanged = o.state == .held && o.reason != r.text("reason")
        guard o.state != current || startedChanged || reasonChanged else { return nil }
        let changed = try database.run("""
            UPDATE attempts SET state = ?, exit_code = ?, signal = ?, failure_class = ?, reason = ?,
              started = COALESCE(?, started), ended = ?, cpu_s = ?, peak_mem_mb = ?, result = ?, updated = ?
            WHERE id = ? AND state = ?
            """, o.state.rawValue, o.exitCode, o.signal, o.failureClass?.rawValue, o.reason,
            o.startTime?.timeIntervalSince1970, o.state.isFinal ? (o.endTime ?? Date()).timeIntervalSince1970 : nil,
            o.cpuSeconds, o.peakMemoryMB, resultJSON, Date().timeIntervalSince1970, id, current.rawValue)
        return changed > 0 ? o.state : nil
    }

    static func encodeResult(_ r: JobResult) -> String? {
        let enc = JSONEncoder()
        enc.outputFormatting = .sortedKeys
        enc.dateEncodingStrategy = .secondsSince1970
        return (try? enc.encode(r)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Creates the next attempt of every shard whose latest attempt failed or was lost with a class the job set's
    /// policy retries automatically (bounded); returns how many. The caller submits them.
    func applyRetryPolicy() throws -> Int {
        try database.transaction {
            let rows = try database.query("""
                SELECT s.id AS shard, s.job_set AS job_set, s.attempts AS attempts, a.failure_class AS failure_class,
                       a.memory_mb AS memory_mb, a.time_limit_s AS time_limit_s
                FROM attempts a JOIN shards s ON s.id = a.shard AND a.number = s.attempts
                WHERE a.state IN ('failed', 'lost') ORDER BY s.job_set, s.idx
                """)
            guard !rows.isEmpty else { return 0 }
            var total = 0
            for (jsID, group) in Dictionary(grouping: rows, by: { $0.int("job_set") ?? 0 }) {
                guard let jr = try database.first("SELECT * FROM job_sets WHERE id = ?", jsID) else { continue }
                let js = try Self.jobSetRow(jr)
                var items: [AttemptPlan] = []
                for r in group {
                    let shard = r.int("shard") ?? 0
                    let history = try database.query("SELECT failure_class FROM attempts WHERE shard = ? ORDER BY number",
                                                      shard).map { FailureClass(rawValue: $0.text("failure_class") ?? "") }
                    guard js.policy.shouldRetry(history: history) else { continue }
                    let c = FailureClass(rawValue: r.text("failure_class") ?? "")
                    let res = js.policy.nextResources(after: c, memoryMB: Int(r.int("memory_mb") ?? 0),
                                                      timeLimitSeconds: Int(r.int("time_limit_s") ?? 0))
                    items.append(AttemptPlan(shard: shard, number: Int(r.int("attempts") ?? 0) + 1, memoryMB: res.memoryMB,
                                             timeLimit: res.timeLimitSeconds, trigger: "auto:\(c?.rawValue ?? "failure")"))
                }
                // One submission per job set and round.
                try createAttempts(js, items)
                total += items.count
            }
            return total
        }
    }
}
