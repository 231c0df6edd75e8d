@testable import CalibWorkflow
import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import CalibTestSupport
import Foundation
import Testing

/// A scheduler that runs each shard in this process at submission (`JobRunner` with the workflow's job kinds), so
/// library tests need neither the calibctl binary nor a batch system.
final class InProcessScheduler: BatchScheduler, @unchecked Sendable {
    private let lock = NSLock()
    private var observed: [String: ObservedJob] = [:]
    private var submissions: [String: [Int: String]] = [:]
    let runner: JobRunner = {
        var r = JobKindRegistry.builtIn
        for k in WorkflowJobKinds.all { r.register(k) }
        return JobRunner(registry: r)
    }()

    var name: String { "local" }
    var minimumPollInterval: TimeInterval { 0 }

    func submit(_ s: Submission) throws -> [Int: String] {
        var ids: [Int: String] = [:]
        for sh in s.shards {
            // The command is the worker command + [SPECS, "--shard", I, "--attempt", N].
            let c = sh.command
            let spec = c[c.count - 5], shard = Int(c[c.count - 3]), attempt = Int(c[c.count - 1]) ?? 1
            let t0 = Date()
            let r = try runner.run(specPath: spec, shard: shard, attempt: attempt)
            let id = "\(s.name).\(sh.index)"
            let end = Date()
            lock.withLock {
                observed[id] = ObservedJob(batchID: id, state: r.exitCode == 0 ? .succeeded : .failed, exitCode: r.exitCode,
                                           failureClass: r.exitCode == 0 ? nil : .userError, reason: r.message,
                                           startTime: t0, endTime: end, cpuSeconds: end.timeIntervalSince(t0))
            }
            ids[sh.index] = id
        }
        lock.withLock { submissions[s.name] = ids }
        return ids
    }

    func findSubmitted(_ s: Submission) throws -> [Int: String] { lock.withLock { submissions[s.name] ?? [:] } }

    func poll(_ ids: [String]) throws -> [String: ObservedJob] {
        lock.withLock {
            var out: [String: ObservedJob] = [:]
            for id in ids { out[id] = observed[id] ?? ObservedJob(batchID: id, state: .lost, failureClass: .lost) }
            return out
        }
    }

    func cancel(_ ids: [String]) throws {}
}

/// A workspace with a store (detector jungfrau), a simulated 3-gain-mode dark run and a workflow engine.
final class DarkFixture {
    let tmp = TemporaryDirectory("wf-dark")
    let ws: Workspace
    let jobs: JobEngine
    let engine: WorkflowEngine
    let input: String
    let approver = Identity(user: "alice", host: "test", commandLine: "calibctl step approve")

    init(gainModes: Int = 3, frames: Int = 120, seed: UInt64 = 5) throws {
        ws = Workspace(home: tmp.path)
        try FileManager.default.createDirectory(atPath: ws.home, withIntermediateDirectories: true)
        let store = try ConstantsStore(directory: ws.store, create: true)
        try store.addDetector(DetectorSpec(name: "jungfrau", kind: "jungfrau"))
        input = tmp.file("D")
        try FileManager.default.createDirectory(atPath: input, withIntermediateDirectories: true)
        var sim = DarkRunSimulator()
        sim.panels = 2; sim.rows = 16; sim.cols = 32; sim.frames = frames; sim.gainModes = gainModes; sim.seed = seed
        sim.run = 100; sim.detector = "jungfrau"; sim.defectFraction = 0.002
        try sim.write(path: input + "/dark.h5", truthPath: input + "/dark.truth.h5", threads: 1)
        jobs = try JobEngine(database: SQLiteDatabase(path: ws.databasePath), workspace: ws,
                             schedulers: [InProcessScheduler()], workerCommand: ["in-process", "job", "run"])
        engine = try WorkflowEngine(jobs: jobs, actions: .standard)
    }

    func store() throws -> ConstantsStore { try ConstantsStore(directory: ws.store) }

    @discardableResult
    func createCampaign(_ name: String = "d1", runs: String = "100-110", params: [String: String] = [:]) throws -> Campaign {
        let path = TestPaths.fixtures + "/checklists/lcls-dark.yaml"
        let yaml = try String(contentsOfFile: path, encoding: .utf8)
        return try engine.createCampaign(name: name, checklistYAML: yaml, file: path, runs: try RunSet(parsing: runs),
                                         settings: CampaignSettings(params: ["input": input].merging(params) { $1 }))
    }

