import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// Opens the workspace database and the configured schedulers for the job commands and `tick`.
///
/// Scheduler settings come from `HOME/schedulers.json` (optional; docs/runner.md), e.g.
/// `{"local": {"slots": 4, "minimumPollInterval": 0, "graceSeconds": 5},
///   "slurm": {"environment": {"SLURM_CONF": "/etc/slurm/slurm.conf"}, "minimumPollInterval": 30,
///             "extraSubmitArguments": ["--partition=cms"]},
///   "htcondor": {"binDirectory": "/usr/bin", "minimumPollInterval": 30, "extraSubmitLines": ["accounting_group = cms"]},
///   "workerCommand": ["/opt/calibctl", "job", "run"]}`,
/// with environment overrides `CALIBCTL_LOCAL_SLOTS` and `CALIBCTL_LOCAL_GRACE`.
struct JobsContext {
    let workspace: Workspace
    let database: SQLiteDatabase
    let engine: JobEngine

    struct LocalSettings: Codable {
        var slots: Int?
        var minimumPollInterval: Double?
        var graceSeconds: Double?
        var enforceMemory: Bool?
    }

    /// Slurm / HTCondor: where their client tools are, their environment (e.g. SLURM_CONF), extra submit
    /// arguments or submit-file lines, the minimum poll interval and the tool timeout.
    struct BatchSettings: Codable {
        var binDirectory: String?
        var environment: [String: String]?
        var extraSubmitArguments: [String]?
        var extraSubmitLines: [String]?
        var minimumPollInterval: Double?
        var timeoutSeconds: Double?

        var tools: SchedulerTools {
            SchedulerTools(binDirectory: binDirectory, environment: environment ?? [:], timeoutSeconds: timeoutSeconds ?? 60)
        }
    }

    struct Settings: Codable {
        var local: LocalSettings?
        var slurm: BatchSettings?
        var htcondor: BatchSettings?
        var workerCommand: [String]?
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
            enforceMemory: s.local?.enforceMemory ?? false)
        let slurm = SlurmScheduler(tools: s.slurm?.tools ?? SchedulerTools(),
                                   extraSubmitArguments: s.slurm?.extraSubmitArguments ?? [],
                                   minimumPollInterval: s.slurm?.minimumPollInterval ?? 10)
        let condor = HTCondorScheduler(tools: s.htcondor?.tools ?? SchedulerTools(),
                                       extraSubmitLines: s.htcondor?.extraSubmitLines ?? [],
                                       minimumPollInterval: s.htcondor?.minimumPollInterval ?? 10)
        return [local, slurm, condor]
    }

    init(_ ws: Workspace) throws {
        workspace = ws
        try ws.ensureHome()
        database = try SQLiteDatabase(path: ws.databasePath)
        let s = try Self.settings(ws)
        engine = try JobEngine(database: database, workspace: ws, schedulers: Self.schedulers(ws, s),
                               workerCommand: s.workerCommand ?? [Self.selfPath, "job", "run"])
    }
}

/// A configuration problem (exit 78).
struct ConfigError: DiagnosableError {
    let message: String
    let fix: String?
    var exitStatus: ExitStatus { .configError }
}
