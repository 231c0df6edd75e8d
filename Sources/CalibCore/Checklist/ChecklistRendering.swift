import Foundation

/// Text renderings of checklists and campaigns: the `checklist show` table, Graphviz dot and Mermaid graphs
/// coloured by state, and the survey report as a text or HTML table.
public enum ChecklistRendering {
    /// Fill colour of each state (dot and Mermaid use the same palette; docs/checklists.md shows it).
    public static func colour(_ s: StepState) -> String {
        switch s {
        case .blocked: "#d9d9d9"
        case .ready: "#9ecae1"
        case .running: "#fff176"
        case .awaitingValidation: "#ffe0b2"
        case .awaitingSignOff: "#ffb74d"
        case .done: "#a5d6a7"
        case .failed: "#ef9a9a"
        case .skipped: "#f5f5f5"
        case .stale: "#ce93d8"
        }
    }

    /// The `checklist show` table plus the ready set and the critical path.
    public static func table(_ o: CampaignOverview) -> String {
        title(o) + align([tableHeader] + tableRows(o)) + summary(o)
    }

    /// The first line of `checklist show`: the campaign or checklist.
    public static func title(_ o: CampaignOverview) -> String {
        o.campaign.map { "campaign \($0) (checklist \(o.checklist), runs \(o.runs ?? "-"))\n" }
            ?? "checklist \(o.checklist): \(o.title)\n"
    }

    public static let tableHeader = ["#", "step", "phase", "owner", "state", "iter", "prerequisites", "unmet"]

    /// One row per step, cells in the order of `tableHeader`.
    public static func tableRows(_ o: CampaignOverview) -> [[String]] {
        o.steps.map { r in
            var state = r.state.rawValue
            if let u = r.unitProgress, r.state == .running || r.state == .failed { state += " \(u)" }
            if r.ifNecessary && r.state != .skipped { state += " (if necessary)" }
            let pre = r.prerequisites.count > 6 ? "\(r.prerequisites.count) steps" : r.prerequisites.joined(separator: ",")
            let unmet = r.unmet.count > 6 ? "\(r.unmet.count) steps" : r.unmet.joined(separator: ",")
            return [r.number.map(String.init) ?? "", r.id, r.phase, r.owner ?? "", state, String(r.iteration),
                    pre.isEmpty ? "-" : pre, unmet.isEmpty ? "-" : unmet]
        }
    }

    /// The lines under the table: notes, the ready set, the critical path, the counts per state.
    public static func summary(_ o: CampaignOverview) -> String {
        var out = ""
        let extras = o.steps.compactMap { r -> String? in
            if let g = r.failingGates, r.state == .awaitingSignOff { return "  \(r.id): gates failed: \(g)" }
            if let why = r.reason, r.state == .skipped { return "  \(r.id): skipped: \(why)" }
            if let why = r.reason, why.hasPrefix("stale:"), r.state == .stale || r.state == .ready { return "  \(r.id): \(why)" }
            if let why = r.reason, r.state == .awaitingSignOff || r.state == .failed { return "  \(r.id): \(why)" }
            if let who = r.approvedBy, r.state == .done { return "  \(r.id): approved by \(who)" }
            return nil
        }
        if !extras.isEmpty { out += "notes:\n" + extras.joined(separator: "\n") + "\n" }
        out += "ready now: " + (o.readyNow.isEmpty ? "nothing" : o.readyNow.joined(separator: ", ")) + "\n"
        if let f = o.finalStep {
            if o.criticalPath.isEmpty {
                out += "critical path to \(f): finished\n"
            } else {
                out += "critical path to \(f) (\(o.criticalPath.count) steps, \(ValidationItem.format(o.criticalPathDays)) days): "
                    + o.criticalPath.joined(separator: " -> ") + "\n"
            }
        }
        let counts = StepState.allCases.compactMap { s in o.counts[s.rawValue].map { "\($0) \(s.rawValue)" } }
        out += "steps: \(o.steps.count) (" + counts.joined(separator: ", ") + ")\n"
        return out
    }

    /// The prerequisites to draw for each step. `full`: every declared one. Otherwise the transitive reduction: an
    /// edge p -> r is left out when another prerequisite of r already (transitively) waits for p, so the picture keeps
    /// the same order with far fewer lines (CLAS12 RG-X: 44 of 95 edges). Edges of the critical path are always kept.
    public static func edges(_ o: CampaignOverview, full: Bool) -> [String: [String]] {
        var byID: [String: [String]] = [:]
        for r in o.steps { byID[r.id] = r.prerequisites }
        if full { return byID }
        var ancestors: [String: Set<String>] = [:]
        func ancestorsOf(_ id: String) -> Set<String> {
            if let a = ancestors[id] { return a }
            var a = Set<String>()
            for p in byID[id] ?? [] { a.insert(p); a.formUnion(ancestorsOf(p)) }
            ancestors[id] = a
            return a
        }
        let critical = Set(zip(o.criticalPath, o.criticalPath.dropFirst()).map { "\($0.0)>\($0.1)" })
        var out: [String: [String]] = [:]
        for r in o.steps {
            out[r.id] = r.prerequisites.filter { p in
                critical.contains("\(p)>\(r.id)") || !r.prerequisites.contains { q in q != p && ancestorsOf(q).contains(p) }
            }
        }
        return out
    }

