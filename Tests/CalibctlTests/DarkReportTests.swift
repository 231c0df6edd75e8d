import CalibTestSupport
import Foundation
import Testing

/// The dark-processing report (the shared renderer's third report), checked in a real headless Chromium: two lcls-dark
/// campaigns from `tick` (the second compared with the constants the first deployed, from another dark run), the
/// report compare-previous writes into its step directory, `calibctl report --dark` on demand with its PDF, the maps
/// per panel and gain mode drawn with data, the status counts and the per-panel comparison. With
/// CALIBCTL_DOCS_SCREENSHOTS=DIR it writes docs/report-dark.png. Also the survey table's derived columns.
@Suite(.serialized) struct DarkReportTests {
    static func runDark(_ w: WorkflowWorkspace, _ name: String, runs: String, input: String, extra: [String] = []) throws {
        try w.cli(["campaign", "create", name, "--checklist", "lcls-dark", "--runs", runs, "--param", "input=\(input)"] + extra)
        try w.tickUntil { try w.state(name, "dark-runs") == "awaiting-validation" }
        try w.cli(["step", "approve", name, "dark-runs", "--note", "logged"])
        try w.tickUntil {
            for (id, row) in try w.steps(name) where ["awaiting-sign-off", "awaiting-validation"].contains(row["state"] as? String) {
                try w.cli(["step", "approve", name, id, "--note", "checked"])
            }
            return try w.state(name, "lcls-export") == "done"
        }
    }

