/// Checks a parsed checklist as a graph: duplicate ids, unknown prerequisites (with "did you mean"), cycles
/// (`a -> b -> a`), an unknown `final:` step. Every issue carries the file and line.
public enum ChecklistValidator {
    /// The issues found, in line order (empty when the checklist is valid).
    public static func validate(_ c: Checklist) -> [ChecklistIssue] { check(c).issues }

    /// The issues and the graph (built once; callers that go on to sort or compute the ready set reuse it).
    public static func check(_ c: Checklist) -> (issues: [ChecklistIssue], graph: ChecklistGraph) {
        var issues: [ChecklistIssue] = []
        let steps = c.steps
        var index: [String: Int] = [:]
        index.reserveCapacity(steps.count)
        // Loops go by index and read single properties: copying whole steps costs a retain per field.
        for i in steps.indices {
            if let first = index[steps[i].id] {
                issues.append(ChecklistIssue(file: c.file, line: steps[i].line,
                                             message: "duplicate step id '\(steps[i].id)' (first defined at line \(steps[first].line))",
                                             fix: "give each step a unique id"))
            } else {
                index[steps[i].id] = i
            }
        }
        var idsForSuggestion: [String]?
        for i in steps.indices {
            for (k, p) in steps[i].prerequisites.enumerated() where index[p] == nil {
                if idsForSuggestion == nil { idsForSuggestion = steps.map(\.id) }
                let lines = steps[i].prerequisiteLines
                issues.append(ChecklistIssue(
                    file: c.file, line: k < lines.count ? lines[k] : steps[i].line,
                    message: "step '\(steps[i].id)' has an unknown prerequisite '\(p)'",
                    fix: Suggestions.didYouMean(p, in: idsForSuggestion!) ?? "prerequisites name step ids; free text goes under `conditions:`"))
            }
        }
        issues += actionIssues(c, index: index)
        if let f = c.final, index[f] == nil {
            issues.append(ChecklistIssue(file: c.file, line: 1, message: "final step '\(f)' is not a step",
                                         fix: Suggestions.didYouMean(f, in: steps.map(\.id))))
        }
        let graph = ChecklistGraph(c, index: index)
        if graph.topologicalOrder() == nil {
            for cyc in graph.cycles() {
                let names = cyc.map { steps[$0].id }
                issues.append(ChecklistIssue(file: c.file, line: steps[cyc[0]].line,
                                             message: "prerequisite cycle: \(names.joined(separator: " -> "))",
                                             fix: "a step cannot (even indirectly) wait for itself; remove one of these prerequisites"))
            }
        }
        return (issues.sorted { ($0.line, $0.column) < ($1.line, $1.column) }, graph)
    }

    /// The placeholder spelling of an axis: `gain-mode` is `{gain_mode}` (or `{gain-mode}`).
    public static func placeholderNames(axis: String) -> [String] {
        axis.contains("-") ? [axis, axis.replacingOccurrences(of: "-", with: "_")] : [axis]
    }

    /// Axes must be built in or declared under `units:`; command placeholders must be known, and an axis placeholder
    /// needs the step to fan out over that axis; `{workdir:STEP}` must name a step.
    static func actionIssues(_ c: Checklist, index: [String: Int]) -> [ChecklistIssue] {
        var out: [ChecklistIssue] = []
        let knownAxes = StepAction.builtinAxes + c.units.keys.sorted()
        for s in c.steps {
            guard let a = s.action else { continue }
            let line = a.line > 0 ? a.line : s.line
            for axis in a.axes where !knownAxes.contains(axis) {
                out.append(ChecklistIssue(file: c.file, line: line,
                                          message: "step '\(s.id)': unknown axis '\(axis)' in per:",
                                          fix: Suggestions.didYouMean(axis, in: knownAxes)
                                            ?? "declare it at the top: units: {\(axis): [A, B]} (built in: \(StepAction.builtinAxes.joined(separator: ", ")))"))
            }
            guard case .command(let template) = a.kind else { continue }
            let stepAxes = Set(a.axes.flatMap(placeholderNames(axis:)))
            let allAxes = Set(knownAxes.flatMap(placeholderNames(axis:)))
            for p in StepAction.placeholders(in: template) {
                if StepAction.placeholders.contains(p) || stepAxes.contains(p) { continue }
                if p.hasPrefix("param:"), p.count > 6 { continue }
                if p.hasPrefix("workdir:") {
                    let target = String(p.dropFirst(8))
                    if index[target] == nil {
                        out.append(ChecklistIssue(file: c.file, line: line,
                                                  message: "step '\(s.id)': {\(p)} names no step",
                                                  fix: Suggestions.didYouMean(target, in: c.steps.map(\.id))))
                    }
                    continue
                }
                if allAxes.contains(p) {
                    out.append(ChecklistIssue(file: c.file, line: line,
                                              message: "step '\(s.id)': placeholder {\(p)} needs the step to run per \(p.replacingOccurrences(of: "_", with: "-"))",
                                              fix: "add it to per: (per: [\((a.axes + [p]).joined(separator: ", "))])"))
                    continue
                }
                let known = (StepAction.placeholders.sorted() + a.axes).map { "{\($0)}" } + ["{param:NAME}", "{workdir:STEP}"]
                out.append(ChecklistIssue(file: c.file, line: line,
                                          message: "step '\(s.id)': unknown placeholder {\(p)} in the command template",
                                          fix: Suggestions.didYouMean(p, in: StepAction.placeholders.sorted() + a.axes)
                                            ?? "known: \(known.joined(separator: " "))"))
            }
        }
        return out
    }
}
