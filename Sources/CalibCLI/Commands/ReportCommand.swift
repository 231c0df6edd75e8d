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
        of being collected by hand. Without --campaign, the only campaign is used.

        Example: calibctl report --campaign rgx-fall --html > rgx-fall.html
        """))

    @OptionGroup var ws: WorkspaceOptions
    @Option(help: "The campaign.", completion: .campaignName) var campaign: String?
    @Flag(help: "Print JSON (schema calibctl.report/1).") var json = false
    @Flag(help: "Print a self-contained HTML page.") var html = false

    func run() throws {
        if json && html { throw UsageError("choose one of --json and --html") }
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
        if json { try printJSON(r) } else if html { print(ReportRendering.html(r), terminator: "") } else {
            print(ReportRendering.title(r) + TextTable.report(r).render(), terminator: "")
            let notes = r.steps.compactMap { s in
                s.failedUnits.map { f in "  \(s.id): \(f.count) unit(s) failed: "
                    + f.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ") }
            }
            if !notes.isEmpty { print("failed units (latest iteration):\n" + notes.joined(separator: "\n")) }
        }
    }
}
