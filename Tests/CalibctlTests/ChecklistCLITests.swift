import CalibTestSupport
import Foundation
import Testing

/// End-to-end: the built binary validates checklists, runs a campaign by hand and renders the views.
@Suite struct ChecklistCLITests {
    static let checklists = TestPaths.fixtures + "/checklists"

    static func json(_ r: ProcessResult) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(r.stdout.utf8))
    }

    @Test func fixturesValidate() throws {
        for name in ["clas12-rgx", "cms-pixel-gain", "lcls-dark"] {
            let r = try calibctl(["checklist", "validate", "\(Self.checklists)/\(name).yaml", "--json"])
            #expect(r.status == 0, "\(name): \(r.stderr)")
            let obj = try Self.json(r) as? [String: Any]
            #expect(obj?["valid"] as? Bool == true && obj?["checklist"] as? String == name)
        }
        let text = try calibctl(["checklist", "validate", "\(Self.checklists)/clas12-rgx.yaml"])
        #expect(text.stdout.contains("42 steps") && text.stdout.contains("final step passx"))
    }

    @Test func badChecklistsGiveFileLineErrors() throws {
        let tmp = TemporaryDirectory()
        let bad = tmp.file("bad.yaml")
        try """
            checklist: bad
            steps:
              - {id: dc-alignment, title: DC, phase: p}
              - {id: a, title: A, phase: p, prerequisites: [b]}
              - {id: dc-alignment, title: again, phase: p}
              - {id: b, title: B, phase: p, prerequisites: [a, dc-alignmnt]}
            """.write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try calibctl(["checklist", "validate", bad])
        #expect(r.status == 65)
        #expect(r.stderr.contains("\(bad):4:1: error: prerequisite cycle: a -> b -> a"))
        #expect(r.stderr.contains("\(bad):5:5: error: duplicate step id 'dc-alignment' (first defined at line 3)") ||
                r.stderr.contains("\(bad):5:1: error: duplicate step id 'dc-alignment' (first defined at line 3)"))
        #expect(r.stderr.contains("\(bad):6:") && r.stderr.contains("unknown prerequisite 'dc-alignmnt'; did you mean 'dc-alignment'?"))
        #expect(r.stdout.isEmpty)
        let j = try calibctl(["checklist", "validate", bad, "--json"])
        let obj = try Self.json(j) as? [String: Any]
        #expect(j.status == 65 && obj?["valid"] as? Bool == false && (obj?["issues"] as? [Any])?.count == 3)
        // Campaigns cannot be created from it, and nothing is written.
        let home = tmp.file("home")
        let c = try calibctl(["campaign", "create", "x", "--checklist", bad, "--runs", "1-2", "--home", home])
        #expect(c.status == 65)
        let list = try calibctl(["campaign", "list", "--json", "--home", home])
        let listed = try Self.json(list) as? [Any]
        #expect(list.status == 0 && listed?.isEmpty == true)
        let missing = try calibctl(["checklist", "validate", tmp.file("nope.yaml")])
        #expect(missing.status == 65 && missing.stderr.contains("nope.yaml") && missing.stderr.contains("cannot read"))
    }

    @Test func campaignByHandWithViews() throws {
        let tmp = TemporaryDirectory()
        let home = ["--home", tmp.file("home")]
        func run(_ args: [String]) throws -> ProcessResult { try calibctl(args + home) }

        var r = try run(["campaign", "create", "gain", "--checklist", "\(Self.checklists)/cms-pixel-gain.yaml",
                         "--runs", "390001-390003"])
        #expect(r.status == 0 && r.stdout.contains("7 steps") && r.stdout.contains("ready now: vcal-tag"), "\(r.stderr)")
        #expect(try run(["campaign", "create", "gain", "--checklist", "\(Self.checklists)/cms-pixel-gain.yaml",
                         "--runs", "1"]).status == 64)
        #expect(try run(["campaign", "create", "g2", "--checklist", "\(Self.checklists)/cms-pixel-gain.yaml",
                         "--runs", "9-1"]).status == 64)

        #expect(try run(["step", "start", "gain", "vcal-tag"]).status == 0)
        r = try run(["step", "done", "gain", "vcal-tag", "--note", "table v3"])
        #expect(r.stdout.contains("running -> awaiting-validation"))
        #expect(try run(["step", "approve", "gain", "vcal-tag"]).status == 0)
        #expect(try run(["step", "start", "gain", "gain-fit"]).status == 0)
        r = try run(["step", "metrics", "gain", "gain-fit", "fraction_good=0.95", "mean_gain=150", "mean_pedestal=40",
                     "median_chi2ndf=1.2", "failed_shards=0"])
        #expect(r.status == 0)
        r = try run(["step", "done", "gain", "gain-fit", "--json"])
        let t = try Self.json(r) as? [String: Any]
        #expect(t?["to"] as? String == "awaiting-sign-off")
        r = try run(["step", "done", "gain", "gain-fit"])
        #expect(r.status == 65 && r.stderr.contains("cannot done step 'gain-fit' of campaign 'gain': it is awaiting-sign-off"))
        #expect(r.stderr.contains("approve, fail"))
        #expect(try run(["step", "metrics", "gain", "gain-fit", "fraction_good"]).status == 64)
        #expect(try run(["step", "effort", "gain", "gain-fit", "--jobs", "108", "--cpu-hours", "54",
                         "--disk-written", "52TB", "--disk-held", "1.5GB"]).status == 0)
        #expect(try run(["step", "effort", "gain", "gain-fit", "--disk-written", "lots"]).status == 64)

        r = try run(["checklist", "show", "--campaign", "gain"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("gain-fit: gates failed: fraction_good = 0.95 (needs fraction_good >= 0.98)"))
        #expect(r.stdout.contains("critical path to release (5 steps, 4.25 days): gain-fit -> merge"))
        r = try run(["checklist", "show", "--campaign", "gain", "--json"])
        let show = try Self.json(r) as? [String: Any]
        let rows = show?["steps"] as? [[String: Any]]
        #expect(rows?.count == 7 && rows?.first?["state"] as? String == "done")
        #expect((rows?[2]["unmet"] as? [String]) == ["gain-fit"])
        #expect(show?["readyNow"] as? [String] == [])

        #expect(try run(["step", "approve", "gain", "gain-fit", "--note", "known dead FED"]).status == 0)
        r = try run(["checklist", "graph", "--campaign", "gain", "--format", "mermaid"])
        #expect(r.status == 0 && r.stdout.contains(":::done") && r.stdout.contains(":::ready") && r.stdout.contains("-->"))
        r = try run(["checklist", "graph", "\(Self.checklists)/lcls-dark.yaml"])
        #expect(r.status == 0 && r.stdout.contains("\"dark-runs\" -> \"dark-process\""))
        #expect(try run(["checklist", "show"]).status == 64)

        r = try run(["report", "--json"])
        let rep = try Self.json(r) as? [String: Any]
        let totals = rep?["totals"] as? [String: Any]
        #expect(totals?["jobs"] as? Int == 108 && totals?["diskBytesWritten"] as? Int == 52_000_000_000_000)
        #expect(totals?["iterations"] as? Int == 2)
        // fairshare days = CPU hours / (24 x 100 cores by default); the sources say so.
        #expect(abs((totals?["fairshareDays"] as? Double ?? -1) - (totals?["cpuHours"] as? Double ?? 0) / 2400) < 1e-9)
        #expect(rep?["fairshareCores"] as? Int == 100 && (rep?["sources"] as? [String: String])?["diskTBPerIteration"] != nil)
        r = try run(["report", "--campaign", "gain", "--html", "-"])
        #expect(r.stdout.hasPrefix("<!DOCTYPE html>") && r.stdout.contains("52.00 TB"))
        #expect(try run(["report", "--campaign", "gian"]).stderr.contains("did you mean 'gain'?"))

        r = try run(["step", "log", "gain", "--json"])
        let log = try Self.json(r) as? [[String: Any]]
        #expect(log?.map { $0["command"] as? String ?? "" } == ["start", "done", "approve", "start", "done", "approve"])
        #expect(log?[1]["note"] as? String == "table v3")
        #expect(try run(["campaign", "verify", "gain"]).status == 0)
        r = try run(["campaign", "list"])
        #expect(r.stdout.contains("gain") && r.stdout.contains("2/7"))
    }

    @Test func helpTeachesAndBareChecklistsShow() throws {
        for args in [["checklist", "--help"], ["step", "--help"], ["campaign", "create", "--help"], ["report", "--help"],
                     ["checklist", "graph", "--help"]] {
            let h = try calibctl(args)
            #expect(h.status == 0 && h.stdout.contains("Example"), "\(args)")
        }
        let verbs = try calibctl(["step", "--help"]).stdout
        for v in ["start", "done", "approve", "fail", "skip", "reopen", "log", "metrics", "effort"] {
            #expect(verbs.contains("  \(v) "), "\(v)")
        }
        let r = try calibctl(["checklist", "show", Self.checklists + "/lcls-dark.yaml", "--json"])
        let obj = try Self.json(r) as? [String: Any]
        #expect(r.status == 0 && obj?["readyNow"] as? [String] == ["dark-runs"] && obj?["campaign"] == nil)
        #expect(obj?["criticalPath"] as? [String] == ["dark-runs", "dark-process", "pedestals", "pixel-status",
                                                       "compare-previous", "deploy", "lcls-export"])
    }
}
