import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// Quality gates and sign-off on the CMS pixel gain checklist; effort records and the report.
@Suite struct CampaignGateTests {
    static let runner = Identity(user: "calibctl-runner", host: "farm", commandLine: "tick")
    static let carol = Identity(user: "carol", host: "lxplus", commandLine: "step approve")
    static let good: [String: Double] = ["failed_shards": 0, "fraction_good": 0.995, "mean_gain": 152.3,
                                         "mean_pedestal": 48.1, "median_chi2ndf": 1.4]

    static func store(_ tmp: TemporaryDirectory) throws -> CampaignStore {
        let s = try CampaignStore(path: tmp.file("calibctl.db"))
        try s.create(name: "gain", checklistPath: TestPaths.fixtures + "/checklists/cms-pixel-gain.yaml",
                     runs: RunSet(ranges: [390001...390001]), by: carol)
        try s.apply(.start, campaign: "gain", step: "vcal-tag", by: carol)
        // A manual check: awaiting validation until a person approves.
        #expect(try s.apply(.done, campaign: "gain", step: "vcal-tag", by: carol).to == .awaitingValidation)
        #expect(try s.isApproved(campaign: "gain", step: "vcal-tag") == false)
        try s.apply(.approve, campaign: "gain", step: "vcal-tag", by: carol, note: "corr 1.08 for L1")
        return s
    }

