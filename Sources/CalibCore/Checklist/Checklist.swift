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
    /// The file it was loaded from (for error messages), or `<string>`.
    public var file: String

    public init(name: String, title: String, description: String? = nil, format: Int = 1, final: String? = nil,
                steps: [ChecklistStep], file: String = "<string>") {
        self.name = name
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
    /// Where the step starts in its file (1-based line), 0 if built in code.
    public var line: Int
    /// Line of each prerequisite entry (parallel to `prerequisites`), for error messages.
    public var prerequisiteLines: [Int]

    public init(id: String, number: Int? = nil, title: String, phase: String, owner: String? = nil,
                prerequisites: [String] = [], conditions: [String] = [], inputs: [String] = [],
                outcomes: [String] = [], validation: [ValidationItem] = [], documentation: String? = nil,
                ifNecessary: Bool = false, estimateDays: Double = 1, action: StepAction? = nil, line: Int = 0,
                prerequisiteLines: [Int]? = nil, approvers: [String] = []) {
        self.id = id
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

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
    }
}

/// What runs for a step: a built-in calibctl job or a command template, fanned out per run / FED / shard / gain mode
/// or once per campaign. calibctl's runner reads this; the checklist engine never executes it.
public struct StepAction: Sendable, Equatable, Codable {
    public enum Kind: Sendable, Equatable, Codable {
        /// A built-in job by name, e.g. `pixel-gain-fit`.
        case builtin(String)
        /// A command template with `{placeholders}` (see `StepAction.placeholders`).
        case command(String)
    }

    /// The fan-out unit of the action.
    public enum Granularity: String, Sendable, Codable, CaseIterable {
        case run, fed, shard
        case gainMode = "gain-mode"
        case campaign
    }

    public var kind: Kind
    public var per: Granularity
    /// Extra parameters passed to the job (`with:` mapping), as text.
    public var parameters: [String: String]

    public init(kind: Kind, per: Granularity, parameters: [String: String] = [:]) {
        self.kind = kind
        self.per = per
        self.parameters = parameters
    }

    /// Placeholders a command template may use.
    public static let placeholders: Set<String> = [
        "run", "fed", "shard", "gain_mode", "campaign", "step", "iteration", "input", "output", "workdir", "store",
    ]

    /// The placeholders used in a template, in order of appearance (`{name}`).
    public static func placeholders(in template: String) -> [String] {
        var out: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "}") else { break }
            out.append(String(after[..<close]))
            rest = after[after.index(after: close)...]
        }
        return out
    }

    /// Short text: `builtin pixel-gain-fit per fed` or `command "..." per run`.
    public var summary: String {
        switch kind {
        case .builtin(let n): "builtin \(n) per \(per.rawValue)"
        case .command(let c): "command \"\(c)\" per \(per.rawValue)"
        }
    }
}
