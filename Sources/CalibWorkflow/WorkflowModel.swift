import CalibCore
import CalibIO
import Foundation

/// How a campaign runs: its parameters and unit values, where its jobs go and with which resources, the environment
/// its jobs run in, and the store tag it publishes to. Kept in `workflow_campaigns` (docs/workflow.md).
public struct CampaignSettings: Sendable, Codable, Equatable {
    /// Campaign parameters (`--param input=/data/darks`), `{param:NAME}` in commands; checklist `params:` give
    /// defaults.
    public var params: [String: String]
    /// Unit values per axis given by the campaign (`--units telescope=LST1,LST2`); they override the checklist's.
    public var units: [String: [String]]
    /// Default scheduler of the campaign's jobs (a step's `scheduler:` overrides it).
    public var scheduler: String
    /// Default memory (MB) and time limit (s) per job (a step's `memory:` / `time:` override them).
    public var memoryMB: Int
    public var timeLimitSeconds: Int
    /// The environment of the person who created the campaign: every job of the campaign runs in it, whoever runs
    /// the tick (a cron tick with `env -i` does not change what a job sees). Variables of the scheduler's own
    /// (`SLURM_*`, `_CONDOR_*`) and calibctl's per-job ones are left out.
    public var environment: [String: String]
    /// The store tag the publication builtins write to (default: the campaign's name).
    public var tag: String?

    public init(params: [String: String] = [:], units: [String: [String]] = [:], scheduler: String = "local",
                memoryMB: Int = 2000, timeLimitSeconds: Int = 3 * 3600, environment: [String: String] = [:],
                tag: String? = nil) {
        self.params = params
        self.units = units
        self.scheduler = scheduler
        self.memoryMB = memoryMB
        self.timeLimitSeconds = timeLimitSeconds
        self.environment = environment
        self.tag = tag
    }

    /// The current process's environment without the variables that belong to one job or one scheduler allocation.
    public static func capturedEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        env.filter { k, _ in
            !(k.hasPrefix("SLURM_") || k.hasPrefix("_CONDOR") || k.hasPrefix("CALIBCTL_METRICS") || k == "CALIBCTL_ATTEMPT"
              || k == "CALIBCTL_SHARD_KEY" || k == "PWD" || k == "OLDPWD" || k == "SHLVL" || k == "_")
        }
    }
}

/// One unit of a step: one value per axis (`run=5001,telescope=LST1`), or the whole campaign (no axes).
public struct WorkUnit: Sendable, Codable, Equatable, Hashable {
    public var values: [AxisValue]

    public struct AxisValue: Sendable, Codable, Equatable, Hashable {
        public var axis: String
        public var value: String
    }

    public init(_ values: [(String, String)]) { self.values = values.map { AxisValue(axis: $0.0, value: $0.1) } }

    /// `run=5001,telescope=LST1`, or `campaign` for the single unit of a per-campaign step (also `{shard}`).
    public var key: String { values.isEmpty ? "campaign" : values.map { "\($0.axis)=\($0.value)" }.joined(separator: ",") }

    /// The unit's directory name under the step's iteration directory.
    public var directoryName: String { key.replacingOccurrences(of: ",", with: "_") }

    public func value(_ axis: String) -> String? { values.first { $0.axis == axis }?.value }

    /// Parses a key written by `key`.
    public init(key: String) {
        if key == "campaign" || key.isEmpty { values = []; return }
        values = key.split(separator: ",").map { part in
            let kv = part.split(separator: "=", maxSplits: 1)
            return AxisValue(axis: String(kv[0]), value: kv.count > 1 ? String(kv[1]) : "")
        }
    }
}

/// What one iteration of a step ran: its job set (or `inline`), units, and how it ended.
public struct StepRunRecord: Sendable, Codable, Equatable {
    public var step: String
    public var iteration: Int
    /// `jobs` (a job set) or `inline` (run inside the tick).
    public var mode: String
    public var jobSet: String?
    public var units: Int
    public var startedAt: Date
    public var finishedAt: Date?
    /// `succeeded`, `quorum-failed`, `failed` (an inline action's error), nil while running.
    public var outcome: String?
    /// The units that failed, with the reason.
    public var failedUnits: [String: String]
    /// The step's aggregated metrics of this iteration.
    public var metrics: [String: Double]
}

/// A step's unit progress (`checklist show`: `dark-process  running  2/3 units`).
public struct StepProgress: Sendable, Codable, Equatable {
    public var step: String
    public var iteration: Int
    public var jobSet: String?
    public var total: Int
    public var succeeded: Int
    public var failed: Int
    public var running: Int
    /// Per unit key: its latest attempt's state (`succeeded`, `running`, `failed`, `not-submitted`, ...).
    public var units: [String: String]

    /// `2/3 units` (`, 1 failed` when some failed).
    public var text: String {
        "\(succeeded)/\(total) unit\(total == 1 ? "" : "s")" + (failed > 0 ? ", \(failed) failed" : "")
    }
}

/// A directory watched for new runs: each `<inbox>/<RUN>/` holding the marker file becomes a campaign
/// `<name>-<RUN>` of the checklist for that run, with parameter `input` = the run's directory.
public struct WatchDefinition: Sendable, Codable, Equatable {
    public var name: String
    public var checklistName: String
    public var checklistYAML: String
    public var checklistFile: String
    public var inbox: String
    public var marker: String
    public var settings: CampaignSettings
    public var createdAt: Date
    public var createdBy: String

    public init(name: String, checklistName: String, checklistYAML: String, checklistFile: String, inbox: String,
                marker: String, settings: CampaignSettings, createdAt: Date, createdBy: String) {
        self.name = name
        self.checklistName = checklistName
        self.checklistYAML = checklistYAML
        self.checklistFile = checklistFile
        self.inbox = inbox
        self.marker = marker
        self.settings = settings
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

/// Errors of the workflow engine.
public enum WorkflowEngineError: DiagnosableError {
    case noUnits(campaign: String, step: String, axis: String)
    case badSetting(what: String, value: String, fix: String)
    case actionFailed(campaign: String, step: String, detail: String)
    case unknownWatch(String)
    case watchExists(String)
    case jobSetConflict(campaign: String, step: String, iteration: Int, existing: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .noUnits, .badSetting: .usage
        case .actionFailed: .dataError
        case .unknownWatch: .usage
        case .watchExists: .usage
        case .jobSetConflict: .usage
        }
    }

    public var message: String {
        switch self {
        case .noUnits(let c, let s, let a): "campaign \(c), step \(s): axis '\(a)' has no values"
        case .badSetting(let w, let v, _): "\(w) '\(v)' is not valid"
        case .actionFailed(let c, let s, let d): "campaign \(c), step \(s): \(d)"
        case .unknownWatch(let n): "no watch named \(n)"
        case .watchExists(let n): "a watch named \(n) exists already"
        case .jobSetConflict(let c, let s, let i, let e):
            "campaign \(c), step \(s) iteration \(i) already has job set \(e)"
        }
    }

    public var fix: String? {
        switch self {
        case .noUnits(_, _, let a):
            "give them when creating the campaign (--units \(a)=A,B,C) or in the checklist (units: {\(a): [A, B, C]})"
        case .badSetting(_, _, let f): f
        case .actionFailed: "fix the cause, then run the step again: calibctl step run CAMPAIGN STEP"
        case .unknownWatch: "list them with calibctl campaign watch --list"
        case .watchExists: "choose another name"
        case .jobSetConflict(let c, let s, _, _):
            "wait for it to finish, or reopen the step first (calibctl step reopen \(c) \(s))"
        }
    }
}