    @Test func passingGatesFinishTheStepAutomatically() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.store(tmp)
        #expect(try s.readySteps(campaign: "gain").map(\.id) == ["gain-fit"])
        try s.apply(.start, campaign: "gain", step: "gain-fit", by: Self.runner)
        try s.recordMetrics(campaign: "gain", step: "gain-fit", metrics: Self.good, by: Self.runner)
        let r = try s.evaluateGates(campaign: "gain", step: "gain-fit", by: Self.runner)
        #expect(r.to == .done && r.gates?.passed == true && r.gates?.results.count == 5)
        let so = try s.signOff(campaign: "gain", step: "gain-fit")
        #expect(so.isApproved && so.gatesPassed == true && so.approvedBy == nil)
        #expect(try s.readySteps(campaign: "gain").map(\.id) == ["merge"])
    }

    @Test func failingGatesWaitForANamedSignOff() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.store(tmp)
        try s.apply(.start, campaign: "gain", step: "gain-fit", by: Self.runner)
        var m = Self.good
        m["fraction_good"] = 0.951
        m.removeValue(forKey: "median_chi2ndf")
        try s.recordMetrics(campaign: "gain", step: "gain-fit", metrics: m, by: Self.runner)
        let r = try s.evaluateGates(campaign: "gain", step: "gain-fit", by: Self.runner)
        #expect(r.to == .awaitingSignOff)
        let failing = try #require(r.gates?.failing)
        #expect(failing.map(\.metric) == ["fraction_good", "median_chi2ndf"])
        #expect(r.gates?.failingSummary == "fraction_good = 0.951 (needs fraction_good >= 0.98); median_chi2ndf not reported (needs median_chi2ndf <= 5)")
        #expect(try s.isApproved(campaign: "gain", step: "gain-fit") == false)
        #expect(try s.step("merge", of: "gain").state == .blocked)
        // The overview shows the failing metric.
        let row = try #require(try s.overview(campaign: "gain").steps.first { $0.id == "gain-fit" })
        #expect(row.failingGates?.contains("fraction_good = 0.951") == true)

        try s.apply(.approve, campaign: "gain", step: "gain-fit", by: Self.carol, note: "FED 1231 known dead")
        let so = try s.signOff(campaign: "gain", step: "gain-fit")
        #expect(so.isApproved && so.gatesPassed == false && so.approvedBy == "carol" && so.note == "FED 1231 known dead")
        #expect(try s.step("merge", of: "gain").state == .ready)

        // Redo the fit: a new iteration needs new metrics and a new sign-off.
        try s.apply(.reopen, campaign: "gain", step: "gain-fit", by: Self.carol, note: "refit with floor sigma")
        let again = try s.signOff(campaign: "gain", step: "gain-fit")
        #expect(!again.isApproved && again.approvedBy == nil && again.iteration == 2)
        #expect(try s.metrics(campaign: "gain", step: "gain-fit").isEmpty)
        #expect(try s.metrics(campaign: "gain", step: "gain-fit", iteration: 1)["fraction_good"] == 0.951)
    }

    @Test func doneBeforeMetricsWaitsForThem() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.store(tmp)
        try s.apply(.start, campaign: "gain", step: "gain-fit", by: Self.runner)
        try s.recordMetrics(campaign: "gain", step: "gain-fit", metrics: Self.good, by: Self.runner)
        try s.evaluateGates(campaign: "gain", step: "gain-fit", by: Self.runner)
        try s.apply(.start, campaign: "gain", step: "merge", by: Self.runner)
        #expect(try s.apply(.done, campaign: "gain", step: "merge", by: Self.runner).to == .awaitingValidation)
        try s.recordMetrics(campaign: "gain", step: "merge", metrics: ["failed_shards": 0], by: Self.runner)
        #expect(try s.evaluateGates(campaign: "gain", step: "merge", by: Self.runner).to == .done)

        // Validation has gates and a manual check: gates pass -> still awaiting validation by a person.
        try s.apply(.start, campaign: "gain", step: "validation", by: Self.runner)
        try s.recordMetrics(campaign: "gain", step: "validation", metrics: ["fraction_good": 0.99, "mean_gain_shift": 0.02],
                            by: Self.runner)
        #expect(try s.apply(.done, campaign: "gain", step: "validation", by: Self.runner).to == .awaitingValidation)
        #expect(try s.signOff(campaign: "gain", step: "validation").gatesPassed == true)
        try s.apply(.approve, campaign: "gain", step: "validation", by: Self.carol)
        #expect(try s.isApproved(campaign: "gain", step: "validation"))
        #expect(try s.readySteps(campaign: "gain").map(\.id) == ["payload-offline", "payload-hlt"])
    }

    @Test func badMetricsAndMetricsOutsideRunningAreRefused() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.store(tmp)
        #expect(throws: CampaignError.self) {
            try s.recordMetrics(campaign: "gain", step: "gain-fit", metrics: ["fraction_good": 1], by: Self.runner)
        }
        try s.apply(.start, campaign: "gain", step: "gain-fit", by: Self.runner)
        #expect(throws: CampaignError.self) {
            try s.recordMetrics(campaign: "gain", step: "gain-fit", metrics: ["mean_gain": .nan], by: Self.runner)
        }
        #expect(try s.metrics(campaign: "gain", step: "gain-fit").isEmpty)
    }

    @Test func effortAddsUpPerIterationIntoTheReport() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.store(tmp)
        try s.apply(.start, campaign: "gain", step: "gain-fit", by: Self.runner)
        let perFED = EffortRecord(runs: 1, events: 145, jobs: 1, cpuSeconds: 1800, wallSeconds: 2000,
                                  diskBytesWritten: 1_000_000_000, diskBytesHeld: 500_000_000)
        for _ in 0..<108 { try s.recordEffort(campaign: "gain", step: "gain-fit", effort: perFED, source: "test") }
        try s.recordMetrics(campaign: "gain", step: "gain-fit", metrics: Self.good, by: Self.runner)
        try s.evaluateGates(campaign: "gain", step: "gain-fit", by: Self.runner)
        try s.apply(.reopen, campaign: "gain", step: "gain-fit", by: Self.carol)
        try s.recordEffort(campaign: "gain", step: "gain-fit", effort: perFED, source: "test")
        #expect(throws: CampaignError.self) {
            try s.recordEffort(campaign: "gain", step: "gain-fit", effort: EffortRecord(cpuSeconds: -1))
        }

        let r = try s.report(campaign: "gain")
        let fit = try #require(r.steps.first { $0.id == "gain-fit" })
        #expect(fit.iterations == 2 && fit.jobs == 109 && fit.runs == 109 && fit.events == 109 * 145)
        #expect(abs(fit.cpuHours - 109 * 0.5) < 1e-9)
        #expect(fit.diskBytesWritten == 109_000_000_000 && fit.diskBytesHeld == 54_500_000_000)
        #expect(r.totals.jobs == 109 && r.totals.iterations == 3)   // vcal-tag 1 + gain-fit 2
        #expect(r.steps.first { $0.id == "vcal-tag" }?.elapsedDays != nil)
        let text = ReportRendering.text(r)
        #expect(text.contains("gain-fit") && text.contains("109.00 GB") && text.contains("totals"))
        let html = ReportRendering.html(r)
        #expect(html.contains("<table>") && html.contains("<td>gain-fit</td>") && html.hasSuffix("</html>\n"))
    }

    @Test func graphRenderingsColourByState() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.store(tmp)
        let o = try s.overview(campaign: "gain")
        let dot = ChecklistRendering.dot(o)
        #expect(dot.hasPrefix("digraph \"gain\" {"))
        #expect(dot.contains("\"vcal-tag\" [label=\"VCal-to-electrons conversion table in the store\\nvcal-tag [done]\", fillcolor=\"#a5d6a7\""))
        #expect(dot.contains("\"gain-fit\" [label=") && dot.contains("fillcolor=\"#9ecae1\""))
        #expect(dot.contains("\"vcal-tag\" -> \"gain-fit\""))
        // Ties go to the earlier step in the file: the offline payload is on the critical path.
        #expect(dot.contains("\"payload-offline\" -> \"release\" [color=\"#c62828\", penwidth=2]"))
        #expect(dot.contains("\"payload-hlt\" -> \"release\";"))
        let mm = ChecklistRendering.mermaid(o)
        #expect(mm.hasPrefix("flowchart LR\n"))
        #expect(mm.contains("s0_vcal_tag[\"VCal-to-electrons conversion table in the store<br/>done\"]:::done"))
        #expect(mm.contains("s0_vcal_tag --> s1_gain_fit"))
        #expect(mm.contains("classDef awaiting_sign_off fill:#ffb74d"))
        #expect(o.criticalPath == ["gain-fit", "merge", "validation", "payload-offline", "release"])
        #expect(o.criticalPathDays == 4.25)
    }
}

