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
}
