import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// Walks the CLAS12 campaign from dataset archaeology to PassX, with skips, reopens and stale steps.
@Suite struct CampaignWalkTests {
    static let alice = Identity(user: "alice", host: "test", commandLine: "test")
    static let bob = Identity(user: "bob", host: "test", commandLine: "test")

    static func makeStore(_ tmp: TemporaryDirectory, checklist: String = "clas12-rgx", name: String = "rgx") throws -> CampaignStore {
        let store = try CampaignStore(path: tmp.file("calibctl.db"))
        try store.create(name: name, checklistPath: TestPaths.fixtures + "/checklists/\(checklist).yaml",
                         runs: try RunSet(parsing: "5000-5100"), by: alice)
        return store
    }

    static func state(_ s: CampaignStore, _ step: String, campaign: String = "rgx") throws -> StepState {
        try s.step(step, of: campaign).state
    }

    /// start + done (+ approve when the step has manual checks).
    static func finish(_ s: CampaignStore, _ step: String, campaign: String = "rgx") throws {
        try s.apply(.start, campaign: campaign, step: step, by: alice)
        let r = try s.apply(.done, campaign: campaign, step: step, by: alice)
        if r.to == .awaitingValidation { try s.apply(.approve, campaign: campaign, step: step, by: bob, note: "looked fine") }
        #expect(try state(s, step, campaign: campaign) == .done)
    }

    /// Finishes every ready step (except `except`) until nothing is ready.
    static func drain(_ s: CampaignStore, except: Set<String> = []) throws {
        while let next = try s.startableSteps(campaign: "rgx").first(where: { !except.contains($0.id) }) {
            try finish(s, next.id)
        }
    }