    /// Ticks until every step is done (approving steps that wait for a person, as `alice`); returns the steps
    /// approved, in order.
    @discardableResult
    func runToEnd(_ name: String = "d1", approve: (CampaignStep) -> Bool = { _ in true }) throws -> [String] {
        var approved: [String] = []
        for _ in 0..<40 {
            _ = try jobs.update(force: true)
            try engine.advance(campaign: name)
            let steps = try engine.campaigns.steps(of: name)
            if steps.allSatisfy({ $0.state == .done }) { return approved }
            for s in steps where s.state == .awaitingValidation || s.state == .awaitingSignOff {
                guard approve(s) else { return approved }
                try engine.campaigns.apply(.approve, campaign: name, step: s.id, by: approver, note: "looks right")
                approved.append(s.id)
            }
            if let f = steps.first(where: { $0.state == .failed }) {
                let runs = try engine.stepRuns(campaign: name, step: f.id)
                Issue.record("step \(f.id) failed: \(runs.last?.failedUnits ?? [:])")
                return approved
            }
        }
        Issue.record("campaign \(name) did not finish: \(try engine.campaigns.steps(of: name).map { "\($0.id)=\($0.state.rawValue)" })")
        return approved
    }

    func stepDirectory(_ step: String, campaign: String = "d1", iteration: Int = 1) -> String {
        engine.stepDirectory(campaign: campaign, step: step, iteration: iteration)
    }

    func context(_ step: String, campaign: String = "d1") throws -> ActionContext {
        let c = try engine.campaigns.campaign(named: campaign)
        let s = try engine.campaigns.step(step, of: campaign)
        return try engine.context(c, s.step, iteration: s.iteration)
    }
}

func readFloats(_ path: String, _ dataset: String) throws -> (values: [Float], shape: [Int]) {
    let f = try HDF5File.open(path)
    let ds = try f.dataset(dataset)
    return (try ds.read(as: Float.self), ds.shape)
}

@Suite struct LCLSDarkWorkflowTests {
    @Test func lclsDarkCampaignRunsFromTicksToTheStoreAndAnLCLSTree() throws {
        let fx = try DarkFixture()
        try fx.createCampaign()
        let approved = try fx.runToEnd()
        #expect(approved == ["dark-runs"])   // the manual e-log check; every gate passes on a first calibration

        // dark-process: three shards, metrics per gain mode, effort recorded.
        let dp = try fx.engine.campaigns.metrics(campaign: "d1", step: "dark-process")
        #expect(dp["shards"] == 3 && dp["failed_shards"] == 0)
        #expect((dp["fraction_good"] ?? 0) > 0.95)
        #expect(dp["frames.sum"] == 120 && dp["events.sum"] == 120)

        // The store's pedestals for run 105 are the stacked dark-process outputs.
        let store = try fx.store()
        let got = try store.get(detector: "jungfrau", type: "pedestals", run: 105)   // tag `default` (deploy_tag)
        let arr = try #require(got.payload["pedestals"])
        #expect(arr.shape == [3, 2, 16, 32] && arr.dtype == .float32)
        var expected: [Float] = []
        for g in 0..<3 {
            let p = fx.stepDirectory("dark-process") + "/gain-mode=\(g)/dark-g\(g).h5"
            let r = try readFloats(p, DarkFormat.pedestals)
            #expect(r.shape == [1, 2, 16, 32])
            expected += r.values
        }
        #expect(try arr.values(as: Float.self) == expected)
        #expect(got.entry.runs == (try RunRange(first: 100, last: 110)))
        let status = try store.get(detector: "jungfrau", type: "pixel_status", run: 105)
        #expect(status.payload["pixel_status"]?.dtype == .uint16)
        _ = try store.get(detector: "jungfrau", type: "pixel_rms", run: 110)

        // Provenance: campaign, step, iteration, input checksums, approver.
        let links = got.entry.provenance.links
        #expect(links.campaign == "d1" && links.step == "deploy" && links.job == "d1/deploy/i1")
        #expect(links.inputRuns == "100-110")
        #expect(links.comment.contains("pedestals.h5 sha256="))
        #expect(links.comment.contains("g2: dark.h5 sha256=\(try JobFiles.sha256(ofFile: fx.input + "/dark.h5"))"))
        #expect(links.comment.contains("approved: dark-runs by alice"))

        // compare-previous on a first calibration.
        let cmp = try fx.engine.campaigns.metrics(campaign: "d1", step: "compare-previous")
        #expect(cmp["previous_found"] == 0 && cmp["mean_pedestal_shift"] == 0 && cmp["status_changed_fraction"] == 0)

        // The LCLS tree.
        let tree = fx.stepDirectory("lcls-export") + "/calib/Jungfrau::CalibV1/jungfrau"
        for t in ["pedestals", "pixel_rms", "pixel_status"] {
            #expect(FileManager.default.fileExists(atPath: "\(tree)/\(t)/100-110.data"), "\(t)")
        }

        // A killed tick re-runs inline actions: deploying again adds no entry.
        let before = try store.entries(detector: "jungfrau").count
        let again = try StoreDeployAction().runInline(unit: WorkUnit([]), context: try fx.context("deploy"))
        #expect(again.metrics["entries_put"] == 0 && again.metrics["entries_present"] == 3)
        #expect(try fx.store().entries(detector: "jungfrau").count == before)
        #expect(before == 3)
        // ... and so does exporting and assembling again.
        _ = try LCLSExportAction().runInline(unit: WorkUnit([]), context: try fx.context("lcls-export"))
        let ped2 = try DarkConstantsAction().runInline(unit: WorkUnit([]), context: try fx.context("pedestals"))
        #expect(try JobFiles.sha256(ofFile: ped2.outputs["pedestals"]!) != "")
        #expect(try PayloadFile.readForeign(ped2.outputs["pedestals"]!).contentHash == got.entry.sha256)
    }

