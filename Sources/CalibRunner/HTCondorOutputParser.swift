import Foundation

/// Pure functions that read HTCondor's command output (23.x) into `ObservedJob`s. Tested on real captured output in
/// Fixtures/scheduler/htcondor; the mapping tables are in docs/schedulers.md.
public enum HTCondorOutputParser {
    /// The attributes the adapter asks `condor_q` / `condor_history -af:jt` for (tab-separated, after the job id).
    public static let attributes = [
        "ClusterId", "ProcId", "CalibShard", "JobStatus", "ExitCode", "ExitBySignal", "ExitSignal", "HoldReasonCode",
        "HoldReasonSubCode", "LastHoldReasonCode", "JobCurrentStartDate", "CompletionDate", "EnteredCurrentStatus",
        "RemoteUserCpu", "RemoteSysCpu", "MemoryUsage", "HoldReason", "RemoveReason",
    ]

    /// Hold reason codes that mean the job exceeded its time (JobDurationExceeded, JobExecuteExceeded).
    public static let timeLimitHoldCodes: Set<Int> = [46, 47]
    /// Hold reason codes that mean the job exceeded its memory (JobOutOfResources).
    public static let memoryHoldCodes: Set<Int> = [34]
    /// HoldReasonCode 21 (StartdHeldJob: the startd's WANT_HOLD) with subcode 102 is the standard policy
    /// `use POLICY : HOLD_IF_MEMORY_EXCEEDED` ("memory usage exceeded request_memory"): out of memory.
    public static func isMemoryHold(code: Int?, subCode: Int?, reason: String?) -> Bool {
        if let code, memoryHoldCodes.contains(code) { return true }
        if code == 21 && subCode == 102 { return true }
        let r = (reason ?? "").lowercased()
        return r.contains("memory usage exceeded") || r.contains("exceeded request_memory")
    }
    /// Hold reason codes that mean the job could not be started: failed to execute, unopenable stdin/stdout/stderr,
    /// file transfer or initial-directory errors.
    public static let launchHoldCodes: Set<Int> = [6, 7, 8, 9, 10, 12, 13, 14]

    /// One line of `condor_q`/`condor_history ... -af:jt <attributes>`.
    public struct Row: Sendable, Equatable {
        /// `cluster.proc`: the adapter's batch id.
        public var batchID: String
        public var cluster: Int
        public var proc: Int
        public var shard: Int?
        public var jobStatus: Int
        public var exitCode: Int32?
        public var exitBySignal: Bool
        public var exitSignal: Int32?
        public var holdReasonCode: Int?
        public var holdReasonSubCode: Int?
        public var lastHoldReasonCode: Int?
        public var startDate: Date?
        public var completionDate: Date?
        public var enteredCurrentStatus: Date?
        public var cpuSeconds: Double?
        public var memoryMB: Double?
        public var holdReason: String?
        public var removeReason: String?
    }

