import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The `command` job kind: runs an argv (parameter `argv`, a JSON array of strings) or a shell command (parameter
/// `shell`, run with `/bin/sh -c`) after expanding placeholders (`{key}`, `{index}`, `{attempt}`, `{dir}`,
/// `{input:NAME}`, `{output:NAME}` = the output's temporary path, `{param:NAME}`). Captures the exit status; a child
/// killed by a signal is reported with that signal. Metrics: the child may write `name=value` lines to the file named
/// by `$CALIBCTL_METRICS_FILE`; `wall_seconds` is always recorded.
public struct CommandJobKind: JobKind {
    public static let name = "command"
    public init() {}

    /// What a `command` shard runs: argv (expanded), environment, working directory and its metrics file.
    public struct Plan: Sendable {
        public var argv: [String]
        public var environment: [String: String]
        public var directory: String
        public var metricsFile: String
    }

    /// Expands the spec into the command to run (shared with the local executor, which runs `command` shards itself).
    /// `tag` makes the metrics file name unique among concurrent runs in the same directory.
    public static func plan(spec: JobSpec, context: JobContext, tag: String = String(getpid())) throws -> Plan {
        var s = spec
        // `{output:NAME}` in a command means the temporary path; the runner renames after success.
        for name in spec.outputs.keys {
            if let tmp = context.temporaryOutputPath(name, in: spec) { s.outputs[name] = tmp }
        }
        let argv: [String]
        if let shell = spec.parameters["shell"] {
            argv = ["/bin/sh", "-c", s.expand(shell, attempt: context.attempt, directory: context.directory)]
        } else if let json = spec.parameters["argv"] {
            guard let list = try? JSONDecoder().decode([String].self, from: Data(json.utf8)), !list.isEmpty else {
                throw JobError.badSpec(path: context.specName, detail: "parameter argv is not a JSON array of strings")
            }
            argv = list.map { s.expand($0, attempt: context.attempt, directory: context.directory) }
        } else {
            throw JobError.badSpec(path: context.specName, detail: "kind command needs parameter 'argv' or 'shell'")
        }
        let metricsFile = (context.directory as NSString)
            .appendingPathComponent(".metrics-\(context.attempt)-\(tag)")
        var env = spec.environment ?? ProcessInfo.processInfo.environment
        env["CALIBCTL_METRICS_FILE"] = metricsFile
        env["CALIBCTL_ATTEMPT"] = String(context.attempt)
        env["CALIBCTL_SHARD_KEY"] = spec.key
        let exe = argv[0].hasPrefix("/") ? argv[0] : (Self.which(argv[0], path: env["PATH"]) ?? argv[0])
        return Plan(argv: [exe] + argv.dropFirst(), environment: env, directory: spec.workDirectory ?? context.directory,
                    metricsFile: metricsFile)
    }

    /// The outcome of a planned command that ended with wait status `status` after `wallSeconds`; removes its
    /// metrics file.
    public static func outcome(_ plan: Plan, waitStatus status: Int32, wallSeconds: Double) -> JobOutcome {
        var metrics = Self.readMetrics(plan.metricsFile)
        unlink(plan.metricsFile)
        metrics["wall_seconds"] = wallSeconds
        let (code, sig) = Spawn.decode(waitStatus: status)
        if let sig {
            return JobOutcome(exitCode: 128 + sig, signal: sig, message: "command killed by signal \(sig)",
                              metrics: metrics)
        }
        let c = code ?? 70
        return JobOutcome(exitCode: c, message: c == 0 ? nil : "command exited with status \(c)", metrics: metrics)
    }

    public func run(spec: JobSpec, context: JobContext) throws -> JobOutcome {
        let plan = try Self.plan(spec: spec, context: context)
        unlink(plan.metricsFile)
        defer { unlink(plan.metricsFile) }
        // The command stays in this process's group (unlike Foundation's Process, which makes it a session leader),
        // so a scheduler that signals the job's process group or cgroup reaches it; signals sent only to this
        // process are forwarded.
        var o = Spawn.Options()
        o.directory = plan.directory
        o.inheritOutput = true
        o.environment = plan.environment
        let t0 = Date()
        let pid: pid_t
        do { pid = try Spawn.spawn(plan.argv, o) } catch {
            return JobOutcome(exitCode: 127, message: "cannot start \(plan.argv[0]): \(error)")
        }
        let forwarding = Self.forwardSignals(to: pid)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        for s in forwarding { s.cancel() }
        return Self.outcome(plan, waitStatus: status, wallSeconds: Date().timeIntervalSince(t0))
    }

    /// Forwards SIGTERM, SIGINT, SIGHUP, SIGUSR1 and SIGUSR2 received by this process to the command: to the
    /// whole process group when this process leads it (as under the local executor and batch steps), so the
    /// command's own children get it too; else to the command.
    static func forwardSignals(to pid: pid_t) -> [DispatchSourceSignal] {
        let leader = getpgrp() == getpid()
        return [SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2].map { sig in
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { kill(leader ? 0 : pid, sig) }
            src.resume()
            return src
        }
    }

    static func readMetrics(_ path: String) -> [String: Double] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [:] }
        var out: [String: Double] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2, let v = Double(parts[1].trimmingCharacters(in: .whitespaces)) {
                out[parts[0].trimmingCharacters(in: .whitespaces)] = v
            }
        }
        return out
    }

    static func which(_ name: String, path: String? = nil) -> String? {
        for dir in (path ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        return nil
    }
}
