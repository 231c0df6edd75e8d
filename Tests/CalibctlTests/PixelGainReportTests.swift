import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// The expert summary report, checked in a real headless Chromium: two runs (the second compared with the first's
/// payload, one dead ROC, one FED that needed a second attempt), the maps per layer and disk with their modules, the
/// drill-down canvases drawn, the example fits, the per-module comparison, the FED table, the PDF's pages (pdfinfo),
/// the archive, and the campaign view with its graph. With CALIBCTL_DOCS_SCREENSHOTS=DIR it writes the section
/// screenshots shown in docs/ (docs/report-*.png).
@Suite(.serialized) struct PixelGainReportTests {
    static let sections = ["maps", "modules", "fits", "comparison", "feds"]

    @Test func expertReportInChromium() throws {
        guard let chromium = which("chromium") ?? which("chromium-browser") else {
            Issue.record("chromium is not installed: scripts/test.sh installs it (bootstrap --with-browser)")
            return
        }
        guard let pdfinfo = which("pdfinfo") else {
            Issue.record("pdfinfo is not installed: scripts/bootstrap.sh --with-browser installs poppler-utils")
            return
        }
        let tmp = TemporaryDirectory("pixelgain-report")
        let env = ["CALIBCTL_HOME": tmp.path + "/home", "CALIBCTL_STORE": tmp.path + "/store", "CALIBCTL_CHROMIUM": chromium]
        @discardableResult func cli(_ a: [String], expect: Int32 = 0) throws -> ProcessResult {
            let r = try calibctl(a, environment: env, currentDirectory: tmp.path)
            #expect(r.status == expect, "calibctl \(a.joined(separator: " ")) exited \(r.status): \(r.stdout) \(r.stderr)")
            return r
        }
        func finish(_ run: String, expect: Int32) throws {
            try cli(["status", run, "--watch", "--interval", "0.3"], expect: expect)
        }
        let geometry = ["--modules-per-fed", "2", "--rows", "160", "--cols", "104"]
        try cli(["simulate", "gain", "-o", "scans1", "--feds", "1200,1296", "--run", "500", "--seed", "3"] + geometry)
        try cli(["store", "init"]); try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"]); try cli(["vcal", "put", "V1"])
        try cli(["create", "500", "-t", "V1", "-i", "scans1"]); try cli(["submit", "500"]); try finish("500", expect: 0)
        try cli(["merge", "500"]); try cli(["summary", "500", "--no-pdf"])
        try cli(["step", "approve", "pixelgain-500", "validation", "--note", "test"]); try cli(["payload", "500", "2026", "1"])

        // Run 600: ROC 1 of the second module of FED 1200 is dead; FED 1296's scan arrives late (second attempt).
        try cli(["simulate", "gain", "-o", "scans2", "--feds", "1200,1296", "--run", "600", "--seed", "4"] + geometry)
        do {
            let f = try HDF5File.open(tmp.file("scans2/fed_1200.h5"), writable: true)
            let n = try f.dataset("/n")
            let points = n.shape[1], zeros = [Float](repeating: 0, count: 52 * points)
            for r in 0..<80 {
                let row = 160 * 104 + r * 104 + 52
                try zeros.withUnsafeBufferPointer { try n.writeRows(row..<(row + 52), from: $0) }
            }
            try f.close()
        }
        try cli(["create", "600", "-t", "V1", "-i", "scans2"])
        try FileManager.default.moveItem(atPath: tmp.file("scans2/fed_1296.h5"), toPath: tmp.file("fed_1296.parked"))
        try cli(["submit", "600"]); try finish("600", expect: 1)
        try FileManager.default.moveItem(atPath: tmp.file("fed_1296.parked"), toPath: tmp.file("scans2/fed_1296.h5"))
        try cli(["resubmit", "600"]); try finish("600", expect: 0)
        // The dead ROC fails the fit's quality gates: merging waits for the expert's sign-off, and says so.
        let waits = try cli(["merge", "600"], expect: 75)
        #expect(waits.stderr.contains("step approve pixelgain-600 gain-fit"), "\(waits.stderr)")
        try cli(["step", "approve", "pixelgain-600", "gain-fit", "--note", "dead ROC known"]); try cli(["merge", "600"])
        let bad = try cli(["summary", "600", "--module", "0x99", "--no-pdf"], expect: 64)
        #expect(bad.stderr.contains("0x99") && bad.stderr.contains("0x12000000"))
        let s = try cli(["summary", "600", "-o", "report.html", "--archive", "--module", "0x12000001"])
        #expect(s.stdout.contains("pdf: ") && s.stdout.contains("archive: "), "\(s.stdout)")

        // The PDF: one page per section at least.
        let info = try runProcess(pdfinfo, [tmp.file("report.pdf")])
        let pages = Int(info.stdout.split(separator: "\n").first { $0.hasPrefix("Pages:") }?.split(separator: " ").last ?? "") ?? 0
        #expect(pages >= 7, "report.pdf has \(pages) page(s): \(info.stdout) \(info.stderr)")

        // The archive: report, PDF, merged fit, the FED logs of both attempts, the text summary.
        let tar = try runProcess("/usr/bin/env", ["tar", "tzf", tmp.file("pixelgain-600-report.tar.gz")])
        for f in ["summary.html", "summary.pdf", "gain_run600.h5", "summary.txt", "validation.json",
                  "logs/fed_1296/attempt-1.err", "logs/fed_1296/attempt-2.out", "logs/fed_1200/attempt-1.out"] {
            #expect(tar.stdout.contains("pixelgain-600-report/" + f), "archive lacks \(f): \(tar.stdout)")
        }

        // The DOM as the browser built it (scripts ran: the canvases are drawn).
        let url = "file://" + tmp.file("report.html")
        let dom = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=3000", "--dump-dom", url])
        #expect(dom.status == 0)
        let svgs = dom.stdout.components(separatedBy: "<svg").dropFirst()
        for part in ["BPix L1", "FPix D1"] {
            let maps = svgs.filter { svg in
                let tag = svg.prefix { $0 != ">" }
                return tag.contains("class=\"map\"") && tag.contains("data-part=\"\(part)\"")
            }
            #expect(maps.count == 4, "\(part): \(maps.count) maps (gain, pedestal, status, gain shift)")
            for m in maps {
                let body = m.components(separatedBy: "</svg>")[0]
                #expect(body.components(separatedBy: "class=\"mod\"").count - 1 == 2, "\(part): every map shows the run's 2 modules")
                #expect(body.contains("class=\"empty\""), "\(part): the rest of the geometry is drawn")
            }
        }
        #expect(!svgs.contains { $0.prefix { $0 != ">" }.contains("data-part=\"BPix L2\"") }, "layers without modules are not drawn")
        let status = svgs.first { $0.prefix { $0 != ">" }.contains("data-map=\"status\" data-part=\"BPix L1\"") } ?? ""
        #expect(status.contains("class=\"roc bad\"") && status.contains("class=\"badmod\""), "the dead ROC and its module stand out")
        #expect(dom.stdout.components(separatedBy: "data-drawn=\"1\"").count - 1 >= 6, "drill-down canvases not drawn")
        #expect(dom.stdout.contains("data-detid=\"0x12000001\"") && dom.stdout.contains("requested with --module"))
        let fits = svgs.filter { $0.contains("class=\"fit\"") }
        #expect(fits.count >= 6, "\(fits.count) example fits")
        #expect(fits.contains { $0.contains("class=\"fitline\"") && $0.contains("class=\"pt sel\"") && $0.contains("class=\"plateau\"") })
        #expect(dom.stdout.contains("data-status=\"never_pulsed\""), "the dead ROC's pixels get example fits")
        #expect(dom.stdout.contains("SiPixelGainCalibration_2026_v1_offline") && dom.stdout.contains("class=\"worst\""))
        #expect(dom.stdout.contains("FEDs that needed more than one attempt") && dom.stdout.contains("no such file"))
        #expect(!dom.stdout.contains("http://") || !dom.stdout.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http://"),
                "the report refers to nothing outside itself")

