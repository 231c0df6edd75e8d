import Foundation

/// Slurm adapter: one job array per submission, state from `squeue` with `scontrol` and the jobcomp file as fallbacks.
///
/// Batch ids are `ARRAYJOB_TASK` (e.g. `5_3`), the task id being the shard index. Works without slurmdbd (as many
/// small sites run): finished jobs stay in squeue for MinJobAge; after that `scontrol show job`, then the jobcomp file
/// (`JobCompType=jobcomp/filetxt`), are asked; a job none of them knows is `.lost`.
public struct SlurmScheduler: BatchScheduler {
    public let name = "slurm"
    public let minimumPollInterval: TimeInterval
    /// How to run sbatch/squeue/scontrol/scancel (bin directory, SLURM_CONF, timeout).
    public let tools: SchedulerTools
    /// The jobcomp/filetxt file; nil asks `scontrol show config` for JobCompLoc when it is needed.
    public let jobCompletionLog: String?
    /// Extra sbatch arguments (e.g. `--partition=debug`, `--account=cms`).
    public let extraSubmitArguments: [String]
    /// Time zone Slurm prints times in (the machine's).
    public let timeZone: TimeZone

    /// - Parameters:
    ///   - tools: where the Slurm client tools are and their environment, e.g.
    ///     `SchedulerTools(environment: ["SLURM_CONF": "/tmp/slurm/etc/slurm.conf"])`.
    ///   - jobCompletionLog: the jobcomp file, or nil to learn it from `scontrol show config`.
    public init(tools: SchedulerTools = SchedulerTools(), jobCompletionLog: String? = nil,
                extraSubmitArguments: [String] = [], minimumPollInterval: TimeInterval = 10,
                timeZone: TimeZone = .current) {
        self.tools = tools
        self.jobCompletionLog = jobCompletionLog
        self.extraSubmitArguments = extraSubmitArguments
        self.minimumPollInterval = minimumPollInterval
        self.timeZone = timeZone
    }

    /// The batch script of a submission (`SLURM_ARRAY_TASK_ID` selects the shard).
    public func batchScript(_ submission: Submission) -> String {
        ShardScript.render(submission, indexExpression: "$SLURM_ARRAY_TASK_ID")
    }

    /// The sbatch arguments for `submission` whose script is at `scriptPath`. One array carries one resource
    /// request, so it asks for the largest memory and time of its shards.
    public func submitArguments(_ submission: Submission, scriptPath: String) -> [String] {
        let memory = submission.shards.map(\.memoryMB).max() ?? 0
        let seconds = submission.shards.map(\.timeLimitSeconds).max() ?? 0
        var args = ["--parsable", "--array=\(SlurmOutputParser.arraySpec(submission.shards.map(\.index)))",
                    "--job-name=\(submission.name)", "--comment=\(submission.jobSetID)", "--no-requeue",
                    "--chdir=\(submission.directory)",
                    "--output=\(submission.directory)/slurm-%A_%a.out", "--error=\(submission.directory)/slurm-%A_%a.out"]
        if memory > 0 { args.append("--mem=\(memory)M") }
        if seconds > 0 { args.append("--time=\((seconds + 59) / 60)") }
        return args + extraSubmitArguments + [scriptPath]
    }

    public func submit(_ submission: Submission) throws -> [Int: String] {
        try ShardScript.checkName(submission.name, what: "submission name", scheduler: name)
        try ShardScript.checkName(submission.jobSetID, what: "job set id", scheduler: name)
        guard !submission.shards.isEmpty else { return [:] }
        let script = (submission.directory as NSString).appendingPathComponent("\(submission.name).sbatch")
        try ShardScript.write(batchScript(submission), to: script, mode: 0o755, scheduler: name)
        let args = submitArguments(submission, scriptPath: script)
        let out = try tools.run("sbatch", args, scheduler: name, operation: "submit \(submission.name)",
                                currentDirectory: submission.directory)
        guard out.status == 0, let jobID = SlurmOutputParser.parseSubmitted(out.stdout) else {
            throw SchedulerError(scheduler: name, operation: "submit \(submission.name)",
                                 detail: out.describe("sbatch", args) + (out.status == 0 ? " (no job id in its output: \(out.stdout.prefix(200)))" : ""))
        }
        var ids: [Int: String] = [:]
        for shard in submission.shards { ids[shard.index] = "\(jobID)_\(shard.index)" }
        return ids
    }

