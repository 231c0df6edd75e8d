import ArgumentParser
import CalibCore
import CalibIO
import CalibWorkflow
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
        subcommands: [Create.self, List.self, Verify.self, Watch.self]
    )

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a campaign of a checklist (a shipped one by name, or a file) for a set of runs.",
            discussion: reflow("""
            From then on `calibctl tick` (cron) moves it: every ready step with an action becomes jobs (one per unit
            of its axes) or runs inline, finished jobs give metrics, effort and gate results, and the campaign waits
            only for the sign-offs its gates demand. Shipped checklists: \(ShippedChecklists.all.map(\.name).joined(separator: ", ")).

            The jobs run in the environment of the person who creates the campaign (captured now; a cron tick with
            `env -i` does not change it). Parameters are `{param:NAME}` in commands; --units gives the values of
            an axis (`per: telescope`) that the checklist leaves to the campaign or that you want to restrict.
            """) + """


            Examples:
              calibctl campaign create d1 --checklist lcls-dark --runs 100-110 --param input=/data/darks
              calibctl campaign create cta-oct --checklist cta-array --runs 1 --units telescope=LST1,LST2 --scheduler slurm
              calibctl campaign create rgx-fall --checklist Fixtures/checklists/clas12-rgx.yaml --runs 5000-5100
            """)

        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "The campaign's name (one word).") var name: String
        @Option(help: "A shipped checklist's name (lcls-dark, cta-array, clas12-rgx, cms-pixel-gain) or a checklist YAML file.")
        var checklist: String
        @Option(help: "Runs: FIRST-LAST, or a comma list of runs and ranges.") var runs: String
        @Option(name: .customLong("param"), help: "A campaign parameter NAME=VALUE ({param:NAME} in commands); repeatable.")
        var params: [String] = []
        @Option(name: .customLong("units"), help: "Values of an axis AXIS=V1,V2,... (e.g. telescope=LST1,LST2); repeatable.")
        var units: [String] = []
        @Option(help: "Scheduler of the campaign's jobs: local, slurm or htcondor (a step's scheduler: overrides it).")
        var scheduler: String = "local"
        @Option(help: "Memory per job (MB, or 4G / 512M) unless a step says otherwise.") var memory: String = "2000"
        @Option(help: "Time limit per job (seconds, or 90m / 2h) unless a step says otherwise.") var time: String = "3h"
        @Option(help: "The store tag the publication steps write to (default: the campaign's name).") var tag: String?
        @Option(help: "A note for the log.") var note: String?
        @Flag(help: "Print the campaign as JSON.") var json = false

        func run() throws {
            let runSet = try RunSet(parsing: runs)
            let (file, yaml) = try CampaignCommand.checklistText(checklist)
            let settings = try CampaignCommand.settings(params: params, units: units, scheduler: scheduler,
                                                        memory: memory, time: time, tag: tag)
            let ctx = try JobsContext(ws.workspace)
            let engine = try ctx.workflowEngine()
            let c = try engine.createCampaign(name: name, checklistYAML: yaml, file: file, runs: runSet,
                                              settings: settings, note: note)
            if json { try printJSON(c); return }
            let steps = try engine.campaigns.steps(of: c)
            print("created campaign \(c.name): checklist \(c.checklistName), \(steps.count) steps, "
                  + "\(c.runs.count) runs (\(c.runs)); ready now: "
                  + steps.filter { $0.state == .ready }.map(\.id).joined(separator: ", "))
            let auto = steps.filter { $0.state == .ready && $0.step.action != nil }.map(\.id)
            if !auto.isEmpty {
                Diagnostics.info("\(auto.joined(separator: ", ")) will run at the next `calibctl tick` (or now: calibctl step run \(c.name) \(auto[0]))")
            }
        }
    }

    /// The checklist text for `--checklist`: an existing file, else a shipped checklist by name.
    static func checklistText(_ nameOrPath: String) throws -> (file: String, yaml: String) {
        if FileManager.default.fileExists(atPath: nameOrPath) {
            do { return (nameOrPath, try String(contentsOfFile: nameOrPath, encoding: .utf8)) } catch {
                _ = try ChecklistLoader.load(path: nameOrPath)   // the readable error
                throw error
            }
        }
        if let s = ShippedChecklists.named(nameOrPath) { return s }
        let names = ShippedChecklists.all.map(\.name)
        throw UsageError("--checklist \(nameOrPath) is neither a file nor a shipped checklist",
                         fix: (Suggestions.didYouMean(nameOrPath, in: names).map { $0 + "; " } ?? "")
                            + "shipped: \(names.joined(separator: ", ")), or give the path of a YAML file")
    }

    /// Campaign settings from the command line; the environment is captured from this process.
    static func settings(params: [String], units: [String], scheduler: String, memory: String, time: String,
                         tag: String?) throws -> CampaignSettings {
        var p: [String: String] = [:]
        for kv in params {
            guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex else {
                throw UsageError("--param \(kv) is not NAME=VALUE", fix: "e.g. --param input=/data/darks")
            }
            p[String(kv[..<eq])] = Workspace.absolutePathIfExists(String(kv[kv.index(after: eq)...]))
        }
        var u: [String: [String]] = [:]
        for kv in units {
            guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex else {
                throw UsageError("--units \(kv) is not AXIS=V1,V2,...", fix: "e.g. --units telescope=LST1,LST2")
            }
            u[String(kv[..<eq])] = kv[kv.index(after: eq)...].split(separator: ",").map(String.init)
        }
        guard ["local", "slurm", "htcondor"].contains(scheduler) else {
            throw UsageError("--scheduler \(scheduler) is not local, slurm or htcondor")
        }
        guard let mb = ChecklistLoader.megabytes(memory) else {
            throw UsageError("--memory \(memory) is not a size", fix: "give megabytes (4000) or 4G / 512M")
        }
        guard let sec = ChecklistLoader.seconds(time) else {
            throw UsageError("--time \(time) is not a duration", fix: "give seconds (3600) or 90m / 2h")
        }
        return CampaignSettings(params: p, units: u, scheduler: scheduler, memoryMB: mb, timeLimitSeconds: sec,
                                environment: CampaignSettings.capturedEnvironment(), tag: tag)
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

    struct Watch: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Watch a directory for new runs: each <DIR>/<RUN>/ with a ready marker becomes a campaign at the next tick.",
            discussion: reflow("""
            The transfer that delivers a run writes the marker file last (default READY). At the next `calibctl tick`
            the run becomes campaign NAME-RUN of the checklist for that run, with parameter input=<DIR>/<RUN>, and
            its steps start. Other --param, --units and --scheduler values are given to every such campaign.
            """) + """


            Examples:
              calibctl campaign watch add darks --checklist lcls-dark --inbox /data/darks --param compare_tag=current
              calibctl campaign watch list
              calibctl campaign watch remove darks
            """,
            subcommands: [Add.self, List.self, Remove.self])

        struct Add: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Start watching a directory for new runs.")
            @OptionGroup var ws: WorkspaceOptions
            @Argument(help: "The watch's name (campaigns are named NAME-RUN).") var name: String
            @Option(help: "A shipped checklist's name or a checklist YAML file.") var checklist: String
            @Option(help: "The directory that receives one subdirectory per run.") var inbox: String
            @Option(help: "The file a run directory holds once complete.") var marker: String = "READY"
            @Option(name: .customLong("param"), help: "A parameter NAME=VALUE for every campaign; repeatable.") var params: [String] = []
            @Option(name: .customLong("units"), help: "Values of an axis AXIS=V1,V2; repeatable.") var units: [String] = []
            @Option(help: "Scheduler of the jobs: local, slurm or htcondor.") var scheduler: String = "local"
            @Option(help: "Memory per job (MB, or 4G).") var memory: String = "2000"
            @Option(help: "Time limit per job (seconds, or 2h).") var time: String = "3h"
            @Option(help: "The store tag the publication steps write to (default: each campaign's name).") var tag: String?

            func run() throws {
                let (file, yaml) = try CampaignCommand.checklistText(checklist)
                let checklistName = try ChecklistLoader.load(yaml: yaml, file: file).name
                let settings = try CampaignCommand.settings(params: params, units: units, scheduler: scheduler,
                                                            memory: memory, time: time, tag: tag)
                let engine = try JobsContext(ws.workspace).workflowEngine()
                let me = Identity.current
                try engine.addWatch(WatchDefinition(
                    name: name, checklistName: checklistName, checklistYAML: yaml, checklistFile: file,
                    inbox: Workspace.absolutePath(inbox), marker: marker, settings: settings, createdAt: Date(),
                    createdBy: me.user))
                print("watching \(Workspace.absolutePath(inbox)) for <RUN>/\(marker): new runs become campaigns \(name)-<RUN> of \(checklistName) at each tick")
            }
        }

        struct List: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List the watched directories.")
            @OptionGroup var ws: WorkspaceOptions
            @Flag(help: "Print JSON.") var json = false
            func run() throws {
                let w = try JobsContext(ws.workspace).workflowEngine().watches()
                if json { try printJSON(w.map { var x = $0; x.checklistYAML = ""; x.settings.environment = [:]; return x }); return }
                if w.isEmpty { Diagnostics.info("no watches (add one with `calibctl campaign watch add`)"); return }
                print(ChecklistRendering.align([["watch", "checklist", "inbox", "marker", "scheduler"]]
                    + w.map { [$0.name, $0.checklistName, $0.inbox, $0.marker, $0.settings.scheduler] }), terminator: "")
            }
        }

        struct Remove: ParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Stop watching (campaigns already created stay).")
            @OptionGroup var ws: WorkspaceOptions
            @Argument(help: "The watch's name.") var name: String
            func run() throws {
                try JobsContext(ws.workspace).workflowEngine().removeWatch(name)
                print("stopped watch \(name)")
            }
        }
    }
}
