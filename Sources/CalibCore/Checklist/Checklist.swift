import Foundation

/// A calibration checklist: named steps with prerequisites, outcomes, quality gates and optional actions
/// (docs/checklists.md). Loaded from YAML by `ChecklistLoader`; checked by `ChecklistValidator`.
public struct Checklist: Sendable, Equatable, Codable {
    /// Short machine name, e.g. `clas12-rgx`.
    public var name: String
    public var title: String
    public var description: String?
    /// Checklist format version (`format:`; currently 1).
    public var format: Int
    /// The step whose completion finishes the campaign (critical path target); default: the last step in the file.
    public var final: String?
    public var steps: [ChecklistStep]
    /// Fan-out axes the checklist declares (`units:`), e.g. `telescope: [LST1, LST2]`; an empty list means the
    /// campaign must give the values (`calibctl campaign create --units telescope=A,B`).
    public var units: [String: [String]]
    /// Campaign parameters with their defaults (`params:`); `{param:NAME}` in commands.
    public var params: [String: String]
    /// The file it was loaded from (for error messages), or `<string>`.
    public var file: String

    public init(name: String, title: String, description: String? = nil, format: Int = 1, final: String? = nil,
                steps: [ChecklistStep], file: String = "<string>", units: [String: [String]] = [:],
                params: [String: String] = [:]) {
        self.name = name
        self.units = units
        self.params = params
        self.title = title
        self.description = description
        self.format = format
        self.final = final
        self.steps = steps
        self.file = file
    }

    /// The id of the final step: `final:` if given, else the last step.
    public var finalStepID: String? { final ?? steps.last?.id }

    /// Index of each step id (first occurrence wins).
    public func indexByID() -> [String: Int] {
        var out: [String: Int] = [:]
        out.reserveCapacity(steps.count)
        for i in steps.indices where out[steps[i].id] == nil { out[steps[i].id] = i }
        return out
    }

    /// The step with this id.
    public func step(_ id: String) -> ChecklistStep? { steps.first { $0.id == id } }
}

/// One step of a checklist.
public struct ChecklistStep: Sendable, Equatable, Codable {
    public var id: String
    /// The number in the original table (CLAS12 keeps 1...42), if any.
    public var number: Int?
    public var title: String
    public var phase: String
    /// The person or role responsible (`owner:` or `contact:`).
    public var owner: String?
    /// Who may sign the step off (`approvers:`, user names). Empty: anyone may (the approver is recorded either way).
    public var approvers: [String]
    /// Step ids that must be done (or skipped) first.
    public var prerequisites: [String]
    /// Free-text conditions that are not steps (e.g. "reasonable DC calibration"); shown, not enforced.
    public var conditions: [String]
    public var inputs: [String]
    /// The constants it produces: detector/type names or CCDB-style paths.
    public var outcomes: [String]
    public var validation: [ValidationItem]
    public var documentation: String?
    /// An `if necessary` step may be skipped with a reason; a skipped step satisfies its dependents.
    public var ifNecessary: Bool
    /// Estimated duration in days, used to weight the critical path (default 1).
    public var estimateDays: Double
    public var action: StepAction?
    /// When the step's units count as a success (`success:`); nil: every unit must succeed.
    public var success: SuccessRule?
    /// Re-run while a gate fails (`repeat:`), up to `maxIterations` iterations.
    public var repeatRule: RepeatRule?
    /// Where the step starts in its file (1-based line), 0 if built in code.
    public var line: Int
    /// Line of each prerequisite entry (parallel to `prerequisites`), for error messages.
    public var prerequisiteLines: [Int]

