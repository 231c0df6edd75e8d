import ArgumentParser
import CalibCore
import CalibIO
import CalibWorkflow
import Foundation

/// `calibctl report`: the task-force survey table from the records.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Per-step effort of a campaign: iterations, runs, events, jobs, CPU hours, wall time, disk written and still held; totals.",
        discussion: reflow("""
        Generated from the transitions log and the effort records the jobs (or `calibctl step effort`) wrote, instead
        of being collected by hand. Without --campaign, the only campaign is used. --html FILE writes one
        self-contained page (the same renderer as the pixel gain summary): the checklist as a graph coloured by state
        with the critical path in red, and the survey table; `--html -` prints it. --pdf also prints it to FILE.pdf
        with headless Chromium.

        Derived columns, each with a footnote saying where it comes from (JSON: `sources`): "fairshare (days)" = CPU
        hours / (24 x the cores the group may use: --fairshare-cores, else the campaign parameter fairshare_cores,
        else \(CampaignReport.defaultFairshareCores)); "disk (TB/iteration)" = disk written / the step's iterations (totals: the sum over
        the steps, one pass of each).

        --dark FILE writes the dark-processing report of a campaign of the lcls-dark checklist instead (the same
        renderer): pedestal, rms and status maps per panel and gain mode, the status counts per bit, and the
        comparison with the constants in use per panel; `--dark -` prints it, --pdf also prints FILE.pdf.

        Examples:
          calibctl report --campaign rgx-fall --html rgx-fall.html
          calibctl report --campaign d1 --dark d1-dark.html --pdf
        """))

    @OptionGroup var ws: WorkspaceOptions
    @Option(help: "The campaign.", completion: .campaignName) var campaign: String?
    @Flag(help: "Print JSON (schema calibctl.report/1).") var json = false
    @Option(help: ArgumentHelp("Write a self-contained HTML page (graph and survey table) to FILE; - prints it.", valueName: "file"))
    var html: String?
    @Flag(help: "With --html FILE: also print it to a PDF next to it (headless Chromium).") var pdf = false
    @Flag(help: "With --html: draw every prerequisite edge, not the transitive reduction.") var full = false
    @Option(help: ArgumentHelp("The cores the group may use under its fair share (fairshare days = CPU h / (24 x N)); default: the campaign parameter fairshare_cores, else \(CampaignReport.defaultFairshareCores).", valueName: "n"))
    var fairshareCores: Int?
    @Option(help: ArgumentHelp("Write the dark-processing report of an lcls-dark campaign (maps per panel and gain mode, status counts, comparison with the constants in use) to FILE; - prints it.", valueName: "file"))
    var dark: String?

    func run() throws {
        if [json, html != nil, dark != nil].filter({ $0 }).count > 1 { throw UsageError("choose one of --json, --html and --dark") }
        if let n = fairshareCores, n < 1 { throw UsageError("--fairshare-cores must be a positive number of cores (got \(n))") }
        let store = try CampaignContext.open(ws)
        let name: String
        if let campaign { name = campaign } else {
            let all = try store.campaigns()
            guard all.count == 1 else {
                throw UsageError(all.isEmpty ? "there are no campaigns" : "there are \(all.count) campaigns",
                                 fix: all.isEmpty ? "create one with `calibctl campaign create`"
                                    : "pick one with --campaign: \(all.map(\.name).joined(separator: ", "))")
            }
            name = all[0].name
        }
        let engine = try JobsContext(ws.workspace).workflowEngine()
        if let dark {
            let page = try DarkReport.gather(engine: engine, campaign: name).html()
            try write(page, to: dark)
            return
        }
        let param = try engine.settings(of: try store.campaign(named: name)).params["fairshare_cores"]
        var cores = CampaignReport.defaultFairshareCores, source = "the default; set the campaign parameter fairshare_cores or --fairshare-cores"
        if let n = fairshareCores {
            cores = n; source = "--fairshare-cores"
        } else if let p = param {
            guard let n = Int(p), n > 0 else {
                throw UsageError("campaign \(name): parameter fairshare_cores is '\(p)', not a positive number of cores",
                                 fix: "give --fairshare-cores N (the parameter is set with campaign create --param fairshare_cores=N)")
            }
            cores = n; source = "campaign parameter fairshare_cores"
        }
        var r = try store.report(campaign: name, fairshareCores: cores, coresSource: source)
        for i in r.steps.indices {
            if let last = try engine.stepRuns(campaign: name, step: r.steps[i].id).last, !last.failedUnits.isEmpty {
                r.steps[i].failedUnits = last.failedUnits
            }
        }
        if let html {
            let page = CampaignReportPage.html(overview: try ChecklistCommand.overview(file: nil, campaign: name, ws: ws), report: r, full: full)
            try write(page, to: html)
        } else if json { try printJSON(r) } else {
            print(ReportRendering.title(r) + TextTable.report(r).render(), terminator: "")
            // Where the derived columns come from, under a blank line (the table above stays a table).
            print("\n" + TextTable.fit(ReportRendering.sources(r).joined(separator: "\n")))
            let notes = r.steps.compactMap { s in
                s.failedUnits.map { f in "  \(s.id): \(f.count) unit(s) failed: "
                    + f.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ") }
            }
            if !notes.isEmpty { print("failed units (latest iteration):\n" + notes.joined(separator: "\n")) }
        }
    }

    /// Writes a page to FILE (`-`: stdout) and, with --pdf, prints it to FILE.pdf.
    func write(_ page: String, to file: String) throws {
        if file == "-" { print(page, terminator: ""); return }
        let path = Workspace.absolutePath(file)
        try AtomicFile.write(Data(page.utf8), to: path)
        print("report: \(path)")
        if pdf {
            let out = (path.hasSuffix(".html") ? String(path.dropLast(5)) : path) + ".pdf"
            try ReportPrinter.printPDF(html: path, to: out)
            print("pdf: \(out)")
        }
    }
}