    @Test func createdCampaignDerivesBlockedAndReady() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.makeStore(tmp)
        let steps = try s.steps(of: "rgx")
        #expect(steps.count == 42)
        #expect(steps.allSatisfy { $0.iteration == 0 && $0.storedState == .pending })
        #expect(try Self.state(s, "dataset-archaeology") == .ready)
        #expect(try Self.state(s, "fd-alignment") == .blocked)
        #expect(try s.step("passx", of: "rgx").unmetPrerequisites.count == 41)
        // dc-alignment is the one step ready at creation that has an action (the alignment train stand-in).
        #expect(try s.readySteps(campaign: "rgx").map(\.id) == ["dc-alignment"])
        #expect(try s.database.schemaVersion(of: "campaigns") == CampaignSchema.migrations.count)
        #expect(throws: CampaignError.campaignExists(name: "rgx")) {
            try s.create(name: "rgx", checklistPath: TestPaths.fixtures + "/checklists/clas12-rgx.yaml",
                         runs: RunSet(ranges: [1...2]), by: Self.alice)
        }
    }

    @Test func walkToPassXWithReopenAndStale() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.makeStore(tmp)

        // FMT alignment is not needed for this run group: skipped with a reason, satisfies its dependents.
        #expect(throws: CampaignError.reasonRequired(campaign: "rgx", step: "fmt-alignment")) {
            try s.apply(.skip, campaign: "rgx", step: "fmt-alignment", by: Self.alice)
        }
        #expect(throws: CampaignError.notIfNecessary(campaign: "rgx", step: "dc-alignment")) {
            try s.apply(.skip, campaign: "rgx", step: "dc-alignment", by: Self.alice, note: "x")
        }
        try s.apply(.skip, campaign: "rgx", step: "fmt-alignment", by: Self.alice, note: "no FMT in RG-X")
        #expect(try Self.state(s, "fmt-alignment") == .skipped)
        // A skipped step passes its inputs through: RF waits for what FMT alignment waited for, the DC alignment.
        #expect(try Self.state(s, "rf-global-offsets") == .blocked)
        #expect(try s.step("rf-global-offsets", of: "rgx").unmetPrerequisites == ["fmt-alignment"])
        try Self.finish(s, "dc-alignment")
        #expect(try Self.state(s, "rf-global-offsets") == .ready)

        // Everything up to the final check.
        try Self.drain(s, except: ["final-check", "passx"])
        let before = try s.steps(of: "rgx")
        #expect(before.filter { $0.state == .done }.count == 39)
        #expect(try Self.state(s, "final-check") == .ready)
        #expect(try Self.state(s, "passx") == .blocked)

        // An accidental mistake in the DC alignment: reopen it. Its done dependents go stale, also those behind the
        // skipped FMT alignment (RF, FTOF, DC t0, ...); the skipped step itself stays skipped.
        let r = try s.apply(.reopen, campaign: "rgx", step: "dc-alignment", by: Self.alice, note: "wrong torus map")
        #expect(r.to == .running && r.iteration == 2)
        #expect(r.staled == ["fd-alignment", "beam-offset", "rf-global-offsets", "ftof-calibration", "dc-t0-calibration",
                             "rf-calibration", "ftof-second-calibration", "ctof-calibration"])
        #expect(try s.step("dc-t0-calibration", of: "rgx").reason?.hasPrefix("stale: dc-alignment reopened at ") == true)
        #expect(try Self.state(s, "fd-alignment") == .stale)
        #expect(try Self.state(s, "fmt-alignment") == .skipped)
        #expect(try Self.state(s, "final-check") == .blocked)
        // A stale step cannot restart while its input is being redone.
        #expect(throws: CampaignError.self) { try s.apply(.start, campaign: "rgx", step: "fd-alignment", by: Self.alice) }
        do {
            try s.apply(.start, campaign: "rgx", step: "fd-alignment", by: Self.alice)
        } catch let e as CampaignError {
            #expect(e.message == "cannot start step 'fd-alignment' of campaign 'rgx': it is stale (waiting for dc-alignment)")
            #expect(e.exitStatus == .dataError)
        }
        try s.apply(.done, campaign: "rgx", step: "dc-alignment", by: Self.alice)
        try s.apply(.approve, campaign: "rgx", step: "dc-alignment", by: Self.bob, note: "looked fine")
        #expect(try Self.state(s, "fd-alignment") == .ready)
        #expect(try Self.state(s, "beam-offset") == .ready)
        #expect(try Self.state(s, "rf-global-offsets") == .ready)
        #expect(try Self.state(s, "ftof-calibration") == .stale)
        try Self.drain(s, except: ["final-check", "passx"])
        #expect(try s.step("dc-t0-calibration", of: "rgx").iteration == 2)
        #expect(try s.step("fd-alignment", of: "rgx").iteration == 2)
        #expect(try s.step("beam-offset", of: "rgx").iteration == 2)

        try Self.finish(s, "final-check")
        try Self.finish(s, "passx")
        #expect(try s.steps(of: "rgx").allSatisfy { $0.state == .done || $0.id == "fmt-alignment" })
        #expect(try s.overview(campaign: "rgx").criticalPath.isEmpty)

        // A late redo after PassX: RF calibration. Everything downstream that was done is stale, passx included.
        let r2 = try s.apply(.reopen, campaign: "rgx", step: "rf-calibration", by: Self.alice, note: "RF offsets drifted")
        #expect(r2.staled == ["ftof-second-calibration", "ctof-calibration", "final-check", "passx"])
        let o = try s.overview(campaign: "rgx")
        #expect(o.criticalPath == ["rf-calibration", "ftof-second-calibration", "ctof-calibration", "final-check", "passx"])
        #expect(o.readyNow.isEmpty)
        try s.apply(.done, campaign: "rgx", step: "rf-calibration", by: Self.alice)
        // The second FTOF calibration turns out unnecessary this time: skip the stale step.
        try s.apply(.skip, campaign: "rgx", step: "ftof-second-calibration", by: Self.alice, note: "RF change below 10 ps")
        #expect(try Self.state(s, "ctof-calibration") == .ready)
        try Self.finish(s, "ctof-calibration")
        try Self.finish(s, "final-check")
        try Self.finish(s, "passx")
        #expect(try s.step("passx", of: "rgx").iteration == 2)
        #expect(try s.step("rf-calibration", of: "rgx").iteration == 3)   // redone after the DC re-alignment, then reopened

        // The log has every transition, in order, consistent with the states.
        #expect(try s.verify(campaign: "rgx") == [])
        let log = try s.log(campaign: "rgx", step: "fd-alignment")
        #expect(log.map(\.command) == [.create, .start, .done, .invalidate, .start, .done])
        #expect(log[3].causedBy == "dc-alignment" && log[3].to == .stale)
        #expect(log.allSatisfy { $0.actor == "alice" && $0.host == "test" })
        let approvals = try s.log(campaign: "rgx").filter { $0.command == .approve }
        #expect(!approvals.isEmpty && approvals.allSatisfy { $0.actor == "bob" && $0.note == "looked fine" })

        let report = try s.report(campaign: "rgx")
        let totalIterations = try s.steps(of: "rgx").reduce(0) { $0 + $1.iteration }
        #expect(report.totals.iterations == totalIterations)
        #expect(report.steps.first { $0.id == "dc-alignment" }?.iterations == 2)
    }

    @Test func reopeningASkippedStepRunsItAndStalesItsDependents() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.makeStore(tmp)
        try s.apply(.skip, campaign: "rgx", step: "fmt-alignment", by: Self.alice, note: "not needed")
        try Self.finish(s, "dc-alignment")
        try Self.finish(s, "rf-global-offsets")
        // Reopening the skipped step runs it (its prerequisite is done) and stales what was built behind it.
        let r = try s.apply(.reopen, campaign: "rgx", step: "fmt-alignment", by: Self.alice, note: "needed after all")
        #expect(r.to == .running && r.iteration == 1)
        #expect(r.staled == ["rf-global-offsets"])
        #expect(try Self.state(s, "rf-global-offsets") == .stale)
        try s.apply(.done, campaign: "rgx", step: "fmt-alignment", by: Self.alice)
        #expect(try Self.state(s, "rf-global-offsets") == .ready)
        try Self.finish(s, "rf-global-offsets")
        #expect(try s.step("rf-global-offsets", of: "rgx").iteration == 2)
        #expect(try s.verify(campaign: "rgx") == [])
    }

    @Test func reopenIsRefusedWhileADownstreamStepIsRunning() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.makeStore(tmp)
        try Self.finish(s, "dc-alignment")
        try s.apply(.start, campaign: "rgx", step: "fd-alignment", by: Self.alice)
        #expect(throws: CampaignError.downstreamRunning(campaign: "rgx", step: "dc-alignment", running: ["fd-alignment"])) {
            try s.apply(.reopen, campaign: "rgx", step: "dc-alignment", by: Self.alice)
        }
        #expect(try Self.state(s, "dc-alignment") == .done)
        try s.apply(.fail, campaign: "rgx", step: "fd-alignment", by: Self.alice, note: "stopped for the redo")
        try s.apply(.reopen, campaign: "rgx", step: "dc-alignment", by: Self.alice)
        #expect(try Self.state(s, "fd-alignment") == .failed)   // failed stays failed; restart after the redo
        try s.apply(.done, campaign: "rgx", step: "dc-alignment", by: Self.alice)
        try s.apply(.approve, campaign: "rgx", step: "dc-alignment", by: Self.alice)   // its gate metric was not reported
        try s.apply(.start, campaign: "rgx", step: "fd-alignment", by: Self.alice)
        #expect(try s.step("fd-alignment", of: "rgx").iteration == 2)
        #expect(try s.verify(campaign: "rgx") == [])
    }

    @Test func illegalTransitionsNameStepStateAndWhatIsAllowed() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.makeStore(tmp)
        func error(_ body: () throws -> Void) -> CampaignError? {
            do { try body(); return nil } catch { return error as? CampaignError }
        }
        let e1 = error { try s.apply(.done, campaign: "rgx", step: "dc-alignment", by: Self.alice) }
        #expect(e1?.message == "cannot done step 'dc-alignment' of campaign 'rgx': it is ready")
        #expect(e1?.fix?.contains("from ready you can: start") == true)
        let e2 = error { try s.apply(.approve, campaign: "rgx", step: "dc-alignment", by: Self.alice) }
        #expect(e2?.exitStatus == .dataError)
        try Self.finish(s, "dc-alignment")
        let e3 = error { try s.apply(.start, campaign: "rgx", step: "dc-alignment", by: Self.alice) }
        #expect(e3?.fix?.contains("from done you can: reopen") == true)
        let e4 = error { try s.apply(.start, campaign: "rgx", step: "dc-alignmnt", by: Self.alice) }
        #expect(e4?.exitStatus == .usage && e4?.fix == "did you mean 'dc-alignment'?")
        let e5 = error { _ = try s.steps(of: "rgy") }
        #expect(e5?.fix == "did you mean 'rgx'?")
        // Refused commands leave no trace (create, start, done -> awaiting-validation, approve).
        #expect(try s.log(campaign: "rgx", step: "dc-alignment").count == 4)
        #expect(try s.verify(campaign: "rgx") == [])
    }

    @Test func failedStepsRetryWithANewIteration() throws {
        let tmp = TemporaryDirectory()
        let s = try Self.makeStore(tmp)
        try s.apply(.start, campaign: "rgx", step: "dc-alignment", by: Self.alice)
        try s.apply(.fail, campaign: "rgx", step: "dc-alignment", by: Self.alice, note: "job crashed")
        #expect(try Self.state(s, "dc-alignment") == .failed)
        #expect(try Self.state(s, "fd-alignment") == .blocked)
        try s.apply(.start, campaign: "rgx", step: "dc-alignment", by: Self.alice)
        #expect(try s.step("dc-alignment", of: "rgx").iteration == 2)
        try s.recordMetrics(campaign: "rgx", step: "dc-alignment", metrics: ["residual_um": 30], by: Self.alice)
        let moved = try s.transition(campaign: "rgx", step: "dc-alignment", to: .done, by: Self.alice)
        #expect(moved.to == .done)
    }

    @Test func concurrentWritersSerialise() throws {
        let tmp = TemporaryDirectory()
        _ = try Self.makeStore(tmp)
        let path = tmp.file("calibctl.db")
        let independent = ["geometry-update", "target-materials", "cable-swaps", "tdc-jitter", "rf-config",
                           "ftcal-correction-tables", "rich-reco-tables", "pressure"]
        DispatchQueue.concurrentPerform(iterations: 4) { k in
            guard let store = try? CampaignStore(path: path) else { return }
            for step in independent[(k * 2)..<(k * 2 + 2)] {
                _ = try? store.apply(.start, campaign: "rgx", step: step, by: Self.alice)
                _ = try? store.apply(.done, campaign: "rgx", step: step, by: Self.alice)
            }
            // Everyone also races for the same step: exactly one start wins.
            _ = try? store.apply(.start, campaign: "rgx", step: "dataset-archaeology", by: Self.alice)
        }
        let s = try CampaignStore(path: path)
        for step in independent { #expect(try Self.state(s, step) == .done) }
        #expect(try s.step("dataset-archaeology", of: "rgx").iteration == 1)
        #expect(try s.log(campaign: "rgx", step: "dataset-archaeology").filter { $0.command == .start }.count == 1)
        #expect(try s.verify(campaign: "rgx") == [])
    }

    @Test func runSets() throws {
        #expect(try RunSet(parsing: "5000-5100").count == 101)
        let r = try RunSet(parsing: "5200, 5000-5100,5101-5105")
        #expect(r.description == "5000-5105,5200" && r.count == 107 && r.contains(5200) && !r.contains(5150))
        #expect(throws: CampaignError.self) { try RunSet(parsing: "5100-5000") }
        #expect(throws: CampaignError.self) { try RunSet(parsing: "abc") }
    }
}
