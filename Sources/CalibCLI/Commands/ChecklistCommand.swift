import ArgumentParser
import CalibCore
import CalibIO
import CalibWorkflow
import Foundation

/// `calibctl checklist validate|show|graph`: checklist files and campaign views.
struct ChecklistCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checklist",
        abstract: "Validate a calibration checklist and show it (or a campaign of it) as a table or a graph.",
        discussion: reflow("""
        A checklist (YAML, docs/checklists.md) declares steps with prerequisites, outcomes, quality gates and
        optional actions. Campaigns instantiate it for a data set (`calibctl campaign create`).

        Example:
          calibctl checklist validate Fixtures/checklists/clas12-rgx.yaml
          calibctl checklist show --campaign rgx-fall
        """),
        subcommands: [Validate.self, Show.self, Graph.self]
    )

    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a checklist file: structure, duplicate ids, unknown prerequisites, cycles.",
            discussion: reflow("""
            Every error is printed as FILE:LINE:COLUMN: error: MESSAGE on stderr; exit 65 if there is any.
            Cycles are shown as `a -> b -> a` (a waits for b, which waits for a).

            Example: calibctl checklist validate Fixtures/checklists/cms-pixel-gain.yaml --json
            """))

        @Argument(help: "The checklist YAML file.") var file: String
        @Flag(help: "Print the result as JSON on stdout.") var json = false

        struct Result: Codable {
            var schema = "calibctl.checklist-validate/1"
            var file: String, valid: Bool, checklist: String?, steps: Int, issues: [ChecklistIssue]
        }

        func run() throws {
            do {
                let c = try ChecklistLoader.load(path: file)
                let graph = ChecklistGraph(c)
                if json {
                    try printJSON(Result(file: file, valid: true, checklist: c.name, steps: c.steps.count, issues: []))
                } else {
                    let ready = graph.readySet(satisfied: .init(repeating: false, count: c.steps.count),
                                               eligible: .init(repeating: true, count: c.steps.count))
                    print("\(file): checklist \(c.name) is valid: \(c.steps.count) steps, "
                          + "\(graph.prerequisites.reduce(0) { $0 + $1.count }) prerequisite edges, "
                          + "\(ready.count) startable at once, final step \(c.finalStepID ?? "-")")
                }
            } catch let e as ChecklistError {
                if json {
                    try printJSON(Result(file: file, valid: false, checklist: nil, steps: 0, issues: e.issues))
                }
                for i in e.issues { Diagnostics.write(i.description + "\n") }
                Diagnostics.error("\(file): \(e.issues.count) error\(e.issues.count == 1 ? "" : "s") (format: docs/checklists.md)")
                throw ExitCode(ExitStatus.dataError.rawValue)
            }
        }
    }

    /// Loads the overview of a campaign (when `campaign` is set) or of a bare checklist file.
    static func overview(file: String?, campaign: String?, ws: WorkspaceOptions) throws -> CampaignOverview {
        switch (file, campaign) {
        case let (nil, name?):
            let engine = try JobsContext(ws.workspace).workflowEngine()
            var o = try engine.campaigns.overview(campaign: name)
            let progress = try engine.progress(campaign: name)
            for i in o.steps.indices {
                guard let p = progress[o.steps[i].id] else { continue }
                o.steps[i].unitProgress = p.text
                o.steps[i].unitStates = p.units
                o.steps[i].jobSet = p.jobSet
            }
            return o
        case let (path?, nil):
            return CampaignOverview(checklist: try ChecklistLoader.load(path: path))
        case (_?, _?):
            throw UsageError("give either a checklist FILE or --campaign NAME, not both")
        case (nil, nil):
            throw UsageError("nothing to show", fix: "pass a checklist FILE or --campaign NAME")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Table of steps: phase, owner, state, prerequisites (and which are unmet), iterations; the ready set and the critical path.",
            discussion: reflow("""
            The critical path is the longest chain of unfinished steps to the final step, weighted by each step's
            estimate_days (default 1).

            Example: calibctl checklist show --campaign rgx-fall --json
            """))

        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "A checklist file (when no --campaign is given).") var file: String?
        @Option(help: "Show this campaign's states.", completion: .campaignName) var campaign: String?
        @Flag(help: "Print JSON (schema calibctl.checklist-show/1).") var json = false

        func run() throws {
            let o = try ChecklistCommand.overview(file: file, campaign: campaign, ws: ws)
            if json { try printJSON(o); return }
            print(TextTable.fit(ChecklistRendering.title(o)) + TextTable.checklist(o).render()
                  + TextTable.fit(ChecklistRendering.summary(o)), terminator: "")
        }
    }

    struct Graph: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The prerequisite graph as Graphviz dot or Mermaid, coloured by state; the critical path in red.",
            discussion: reflow("""
            By default only the transitive reduction is drawn: an edge is left out when the step already waits for
            that prerequisite through another one (same order, far fewer lines; CLAS12 RG-X: 44 of 95 edges).
            --full draws every declared prerequisite.

            Example: calibctl checklist graph --campaign rgx-fall --format dot | dot -Tsvg > rgx.svg
            """))

        enum Format: String, ExpressibleByArgument, CaseIterable { case dot, mermaid }

        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "A checklist file (when no --campaign is given).") var file: String?
        @Option(help: "Show this campaign's states.", completion: .campaignName) var campaign: String?
        @Option(help: "dot or mermaid.") var format: Format = .dot
        @Flag(help: "Draw every declared prerequisite, not only the transitive reduction.") var full = false

        func run() throws {
            let o = try ChecklistCommand.overview(file: file, campaign: campaign, ws: ws)
            print(format == .dot ? ChecklistRendering.dot(o, full: full) : ChecklistRendering.mermaid(o, full: full), terminator: "")
        }
    }
}

/// Opens the campaign store in the workspace database.
enum CampaignContext {
    static func open(_ ws: WorkspaceOptions) throws -> CampaignStore {
        let w = ws.workspace
        try w.ensureHome()
        return try CampaignStore(path: w.databasePath)
    }
}
