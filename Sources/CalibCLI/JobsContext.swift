import CalibCore
import CalibIO
import CalibRunner
import CalibWorkflow
import Foundation

/// Opens the workspace database and the configured schedulers for the job commands and `tick`.
///
/// Scheduler settings come from `HOME/schedulers.json` (optional; docs/runner.md), e.g.
/// `{"local": {"slots": 4, "minimumPollInterval": 0, "graceSeconds": 5, "runCommandsDirectly": true},
///   "workerCommand": ["/opt/calibctl", "job", "run"],
///   "slurm": {"environment": {"SLURM_CONF": "/etc/slurm/slurm.conf"}, "minimumPollInterval": 60,
///             "extraSubmitArguments": ["--partition=calib"]},
///   "htcondor": {"binDirectory": "/usr/bin", "minimumPollInterval": 60, "extraSubmitLines": ["accounting_group = cms"]}}`,
/// with environment overrides `CALIBCTL_LOCAL_SLOTS`, `CALIBCTL_LOCAL_GRACE`, `CALIBCTL_SLURM_BIN`,
/// `CALIBCTL_HTCONDOR_BIN`, `CALIBCTL_POLL_INTERVAL` (seconds, every batch scheduler) and `CALIBCTL_WORKER`
/// (the worker command, space-separated). Slurm's own `SLURM_CONF` is passed through from the environment.
struct JobsContext {
    let workspace: Workspace
    let database: SQLiteDatabase
    let engine: JobEngine

    struct LocalSettings: Codable {
        var slots: Int?
        var minimumPollInterval: Double?
        var graceSeconds: Double?
        var enforceMemory: Bool?
        /// false: every shard starts `calibctl job run` (default true: the executor runs `command` shards itself).
        var runCommandsDirectly: Bool?
    }

    /// Settings of a batch scheduler (Slurm or HTCondor).
    struct BatchSettings: Codable {
        var binDirectory: String?
        var environment: [String: String]?
        var minimumPollInterval: Double?
        var timeoutSeconds: Double?
        var extraSubmitArguments: [String]?
        var extraSubmitLines: [String]?
        var jobCompletionLog: String?
        /// Slurm: tasks per array; absent = the controller's MaxArraySize (asked once).
        var maxArraySize: Int?
        /// Slurm: sbatch calls of one submission (one per array) run at once; default 4.
        var submitConcurrency: Int?
    }

    struct Settings: Codable {
        var local: LocalSettings?
        var slurm: BatchSettings?
        var htcondor: BatchSettings?
        var workerCommand: [String]?
        /// Minutes a job may stay held before it counts as failed (default 60).
        var heldLimitMinutes: Double?
    }

    /// This executable's absolute path (`/proc/self/exe`), used to start executors and workers.
    static var selfPath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    }

    static func settings(_ ws: Workspace) throws -> Settings {
        let p = (ws.home as NSString).appendingPathComponent("schedulers.json")
        guard let data = FileManager.default.contents(atPath: p) else { return Settings() }
        do { return try JSONDecoder().decode(Settings.self, from: data) } catch {
            throw ConfigError(message: "\(p) is not valid scheduler settings: \(error)",
                              fix: "see docs/runner.md for the format, or remove the file to use the defaults")
        }
    }

    /// Every scheduler calibctl can use on this machine.
    static func schedulers(_ ws: Workspace, _ s: Settings) -> [any BatchScheduler] {
        let env = ProcessInfo.processInfo.environment
        let local = LocalScheduler(
            root: (ws.home as NSString).appendingPathComponent("local"),
            executorCommand: [selfPath, "job", "local-executor"],
            concurrency: env["CALIBCTL_LOCAL_SLOTS"].flatMap(Int.init) ?? s.local?.slots
                ?? ProcessInfo.processInfo.activeProcessorCount,
            minimumPollInterval: s.local?.minimumPollInterval ?? 0,
            graceSeconds: env["CALIBCTL_LOCAL_GRACE"].flatMap(Double.init) ?? s.local?.graceSeconds ?? 5,
            enforceMemory: s.local?.enforceMemory ?? false,
            // `command` shards whose worker is this calibctl run in the executor itself (no process start per shard).
            directWorker: s.local?.runCommandsDirectly == false ? nil : [selfPath, "job", "run"])
        let poll = env["CALIBCTL_POLL_INTERVAL"].flatMap(Double.init)
        func tools(_ b: BatchSettings?, binOverride: String?) -> SchedulerTools {
            SchedulerTools(binDirectory: binOverride ?? b?.binDirectory, environment: b?.environment ?? [:],
                           timeoutSeconds: b?.timeoutSeconds ?? 60)
        }
        let slurm = SlurmScheduler(tools: tools(s.slurm, binOverride: env["CALIBCTL_SLURM_BIN"]),
                                   jobCompletionLog: s.slurm?.jobCompletionLog,
                                   extraSubmitArguments: s.slurm?.extraSubmitArguments ?? [],
                                   minimumPollInterval: poll ?? s.slurm?.minimumPollInterval ?? 60,
                                   maxArraySize: s.slurm?.maxArraySize,
                                   submitConcurrency: s.slurm?.submitConcurrency ?? 4)
        let condor = HTCondorScheduler(tools: tools(s.htcondor, binOverride: env["CALIBCTL_HTCONDOR_BIN"]),
                                       extraSubmitLines: s.htcondor?.extraSubmitLines ?? [],
                                       minimumPollInterval: poll ?? s.htcondor?.minimumPollInterval ?? 60)
        return [local, slurm, condor]
    }

    init(_ ws: Workspace) throws {
        workspace = ws
        try ws.ensureHome()
        database = try SQLiteDatabase(path: ws.databasePath)
        let s = try Self.settings(ws)
        engine = try JobEngine(database: database, workspace: ws, schedulers: Self.schedulers(ws, s),
                               workerCommand: ProcessInfo.processInfo.environment["CALIBCTL_WORKER"].map { $0.split(separator: " ").map(String.init) }
                                   ?? s.workerCommand ?? [Self.selfPath, "job", "run"])
        if let m = ProcessInfo.processInfo.environment["CALIBCTL_HELD_LIMIT"].flatMap(Double.init) ?? s.heldLimitMinutes.map({ $0 * 60 }) {
            engine.heldLimitSeconds = m
        }
    }
}

extension JobsContext {
    /// The workflow engine over this context's database and schedulers, with every standard action.
    func workflowEngine() throws -> WorkflowEngine {
        try WorkflowEngine(jobs: engine, actions: .standard)
    }
}

/// A configuration problem (exit 78).
struct ConfigError: DiagnosableError {
    let message: String
    let fix: String?
    var exitStatus: ExitStatus { .configError }
}
