import ArgumentParser
import CalibCore
import CalibIO
import CalibRunner
import CalibWorkflow
import Foundation

/// `calibctl jobs create|submit|status|cancel|retry|log|list|results|delete`: job sets of any origin.
struct JobsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Create, submit, follow, cancel and retry job sets (shards run by local, Slurm or HTCondor).",
        discussion: reflow("""
        A job set fans out into shards (per run, per FED, per chunk); each shard has attempts. States: created,
        submitted, pending, running, succeeded, failed, held, cancelled, lost. Failure classes: user-error,
        out-of-memory, time-limit, node-failure, launch-failure, cancelled, lost, missing-output (docs/runner.md).
        `calibctl tick` follows them and retries automatically where the policy says so.

        Example:
          calibctl jobs create demo --shards 4 --shell 'echo shard {index} > {output:out}' --output out=out.txt
          calibctl jobs submit demo && calibctl tick && calibctl jobs status demo
        """),
        subcommands: [Create.self, Submit.self, Status.self, Cancel.self, Retry.self, Log.self, List.self, Results.self,
                      Delete.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a job set of `command` shards (one per --key, or --shards N).",
            discussion: reflow("""
            Placeholders in --shell / --argv: {key}, {index}, {attempt}, {dir} (the shard directory),
            {output:NAME} (the temporary path of output NAME, renamed when the command succeeds), {param:NAME}.

            Example: calibctl jobs create fit-5000 --key fed=1200 --key fed=1201 \\
                       --shell 'fit --fed {key} --out {output:gains}' --output gains=gains.h5 --time-limit 3h --submit
            """))

        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "Name of the new job set (letters, digits, . _ -).") var name: String
        @Option(help: "Scheduler: local (default), slurm or htcondor.") var scheduler = "local"
        @Option(help: "Number of shards (keys are index=I) when no --key is given.") var shards: Int?
        @Option(name: .customLong("key"), help: "A shard key, e.g. fed=1200 (repeatable; one shard each).")
        var keys: [String] = []
        @Option(help: "Shell command each shard runs (/bin/sh -c).") var shell: String?
        @Option(help: "Argv each shard runs, as a JSON array of strings.") var argv: String?
        @Option(name: .customLong("output"), help: "An output NAME=PATH (relative to the shard directory; repeatable).")
        var outputs: [String] = []
        @Option(name: .customLong("param"), help: "A parameter NAME=VALUE for {param:NAME} (repeatable).")
        var params: [String] = []
        @Option(help: "Memory per shard in MB.") var memory = 2000
        @Option(name: .customLong("time-limit"), help: "Time limit per shard: seconds, or 90s, 30m, 3h.")
        var timeLimit = "3h"
        @Option(help: "The campaign this job set belongs to.") var campaign: String?
        @Option(help: "The campaign step this job set belongs to.") var step: String?
        @Flag(help: "Submit right away.") var submit = false

        func run() throws {
            guard (shell == nil) != (argv == nil) else {
                throw UsageError("give exactly one of --shell and --argv", fix: "e.g. --shell 'echo {key}'")
            }
            let keyList: [String]
            if !keys.isEmpty { keyList = keys } else if let n = shards, n > 0 {
                keyList = (0..<n).map { "index=\($0)" }
            } else {
                throw UsageError("no shards: give --key (repeatable) or --shards N")
            }
            guard let seconds = Self.parseDuration(timeLimit) else {
                throw UsageError("--time-limit '\(timeLimit)' is not a duration", fix: "write e.g. 3600, 90s, 30m or 3h")
            }
            let outs = try Self.pairs(outputs, "--output"), ps = try Self.pairs(params, "--param")
            var parameters = ps
            if let shell { parameters["shell"] = shell }
            if let argv { parameters["argv"] = argv }
            // The job runs in the environment of whoever creates it, also when a cron tick (with `env -i`) retries it.
            let environment = CampaignSettings.capturedEnvironment()
            let defs = keyList.map { key -> ShardDefinition in
                var spec = JobSpec(kind: CommandJobKind.name, outputs: outs, parameters: parameters)
                spec.environment = environment
                return ShardDefinition(key: key, spec: spec)
            }
            let ctx = try JobsContext(ws.workspace)
            guard (campaign == nil) == (step == nil) else {
                throw UsageError("give --campaign and --step together", fix: "e.g. --campaign rgx-fall --step dc-alignment")
            }
            let workflow = try ctx.workflowEngine()
            if let campaign, let step {
                // Unknown names are refused (with "did you mean") before anything is written.
                let s = try workflow.campaigns.step(step, of: campaign)
                guard [.ready, .failed, .running].contains(s.state) else {
                    throw CampaignError.illegalTransition(campaign: campaign, step: step, state: s.state, command: .start,
                                                          allowed: [], unmet: s.unmetPrerequisites)
                }
            }
            try ctx.database.transaction {
                try ctx.engine.createJobSet(JobSetDefinition(name: name, scheduler: scheduler, campaign: campaign, step: step,
                                                             memoryMB: memory, timeLimitSeconds: seconds, shards: defs))
                // The job set becomes the step's current iteration: it starts the step, and when it is final the engine
                // records its metrics and effort and evaluates the gates, as for a step's own action.
                if let campaign, let step { try workflow.adopt(jobSet: name, campaign: campaign, step: step) }
            }
            print("created job set \(name): \(defs.count) shard(s) on \(scheduler)"
                  + (campaign.map { " for campaign \($0), step \(step!) (its metrics and effort are recorded when it finishes)" } ?? ""))
            if submit {
                let n = try ctx.engine.submit(jobSet: name)
                print("submitted \(n) shard(s)")
            }
        }

        static func parseDuration(_ s: String) -> Int? {
            let t = s.trimmingCharacters(in: .whitespaces).lowercased()
            let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
            if let u = t.last, let f = units[u], let v = Double(t.dropLast()), v > 0 { return Int((v * Double(f)).rounded(.up)) }
            if let v = Int(t), v > 0 { return v }
            return nil
        }

        static func pairs(_ items: [String], _ what: String) throws -> [String: String] {
            var out: [String: String] = [:]
            for i in items {
                guard let eq = i.firstIndex(of: "="), eq != i.startIndex else {
                    throw UsageError("\(what) '\(i)' has no NAME=", fix: "write it as NAME=VALUE")
                }
                out[String(i[..<eq])] = String(i[i.index(after: eq)...])
            }
            return out
        }
    }

    struct Submit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Submit every shard of a job set that has not been submitted (safe to repeat).",
            discussion: "Example: calibctl jobs submit gain-5000")
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let n = try ctx.engine.submit(jobSet: name)
            struct Submitted: Codable { var jobSet: String; var submitted: Int }
            if json { try printJSON(Submitted(jobSet: name, submitted: n)) } else { print("submitted \(n) shard(s) of \(name)") }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Counts per state and failure class, and the failed shards with the reason.",
            discussion: reflow("""
            Shows what the database knows; `calibctl tick` (or --update) brings it up to date with the schedulers.
            Exit status: 0, or 1 when a shard has failed (its latest attempt failed, was lost or cancelled).

            Example: calibctl jobs status gain-5000 --update --json
            """))
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Flag(help: "Poll the schedulers first (like a tick, without the lock or campaign work).") var update = false
        @Flag(help: "List only failed shards.") var failedOnly = false
        @Flag(help: "Include every attempt of each listed shard.") var history = false
        @Flag(help: "Print JSON (schema version 1).") var json = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            if update { try ctx.engine.update() }
            let s = try ctx.engine.status(jobSet: name, failedOnly: failedOnly || (!json && !history), history: history)
            if json { try printStatusJSON(s) } else {
                print(s.summaryLine)
                func describe(_ f: ShardStatus) -> String {
                    var line = "  shard \(f.index) [\(f.key)] \(f.state?.rawValue ?? "-")"
                    if let c = f.failureClass { line += " \(c.rawValue)" }
                    line += " (attempt \(f.attempts))"
                    if let r = f.reason { line += ": \(r)" }
                    if let n = f.nextAction, !n.isEmpty { line += " -> \(n)" }
                    return line
                }
                for f in s.failed { print(describe(f)) }
                for h in s.held {
                    print(describe(h) + " (counts as failed once held for \(Int(ctx.engine.heldLimitSeconds / 60)) min)")
                }
                if history {
                    // Every attempt of each listed shard (all shards unless --failed-only).
                    for shard in s.shards ?? s.failed {
                        guard let h = shard.history, !h.isEmpty else { continue }
                        print("  shard \(shard.index) [\(shard.key)]:")
                        for a in h {
                            var line = "    attempt \(a.number) \(a.state.rawValue)"
                            if let c = a.failureClass { line += " \(c.rawValue)" }
                            line += " [\(a.trigger)] \(a.memoryMB) MB \(a.timeLimitSeconds) s"
                            if let b = a.batchID { line += " id \(b)" }
                            if let t = a.submitted { line += " submitted \(Self.time(t))" }
                            if let t = a.ended { line += " ended \(Self.time(t))" }
                            if let p = a.peakMemoryMB { line += String(format: " peak %.0f MB", p) }
                            if let r = a.reason { line += ": \(r)" }
                            print(line)
                        }
                    }
                }
                for w in s.warnings { Diagnostics.warning(w) }
            }
            if !s.failed.isEmpty { throw ExitCode(ExitStatus.failuresFound.rawValue) }
        }

        static func time(_ d: Date) -> String { JobsCommand.isoFormatter.string(from: d) }
    }

    /// ISO 8601 with milliseconds (`2026-12-06T01:44:51.123Z`): the times of `jobs status --json` (schema 2).
    nonisolated(unsafe) static let isoFormatter: ISO8601DateFormatter = {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f
    }()

    /// `isoFormatter.string(from:)` (RFC 3339 UTC with milliseconds, rounded), ~20 times faster: a 100,000-shard
    /// status has 300,000 times.
    static func fastISOTime(_ d: Date) -> String {
        let ms = Int64((d.timeIntervalSince1970 * 1000).rounded())
        var secs = time_t(ms >= 0 ? ms / 1000 : (ms - 999) / 1000)
        let milli = Int(ms - Int64(secs) * 1000)
        var t = tm()
        guard gmtime_r(&secs, &t) != nil, t.tm_year + 1900 >= 0, t.tm_year + 1900 <= 9999 else { return isoFormatter.string(from: d) }
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let y = Int(t.tm_year) + 1900
        let year = y < 10 ? "000\(y)" : y < 100 ? "00\(y)" : y < 1000 ? "0\(y)" : "\(y)"
        let m = milli < 10 ? "00\(milli)" : milli < 100 ? "0\(milli)" : "\(milli)"
        return "\(year)-\(two(t.tm_mon + 1))-\(two(t.tm_mday))T\(two(t.tm_hour)):\(two(t.tm_min)):\(two(t.tm_sec)).\(m)Z"
    }

    /// `jobs status --json`: pretty, sorted keys, times with fractional seconds (docs/jobs-status-json.md).
    static func printStatusJSON(_ value: JobSetStatus) throws {
        FileHandle.standardOutput.write(try StatusJSONWriter.encode(value, time: fastISOTime))
        FileHandle.standardOutput.write(Data("\n".utf8))
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete a finished job set's records so its name can be used again (files are kept).",
            discussion: reflow("""
            Removes the job set, its shards and attempts from the database. Refused (exit 65) while a shard is live
            and for a job set of a campaign step. Nothing is deleted from disk: the job set's directory (specs, logs,
            result records and outputs) is moved to HOME/jobs/.deleted/NAME-<unix time>; remove it by hand when it is
            no longer needed.

            Example: calibctl jobs delete test-5000 && calibctl jobs create test-5000 --shards 4 --shell '...'
            """))
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let r = try ctx.engine.delete(jobSet: name)
            if json { try printJSON(r); return }
            print("deleted job set \(name): \(r.shards) shard(s), \(r.attempts) attempt(s)"
                  + (r.movedTo.map { "; its files (outputs included) were moved to \($0)" } ?? ""))
        }
    }

    struct Cancel: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Cancel the running and queued shards of a job set (all, or --shard I ...).",
            discussion: "Example: calibctl jobs cancel gain-5000 --shard 3")
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Option(name: .customLong("shard"), help: "A shard index (repeatable).") var shards: [Int] = []

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let n = try ctx.engine.cancel(jobSet: name, shards: shards.isEmpty ? nil : shards)
            print("cancelled \(n) shard(s) of \(name)")
        }
    }

    struct Retry: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Retry failed, lost or cancelled shards now (including user errors), up to the attempt cap; --force re-runs succeeded ones and passes the cap.",
            discussion: "Example: calibctl jobs retry gain-5000 --shard 3 --shard 7")
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Option(name: .customLong("shard"), help: "A shard index (repeatable); default every failed shard.")
        var shards: [Int] = []
        @Flag(help: "Also run succeeded shards again, and shards that reached the attempt cap (maxAttempts).") var force = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let r = try ctx.engine.retry(jobSet: name, shards: shards.isEmpty ? nil : shards, force: force)
            if json { try printJSON(r); return }
            print("retried \(r.retried.count) shard(s) of \(name)"
                  + (r.retried.isEmpty ? "" : ": " + r.retried.map(String.init).joined(separator: ", ")))
            for (k, v) in r.skipped.sorted(by: { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }) {
                Diagnostics.note("shard \(k) skipped: \(v)")
            }
        }
    }

    struct Log: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a shard's stdout (or --stderr, --result) of its latest or a given attempt.",
            discussion: "Example: calibctl jobs log gain-5000 3 --stderr --attempt 1")
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Argument(help: "The shard index.") var shard: Int
        @Option(help: "Attempt number (default the latest).") var attempt: Int?
        @Flag(help: "Print stderr instead of stdout.") var stderr = false
        @Flag(help: "Print the result record instead of stdout.") var result = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let f = try ctx.engine.logFiles(jobSet: name, shard: shard, attempt: attempt)
            let path = result ? f.result : (stderr ? f.stderr : f.stdout)
            guard let data = FileManager.default.contents(atPath: path) else {
                // An attempt that ended leaves no empty logs: nothing to print.
                if !result, FileManager.default.fileExists(atPath: f.result) { return }
                throw UsageError("shard \(shard) attempt \(f.attempt) of \(name) has no \(path) (yet)",
                                 fix: "the job may not have started; see `calibctl jobs status \(name)`")
            }
            FileHandle.standardOutput.write(data)
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List job sets with their shard counts.",
                                                        discussion: "Example: calibctl jobs list --json")
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Option(help: "Only job sets of this campaign.") var campaign: String?
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let sets = try ctx.engine.listJobSets(campaign: campaign)
            if json { try printJSON(sets); return }
            for s in sets {
                let c = s.counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                print("\(s.name)\t\(s.scheduler)\t\(s.shards) shard(s)\t\(c)")
            }
        }
    }

    struct Results: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Metrics and outputs (size, SHA-256) of the succeeded shards.",
            discussion: "Example: calibctl jobs results gain-5000 --json")
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "The job set.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let ctx = try JobsContext(ws.workspace)
            let rs = try ctx.engine.results(jobSet: name)
            if json { try printJSON(rs); return }
            for r in rs {
                let m = r.metrics.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                print("shard \(r.index) [\(r.key)] attempt \(r.attempt): \(m)")
                for o in r.outputs { print("  \(o.name) \(o.path) \(o.size) bytes sha256 \(o.sha256)") }
            }
        }
    }
}
