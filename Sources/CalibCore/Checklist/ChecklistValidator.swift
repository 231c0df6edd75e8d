/// Checks a parsed checklist as a graph: duplicate ids, unknown prerequisites (with "did you mean"), cycles
/// (`a -> b -> a`), an unknown `final:` step. Every issue carries the file and line.
public enum ChecklistValidator {
    public static func validate(_ c: Checklist) -> [ChecklistIssue] {
        var issues: [ChecklistIssue] = []
        var firstLine: [String: Int] = [:]
        firstLine.reserveCapacity(c.steps.count)
        for s in c.steps {
            if let l = firstLine[s.id] {
                issues.append(ChecklistIssue(file: c.file, line: s.line, message: "duplicate step id '\(s.id)' (first defined at line \(l))",
                                             fix: "give each step a unique id"))
            } else {
                firstLine[s.id] = s.line
            }
        }
        var idsForSuggestion: [String]?
        for s in c.steps {
            for (k, p) in s.prerequisites.enumerated() where firstLine[p] == nil {
                if idsForSuggestion == nil { idsForSuggestion = c.steps.map(\.id) }
                let line = k < s.prerequisiteLines.count ? s.prerequisiteLines[k] : s.line
                issues.append(ChecklistIssue(
                    file: c.file, line: line,
                    message: "step '\(s.id)' has an unknown prerequisite '\(p)'",
                    fix: Suggestions.didYouMean(p, in: idsForSuggestion!) ?? "prerequisites name step ids; free text goes under `conditions:`"))
            }
        }
        if let f = c.final, firstLine[f] == nil {
            issues.append(ChecklistIssue(file: c.file, line: 1, message: "final step '\(f)' is not a step",
                                         fix: Suggestions.didYouMean(f, in: c.steps.map(\.id))))
        }
        let graph = ChecklistGraph(c)
        if graph.topologicalOrder() == nil {
            for cyc in graph.cycles() {
                let names = cyc.map { c.steps[$0].id }
                issues.append(ChecklistIssue(file: c.file, line: c.steps[cyc[0]].line,
                                             message: "prerequisite cycle: \(names.joined(separator: " -> "))",
                                             fix: "a step cannot (even indirectly) wait for itself; remove one of these prerequisites"))
            }
        }
        return issues.sorted { ($0.line, $0.column) < ($1.line, $1.column) }
    }
}