    public init(id: String, number: Int? = nil, title: String, phase: String, owner: String? = nil,
                prerequisites: [String] = [], conditions: [String] = [], inputs: [String] = [],
                outcomes: [String] = [], validation: [ValidationItem] = [], documentation: String? = nil,
                ifNecessary: Bool = false, estimateDays: Double = 1, action: StepAction? = nil, line: Int = 0,
                prerequisiteLines: [Int]? = nil, approvers: [String] = [], success: SuccessRule? = nil,
                repeatRule: RepeatRule? = nil) {
        self.id = id
        self.success = success
        self.repeatRule = repeatRule
        self.approvers = approvers
        self.number = number
        self.title = title
        self.phase = phase
        self.owner = owner
        self.prerequisites = prerequisites
        self.conditions = conditions
        self.inputs = inputs
        self.outcomes = outcomes
        self.validation = validation
        self.documentation = documentation
        self.ifNecessary = ifNecessary
        self.estimateDays = estimateDays
        self.action = action
        self.line = line
        self.prerequisiteLines = prerequisiteLines ?? Array(repeating: line, count: prerequisites.count)
    }

    /// The automatic gates (validation items with a metric).
    public var gates: [ValidationItem] { validation.filter { $0.metric != nil } }
    /// The manual checks (validation items without a metric): a person signs them off.
    public var manualChecks: [ValidationItem] { validation.filter { $0.metric == nil } }
}

/// A validation item: an automatic quality gate (`metric` with `min` and/or `max`, inclusive) or a manual check
/// (free text in `check`, signed off by a person).
public struct ValidationItem: Sendable, Equatable, Codable {
    public var name: String
    public var metric: String?
    public var min: Double?
    public var max: Double?
    /// Free text: what a person checks (e.g. "calibration timelines").
    public var check: String?

    public init(name: String, metric: String? = nil, min: Double? = nil, max: Double? = nil, check: String? = nil) {
        self.name = name
        self.metric = metric
        self.min = min
        self.max = max
        self.check = check
    }

    /// True when `value` lies inside [min, max] (either bound may be absent). NaN never passes.
    public func accepts(_ value: Double) -> Bool {
        if value.isNaN { return false }
        if let min, value < min { return false }
        if let max, value > max { return false }
        return true
    }

    /// "fraction_good >= 0.98", "0.5 <= mean_gain <= 5", or the check text.
    public var condition: String {
        guard let metric else { return check ?? name }
        switch (min, max) {
        case let (lo?, hi?): return "\(Self.format(lo)) <= \(metric) <= \(Self.format(hi))"
        case let (lo?, nil): return "\(metric) >= \(Self.format(lo))"
        case let (nil, hi?): return "\(metric) <= \(Self.format(hi))"
        default: return metric
        }
    }

    public static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}

/// What runs for a step: a built-in calibctl action or a command template, fanned out over the units of its axes
/// (`per: run`, `per: [run, telescope]`) or once per campaign (`per: campaign`, the default). The workflow engine
/// (CalibWorkflow) executes it; this type only describes it (docs/checklists.md, "Actions").
public struct StepAction: Sendable, Equatable, Codable {
    public enum Kind: Sendable, Equatable, Codable {
        /// A built-in action by name, e.g. `pixel-gain-fit` (`StepAction.builtinNames`).
        case builtin(String)
        /// A command template with `{placeholders}` (see `StepAction.placeholders`).
        case command(String)
    }

    public var kind: Kind
    /// The fan-out axes, in order (`[]`: one unit for the whole campaign).
    public var axes: [String]
    /// Extra parameters passed to the action (`with:` mapping), as text.
    public var parameters: [String: String]
    /// Scheduler for this step's jobs (`scheduler:`), else the campaign's.
    public var scheduler: String?
    /// Memory per job in MB (`memory: 4000` or `memory: 4G`), else the campaign's default.
    public var memoryMB: Int?
    /// Time limit per job in seconds (`time: 3600`, `time: 90m`, `time: 2h`), else the campaign's default.
    public var timeLimitSeconds: Int?
    /// Where the action is written in its file (1-based line), 0 if built in code.
    public var line: Int

    public init(kind: Kind, axes: [String] = [], parameters: [String: String] = [:], scheduler: String? = nil,
                memoryMB: Int? = nil, timeLimitSeconds: Int? = nil, line: Int = 0) {
        self.kind = kind
        self.axes = axes
        self.parameters = parameters
        self.scheduler = scheduler
        self.memoryMB = memoryMB
        self.timeLimitSeconds = timeLimitSeconds
        self.line = line
    }

