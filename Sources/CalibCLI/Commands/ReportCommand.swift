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

        Example: calibctl report --campaign rgx-fall --html rgx-fall.html
        """))

    @OptionGroup var ws: WorkspaceOptions
    @Option(help: "The campaign.", completion: .campaignName) var campaign: String?
    @Flag(help: "Print JSON (schema calibctl.report/1).") var json = false
    @Option(help: ArgumentHelp("Write a self-contained HTML page (graph and survey table) to FILE; - prints it.", valueName: "file"))
    var html: String?
    @Flag(help: "With --html FILE: also print it to a PDF next to it (headless Chromium).") var pdf = false
    @Flag(help: "With --html: draw every prerequisite edge, not the transitive reduction.") var full = false

    func run() throws {
        if json && html != nil { throw UsageError("choose one of --json and --html") }
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
        var r = try store.report(campaign: name)
        let engine = try JobsContext(ws.workspace).workflowEngine()
        for i in r.steps.indices {
            if let last = try engine.stepRuns(campaign: name, step: r.steps[i].id).last, !last.failedUnits.isEmpty {
                r.steps[i].failedUnits = last.failedUnits
            }
        }
        if let html {
            let page = CampaignReportPage.html(overview: try ChecklistCommand.overview(file: nil, campaign: name, ws: ws), report: r, full: full)
            if html == "-" { print(page, terminator: ""); return }
            let path = Workspace.absolutePath(html)
            try AtomicFile.write(Data(page.utf8), to: path)
            print("report: \(path)")
            if pdf {
                let out = (path.hasSuffix(".html") ? String(path.dropLast(5)) : path) + ".pdf"
                try ReportPrinter.printPDF(html: path, to: out)
                print("pdf: \(out)")
            }
        } else if json { try printJSON(r) } else {
            print(ReportRendering.title(r) + TextTable.report(r).render(), terminator: "")
            let notes = r.steps.compactMap { s in
                s.failedUnits.map { f in "  \(s.id): \(f.count) unit(s) failed: "
                    + f.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ") }
            }
            if !notes.isEmpty { print("failed units (latest iteration):\n" + notes.joined(separator: "\n")) }
        }
    }
}
