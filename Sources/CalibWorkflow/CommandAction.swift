import CalibCore
import CalibRunner
import Foundation

/// `action: {command: "...", per: ...}`: each unit runs the command with `/bin/sh -c` as a `command` job, its
/// placeholders expanded when the job set is created: the axes (`{run}`, `{telescope}`, `{gain_mode}`), `{shard}`
/// (the unit key, `run=5001,telescope=LST1`), `{campaign}`, `{step}`, `{iteration}`, `{output}` (the unit's
/// directory, created for it), `{workdir}` (the step iteration's directory), `{workdir:STEP}` (another step's
/// latest iteration directory), `{store}`, `{runs}`, `{first_run}`, `{last_run}` and `{param:NAME}`.
/// Everything the command writes under `{output}` is recorded as the unit's outputs (size, SHA-256); metrics are
/// the `name=value` lines it writes to `$CALIBCTL_METRICS_FILE`.
public struct CommandAction: WorkflowAction {
    public static let actionName = "command"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .jobs }
    public init() {}

    public func spec(for unit: WorkUnit, context: ActionContext) throws -> JobSpec {
        guard case .command(let template) = context.action.kind else {
            throw WorkflowEngineError.actionFailed(campaign: context.campaign.name, step: context.step.id,
                                                   detail: "not a command action")
        }
        let out = context.unitDirectory(unit)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let command = try Self.expand(template, unit: unit, context: context)
        var spec = JobSpec(kind: CommandJobKind.name, key: unit.key, parameters: ["shell": command])
        spec.environment = context.settings.environment.isEmpty ? nil : context.settings.environment
        spec.workDirectory = out
        return spec
    }

    /// Expands every placeholder of a command template for one unit.
    public static func expand(_ template: String, unit: WorkUnit, context: ActionContext) throws -> String {
        let c = context.campaign
        var values: [String: String] = [
            "shard": unit.key, "campaign": c.name, "step": context.step.id, "iteration": String(context.iteration),
            "output": context.unitDirectory(unit), "workdir": context.stepDirectory, "store": context.workspace.store,
            "runs": c.runs.description, "first_run": c.runs.ranges.first.map { String($0.lowerBound) } ?? "",
            "last_run": c.runs.ranges.last.map { String($0.upperBound) } ?? "",
        ]
        for v in unit.values {
            for n in ChecklistValidator.placeholderNames(axis: v.axis) { values[n] = v.value }
        }
        var s = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            s += rest[..<open]
            let after = rest[rest.index(after: open)...]
            guard let close = after.firstIndex(of: "}") else { s += rest[open...]; rest = ""; break }
            let name = String(after[..<close])
            let dollar = open > template.startIndex && template[template.index(before: open)] == "$"
            if dollar || !StepAction.isPlaceholderName(after[..<close]) {
                s += "{"   // the command's own brace ({ print $1 } in awk, ${VAR}): scan on after it
                rest = after
                continue
            }
            if let v = values[name] {
                s += v
            } else if name.hasPrefix("param:") {
                let p = String(name.dropFirst(6))
                guard let v = context.param(p) else {
                    throw WorkflowEngineError.badSetting(
                        what: "campaign \(c.name): parameter", value: p,
                        fix: "the command of step \(context.step.id) uses {param:\(p)}: create the campaign with --param \(p)=VALUE or add params: {\(p): DEFAULT} to the checklist")
                }
                s += v
            } else if name.hasPrefix("workdir:") {
                let other = String(name.dropFirst(8))
                let it = (try? context.campaigns.step(other, of: c.name).iteration) ?? 0
                s += context.engine.stepDirectory(campaign: c.name, step: other, iteration: max(it, 1))
            } else {
                s += "{" + name + "}"   // not ours: left for the shell ({attempt} is expanded by the worker)
            }
            rest = after[after.index(after: close)...]
        }
        s += rest
        return s
    }
}