    @Test func darkReportInChromium() throws {
        guard let chromium = which("chromium") ?? which("chromium-browser") else {
            Issue.record("chromium is not installed: scripts/test.sh installs it (bootstrap --with-browser)")
            return
        }
        let w = WorkflowWorkspace("dark-report", extra: ["CALIBCTL_CHROMIUM": chromium])
        try w.cli(["simulate", "dark", "-o", "A/dark.h5", "--shape", "2x64x128", "--frames", "120", "--gain-modes", "3", "--seed", "5"])
        try w.cli(["simulate", "dark", "-o", "B/dark.h5", "--shape", "2x64x128", "--frames", "120", "--gain-modes", "3", "--seed", "9"])
        try w.cli(["store", "init"])
        try w.cli(["store", "detector", "add", "jungfrau", "--kind", "jungfrau"])
        try Self.runDark(w, "d1", runs: "100-110", input: "A", extra: ["--param", "validity=100-110", "--param", "report_pdf=false"])
        try Self.runDark(w, "d2", runs: "120-130", input: "B", extra: ["--param", "fairshare_cores=2"])

        // compare-previous wrote the report (and, Chromium being here, its PDF) into its step directory.
        let step = { (c: String) in w.root + "/home/campaigns/\(c)/compare-previous/i1/" }
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: step("d2") + "report.html") && fm.fileExists(atPath: step("d2") + "report.pdf"))
        #expect(fm.fileExists(atPath: step("d1") + "report.html") && !fm.fileExists(atPath: step("d1") + "report.pdf"),
                "report_pdf=false: no PDF")
        let first = try String(contentsOfFile: step("d1") + "report.html", encoding: .utf8)
        #expect(first.contains("first calibration") && !first.contains("data-map=\"shift\""))

        // On demand, with its PDF.
        let r = try w.cli(["report", "--campaign", "d2", "--dark", "dark.html", "--pdf"])
        #expect(r.stdout.contains("pdf: "), "\(r.stdout)")
        let pdf = (try? FileManager.default.attributesOfItem(atPath: w.root + "/dark.pdf")[.size] as? Int) ?? 0
        #expect(pdf > 10_000, "dark.pdf: \(pdf) bytes")
        if let pdfinfo = which("pdfinfo") {
            let info = try runProcess(pdfinfo, [w.root + "/dark.pdf"]).stdout
            let pages = Int(info.split(separator: "\n").first { $0.hasPrefix("Pages:") }?.split(separator: " ").last ?? "") ?? 0
            #expect(pages >= 6, "a page per section at least: \(info)")
        }
        let html = try String(contentsOfFile: w.root + "/dark.html", encoding: .utf8)
        #expect(!html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http"), "self-contained")

        // The DOM as Chromium built it: every map per panel and gain mode exists, drawn, with data.
        let dom = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom",
                                            "file://" + w.root + "/dark.html"])
        #expect(dom.status == 0)
        let canvases = dom.stdout.components(separatedBy: "<canvas").dropFirst().map { $0.prefix { $0 != ">" } }
        for map in ["pedestal", "rms", "status", "shift"] {
            for mode in 0..<3 {
                for panel in 0..<2 {
                    let c = canvases.first { $0.contains("data-map=\"\(map)\"") && $0.contains("data-gain-mode=\"\(mode)\"") && $0.contains("data-panel=\"\(panel)\"") }
                    #expect(c != nil, "no \(map) map for gain mode \(mode), panel \(panel)")
                    guard let c else { continue }
                    #expect(c.contains("data-drawn=\"1\"") && c.contains("width=\"128\"") && c.contains("height=\"64\""), "\(map) g\(mode) p\(panel) not drawn")
                    let px = c.components(separatedBy: "data-px=\"").last?.prefix { $0 != "\"" } ?? ""
                    let codes = Data(base64Encoded: String(px)) ?? Data()
                    #expect(codes.count == 64 * 128, "\(map) g\(mode) p\(panel): \(codes.count) codes")
                    if map != "status" { #expect(Set(codes).count > 20, "\(map) g\(mode) p\(panel) shows values") }
                }
            }
        }
        #expect(dom.stdout.contains("class=\"bits\"") && dom.stdout.contains("rms high (noisy)"), "status counts per bit")
        let shifts = dom.stdout.components(separatedBy: "class=\"shifts\"").last?.components(separatedBy: "</table>").first ?? ""
        #expect(shifts.components(separatedBy: "<tr").count - 2 == 6, "one comparison row per panel and gain mode")
        #expect(dom.stdout.contains("tag <b>default</b>"), "compared with the constants in use")

        if let docs = ProcessInfo.processInfo.environment["CALIBCTL_DOCS_SCREENSHOTS"] {
            // Gain mode 0's maps, the status counts and the comparison (the other gain modes and the rms hidden).
            let png = w.root + "/report-dark.png", only = w.root + "/dark-shot.html"
            let style = "<style>nav,#rms,.mode-maps:not([data-gain-mode=\"0\"]),body>p.note{display:none}section{margin-top:12px}</style></head>"
            try html.replacingOccurrences(of: "</head>", with: style).write(toFile: only, atomically: true, encoding: .utf8)
            _ = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=3000",
                                          "--window-size=1100,1700", "--screenshot=\(png)", "file://" + only])
            let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
            #expect(size > 15_000 && size < 400_000, "report-dark.png: \(size) bytes")
            try? FileManager.default.removeItem(atPath: docs + "/report-dark.png")
            try FileManager.default.copyItem(atPath: png, toPath: docs + "/report-dark.png")
        }

        // Not a dark campaign: refused by its state (65), naming it.
        try w.cli(["campaign", "create", "empty", "--checklist", "lcls-dark", "--runs", "1-2", "--param", "input=A"])
        let none = try w.cli(["report", "--campaign", "empty", "--dark", "x.html"], expect: 65)
        #expect(none.stderr.contains("campaign empty") && none.stderr.contains("pedestals"), "\(none.stderr)")
        try w.cli(["report", "--campaign", "d2", "--dark", "x.html", "--json"], expect: 64)

        // The survey table's derived columns: fairshare days from the campaign parameter, disk per iteration.
        let j = try w.json(["report", "--campaign", "d2"]) as? [String: Any] ?? [:]
        #expect(j["fairshareCores"] as? Int == 2)
        let sources = j["sources"] as? [String: String] ?? [:]
        #expect(sources["fairshareDays"]?.contains("fairshare_cores") == true && sources["diskTBPerIteration"] != nil, "\(sources)")
        let dp = (j["steps"] as? [[String: Any]] ?? []).first { $0["id"] as? String == "dark-process" } ?? [:]
        let cpu = dp["cpuHours"] as? Double ?? 0, fs = dp["fairshareDays"] as? Double ?? -1
        #expect(cpu > 0 && abs(fs - cpu / 48) < 1e-12, "\(dp)")
        let written = Double(dp["diskBytesWritten"] as? Int ?? 0), it = Double(dp["iterations"] as? Int ?? 1)
        #expect(abs((dp["diskTBPerIteration"] as? Double ?? -1) - written / 1e12 / it) < 1e-15, "\(dp)")
        let over = try w.json(["report", "--campaign", "d2", "--fairshare-cores", "48"]) as? [String: Any] ?? [:]
        #expect(over["fairshareCores"] as? Int == 48 && ((over["sources"] as? [String: String])?["fairshareDays"]?.contains("--fairshare-cores") ?? false))
        let text = try w.cli(["report", "--campaign", "d1"], expect: 0).stdout
        #expect(text.contains("fairshare (days)") && text.contains("disk (TB/iteration)"), "\(text)")
        #expect(text.contains("fairshare (days): CPU hours") && text.contains("the default"), "\(text)")
        try w.cli(["report", "--campaign", "d1", "--fairshare-cores", "0"], expect: 64)
        let page = try w.cli(["report", "--campaign", "d2", "--html", "-"]).stdout
        #expect(page.contains("fairshare (days)") && page.contains("class=\"note source\""))
    }
}