    /// Parses `-af:jt` output; lines that do not have every attribute are skipped.
    public static func parseRows(_ text: String) -> [Row] {
        var rows: [Row] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= attributes.count + 1 else { continue }
            let v = { (name: String) -> String? in
                let value = f[1 + attributes.firstIndex(of: name)!].trimmingCharacters(in: .whitespaces)
                return value == "undefined" || value.isEmpty ? nil : value
            }
            guard let cluster = v("ClusterId").flatMap({ Int($0) }), let proc = v("ProcId").flatMap({ Int($0) }),
                  let status = v("JobStatus").flatMap({ Int($0) }) else { continue }
            let date = { (name: String) -> Date? in
                v(name).flatMap { Double($0) }.flatMap { $0 > 0 ? Date(timeIntervalSince1970: $0) : nil }
            }
            let cpu: Double? = {
                let u = v("RemoteUserCpu").flatMap { Double($0) }, s = v("RemoteSysCpu").flatMap { Double($0) }
                return u == nil && s == nil ? nil : (u ?? 0) + (s ?? 0)
            }()
            rows.append(Row(
                batchID: "\(cluster).\(proc)", cluster: cluster, proc: proc, shard: v("CalibShard").flatMap { Int($0) },
                jobStatus: status, exitCode: v("ExitCode").flatMap { Int32($0) },
                exitBySignal: v("ExitBySignal")?.lowercased() == "true", exitSignal: v("ExitSignal").flatMap { Int32($0) },
                holdReasonCode: v("HoldReasonCode").flatMap { Int($0) },
                holdReasonSubCode: v("HoldReasonSubCode").flatMap { Int($0) },
                lastHoldReasonCode: v("LastHoldReasonCode").flatMap { Int($0) },
                startDate: date("JobCurrentStartDate"), completionDate: date("CompletionDate"),
                enteredCurrentStatus: date("EnteredCurrentStatus"), cpuSeconds: cpu,
                memoryMB: v("MemoryUsage").flatMap { Double($0) }, holdReason: v("HoldReason"),
                removeReason: v("RemoveReason")))
        }
        return rows
    }

    /// Maps one row to a `JobState` and `FailureClass`.
    ///
    /// JobStatus: 1 Idle -> pending; 2 Running, 6 Transferring Output, 7 Suspended -> running; 4 Completed ->
    /// succeeded (ExitCode 0), failed/user-error (ExitCode != 0) or failed/node-failure (ExitBySignal); 3 Removed ->
    /// cancelled, unless it was removed after a time/memory/launch hold; 5 Held -> failed when the hold reason is a
    /// time limit (46, 47), memory (34) or launch failure (6-14), otherwise held with the hold reason.
    public static func observe(_ row: Row) -> ObservedJob {
        var job = ObservedJob(batchID: row.batchID, state: .running, startTime: row.startDate,
                              cpuSeconds: row.cpuSeconds, peakMemoryMB: row.memoryMB)
        func failedByHold(_ code: Int?) -> FailureClass? {
            guard let code else { return nil }
            if timeLimitHoldCodes.contains(code) { return .timeLimit }
            if memoryHoldCodes.contains(code) { return .outOfMemory }
            if launchHoldCodes.contains(code) { return .launchFailure }
            return nil
        }
        switch row.jobStatus {
        case 1:
            job.state = .pending
            job.startTime = nil
        case 2, 6:
            job.state = .running
        case 7:
            job.state = .running
            job.reason = "suspended"
        case 4:
            job.endTime = row.completionDate ?? row.enteredCurrentStatus
            if row.exitBySignal {
                job.state = .failed
                job.signal = row.exitSignal
                job.failureClass = .nodeFailure
            } else if let code = row.exitCode, code != 0 {
                job.state = .failed
                job.exitCode = code
                job.failureClass = .userError
            } else {
                job.state = .succeeded
                job.exitCode = row.exitCode ?? 0
            }
        case 3:
            job.endTime = row.enteredCurrentStatus
            if let cls = failedByHold(row.lastHoldReasonCode) {
                job.state = .failed
                job.failureClass = cls
                job.reason = "removed after hold code \(row.lastHoldReasonCode!)" + (row.removeReason.map { " (\($0))" } ?? "")
            } else {
                job.state = .cancelled
                job.failureClass = .cancelled
                job.reason = row.removeReason
            }
        case 5:
            job.reason = row.holdReason
            if isMemoryHold(code: row.holdReasonCode, subCode: row.holdReasonSubCode, reason: row.holdReason) {
                job.state = .failed
                job.failureClass = .outOfMemory
                job.endTime = row.enteredCurrentStatus
            } else if let cls = failedByHold(row.holdReasonCode) {
                job.state = .failed
                job.failureClass = cls
                job.endTime = row.enteredCurrentStatus
            } else {
                job.state = .held
                job.endTime = row.enteredCurrentStatus  // held since (the engine fails a hold that lasts too long)
            }
        default:
            job.state = .running
            job.reason = "unrecognised HTCondor JobStatus \(row.jobStatus)"
        }
        return job
    }

    /// `condor_submit -terse` output (`4.0 - 4.5`) as (cluster, first proc, last proc); nil when it is not that.
    public static func parseSubmitted(_ text: String) -> (cluster: Int, first: Int, last: Int)? {
        guard let line = text.split(whereSeparator: \.isNewline).first(where: { $0.contains(" - ") }) else { return nil }
        let ends = line.components(separatedBy: " - ").map { $0.trimmingCharacters(in: .whitespaces) }
        guard ends.count == 2 else { return nil }
        let a = ends[0].split(separator: "."), b = ends[1].split(separator: ".")
        guard a.count == 2, b.count == 2, let c = Int(a[0]), let p0 = Int(a[1]), Int(b[0]) == c, let p1 = Int(b[1]),
              p1 >= p0 else { return nil }
        return (c, p0, p1)
    }

    /// True when `condor_rm` said only that jobs were not found (already gone).
    public static func isOnlyNotFound(_ output: String) -> Bool {
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
        return !lines.isEmpty && lines.allSatisfy { $0.hasSuffix("not found") || $0.contains("marked for removal")
            || $0.hasPrefix("Couldn't find") || $0.contains("already") }
    }

    /// A ClassAd string literal (for constraints and submit files).
    public static func classAdString(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