        // One screenshot per section.
        let html = try String(contentsOfFile: tmp.file("report.html"), encoding: .utf8)
        let docs = ProcessInfo.processInfo.environment["CALIBCTL_DOCS_SCREENSHOTS"]
        for id in Self.sections {
            let only = tmp.file("only-\(id).html"), png = tmp.file("report-\(id).png")
            let style = "<style>section:not(#\(id)){display:none}nav,body>h1,body>h1+p,body>p.note{display:none}section{margin-top:0}</style></head>"
            try html.replacingOccurrences(of: "</head>", with: style).write(toFile: only, atomically: true, encoding: .utf8)
            let shot = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=3000",
                                                 "--window-size=1200,\(id == "modules" ? 1250 : 900)", "--screenshot=\(png)", "file://" + only])
            #expect(shot.status == 0)
            let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
            #expect(size > 15_000 && size < 400_000, "screenshot of section \(id): \(size) bytes")
            if let docs {
                try? FileManager.default.removeItem(atPath: docs + "/report-\(id).png")
                try FileManager.default.copyItem(atPath: png, toPath: docs + "/report-\(id).png")
            }
        }

        // The campaign view: the same renderer, the checklist as a graph with the critical path, the survey table.
        let camp = try cli(["report", "--campaign", "pixelgain-600", "--html", "campaign.html", "--pdf"])
        #expect(camp.stdout.contains("pdf: "))
        let cdom = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "file://" + tmp.file("campaign.html")])
        #expect(cdom.stdout.components(separatedBy: "<g class=\"node").count - 1 == 7, "one node per step")
        #expect(cdom.stdout.contains("class=\"edge critical\""), "the critical path is drawn")
        #expect(cdom.stdout.contains("class=\"survey\""), "the survey table is there")
        #expect(cdom.stdout.contains("data-state=\"done\"") && cdom.stdout.contains("data-step=\"validation\""))
        let shot = tmp.file("report-campaign.png")
        _ = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1300,720",
                                      "--screenshot=\(shot)", "file://" + tmp.file("campaign.html")])
        if let docs {
            try? FileManager.default.removeItem(atPath: docs + "/report-campaign.png")
            try FileManager.default.copyItem(atPath: shot, toPath: docs + "/report-campaign.png")
        }
    }
}
