import Foundation

/// Pure functions that read Slurm's command output (22.05 and later) into `ObservedJob`s. Tested on real captured
/// output in Fixtures/scheduler/slurm; the mapping tables are in docs/schedulers.md.
public enum SlurmOutputParser {
    /// The `squeue -O` format the adapter asks for: `|`-terminated fields, free text (the reason) last.
    public static let squeueFormat =
        "JobArrayID:|,JobID:|,ArrayJobID:|,ArrayTaskID:|,State:|,exit_code:|,StartTime:|,EndTime:|,Name:|,Comment:|,Reason:|"

    /// One row of `squeue -h -t all [-r] -O squeueFormat`.
    public struct QueueRow: Sendable, Equatable {
        /// `ARRAY_TASK` for array tasks (`5_3`), the job id otherwise: the adapter's batch id.
        public var batchID: String
        public var jobID: String
        public var arrayJobID: String
        public var arrayTaskID: Int?
        public var state: String
        /// A wait status (768 = exit 3, 9 = SIGKILL).
        public var waitStatus: Int32?
        public var start: Date?
        public var end: Date?
        public var name: String
        public var comment: String?
        public var reason: String?
    }

    // MARK: squeue

    /// Parses `squeue -h -t all -r -O squeueFormat` output; lines that do not have the expected fields are skipped.
    public static func parseQueue(_ text: String, timeZone: TimeZone = .current) -> [QueueRow] {
        var rows: [QueueRow] = []
        for line in text.split(whereSeparator: \.isNewline) {
            var fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 11 else { continue }
            if fields.count > 11 {  // the reason may itself contain '|': it is the last field
                let reason = fields[10...].joined(separator: "|")
                fields = Array(fields[..<10]) + [reason.hasSuffix("|") ? String(reason.dropLast()) : reason]
            }
            let f = fields.map { $0.trimmingCharacters(in: .whitespaces) }
            guard !f[0].isEmpty, !f[4].isEmpty else { continue }
            rows.append(QueueRow(
                batchID: f[0], jobID: f[1], arrayJobID: f[2], arrayTaskID: Int(f[3]), state: f[4],
                waitStatus: Int32(f[5]), start: parseTime(f[6], timeZone: timeZone),
                end: parseTime(f[7], timeZone: timeZone), name: f[8], comment: nullable(f[9]),
                reason: nullable(f[10])))
        }
        return rows
    }

    /// The pending tasks a row of `squeue` WITHOUT `-r` stands for: Slurm prints the tasks of an array that have not
    /// been split off as one line, `A_[0-1000]`, `A_[0-9%2]` (a throttle), `A_[3,5-9,12]`. Returns the array job id and
    /// the task ids, or nil for a row of one job or task (`A_7`, `12`). `truncated` rows (`A_[0,2,4...`: the list was
    /// longer than SLURM_BITSTR_LEN) return an empty task list: the caller asks scontrol instead.
    public static func pendingArrayTasks(_ batchID: String) -> (arrayJobID: String, tasks: [Int])? {
        guard let open = batchID.firstIndex(of: "["), batchID[..<open].hasSuffix("_") else { return nil }
        let array = String(batchID[..<batchID.index(before: open)])
        guard !array.isEmpty, array.allSatisfy(\.isNumber) else { return nil }
        guard batchID.hasSuffix("]") else { return (array, []) }
        let spec = String(batchID[batchID.index(after: open)..<batchID.index(before: batchID.endIndex)])
        return (array, expandTaskSpec(spec) ?? [])
    }

    /// True when a combined pending row mixes held and not-held tasks: squeue joins the reasons of the records it
    /// combines (`JobHeldUser,BeginTime` when one task of a held array was released), so the row cannot say which
    /// task is held. The caller asks scontrol for that array instead.
    public static func hasMixedHoldReasons(_ reason: String?) -> Bool {
        guard let reason, reason.contains(",") else { return false }
        let held: Set<String> = ["JobHeldUser", "JobHeldAdmin"]
        let parts = reason.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let h = parts.filter { held.contains($0) }.count
        return h > 0 && h < parts.count
    }

    /// What one squeue row says about its job.
    public static func observe(_ row: QueueRow) -> ObservedJob {
        let (exit, signal) = row.waitStatus.map(decodeWaitStatus) ?? (nil, nil)
        return classify(batchID: row.batchID, state: row.state, reason: row.reason, exitCode: exit, signal: signal,
                        start: row.start, end: row.end)
    }

