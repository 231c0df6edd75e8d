import ArgumentParser
import CalibCore
import CalibIO
import Foundation

/// `calibctl campaign create|list|verify`.
struct CampaignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "campaign",
        abstract: "Instantiate a checklist for a data set and list or check campaigns.",
        discussion: reflow("""
        A campaign keeps a copy of its checklist and the state of every step in calibctl.db (docs/checklists.md).

        Example:
          calibctl campaign create rgx-fall --checklist Fixtures/checklists/clas12-rgx.yaml --runs 5000-5100
          calibctl step start rgx-fall dataset-archaeology
        """),
        subcommands: [Create.self, List.self, Verify.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a campaign from a checklist file for a set of runs.",
            discussion: "Example: calibctl campaign create gain-2026a --checklist cms-pixel-gain.yaml --runs 390001")

        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign's name (one word).") var name: String
        @Option(help: "The checklist YAML file.") var checklist: String
        @Option(help: "Runs: FIRST-LAST, or a comma list of runs and ranges.") var runs: String
        @Option(help: "A note for the log.") var note: String?
        @Flag(help: "Print the campaign as JSON.") var json = false

        func run() throws {
            let runSet = try RunSet(parsing: runs)
            let store = try CampaignContext.open(ws)
            let c = try store.create(name: name, checklistPath: checklist, runs: runSet, note: note)
            if json { try printJSON(c); return }
            let steps = try store.steps(of: c)
            print("created campaign \(c.name): checklist \(c.checklistName), \(steps.count) steps, "
                  + "\(c.runs.count) runs (\(c.runs)); ready now: "
                  + steps.filter { $0.state == .ready }.map(\.id).joined(separator: ", "))
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List campaigns with their progress.",
                                                        discussion: "Example: calibctl campaign list --json")
        @OptionGroup var ws: WorkspaceOptions
        @Flag(help: "Print JSON.") var json = false

        struct Entry: Codable { var campaign: Campaign; var steps: Int; var done: Int; var counts: [String: Int] }

        func run() throws {
            let store = try CampaignContext.open(ws)
            var entries: [Entry] = []
            for c in try store.campaigns() {
                let steps = try store.steps(of: c)
                var counts: [String: Int] = [:]
                for s in steps { counts[s.state.rawValue, default: 0] += 1 }
                entries.append(Entry(campaign: c, steps: steps.count,
                                     done: steps.filter { $0.state.satisfiesDependents }.count, counts: counts))
            }
            if json { try printJSON(entries); return }
            if entries.isEmpty { Diagnostics.info("no campaigns (create one with `calibctl campaign create`)"); return }
            let rows = entries.map { e in
                [e.campaign.name, e.campaign.checklistName, e.campaign.runs.description, "\(e.done)/\(e.steps)",
                 StepState.allCases.compactMap { s in e.counts[s.rawValue].map { "\($0) \(s.rawValue)" } }.joined(separator: ", ")]
            }
            print(ChecklistRendering.align([["campaign", "checklist", "runs", "done", "states"]] + rows), terminator: "")
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a campaign's records: database integrity, one state per step, a log consistent with the states.",
            discussion: "Exit 1 when problems are found. Example: calibctl campaign verify rgx-fall")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let store = try CampaignContext.open(ws)
            let problems = try store.verify(campaign: name)
            if json {
                struct R: Codable { var campaign: String; var consistent: Bool; var problems: [String] }
                try printJSON(R(campaign: name, consistent: problems.isEmpty, problems: problems))
            } else if problems.isEmpty {
                print("campaign \(name): consistent")
            } else {
                for p in problems { print(p) }
            }
            if !problems.isEmpty { throw ExitCode(ExitStatus.failuresFound.rawValue) }
        }
    }
}
