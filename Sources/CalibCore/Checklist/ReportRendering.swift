import Foundation

/// The survey report as a text table or a self-contained HTML page.
public enum ReportRendering {
    public static let header = ["#", "step", "state", "iterations", "runs", "events", "jobs", "CPU h", "fairshare (days)",
                                "wall h", "disk written", "disk (TB/iteration)", "disk held", "days"]

    public static func cells(_ r: CampaignReport.Row) -> [String] {
        [r.number.map(String.init) ?? "", r.id, r.state?.rawValue ?? "", String(r.iterations), String(r.runs),
         String(r.events), String(r.jobs), String(format: "%.2f", r.cpuHours), r.fairshareDays.map { small($0, 2) } ?? "-",
         String(format: "%.2f", r.wallHours), bytes(r.diskBytesWritten), r.diskTBPerIteration.map { small($0, 3) } ?? "-",
         bytes(r.diskBytesHeld), r.elapsedDays.map { String(format: "%.2f", $0) } ?? "-"]
    }

    /// A figure with `digits` decimals, or in scientific notation when that would print 0 for a value that is not.
    public static func small(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return "-" }
        if x == 0 { return "0" }
        return abs(x) >= pow(10, -Double(digits)) ? String(format: "%.\(digits)f", x) : String(format: "%.1e", x)
    }

    /// The footnote under the survey table: where the derived columns come from.
    public static func sources(_ r: CampaignReport) -> [String] {
        let s = r.sources ?? [:]
        return [("fairshare (days)", "fairshareDays"), ("disk (TB/iteration)", "diskTBPerIteration")].compactMap { name, key in
            s[key].map { "\(name): \($0)" }
        }
    }

    /// Bytes in B / kB / MB / GB / TB (powers of 1000, as the survey's TB).
    public static func bytes(_ n: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var v = Double(n), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n) B" : String(format: "%.2f %@", v, units[u])
    }

    public static func title(_ r: CampaignReport) -> String {
        "campaign \(r.campaign) (checklist \(r.checklist), runs \(r.runs))\n"
    }

    public static func text(_ r: CampaignReport) -> String {
        var out = title(r)
        out += ChecklistRendering.align([header] + r.steps.map(cells) + [cells(r.totals)])
        return out
    }

    public static func html(_ r: CampaignReport) -> String {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        var out = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>calibctl report: \(esc(r.campaign))</title>
            <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}
            td.n{text-align:right}tfoot td{font-weight:bold}</style></head><body>
            <h1>Campaign \(esc(r.campaign))</h1>
            <p>Checklist \(esc(r.checklist)), runs \(esc(r.runs)); generated \(esc(ISO8601DateFormatter().string(from: r.generatedAt))) by calibctl.</p>
            <table><thead><tr>
            """
        out += header.map { "<th>\(esc($0))</th>" }.joined() + "</tr></thead><tbody>\n"
        for row in r.steps {
            let c = cells(row)
            out += "<tr style=\"background:\(row.state.map(ChecklistRendering.colour) ?? "#fff")\">"
                + c.enumerated().map { i, v in i >= 3 ? "<td class=\"n\">\(esc(v))</td>" : "<td>\(esc(v))</td>" }.joined()
                + "</tr>\n"
        }
        out += "</tbody><tfoot><tr>" + cells(r.totals).enumerated().map { i, v in
            i >= 3 ? "<td class=\"n\">\(esc(v))</td>" : "<td>\(esc(v))</td>"
        }.joined() + "</tr></tfoot></table>\n</body></html>\n"
        return out
    }
}
