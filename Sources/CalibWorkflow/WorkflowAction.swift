import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import Foundation

/// How an action runs.
public enum ActionMode: String, Sendable, Codable {
    /// As a job set, one shard per unit, on the campaign's scheduler (`calibctl job run` on a worker).
    case jobs
    /// Inside the tick (or `step run`), unit by unit: quick bookkeeping that reads earlier steps' outputs and writes
    /// the store (publication, comparisons, assembling constants). Must be idempotent: a killed tick runs it again.
    case inline
}

/// What an inline action reports for one unit.
public struct InlineResult: Sendable {
    public var metrics: [String: Double]
    /// Files it wrote, by name (recorded with size and SHA-256 as the step's outputs).
    public var outputs: [String: String]
    public var message: String?

    public init(metrics: [String: Double] = [:], outputs: [String: String] = [:], message: String? = nil) {
        self.metrics = metrics
        self.outputs = outputs
        self.message = message
    }
}

/// One recorded output of a step's unit.
public struct UnitOutput: Sendable, Codable, Equatable {
    public var unit: String
    public var name: String
    public var path: String
    public var size: Int64
    public var sha256: String
}

/// A unit's result at completion: its metrics and outputs (succeeded units only).
public struct UnitResult: Sendable {
    public var unit: WorkUnit
    public var metrics: [String: Double]
    public var outputs: [UnitOutput]
}

/// A built-in action or the command action. A new workflow is a YAML checklist plus, at most, one file with an
/// action type registered in `ActionRegistry.standard` (docs/architecture.md).
public protocol WorkflowAction {
    /// The builtin name (`dark-process`), or `command`.
    var name: String { get }
    var mode: ActionMode { get }
    /// Values of an axis the campaign and checklist do not give (e.g. the FEDs found in a gain scan's directory);
    /// nil when this action does not know them.
    func discoverUnits(axis: String, context: ActionContext) throws -> [String]?
    /// `.jobs`: the spec of one unit's shard. Outputs go under `context.unitDirectory(unit)`.
    func spec(for unit: WorkUnit, context: ActionContext) throws -> JobSpec
    /// `.inline`: does the unit's work now. Throw a `DiagnosableError` to fail the step with its message.
    func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult
    /// Step-level metrics computed from all units (added to the generic mean/min/max/sum aggregates, replacing
    /// same-named ones), e.g. a pixel-weighted fraction of good pixels.
    func aggregate(_ results: [UnitResult], context: ActionContext) throws -> [String: Double]
}

extension WorkflowAction {
    public func discoverUnits(axis: String, context: ActionContext) throws -> [String]? { nil }
    public func spec(for unit: WorkUnit, context: ActionContext) throws -> JobSpec {
        throw WorkflowEngineError.actionFailed(campaign: context.campaign.name, step: context.step.id,
                                               detail: "action \(name) does not run as jobs")
    }
    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        throw WorkflowEngineError.actionFailed(campaign: context.campaign.name, step: context.step.id,
                                               detail: "action \(name) does not run inline")
    }
    public func aggregate(_ results: [UnitResult], context: ActionContext) throws -> [String: Double] { [:] }
}

/// The actions an engine knows, by name.
public struct ActionRegistry {
    public private(set) var actions: [String: any WorkflowAction] = [:]

    public init(_ list: [any WorkflowAction] = []) { for a in list { register(a) } }

    public mutating func register(_ a: any WorkflowAction) { actions[a.name] = a }

    public func action(for step: ChecklistStep) -> (any WorkflowAction)? {
        switch step.action?.kind {
        case .builtin(let n)?: actions[n]
        case .command?: actions[CommandAction.actionName]
        case nil: nil
        }
    }
}

/// Everything an action sees for one step iteration.
public final class ActionContext {
    public let engine: WorkflowEngine
    public let campaign: Campaign
    public let checklist: Checklist
    public let settings: CampaignSettings
    public let step: ChecklistStep
    public let iteration: Int

    init(engine: WorkflowEngine, campaign: Campaign, checklist: Checklist, settings: CampaignSettings,
         step: ChecklistStep, iteration: Int) {
        self.engine = engine
        self.campaign = campaign
        self.checklist = checklist
        self.settings = settings
        self.step = step
        self.iteration = iteration
    }

    public var action: StepAction { step.action ?? StepAction(kind: .command("true")) }
    public var workspace: Workspace { engine.workspace }
    public var campaigns: CampaignStore { engine.campaigns }

    /// A campaign parameter: the campaign's value, else the checklist's default.
    public func param(_ name: String) -> String? { settings.params[name] ?? checklist.params[name] }

    /// An action parameter (`with:`), with `{param:NAME}` expanded.
    public func with(_ name: String) -> String? { action.parameters[name].map { expandParams($0) } }

    /// Replaces `{param:NAME}` with the campaign's parameters.
    public func expandParams(_ text: String) -> String {
        guard text.contains("{param:") else { return text }
        var s = text
        for (k, v) in checklist.params where settings.params[k] == nil { s = s.replacingOccurrences(of: "{param:\(k)}", with: v) }
        for (k, v) in settings.params { s = s.replacingOccurrences(of: "{param:\(k)}", with: v) }
        return s
    }

    /// `HOME/campaigns/<campaign>/<step>/i<iteration>` (`{workdir}`).
    public var stepDirectory: String { engine.stepDirectory(campaign: campaign.name, step: step.id, iteration: iteration) }

    /// The unit's own directory under the step directory (`{output}`).
    public func unitDirectory(_ unit: WorkUnit) -> String {
        (stepDirectory as NSString).appendingPathComponent(unit.directoryName)
    }

    /// The store tag the campaign publishes to.
    public var tag: String { settings.tag ?? campaign.name }

    /// The constants store (opened on first use).
    public func store() throws -> ConstantsStore { try engine.store() }

    /// The recorded outputs of another step's latest finished iteration (throws if it has none).
    public func outputs(of stepID: String) throws -> [UnitOutput] {
        try engine.latestOutputs(campaign: campaign, step: stepID)
    }

    /// The outputs of the nearest upstream step (through the prerequisites, breadth first) that recorded any, and
    /// that step's id; nil when no upstream step has outputs.
    public func upstreamOutputs(where include: (UnitOutput) -> Bool = { _ in true }) throws -> (step: String, outputs: [UnitOutput])? {
        var queue = step.prerequisites, seen = Set<String>()
        while !queue.isEmpty {
            let s = queue.removeFirst()
            guard seen.insert(s).inserted else { continue }
            let outs = ((try? outputs(of: s)) ?? []).filter(include)
            if !outs.isEmpty { return (s, outs) }
            queue += checklist.step(s)?.prerequisites ?? []
        }
        return nil
    }

    /// Who approved `stepID`'s current iteration (the sign-off recorded on it), if anyone did.
    public func approver(of stepID: String) -> String? {
        (try? campaigns.signOff(campaign: campaign.name, step: stepID))?.approvedBy
    }
}