    /// Graphviz dot: prerequisite -> dependent edges (the transitive reduction unless `full`), nodes filled by
    /// state, the critical path in bold red.
    public static func dot(_ o: CampaignOverview, full: Bool = true) -> String {
        let drawn = edges(o, full: full)
        var out = "digraph \(quote(o.campaign ?? o.checklist)) {\n  rankdir=LR;\n"
        out += edgeComment(o, drawn, prefix: "  // ")
        out += "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\"];\n"
        let critical = Set(zip(o.criticalPath, o.criticalPath.dropFirst()).map { "\($0.0)>\($0.1)" })
        let onPath = Set(o.criticalPath)
        for r in o.steps {
            let label = [r.number.map { "\($0). \(r.title)" } ?? r.title, "\(r.id) [\(r.state.rawValue)]"
                            + (r.iteration > 1 ? " x\(r.iteration)" : "")].joined(separator: "\\n")
            var attrs = "label=\(quote(label, raw: true)), fillcolor=\(quote(colour(r.state)))"
            if r.ifNecessary { attrs += ", style=\"rounded,filled,dashed\"" }
            if onPath.contains(r.id) { attrs += ", penwidth=2" }
            out += "  \(quote(r.id)) [\(attrs)];\n"
        }
        for r in o.steps {
            for p in drawn[r.id] ?? [] {
                let bold = critical.contains("\(p)>\(r.id)") ? " [color=\"#c62828\", penwidth=2]" : ""
                out += "  \(quote(p)) -> \(quote(r.id))\(bold);\n"
            }
        }
        return out + "}\n"
    }

    /// "transitive reduction: 44 of 95 prerequisite edges drawn (--full draws all)", or nothing when all are drawn.
    static func edgeComment(_ o: CampaignOverview, _ drawn: [String: [String]], prefix: String) -> String {
        let all = o.steps.reduce(0) { $0 + $1.prerequisites.count }, shown = drawn.values.reduce(0) { $0 + $1.count }
        return shown == all ? "" : "\(prefix)transitive reduction: \(shown) of \(all) prerequisite edges drawn (--full draws all)\n"
    }

    /// Mermaid flowchart with one class per state (the transitive reduction of the edges unless `full`).
    public static func mermaid(_ o: CampaignOverview, full: Bool = true) -> String {
        let drawn = edges(o, full: full)
        var out = "flowchart LR\n" + edgeComment(o, drawn, prefix: "  %% ")
        var ids: [String: String] = [:]
        for (i, r) in o.steps.enumerated() { ids[r.id] = "s\(i)_" + r.id.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() }
        for r in o.steps {
            let title = (r.number.map { "\($0). " } ?? "") + r.title
            let label = "\(title)<br/>\(r.state.rawValue)" + (r.iteration > 1 ? " x\(r.iteration)" : "")
            out += "  \(ids[r.id]!)[\"\(label.replacingOccurrences(of: "\"", with: "#quot;"))\"]:::\(cls(r.state))\n"
        }
        let onPath = zip(o.criticalPath, o.criticalPath.dropFirst()).map { "\($0.0)>\($0.1)" }
        var linkIndex = 0
        var criticalLinks: [Int] = []
        for r in o.steps {
            for p in drawn[r.id] ?? [] {
                guard let a = ids[p], let b = ids[r.id] else { continue }
                out += "  \(a) --> \(b)\n"
                if onPath.contains("\(p)>\(r.id)") { criticalLinks.append(linkIndex) }
                linkIndex += 1
            }
        }
        for s in StepState.allCases {
            out += "  classDef \(cls(s)) fill:\(colour(s)),stroke:#555\n"
        }
        if !criticalLinks.isEmpty {
            out += "  linkStyle \(criticalLinks.map(String.init).joined(separator: ",")) stroke:#c62828,stroke-width:3px\n"
        }
        return out
    }

    static func cls(_ s: StepState) -> String { s.rawValue.replacingOccurrences(of: "-", with: "_") }

    static func quote(_ s: String, raw: Bool = false) -> String {
        var e = s.replacingOccurrences(of: "\"", with: "\\\"")
        if !raw { e = e.replacingOccurrences(of: "\\n", with: "\\\\n") }
        return "\"\(e)\""
    }

    /// Left-aligned columns separated by two spaces; a column empty in every row but the header is left out.
    /// (The CLI renders its tables with `TextTable`, which also fits the terminal and colours states.)
    public static func align(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        let shown = first.indices.filter { i in rows.dropFirst().contains { i < $0.count && !$0[i].isEmpty } || rows.count == 1 }
        var widths = [Int](repeating: 0, count: first.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            var line = shown.enumerated().map { k, i in
                let c = i < r.count ? r[i] : ""
                return k == shown.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
            while line.last == " " { line.removeLast() }
            return line
        }.joined(separator: "\n") + "\n"
    }
}
