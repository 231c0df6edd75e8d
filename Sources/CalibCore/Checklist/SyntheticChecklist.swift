import Foundation

/// Deterministic large checklists for benchmarks and tests: `count` steps in 10 phases, each step waiting for up to
/// `maxPrerequisites` earlier steps (mostly recent ones, some far back), so the graph is acyclic and deep.
public enum SyntheticChecklist {
    public static func make(steps count: Int, maxPrerequisites: Int = 3, seed: UInt64 = 1) -> Checklist {
        var rng = SplitMix64(seed: seed)
        var steps: [ChecklistStep] = []
        steps.reserveCapacity(count)
        for i in 0..<count {
            var pre: [String] = []
            if i > 0 {
                let k = Int(rng.next() % UInt64(maxPrerequisites + 1))
                for _ in 0..<k {
                    let back = rng.nextUniform() < 0.8 ? 1 + Int(rng.next() % UInt64(min(i, 20)))
                        : 1 + Int(rng.next() % UInt64(i))
                    let id = "step-\(i - back)"
                    if !pre.contains(id) { pre.append(id) }
                }
            }
            var validation: [ValidationItem] = []
            if i % 7 == 0 { validation.append(ValidationItem(name: "good", metric: "fraction_good", min: 0.98)) }
            steps.append(ChecklistStep(id: "step-\(i)", number: i + 1, title: "Synthetic step \(i)",
                                       phase: "phase \(i * 10 / max(count, 1))", owner: "owner \(i % 17)",
                                       prerequisites: pre, validation: validation,
                                       ifNecessary: i % 11 == 5, estimateDays: 1 + Double(i % 5),
                                       action: i % 3 == 0 ? StepAction(kind: .command("true"), axes: ["run"]) : nil,
                                       line: i + 1))
        }
        return Checklist(name: "synthetic-\(count)", title: "Synthetic checklist of \(count) steps", steps: steps,
                         file: "<synthetic>")
    }

    /// The same checklist as YAML text (for timing the loader).
    public static func yaml(_ c: Checklist) -> String {
        var out = "checklist: \(c.name)\ntitle: \(c.title)\nformat: 1\nsteps:\n"
        out.reserveCapacity(c.steps.count * 160)
        for s in c.steps {
            out += "  - id: \(s.id)\n    number: \(s.number ?? 0)\n    title: \(s.title)\n    phase: \(s.phase)\n"
            out += "    owner: \(s.owner ?? "")\n"
            if !s.prerequisites.isEmpty { out += "    prerequisites: [\(s.prerequisites.joined(separator: ", "))]\n" }
            for g in s.gates { out += "    validation:\n      - {name: \(g.name), metric: \(g.metric!), min: \(g.min!)}\n" }
            if s.ifNecessary { out += "    if_necessary: true\n" }
            out += "    estimate_days: \(s.estimateDays)\n"
            if s.action != nil { out += "    action: {command: \"true\", per: run}\n" }
        }
        return out
    }
}