    @Test func stackedPedestalsAgreeWithDarkFitOverTheWholeFile() throws {
        let fx = try DarkFixture(seed: 11)
        try fx.createCampaign()
        try fx.runToEnd()
        let whole = fx.tmp.file("whole.h5")
        var o = DarkOptions()
        o.nrecs1 = 50; o.nrecs = 1000
        let summary = try DarkFit.run(inputPath: fx.input + "/dark.h5", outputPath: whole, options: o, threads: 1)
        #expect(summary.modes.map(\.gainMode) == [0, 1, 2])
        let ref = try readFloats(whole, DarkFormat.pedestals)
        let stacked = try readFloats(fx.stepDirectory("pedestals") + "/pedestals.h5", "/pedestals")
        #expect(stacked.shape == ref.shape)
        #expect(stacked.values == ref.values)
        let refRMS = try readFloats(whole, DarkFormat.pixelRMS)
        let rms = try readFloats(fx.stepDirectory("pixel-rms") + "/pixel_rms.h5", "/pixel_rms")
        #expect(rms.values == refRMS.values)
        let f = try HDF5File.open(fx.stepDirectory("pixel-status") + "/pixel_status.h5")
        #expect(try f.read("/pixel_status", as: UInt16.self) == (try HDF5File.open(whole).read(DarkFormat.pixelStatus, as: UInt16.self)))
    }

    @Test func comparePreviousWithAnotherShapeAsksForSignOffInsteadOfCrashing() throws {
        let fx = try DarkFixture(seed: 7)
        // Constants in use from another geometry (1 gain mode, 4x4).
        let old = try Payload(arrays: [PayloadArray(name: "pedestals", values: [Float](repeating: 2700, count: 16), shape: [1, 4, 4])])
        try fx.store().put(detector: "jungfrau", type: "pedestals", runs: try RunRange(parsing: "1-"), payload: old)
        try fx.createCampaign()
        var waited: [String: [String: Double]] = [:]
        let approved = try fx.runToEnd { s in
            if s.id == "compare-previous" {
                waited[s.id] = (try? fx.engine.campaigns.metrics(campaign: "d1", step: s.id)) ?? [:]
            }
            return true
        }
        #expect(approved == ["dark-runs", "compare-previous"])
        let m = try #require(waited["compare-previous"])
        #expect(m["previous_found"] == 1 && m["shape_mismatch"] == 1)
        #expect(m["mean_pedestal_shift"] == nil)
        let st = try fx.engine.campaigns.step("compare-previous", of: "d1")
        #expect(st.state == .done)
        // The deployed constants win for the campaign's runs; the old ones stay for the others.
        let store = try fx.store()
        #expect(try store.get(detector: "jungfrau", type: "pedestals", run: 105).payload["pedestals"]?.shape == [3, 2, 16, 32])
        #expect(try store.get(detector: "jungfrau", type: "pedestals", run: 50).payload["pedestals"]?.shape == [1, 4, 4])
        let report = try String(contentsOfFile: fx.stepDirectory("compare-previous") + "/compare.json", encoding: .utf8)
        #expect(report.contains("not compared"))
        // The dark report beside it says so with both shapes and draws no shift maps (nothing indexed across shapes).
        let page = try String(contentsOfFile: fx.stepDirectory("compare-previous") + "/report.html", encoding: .utf8)
        #expect(page.contains("class=\"bad shape-mismatch\"") && page.contains("1x4x4") && page.contains("3x2x16x32"))
        #expect(!page.contains("data-map=\"shift\"") && page.contains("data-map=\"status\" data-gain-mode=\"2\" data-panel=\"1\""))
    }

