import CalibCore
import Foundation

/// The campaign view with the report machinery: the checklist as a coloured graph (inline SVG: one box per step filled
/// by its state, the transitive reduction of the prerequisites unless `full`, the critical path in red) and the
/// task-force survey table.
public enum CampaignReportPage {
    public static func html(overview o: CampaignOverview, report r: CampaignReport, full: Bool = false) -> String {
        var doc = ReportDocument(title: "Campaign \(r.campaign)",
                                 intro: "<p>Checklist <b>\(HTML.esc(r.checklist))</b>, runs \(HTML.esc(r.runs)); generated "
                                    + "\(ISO8601DateFormatter().string(from: r.generatedAt)) from the records.</p>")
        var g = graph(o, full: full)
        let counts = StepState.allCases.compactMap { s in o.counts[s.rawValue].map { "\($0) \(s.rawValue)" } }.joined(separator: ", ")
        g += "<p>\(o.steps.count) steps (\(HTML.esc(counts))). Ready now: \(HTML.esc(o.readyNow.isEmpty ? "nothing" : o.readyNow.joined(separator: ", "))).</p>"
        if let f = o.finalStep {
            g += o.criticalPath.isEmpty ? "<p class=\"ok\">Critical path to \(HTML.esc(f)): finished.</p>"
                : "<p>Critical path to \(HTML.esc(f)) (\(o.criticalPath.count) steps, \(HTML.f(o.criticalPathDays, 1)) days), in red: "
                    + HTML.esc(o.criticalPath.joined(separator: " \u{2192} ")) + ".</p>"
        }
        doc.add("checklist", "Checklist", g)
        doc.add("survey", "Survey table", survey(r))
        return doc.html()
    }

    static func survey(_ r: CampaignReport) -> String {
        let cells = (r.steps + [r.totals]).map(ReportRendering.cells)
        // A column empty in every row (the step numbers of a checklist without them) is left out.
        let shown = ReportRendering.header.indices.filter { i in cells.contains { i < $0.count && !$0[i].isEmpty } }
        let header = shown.map { ReportRendering.header[$0] }
        let stateColumn = shown.firstIndex(of: 2) ?? -1, leftColumns = shown.filter { $0 < 3 }.count
        let rows = zip(r.steps + [r.totals], cells).map { row, c in
            shown.enumerated().map { k, i in HTML.Cell(c[i], left: k < leftColumns, cls: k == stateColumn && row.state != nil ? "state" : nil) }
        }
        var t = HTML.table(header, rows, leftColumns: leftColumns, attributes: "class=\"survey\"")
        // Colour the state cells like the graph.
        for row in r.steps {
            guard let s = row.state else { continue }
            t = t.replacingOccurrences(of: "<td class=\"l state\">\(s.rawValue)</td>",
                                       with: "<td class=\"l state\" style=\"background:\(ChecklistRendering.colour(s))\">\(s.rawValue)</td>")
        }
        return t + "<p class=\"note\">Effort from the jobs' records and <code>calibctl step effort</code>; disk in powers of 1000 (TB as the survey's); "
            + "days from the first start to the last time the step became done.</p>"
            + ReportRendering.sources(r).map { "<p class=\"note source\">\(HTML.esc($0)).</p>" }.joined()
    }