/// `approvers:` restricts sign-off: anyone else is refused with exit 77 and the step stays where it was.
@Test func onlyNamedApproversSignOff() throws {
    let tmp = TemporaryDirectory()
    let yaml = """
    checklist: tiny
    steps:
      - id: peds
        title: Pedestals
        phase: dark
        approvers: [carol, dave]
        validation:
          - name: maps look right
            check: look at the pedestal map
      - id: publish
        title: Publish
        phase: dark
        prerequisites: [peds]
    """
    let file = tmp.file("tiny.yaml")
    try yaml.write(toFile: file, atomically: true, encoding: .utf8)
    let s = try CampaignStore(path: tmp.file("calibctl.db"))
    let mallory = Identity(user: "mallory", host: "lxplus", commandLine: "step approve")
    try s.create(name: "d", checklistPath: file, runs: RunSet(ranges: [1...1]), by: mallory)
    try s.apply(.start, campaign: "d", step: "peds", by: mallory)
    #expect(try s.apply(.done, campaign: "d", step: "peds", by: mallory).to == .awaitingValidation)
    #expect(throws: CampaignError.notAnApprover(campaign: "d", step: "peds", user: "mallory", approvers: ["carol", "dave"])) {
        try s.apply(.approve, campaign: "d", step: "peds", by: mallory)
    }
    #expect(CampaignError.notAnApprover(campaign: "d", step: "peds", user: "mallory", approvers: ["carol"]).exitStatus
            == .permissionDenied)
    #expect(try s.isApproved(campaign: "d", step: "peds") == false)
    #expect(try s.startableSteps(campaign: "d").isEmpty)
    try s.apply(.approve, campaign: "d", step: "peds", by: CampaignGateTests.carol)
    #expect(try s.isApproved(campaign: "d", step: "peds"))
    #expect(try s.startableSteps(campaign: "d").map(\.id) == ["publish"])
}