    public func findSubmitted(_ submission: Submission) throws -> [Int: String] {
        let args = ["-h", "-t", "all", "-r", "-O", SlurmOutputParser.squeueFormat, "-n", submission.name]
        let out = try tools.run("squeue", args, scheduler: name, operation: "find \(submission.name)")
        guard out.status == 0 else {
            throw SchedulerError(scheduler: name, operation: "find \(submission.name)", detail: out.describe("squeue", args))
        }
        var found: [Int: String] = [:]
        var arrayOf: [Int: Int] = [:]  // shard -> array job id (the newest array wins)
        for row in SlurmOutputParser.parseQueue(out.stdout, timeZone: timeZone)
        where row.name == submission.name {
            guard let task = row.arrayTaskID, let array = Int(row.arrayJobID) else { continue }
            if array >= arrayOf[task] ?? -1 { arrayOf[task] = array; found[task] = row.batchID }
        }
        if found.isEmpty, let records = try readJobComp() {
            for (id, record) in records where record.name == submission.name {
                guard let task = record.arrayTaskID, let array = Int(id.split(separator: "_")[0]) else { continue }
                if array >= arrayOf[task] ?? -1 { arrayOf[task] = array; found[task] = id }
            }
        }
        let wanted = Set(submission.shards.map(\.index))
        return found.filter { wanted.contains($0.key) }
    }

    public func poll(_ batchIDs: [String]) throws -> [String: ObservedJob] {
        guard !batchIDs.isEmpty else { return [:] }
        let wanted = Set(batchIDs)
        var result: [String: ObservedJob] = [:]
        // 1. One squeue call for all of them, by array job id (-r lists every task).
        let arrays = Set(wanted.map { String($0.split(separator: "_", maxSplits: 1)[0]) }).sorted()
        let args = ["-h", "-t", "all", "-r", "-O", SlurmOutputParser.squeueFormat, "-j", arrays.joined(separator: ",")]
        let out = try tools.run("squeue", args, scheduler: name, operation: "poll")
        if out.status != 0 && !SlurmOutputParser.isInvalidJobID(out.stderr) {
            throw SchedulerError(scheduler: name, operation: "poll", detail: out.describe("squeue", args))
        }
        for row in SlurmOutputParser.parseQueue(out.stdout, timeZone: timeZone) where wanted.contains(row.batchID) {
            result[row.batchID] = SlurmOutputParser.observe(row)
        }
        // 2. scontrol for the ones squeue no longer shows: one call per array (it prints every task it still knows).
        var missing = wanted.subtracting(result.keys).sorted()
        let missingArrays = Set(missing.map { String($0.split(separator: "_", maxSplits: 1)[0]) }).sorted()
        for array in missingArrays {
            let args = ["show", "job", "-o", array]
            let out = try tools.run("scontrol", args, scheduler: name, operation: "poll \(array)")
            if out.status != 0 {
                if SlurmOutputParser.isInvalidJobID(out.stderr) { continue }
                throw SchedulerError(scheduler: name, operation: "poll \(array)", detail: out.describe("scontrol", args))
            }
            for job in SlurmOutputParser.parseShowJob(out.stdout, timeZone: timeZone)
            where wanted.contains(job.batchID) && result[job.batchID] == nil {
                result[job.batchID] = job
            }
        }
        // 3. The jobcomp file, then lost.
        missing = wanted.subtracting(result.keys).sorted()
        if !missing.isEmpty {
            let records = try readJobComp() ?? [:]
            for id in missing {
                if let record = records[id] {
                    result[id] = record.observed
                } else {
                    result[id] = ObservedJob(batchID: id, state: .lost, failureClass: .lost,
                                             reason: "Slurm no longer knows this job (not in squeue, scontrol or the jobcomp file)")
                }
            }
        }
        return result
    }

    public func cancel(_ batchIDs: [String]) throws {
        try tools.runChunked("scancel", batchIDs, scheduler: name, operation: "cancel") {
            SlurmOutputParser.isInvalidJobID($0.stderr)
        }
    }

    /// The jobcomp file's records, or nil when the cluster has no jobcomp/filetxt file.
    func readJobComp() throws -> [String: SlurmOutputParser.CompletionRecord]? {
        var path = jobCompletionLog
        if path == nil {
            let out = try tools.run("scontrol", ["show", "config"], scheduler: name, operation: "read configuration")
            guard out.status == 0 else { return nil }
            let kv = Dictionary(out.stdout.split(whereSeparator: \.isNewline).compactMap { line -> (String, String)? in
                let parts = line.split(separator: "=", maxSplits: 1)
                guard parts.count == 2 else { return nil }
                return (parts[0].trimmingCharacters(in: .whitespaces), parts[1].trimmingCharacters(in: .whitespaces))
            }, uniquingKeysWith: { a, _ in a })
            guard kv["JobCompType"] == "jobcomp/filetxt", let loc = kv["JobCompLoc"] else { return nil }
            path = loc
        }
        guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
        return SlurmOutputParser.parseJobComp(String(decoding: data, as: UTF8.self), timeZone: timeZone)
    }
}
