import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where a batch system's command-line tools live and how to run them: the configuration every scheduler adapter takes.
///
/// calibctl never relies on the caller's shell: tools are found in `binDirectory` (or on `PATH` when it is nil), run
/// through Foundation `Process` without a shell, with stdin closed, in an environment that is the caller's minus
/// variables that change the tools' output formats (`SQUEUE_FORMAT`, `SLURM_TIME_FORMAT`, ...) plus `environment`
/// (e.g. `SLURM_CONF`). Every call is bounded by `timeoutSeconds`: a scheduler that hangs is killed and reported as a
/// `SchedulerError`, so it cannot hang calibctl.
public struct SchedulerTools: Sendable, Equatable {
    /// Directory holding the tools (`sbatch`, `condor_submit`, ...); nil searches `PATH`.
    public var binDirectory: String?
    /// Variables set in the tools' environment (override the caller's).
    public var environment: [String: String]
    /// Variables removed from the tools' environment.
    public var removedVariables: [String]
    /// Seconds one tool invocation may take before it is killed.
    public var timeoutSeconds: Double

    /// Output-format variables of Slurm and HTCondor clients that would change what the parsers read.
    public static let formatVariables = [
        "SQUEUE_FORMAT", "SQUEUE_FORMAT2", "SQUEUE_SORT", "SLURM_TIME_FORMAT", "SACCT_FORMAT", "SINFO_FORMAT",
        "SQUEUE_ARRAY", "SQUEUE_STATES", "SQUEUE_USERS", "SQUEUE_ACCOUNT", "SQUEUE_PARTITION", "SLURM_CLUSTERS",
    ]

    public init(binDirectory: String? = nil, environment: [String: String] = [:],
                removedVariables: [String] = SchedulerTools.formatVariables, timeoutSeconds: Double = 60) {
        self.binDirectory = binDirectory
        self.environment = environment
        self.removedVariables = removedVariables
        self.timeoutSeconds = timeoutSeconds
    }

    /// The absolute path of `tool`, or a `SchedulerError` naming where it was looked for.
    public func path(of tool: String, scheduler: String) throws -> String {
        let fm = FileManager.default
        if let binDirectory {
            let p = (binDirectory as NSString).appendingPathComponent(tool)
            if fm.isExecutableFile(atPath: p) { return p }
            throw SchedulerError(scheduler: scheduler, operation: "find \(tool)",
                                 detail: "\(p) is missing or not executable; check the scheduler's bin directory setting")
        }
        let path = childEnvironment()["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let p = "\(dir)/\(tool)"
            if fm.isExecutableFile(atPath: p) { return p }
        }
        throw SchedulerError(scheduler: scheduler, operation: "find \(tool)",
                             detail: "\(tool) is not on PATH (\(path)); install the \(scheduler) client tools or set the scheduler's bin directory")
    }

    /// The environment the tools run in.
    public func childEnvironment() -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        for name in removedVariables { env.removeValue(forKey: name) }
        for (k, v) in environment { env[k] = v }
        if let binDirectory {
            env["PATH"] = binDirectory + ":" + (env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")
        }
        return env
    }

    /// Runs `tool` with `arguments` (no shell) and returns what it printed; throws only when it cannot be started or
    /// does not finish within `timeoutSeconds` (then it is killed). A non-zero exit is returned, not thrown.
    public func run(_ tool: String, _ arguments: [String], scheduler: String, operation: String,
                    currentDirectory: String? = nil, inFlightMarker: String? = nil) throws -> ToolOutput {
        let executable = try path(of: tool, scheduler: scheduler)
        // The marker names the running tool (`PID START-TIME`) while it runs, so a calibctl started meanwhile (after
        // this one was killed) knows a submission is in flight instead of submitting it again (InFlight).
        defer { if let inFlightMarker { unlink(inFlightMarker) } }
        return try BoundedProcess.run(executable: executable, arguments: arguments, environment: childEnvironment(),
                                      currentDirectory: currentDirectory, timeoutSeconds: timeoutSeconds,
                                      scheduler: scheduler, operation: operation, onStart: { pid in
            guard let inFlightMarker else { return }
            let text = "\(pid) \(Spawn.processStart(pid)?.start ?? 0)\n"
            try? JobFiles.writeReplacing(Data(text.utf8), to: inFlightMarker)
        })
    }
}

/// In-flight markers of submit tools (`NAME.inflight` beside the submission's files).
public enum InFlight {
    /// The pid of the live tool a marker names, nil when there is no marker or its process is gone.
    public static func livePID(_ marker: String) -> pid_t? {
        guard let text = try? String(contentsOfFile: marker, encoding: .utf8) else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count >= 2, let pid = Int32(f[0]), let start = UInt64(f[1]) else { return nil }
        return Spawn.isAlive(pid, start: start) ? pid : nil
    }
}

extension SchedulerTools {
    /// Runs `tool` on `ids` in chunks of `chunk` (command-line length), throwing on a failed chunk unless
    /// `tolerated` accepts its output (e.g. "job not found" when cancelling jobs that already left).
    func runChunked(_ tool: String, _ ids: [String], chunk: Int = 500, scheduler: String, operation: String,
                    tolerated: (ToolOutput) -> Bool) throws {
        var start = 0
        while start < ids.count {
            let part = Array(ids[start..<min(start + chunk, ids.count)])
            start += part.count
            let out = try run(tool, part, scheduler: scheduler, operation: operation)
            if out.status != 0 && !tolerated(out) {
                throw SchedulerError(scheduler: scheduler, operation: operation, detail: out.describe(tool, part))
            }
        }
    }
}

/// What one scheduler tool printed.
public struct ToolOutput: Sendable, Equatable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    /// The command line and its stderr, for error messages.
    func describe(_ tool: String, _ arguments: [String]) -> String {
        let shown = ([tool] + arguments.prefix(8)).joined(separator: " ") + (arguments.count > 8 ? " ..." : "")
        let err = stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        return "`\(shown)` exited \(status)" + (err.isEmpty ? "" : ": \(err.prefix(600))")
    }
}