    /// Axes every campaign knows: `run` (the campaign's runs), `fed` (given by the campaign or found by the action,
    /// e.g. the FEDs of a gain scan), `gain-mode` (0, 1, 2 unless the campaign or checklist says otherwise).
    public static let builtinAxes: [String] = ["run", "fed", "gain-mode"]

    /// The built-in actions (implemented by CalibWorkflow; a test keeps the two lists equal).
    public static let builtinNames: [String] = [
        "compare-previous", "dark-constants", "dark-process", "lcls-export", "pixel-gain-fit", "pixel-gain-merge",
        "pixel-gain-payload", "pixel-gain-validate", "store-deploy",
    ]

    /// Placeholders a command template may use besides the axes (`{run}`, `{telescope}`, ...), `{param:NAME}` (a
    /// campaign parameter) and `{workdir:STEP}` (another step's directory of its latest iteration).
    public static let placeholders: Set<String> = [
        "shard", "campaign", "step", "iteration", "output", "workdir", "store", "runs", "first_run", "last_run",
    ]

    /// The placeholders used in a template, in order of appearance: `{name}` where name is a word (letters, digits,
    /// `_`, `-`, `.`, `:`, starting with a letter). Braces around anything else (`{ print $1 }` in awk, `${VAR}`
    /// in the shell) are the command's own text.
    public static func placeholders(in template: String) -> [String] {
        var out: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "}") else { break }
            let name = after[..<close]
            let dollar = open > template.startIndex && template[template.index(before: open)] == "$"
            if !dollar, isPlaceholderName(name) { out.append(String(name)) }
            rest = after[after.index(after: close)...]
        }
        return out
    }

    /// True for a placeholder's name: a letter, then letters, digits, `_`, `-`, `.`, `:`, `/`.
    public static func isPlaceholderName(_ s: Substring) -> Bool {
        guard let f = s.unicodeScalars.first, f.isASCII, CharacterSet.letters.contains(f) else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.:/".unicodeScalars.contains($0)) }
    }

    /// `campaign`, `run` or `run x telescope`.
    public var perText: String { axes.isEmpty ? "campaign" : axes.joined(separator: " x ") }

    /// Short text: `builtin pixel-gain-fit per fed` or `command "..." per run`.
    public var summary: String {
        switch kind {
        case .builtin(let n): "builtin \(n) per \(perText)"
        case .command(let c): "command \"\(c)\" per \(perText)"
        }
    }
}

/// When a step's job set counts as a success (`success:`): by default every unit must succeed.
public struct SuccessRule: Sendable, Equatable, Codable {
    /// At most this many units may fail (`max_failed:`).
    public var maxFailed: Int?
    /// At least this fraction of units must succeed (`min_fraction:`, 0...1).
    public var minFraction: Double?

    public init(maxFailed: Int? = nil, minFraction: Double? = nil) {
        self.maxFailed = maxFailed
        self.minFraction = minFraction
    }

    /// Every unit must succeed.
    public static let all = SuccessRule(maxFailed: 0)

    /// True when `failed` failed units out of `total` are acceptable.
    public func accepts(failed: Int, total: Int) -> Bool {
        if failed >= total && total > 0 { return false }
        if let m = maxFailed, failed > m { return false }
        if let f = minFraction, total > 0, Double(total - failed) / Double(total) < f { return false }
        return true
    }

    /// "every unit", "at most 2 failed", "at least 95% succeeded".
    public var text: String {
        var parts: [String] = []
        if let m = maxFailed { parts.append(m == 0 ? "every unit succeeds" : "at most \(m) failed") }
        if let f = minFraction { parts.append("at least \(ValidationItem.format(f * 100))% succeed") }
        return parts.isEmpty ? "every unit succeeds" : parts.joined(separator: " and ")
    }
}

/// A convergence loop (`repeat: {max_iterations: 5}`): while a gate fails, the step runs again, up to the cap.
public struct RepeatRule: Sendable, Equatable, Codable {
    public var maxIterations: Int
    public init(maxIterations: Int) { self.maxIterations = maxIterations }
}