    // MARK: scontrol show job -o / jobcomp file

    /// Splits one `Key=Value Key=Value` line (scontrol -o, jobcomp/filetxt); a value with spaces continues until the
    /// next ` Key=`.
    public static func keyValues(_ line: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var lastKey: String?
        for word in line.split(separator: " ", omittingEmptySubsequences: true) {
            if let eq = word.firstIndex(of: "="), eq != word.startIndex,
               word[..<eq].allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "/" || $0 == ":" }) {
                let key = String(word[..<eq])
                result[key] = String(word[word.index(after: eq)...])
                lastKey = key
            } else if let k = lastKey {
                result[k, default: ""] += " " + word
            }
        }
        return result
    }

    /// Parses `scontrol show job -o ID` output (one line per job or array task). nil when it has no job record
    /// (e.g. "slurm_load_jobs error: Invalid job id specified").
    /// A record of tasks not yet split off (pending, `ArrayTaskId=0-2` or `0,2`) gives one job per task.
    public static func parseShowJob(_ text: String, timeZone: TimeZone = .current) -> [ObservedJob] {
        text.split(whereSeparator: \.isNewline).flatMap { line -> [ObservedJob] in
            let kv = keyValues(line)
            guard let id = kv["JobId"], let state = kv["JobState"] else { return [] }
            let (exit, signal) = parseExitPair(kv["ExitCode"])
            let ids: [String]
            if let array = kv["ArrayJobId"], let spec = kv["ArrayTaskId"], Int(spec) == nil,
               let tasks = expandTaskSpec(spec) {
                ids = tasks.map { "\(array)_\($0)" }
            } else {
                ids = [batchIdentifier(jobID: id, arrayJobID: kv["ArrayJobId"], arrayTaskID: kv["ArrayTaskId"])]
            }
            return ids.map {
                classify(batchID: $0, state: state, reason: nullable(kv["Reason"] ?? ""), exitCode: exit,
                         signal: signal, start: parseTime(kv["StartTime"] ?? "", timeZone: timeZone),
                         end: parseTime(kv["EndTime"] ?? "", timeZone: timeZone))
            }
        }
    }

    /// Expands an array task spec (`0-2`, `0,2,5-9:2`, `0-99%4`); nil when it is not one or names over a million tasks.
    public static func expandTaskSpec(_ spec: String) -> [Int]? {
        let body = spec.split(separator: "%").first.map(String.init) ?? spec
        var tasks: [Int] = []
        for part in body.split(separator: ",") {
            let stepParts = part.split(separator: ":")
            let step = stepParts.count == 2 ? Int(stepParts[1]) : 1
            let bounds = stepParts[0].split(separator: "-")
            guard let step, step > 0, let lo = bounds.first.flatMap({ Int($0) }) else { return nil }
            let hi = bounds.count == 2 ? Int(bounds[1]) : lo
            guard let hi, hi >= lo, bounds.count <= 2, tasks.count + (hi - lo) / step < 1_000_000 else { return nil }
            tasks += Array(stride(from: lo, through: hi, by: step))
        }
        return tasks.isEmpty ? nil : tasks
    }

    /// Batch ids as `scancel` arguments: the tasks of one array (`A_T`) as task-list expressions `A_[0-999,1004]`
    /// (scancel takes them as it takes `A_T`), each at most `maxLength` characters; other ids unchanged. Cancelling
    /// 100,000 tasks one id at a time took 200 scancel calls and ~40 s.
    public static func cancelArguments(_ ids: [String], maxLength: Int = 4000) -> [String] {
        var tasks: [String: [Int]] = [:], order: [String] = [], other: [String] = []
        for id in ids {
            let parts = id.split(separator: "_", omittingEmptySubsequences: false)
            func digits(_ x: Substring) -> Bool { !x.isEmpty && x.utf8.allSatisfy { $0 >= 48 && $0 <= 57 } }
            if parts.count == 2, digits(parts[0]), digits(parts[1]), let t = Int(parts[1]) {
                let a = String(parts[0])
                if tasks[a] == nil { order.append(a) }
                tasks[a, default: []].append(t)
            } else if !other.contains(id) {
                other.append(id)
            }
        }
        var out = other
        for a in order {
            let sorted = Array(Set(tasks[a]!)).sorted()
            var ranges: [String] = []
            var k = 0
            while k < sorted.count {
                var e = k
                while e + 1 < sorted.count && sorted[e + 1] == sorted[e] + 1 { e += 1 }
                ranges.append(e == k ? String(sorted[k]) : "\(sorted[k])-\(sorted[e])")
                k = e + 1
            }
            // One id per expression keeps its plain form (`A_T`); longer lists are split to stay under maxLength.
            var current: [String] = []
            var length = 0
            func flush() {
                guard !current.isEmpty else { return }
                out.append(current.count == 1 && !current[0].contains("-") ? "\(a)_\(current[0])" : "\(a)_[\(current.joined(separator: ","))]")
                current = []; length = 0
            }
            for r in ranges {
                if length + r.count + 1 > maxLength - a.count - 3 { flush() }
                current.append(r); length += r.count + 1
            }
            flush()
        }
        return out
    }

    /// True when scontrol/squeue said the id is unknown to the controller.
    public static func isInvalidJobID(_ stderr: String) -> Bool {
        stderr.contains("Invalid job id specified")
    }

    /// One finished job in the jobcomp file.
    public struct CompletionRecord: Sendable, Equatable {
        public var observed: ObservedJob
        public var name: String
        public var arrayTaskID: Int?
    }

    /// Parses the jobcomp/filetxt file. Keyed by batch id; a later line for the same id replaces an earlier one.
    public static func parseJobComp(_ text: String, timeZone: TimeZone = .current) -> [String: CompletionRecord] {
        var result: [String: CompletionRecord] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let kv = keyValues(line)
            guard let id = kv["JobId"], let state = kv["JobState"] else { continue }
            let batchID = batchIdentifier(jobID: id, arrayJobID: kv["ArrayJobId"], arrayTaskID: kv["ArrayTaskId"])
            let (exit, signal) = parseExitPair(kv["ExitCode"])
            let observed = classify(batchID: batchID, state: state, reason: nil, exitCode: exit, signal: signal,
                                    start: parseTime(kv["StartTime"] ?? "", timeZone: timeZone),
                                    end: parseTime(kv["EndTime"] ?? "", timeZone: timeZone))
            result[batchID] = CompletionRecord(observed: observed, name: kv["Name"] ?? "",
                                               arrayTaskID: kv["ArrayTaskId"].flatMap { Int($0) })
        }
        return result
    }

    /// The `sacct -X -n -P -o` fields the adapter asks for (`|`-separated).
    public static let sacctFormat = "JobID,JobName,State,ExitCode,Start,End"

    /// `sacct -X -n -P -o sacctFormat` lines -> observed jobs by batch id (`ARRAY_TASK`); pending ranges
    /// (`5_[3-9]`) are skipped.
    public static func parseSacct(_ text: String, timeZone: TimeZone = .current) -> [String: ObservedJob] {
        var out: [String: ObservedJob] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= 6, !f[0].contains("["), !f[0].contains(".") else { continue }
            let (exit, signal) = parseExitPair(f[3])
            out[f[0]] = classify(batchID: f[0], state: f[2], reason: nil, exitCode: exit, signal: signal,
                                 start: parseTime(f[4], timeZone: timeZone), end: parseTime(f[5], timeZone: timeZone))
        }
        return out
    }

    // MARK: sbatch

    /// The job id from `sbatch --parsable` (`jobid` or `jobid;cluster`); nil when the output is not one.
    public static func parseSubmitted(_ text: String) -> String? {
        let first = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let id = first.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        return !id.isEmpty && id.allSatisfy(\.isNumber) ? id : nil
    }

    /// `0-3,7,9-10` for sbatch --array.
    public static func arraySpec(_ indices: [Int]) -> String {
        let sorted = Array(Set(indices)).sorted()
        var parts: [String] = []
        var i = 0
        while i < sorted.count {
            var j = i
            while j + 1 < sorted.count && sorted[j + 1] == sorted[j] + 1 { j += 1 }
            parts.append(i == j ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
            i = j + 1
        }
        return parts.joined(separator: ",")
    }

    // MARK: the taxonomy

    /// Maps a Slurm state (+ reason, exit code, signal) to a `JobState` and `FailureClass`.
    ///
    /// FAILED is split by what killed the job: a non-zero exit of the job's command is a user error; death by a real
    /// signal (1-31; Slurm reports these as Reason=JobLaunchFailure) counts as a node failure, because calibctl's
    /// workers never signal themselves; JobLaunchFailure without such a signal (e.g. ExitCode 0:53, an unopenable
    /// output file) is a launch failure.
    public static func classify(batchID: String, state rawState: String, reason: String?, exitCode: Int32?,
                                signal: Int32?, start: Date? = nil, end: Date? = nil) -> ObservedJob {
        // sacct prints "CANCELLED by 0"; the state is the first word.
        let state = rawState.split(separator: " ").first.map(String.init)?.uppercased() ?? ""
        let realSignal = signal.flatMap { (1...31).contains($0) ? $0 : nil }
        var job = ObservedJob(batchID: batchID, state: .running, exitCode: exitCode, signal: signal, reason: reason,
                              startTime: start, endTime: end)
        switch state {
        case "PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD":
            let heldReasons: Set<String> = ["JobHeldUser", "JobHeldAdmin"]
            job.state = (state == "REQUEUE_HOLD" || state == "RESV_DEL_HOLD" || heldReasons.contains(reason ?? ""))
                ? .held : .pending
            job.startTime = nil
            job.endTime = nil
            job.exitCode = nil
            job.signal = nil
        case "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING":
            job.state = .running
            job.endTime = nil
        case "COMPLETED":
            job.state = .succeeded
        case "FAILED", "SPECIAL_EXIT":
            job.state = .failed
            if let s = realSignal {
                job.failureClass = .nodeFailure
                job.signal = s
                job.exitCode = nil
            } else if reason == "JobLaunchFailure" || (exitCode ?? 0) == 0 {
                job.failureClass = .launchFailure
            } else {
                job.failureClass = .userError
            }
        case "TIMEOUT", "DEADLINE":
            job.state = .failed
            job.failureClass = .timeLimit
        case "OUT_OF_MEMORY":
            job.state = .failed
            job.failureClass = .outOfMemory
        case "NODE_FAIL", "BOOT_FAIL", "PREEMPTED":
            job.state = .failed
            job.failureClass = .nodeFailure
        case "CANCELLED", "REVOKED":
            job.state = .cancelled
            job.failureClass = .cancelled
        default:
            // An unknown state keeps the job live (it is polled again) and shows the state to the user.
            job.state = .running
            job.reason = "unrecognised Slurm state \(rawState)" + (reason.map { " (\($0))" } ?? "")
        }
        return job
    }

    /// Splits a wait status (squeue `exit_code`): `(exit code, nil)` for a normal exit, `(nil, signal)` for a kill.
    public static func decodeWaitStatus(_ status: Int32) -> (Int32?, Int32?) {
        let sig = status & 0x7f
        if sig == 0 { return ((status >> 8) & 0xff, nil) }
        return (nil, sig)
    }

    /// Parses scontrol/sacct/jobcomp `exit:signal` (`3:0`, `0:9`).
    public static func parseExitPair(_ text: String?) -> (Int32?, Int32?) {
        guard let text else { return (nil, nil) }
        let parts = text.split(separator: ":")
        guard parts.count == 2, let exit = Int32(parts[0]), let sig = Int32(parts[1]) else { return (nil, nil) }
        return sig != 0 ? (nil, sig) : (exit, nil)
    }

    /// Slurm's `YYYY-MM-DDTHH:MM:SS` in the client's time zone; nil for N/A, NONE, Unknown, None.
    public static func parseTime(_ text: String, timeZone: TimeZone = .current) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        guard t.count == 19 else { return nil }
        let chars = Array(t.utf8)
        guard chars[4] == UInt8(ascii: "-"), chars[10] == UInt8(ascii: "T") else { return nil }
        func num(_ a: Int, _ b: Int) -> Int? { Int(String(decoding: chars[a..<b], as: UTF8.self)) }
        guard let y = num(0, 4), let mo = num(5, 7), let d = num(8, 10), let h = num(11, 13), let mi = num(14, 16),
              let s = num(17, 19) else { return nil }
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (y, mo, d, h, mi, s)
        var cal = Calendar(identifier: .gregorian)
        cal.timeZone = timeZone
        return cal.date(from: c)
    }

    static func batchIdentifier(jobID: String, arrayJobID: String?, arrayTaskID: String?) -> String {
        if let a = arrayJobID, let t = arrayTaskID, !a.isEmpty, a != "0", Int(t) != nil { return "\(a)_\(t)" }
        return jobID
    }

    private static func nullable(_ s: String) -> String? {
        s.isEmpty || s == "(null)" || s == "None" || s == "N/A" ? nil : s
    }
}