    /// Layered layout: a step's column is one more than its deepest prerequisite's.
    public static func graph(_ o: CampaignOverview, full: Bool) -> String {
        let drawn = ChecklistRendering.edges(o, full: full)
        var layer: [String: Int] = [:]
        let byID = Dictionary(o.steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        func depth(_ id: String, _ seen: Set<String> = []) -> Int {
            if let l = layer[id] { return l }
            guard !seen.contains(id) else { return 0 }
            let l = (byID[id]?.prerequisites ?? []).map { depth($0, seen.union([id])) + 1 }.max() ?? 0
            layer[id] = l
            return l
        }
        for s in o.steps { _ = depth(s.id) }
        var columns: [Int: [String]] = [:]
        for s in o.steps { columns[layer[s.id] ?? 0, default: []].append(s.id) }
        let boxW = 168.0, boxH = 38.0, gapX = 46.0, gapY = 12.0, pad = 10.0
        var pos: [String: (x: Double, y: Double)] = [:]
        let maxRows = columns.values.map(\.count).max() ?? 1
        for (c, ids) in columns {
            for (k, id) in ids.enumerated() { pos[id] = (pad + Double(c) * (boxW + gapX), pad + 18 + Double(k) * (boxH + gapY)) }
        }
        let width = pad * 2 + Double(columns.count) * (boxW + gapX) - gapX, height = pad * 2 + 18 + Double(maxRows) * (boxH + gapY) + 26
        let onPath = Set(o.criticalPath), critical = Set(zip(o.criticalPath, o.criticalPath.dropFirst()).map { "\($0.0)>\($0.1)" })
        let n = ReportSVG.n
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"checklist-graph\" data-steps=\"\(o.steps.count)\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"checklist graph\">"
        s += "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#777\"/></marker>"
        s += "<marker id=\"arrowc\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c62828\"/></marker></defs>"
        let all = o.steps.reduce(0) { $0 + $1.prerequisites.count }, shown = drawn.values.reduce(0) { $0 + $1.count }
        s += "<text x=\"\(n(pad))\" y=\"14\" font-size=\"10\" fill=\"#555\">\(shown == all ? "all \(all) prerequisite edges" : "transitive reduction: \(shown) of \(all) prerequisite edges") drawn; red: critical path</text>"
        var edgesSVG = "", criticalSVG = ""
        for r in o.steps {
            for p in drawn[r.id] ?? [] {
                guard let a = pos[p], let b = pos[r.id] else { continue }
                let x1 = a.x + boxW, y1 = a.y + boxH / 2, x2 = b.x, y2 = b.y + boxH / 2, mx = (x1 + x2) / 2
                let d = "M\(n(x1)),\(n(y1)) C\(n(mx)),\(n(y1)) \(n(mx)),\(n(y2)) \(n(x2)),\(n(y2))"
                if critical.contains("\(p)>\(r.id)") {
                    criticalSVG += "<path class=\"edge critical\" d=\"\(d)\" fill=\"none\" stroke=\"#c62828\" stroke-width=\"2.6\" marker-end=\"url(#arrowc)\"/>"
                } else {
                    edgesSVG += "<path class=\"edge\" d=\"\(d)\" fill=\"none\" stroke=\"#999\" stroke-width=\"1\" marker-end=\"url(#arrow)\"/>"
                }
            }
        }
        s += edgesSVG + criticalSVG
        for r in o.steps {
            guard let p = pos[r.id] else { continue }
            let crit = onPath.contains(r.id)
            let title = (r.number.map { "\($0). " } ?? "") + r.title
            s += "<g class=\"node\(crit ? " critical" : "")\" data-step=\"\(HTML.esc(r.id))\" data-state=\"\(r.state.rawValue)\"><title>\(HTML.esc(title)): \(r.state.rawValue)\(r.owner.map { ", owner \($0)" } ?? "")</title>"
            s += "<rect x=\"\(n(p.x))\" y=\"\(n(p.y))\" width=\"\(n(boxW))\" height=\"\(n(boxH))\" rx=\"6\" fill=\"\(ChecklistRendering.colour(r.state))\" stroke=\"\(crit ? "#c62828" : "#555")\" stroke-width=\"\(crit ? "2.4" : "0.8")\"\(r.ifNecessary ? " stroke-dasharray=\"4 2\"" : "")/>"
            let label = title.count > 28 ? String(title.prefix(27)) + "\u{2026}" : title
            s += "<text x=\"\(n(p.x + 6))\" y=\"\(n(p.y + 15))\" font-size=\"10\" font-weight=\"bold\">\(HTML.esc(label))</text>"
            s += "<text x=\"\(n(p.x + 6))\" y=\"\(n(p.y + 29))\" font-size=\"9\">\(HTML.esc(r.id)) [\(r.state.rawValue)]\(r.iteration > 1 ? " x\(r.iteration)" : "")</text></g>"
        }
        // Legend.
        var lx = pad
        let ly = height - 14
        for st in StepState.allCases {
            s += "<rect x=\"\(n(lx))\" y=\"\(n(ly - 9))\" width=\"10\" height=\"10\" fill=\"\(ChecklistRendering.colour(st))\" stroke=\"#555\" stroke-width=\"0.5\"/>"
            s += "<text x=\"\(n(lx + 13))\" y=\"\(n(ly))\" font-size=\"9\">\(st.rawValue)</text>"
            lx += 20 + Double(st.rawValue.count) * 5.4
        }
        return "<div style=\"overflow-x:auto\">" + s + "</svg></div>"
    }
}
