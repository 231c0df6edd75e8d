import CalibCore
import CalibTestSupport
import Foundation
import Testing

@Suite struct ChecklistLoaderTests {
    static func fixture(_ name: String) -> String { TestPaths.fixtures + "/checklists/\(name).yaml" }

    static func issues(_ yaml: String) -> [ChecklistIssue] {
        do {
            _ = try ChecklistLoader.load(yaml: yaml, file: "bad.yaml")
            return []
        } catch let e as ChecklistError {
            return e.issues
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test func clas12FixtureHasAll42StepsWithTheTablesPrerequisites() throws {
        let c = try ChecklistLoader.load(path: Self.fixture("clas12-rgx"))
        #expect(c.steps.count == 42)
        #expect(c.steps.map { $0.number } == (1...42).map { Optional($0) })
        #expect(c.finalStepID == "passx")
        #expect(c.steps.filter(\.ifNecessary).map(\.number) == [19, 26])
        #expect(c.step("fd-alignment")?.prerequisites == ["dc-alignment"])
        #expect(c.step("beam-offset")?.prerequisites == ["dc-alignment", "cvt-alignment"])
        #expect(c.step("ctof-calibration")?.prerequisites == ["ftof-second-calibration"])
        #expect(c.step("ai-training")?.prerequisites == ["dc-t2d-calibration"])
        // "all the above": every earlier step.
        #expect(c.step("final-check")?.prerequisites.count == 40)
        #expect(c.step("passx")?.prerequisites == c.steps.prefix(41).map(\.id))
        #expect(c.step("dc-alignment")?.conditions.contains("zeroed beam spot (raster + beam position)") == true)
        #expect(c.step("dc-alignment")?.outcomes == ["/geometry/dc/alignment"])
        #expect(c.step("fd-alignment")?.estimateDays == 15)
        #expect(c.step("helicity")?.manualChecks.first?.check == "physics timelines")
    }

    @Test func cmsAndLclsFixturesCarryActionsAndGates() throws {
        let cms = try ChecklistLoader.load(path: Self.fixture("cms-pixel-gain"))
        #expect(cms.steps.map(\.id) == ["vcal-tag", "gain-fit", "merge", "validation", "payload-offline", "payload-hlt", "release"])
        let fit = try #require(cms.step("gain-fit"))
        #expect(fit.action?.kind == .builtin("pixel-gain-fit") && fit.action?.axes == ["fed"])
        #expect(Set(fit.gates.compactMap(\.metric)) == ["fraction_good", "mean_gain", "mean_pedestal", "median_chi2ndf", "failed_shards"])
        let good = try #require(fit.gates.first { $0.metric == "fraction_good" })
        #expect(good.accepts(0.98) && good.accepts(1) && !good.accepts(0.979) && !good.accepts(.nan))
        #expect(cms.step("payload-hlt")?.outcomes == ["sipixel/gain_hlt"])
        #expect(cms.step("payload-offline")?.action?.parameters == ["flavour": "offline"])

        let dark = try ChecklistLoader.load(path: Self.fixture("lcls-dark"))
        #expect(dark.step("dark-process")?.action?.axes == ["gain-mode"])
        #expect(dark.step("deploy")?.outcomes.contains("jungfrau/pixel_status") == true)
    }

    @Test func linesAreKept() throws {
        let yaml = """
            checklist: t
            steps:
              - id: a
                title: A
                phase: p
              - id: b
                title: B
                phase: p
                prerequisites:
                  - a
            """
        let c = try ChecklistLoader.load(yaml: yaml)
        #expect(c.steps.map(\.line) == [3, 6])
        #expect(c.steps[1].prerequisiteLines == [10])
    }

    @Test func duplicateIdsNameBothLines() {
        let issues = Self.issues("""
            checklist: t
            steps:
              - {id: a, title: A, phase: p}
              - {id: b, title: B, phase: p}
              - {id: a, title: A again, phase: p}
            """)
        #expect(issues.count == 1)
        #expect(issues.first?.line == 5)
        #expect(issues.first?.message.contains("duplicate step id 'a' (first defined at line 3)") == true)
        #expect(issues.first?.description.hasPrefix("bad.yaml:5:") == true)
    }

    @Test func unknownPrerequisiteSuggestsTheClosestId() {
        let issues = Self.issues("""
            checklist: t
            steps:
              - {id: dc-alignment, title: DC, phase: p}
              - id: fd-alignment
                title: FD
                phase: p
                prerequisites: [dc-alignmnt]
            """)
        #expect(issues.count == 1)
        let i = issues[0]
        #expect(i.line == 7)
        #expect(i.message == "step 'fd-alignment' has an unknown prerequisite 'dc-alignmnt'")
        #expect(i.fix == "did you mean 'dc-alignment'?")
    }

    @Test func cyclesAreShownAsPaths() {
        let issues = Self.issues("""
            checklist: t
            steps:
              - {id: a, title: A, phase: p, prerequisites: [c]}
              - {id: b, title: B, phase: p, prerequisites: [a]}
              - {id: c, title: C, phase: p, prerequisites: [b]}
              - {id: d, title: D, phase: p, prerequisites: [d]}
              - {id: e, title: E, phase: p, prerequisites: [a]}
            """)
        let messages = issues.map(\.message)
        #expect(messages.contains("prerequisite cycle: a -> c -> b -> a"))
        #expect(messages.contains("prerequisite cycle: d -> d"))
        #expect(issues.count == 2)
        #expect(issues.first { $0.message.contains("d -> d") }?.line == 6)
    }

    @Test func structuralErrorsAreCollectedWithLines() {
        let issues = Self.issues("""
            checklist: t
            stpes: []
            steps:
              - id: a
                title: A
                phase: p
                prerequisite: [b]
                validation:
                  - {name: g, metric: fraction_good}
                  - {name: h, metric: mean_gain, min: 5, max: 1}
                action: {command: "reco --run {run} -o {ouput}", per: runs}
              - title: no id
                phase: p
            """)
        let text = issues.map(\.description).joined(separator: "\n")
        #expect(text.contains("bad.yaml:2:1: error: checklist: unknown key 'stpes'; did you mean 'steps'?"))
        #expect(text.contains("bad.yaml:7:5: error: step 'a': unknown key 'prerequisite'; did you mean 'prerequisites'?"))
        #expect(text.contains("bad.yaml:9:") && text.contains("has no threshold"))
        #expect(text.contains("bad.yaml:10:") && text.contains("min 5.0 > max 1.0"))
        #expect(text.contains("unknown placeholder {ouput}") && text.contains("did you mean 'output'?"))
        #expect(text.contains("action per 'runs'") && text.contains("did you mean 'run'?"))
        #expect(text.contains("bad.yaml:12:") && text.contains("step without `id:`"))
    }

    @Test func yamlSyntaxErrorsHaveALine() {
        let issues = Self.issues("checklist: t\nsteps:\n  - id: a\n   title: [unclosed\n")
        #expect(issues.count == 1)
        #expect(issues.first?.message.hasPrefix("YAML syntax") == true)
        #expect((issues.first?.line ?? 0) >= 3)
    }

    @Test func commandActionsAreParsedValues() throws {
        let c = try ChecklistLoader.load(yaml: """
            checklist: t
            steps:
              - id: pass0
                title: Pass 0
                phase: p
                action: {command: "reco --run {run} -o {output}", per: run}
            """)
        let a = try #require(c.steps[0].action)
        #expect(a.kind == .command("reco --run {run} -o {output}") && a.axes == ["run"])
        #expect(StepAction.placeholders(in: "reco --run {run} -o {output}") == ["run", "output"])
    }

    @Test func scalarsFollowTheCoreSchemaAndDuplicateKeysAreErrors() throws {
        let c = try ChecklistLoader.load(yaml: """
            checklist: t
            steps:
              - id: a
                title: "42"
                phase: p
                number: 1_0
                if_necessary: yes
                estimate_days: 2.5e0
                validation:
                  - {name: g, metric: m, min: -1.5e1}
            """)
        #expect(c.steps[0].title == "42" && c.steps[0].number == 10 && c.steps[0].ifNecessary)
        #expect(c.steps[0].estimateDays == 2.5 && c.steps[0].gates[0].min == -15)

        let quoted = Self.issues("checklist: t\nsteps:\n  - {id: a, title: A, phase: p, number: \"7\", if_necessary: maybe, estimate_days: .inf}\n")
        #expect(quoted.map(\.message).contains("step 'a' estimate_days must be a finite number"))
        #expect(quoted.map(\.message).contains("step 'a': number must be an integer"))
        #expect(quoted.map(\.message).contains("step 'a': if_necessary must be true or false"))

        let dup = Self.issues("checklist: t\nsteps:\n  - id: a\n    title: A\n    phase: p\n    id: b\n")
        #expect(dup.count == 1 && dup[0].message.contains("duplicate key") && dup[0].message.contains("id"))
    }
}