    @Test func comparePreviousMeasuresTheShiftAgainstTheConstantsInUse() throws {
        let fx = try DarkFixture(seed: 9)
        try fx.createCampaign("d1", runs: "100-110")
        try fx.runToEnd("d1")
        // A second campaign on the same dark data compared with d1's deployed constants: no shift.
        try fx.createCampaign("d2", runs: "120-130")
        try fx.runToEnd("d2")
        let m = try fx.engine.campaigns.metrics(campaign: "d2", step: "compare-previous")
        #expect(m["previous_found"] == 1 && m["shape_mismatch"] == 0)
        #expect(m["mean_pedestal_shift"] == 0 && m["max_pedestal_shift"] == 0 && m["status_changed_fraction"] == 0)
        // Shifted constants in use for run 140: the shift is measured.
        let cur = try fx.store().get(detector: "jungfrau", type: "pedestals", run: 125)
        let shifted = try cur.payload["pedestals"]!.values(as: Float.self).map { $0 + 12 }
        try fx.store().put(detector: "jungfrau", type: "pedestals", runs: try RunRange(parsing: "140-"),
                           payload: try Payload(arrays: [PayloadArray(name: "pedestals", values: shifted, shape: [3, 2, 16, 32])]))
        try fx.createCampaign("d3", runs: "140-150")
        try fx.runToEnd("d3")
        let m3 = try fx.engine.campaigns.metrics(campaign: "d3", step: "compare-previous")
        #expect(abs((m3["mean_pedestal_shift"] ?? 0) - 12) < 1e-3 && abs((m3["max_pedestal_shift"] ?? 0) - 12) < 1e-3)
    }

    @Test func aMissingGainModeFailsItsShardWithAClearMessage() throws {
        let fx = try DarkFixture(gainModes: 1, frames: 60)
        #expect(throws: BuiltinActionError.self) { try DarkRunInputs.file(for: 2, in: fx.input) }
        do {
            _ = try DarkRunInputs.file(for: 2, in: fx.input)
        } catch let e as BuiltinActionError {
            #expect(e.exitStatus == .dataError && e.message.contains("gain mode 2") && e.message.contains("dark.h5"))
        }
        #expect(try DarkRunInputs.file(for: 0, in: fx.input).frames == 60)
        // DarkFit itself refuses a mode the file does not hold.
        var o = DarkOptions()
        o.onlyGainModes = [1]
        #expect(throws: NumericsError.self) {
            try DarkFit.run(inputPath: fx.input + "/dark.h5", outputPath: fx.tmp.file("x.h5"), options: o, threads: 1)
        }
        // Through the engine: gain modes 1 and 2 fail with exit 65, and the step fails naming them.
        try fx.createCampaign()
        for _ in 0..<10 {
            _ = try fx.jobs.update(force: true)
            try fx.engine.advance(campaign: "d1")
            if try fx.engine.campaigns.step("dark-runs", of: "d1").state == .awaitingValidation {
                try fx.engine.campaigns.apply(.approve, campaign: "d1", step: "dark-runs", by: fx.approver)
            }
            if try fx.engine.campaigns.step("dark-process", of: "d1").state == .failed { break }
        }
        #expect(try fx.engine.campaigns.step("dark-process", of: "d1").state == .failed)
        let failed = try #require(fx.engine.stepRuns(campaign: "d1", step: "dark-process").last?.failedUnits)
        #expect(Set(failed.keys) == ["gain-mode=1", "gain-mode=2"])
        #expect(failed["gain-mode=2"]?.contains("no dark run in \(fx.input) has frames of gain mode 2") == true)
    }
}
