import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import CalibWorkflow
import Foundation

/// The CMS pixel gain calibration (the `run.py` workflow) on calibctl's engine: one job set with a shard per FED,
/// one campaign of the `cms-pixel-gain` checklist per run, the store for the VCal table and the payloads.
/// The CLI verbs (create, submit, status, resubmit, merge, summary, payload) and `tick` both drive it.
final class PixelGainWorkflow {
    let jobs: JobsContext
    let campaigns: CampaignStore
    var workspace: Workspace { jobs.workspace }
    private var openedStore: ConstantsStore?

    static let detector = "sipixel"
    static let stepFit = "gain-fit", stepMerge = "merge", stepValidation = "validation"
    static let stepVCal = "vcal-tag", stepOffline = "payload-offline", stepHLT = "payload-hlt"

    convenience init(_ ws: Workspace) throws {
        try self.init(try JobsContext(ws))
    }

    init(_ context: JobsContext) throws {
        jobs = context
        campaigns = try CampaignStore(database: context.database)
    }

    func store() throws -> ConstantsStore {
        if let s = openedStore { return s }
        let s = try ConstantsStore(directory: workspace.store)
        openedStore = s
        return s
    }

    func layout(_ run: Int) -> PixelGainLayout { PixelGainLayout(home: workspace.home, run: run) }

    enum Partition: String, CaseIterable { case all, bpix, fpix }

    struct CreateRequest {
        var run: Int
        var vcalTag: String
        var input: String?
        var output: String?
        var feds: [Int] = []
        var partition: Partition = .all
        var scheduler = "local"
        var force = false
        var memoryMB = 2000
        var timeLimitSeconds = 3 * 3600
        var options = GainFitOptions()
    }

    // MARK: create

    /// Creates the run directory, the VCal table from the store, one shard per FED and the campaign. Refuses to
    /// touch an existing run unless `force`, which moves the old run directory and outputs aside (never deletes).
    @discardableResult
    func create(_ r: CreateRequest) throws -> PixelGainRunConfig {
        let lay = layout(r.run)
        let input = Workspace.absolutePath(r.input ?? (workspace.home + "/scans/\(r.run)"))
        let output = Workspace.absolutePath(r.output ?? (lay.directory + "/output"))
        var generation = 1
        if FileManager.default.fileExists(atPath: lay.directory) {
            guard r.force else { throw WorkflowError.runExists(run: r.run, directory: lay.directory) }
            generation = try moveAside(lay, output: output)
        } else if let items = try? FileManager.default.contentsOfDirectory(atPath: output), !items.isEmpty {
            guard r.force else { throw WorkflowError.runExists(run: r.run, directory: output) }
            generation = try moveAside(lay, output: output)
        }
        guard FileManager.default.fileExists(atPath: input) else { throw WorkflowError.noInputs(run: r.run, directory: input) }
        let feds = try selectFEDs(r, input: input)
        let vcal = try vcalTable(tag: r.vcalTag, run: r.run)

        let name = "pixelgain-\(r.run)" + (generation > 1 ? "-v\(generation)" : "")
        let who = Identity.current
        let config = PixelGainRunConfig(
            run: r.run, vcalTag: r.vcalTag, vcalPayload: vcal.payload, inputDirectory: input, outputDirectory: output,
            feds: feds, scheduler: r.scheduler, jobSet: name, campaign: name, createdAt: Date(), createdBy: who.user,
            host: who.host, calibctlVersion: CalibctlVersion.string, fitOptions: r.options)
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: lay.directory, withIntermediateDirectories: true)
        try vcal.write(to: lay.vcal)
        let optionsJSON = String(decoding: try JSONEncoder().encode(r.options), as: UTF8.self)
        let shards = feds.enumerated().map { i, fed in
            ShardDefinition(key: "fed=\(fed)", spec: JobSpec(
                kind: PixelGainFitJob.name, key: "fed=\(fed)", index: i,
                inputs: ["scan": PixelGainLayout.fedInput(config, fed: fed), "vcal": lay.vcal],
                outputs: ["fit": PixelGainLayout.fedOutput(config, fed: fed)],
                parameters: ["fit_options": optionsJSON, "run": String(r.run), "fed": String(fed)]))
        }
        try jobs.engine.createJobSet(JobSetDefinition(
            name: name, scheduler: r.scheduler, campaign: name, step: Self.stepFit, memoryMB: r.memoryMB,
            timeLimitSeconds: r.timeLimitSeconds, parameters: ["run": String(r.run), "vcal_tag": r.vcalTag],
            shards: shards))
        let shipped = ShippedChecklists.named("cms-pixel-gain")!
        try campaigns.create(name: name, checklistYAML: shipped.yaml,
                             file: shipped.file, runs: RunSet(ranges: [r.run...r.run]),
                             note: "calibctl create \(r.run) -t \(r.vcalTag)")
        try campaigns.apply(.start, campaign: name, step: Self.stepVCal, note: "VCal tag \(r.vcalTag)")
        try campaigns.apply(.done, campaign: name, step: Self.stepVCal)
        if try campaigns.step(Self.stepVCal, of: name).state != .done {
            try campaigns.apply(.approve, campaign: name, step: Self.stepVCal,
                                note: "VCal tag \(r.vcalTag) chosen explicitly with create -t (payload \(vcal.payload.prefix(12)))")
        }
        try lay.save(config)   // last: a run exists only once everything above is in place
        return config
    }

    /// Moves an existing run directory and non-empty output directory aside (`.moved-<time>`); returns the next
    /// generation number of the run (its job set and campaign get a `-vN` suffix: their history is kept).
    private func moveAside(_ lay: PixelGainLayout, output: String) throws -> Int {
        let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
        let fm = FileManager.default
        if fm.fileExists(atPath: lay.directory) {
            try fm.moveItem(atPath: lay.directory, toPath: lay.directory + ".moved-\(stamp)")
        }
        if fm.fileExists(atPath: output), !output.hasPrefix(lay.directory + "/") {
            try fm.moveItem(atPath: output, toPath: output + ".moved-\(stamp)")
        }
        let base = "pixelgain-\(lay.run)"
        let existing = try jobs.engine.listJobSets().map(\.name).filter { $0 == base || $0.hasPrefix(base + "-v") }
        return existing.count + 1
    }

    private func selectFEDs(_ r: CreateRequest, input: String) throws -> [Int] {
        let fm = FileManager.default
        func inPartition(_ f: Int) -> Bool {
            switch r.partition {
            case .all: true
            case .bpix: CMSPixelTopology.isBPix(fed: f)
            case .fpix: !CMSPixelTopology.isBPix(fed: f)
            }
        }
        if !r.feds.isEmpty {
            let feds = Array(Set(r.feds)).sorted().filter(inPartition)
            let missing = feds.filter { !fm.fileExists(atPath: input + "/fed_\($0).h5") }
            if !missing.isEmpty { throw WorkflowError.missingInputs(run: r.run, directory: input, feds: missing) }
            if feds.isEmpty { throw WorkflowError.noInputs(run: r.run, directory: input) }
            return feds
        }
        let found = (try fm.contentsOfDirectory(atPath: input)).compactMap { name -> Int? in
            guard name.hasPrefix("fed_"), name.hasSuffix(".h5") else { return nil }
            return Int(name.dropFirst(4).dropLast(3))
        }.filter(inPartition).sorted()
        if found.isEmpty { throw WorkflowError.noInputs(run: r.run, directory: input) }
        return found
    }

    /// Reads the VCal conversion of `run` from the store's `vcal` type in tag `tag`.
    func vcalTable(tag: String, run: Int) throws -> VCalTable {
        let stored: StoredPayload
        do {
            stored = try store().get(detector: Self.detector, type: "vcal", run: Int64(run), tag: tag)
        } catch let e as DiagnosableError {
            throw WorkflowError.missingVCal(tag: tag, run: run, detail: e.message)
        }
        let p = stored.payload
        guard let slope = p["slope"]?.doubles(), let offset = p["offset"]?.doubles(), slope.count == offset.count,
              !slope.isEmpty else {
            throw WorkflowError.missingVCal(tag: tag, run: run, detail: "payload \(stored.entry.sha256.prefix(12)) has no slope/offset of equal size")
        }
        let detids: [Int64] = (try? p["detid"]?.values(as: Int64.self)) ?? []
        let h2l = p.attributes["vcal_high_to_low"]?.doubleValue ?? CMSPixelTopology.vcalHighToLow
        if detids.count != slope.count && slope.count != 1 {
            throw WorkflowError.missingVCal(tag: tag, run: run, detail: "payload has \(slope.count) slopes but \(detids.count) detids")
        }
        return VCalTable(tag: tag, payload: stored.entry.sha256, highToLow: h2l, defaultSlope: slope[0],
                         defaultOffset: offset[0], detIDs: detids, slopes: slope, offsets: offset)
    }

    // MARK: submit / follow

    /// Submits the shards that have not been submitted yet and marks the gain-fit step running.
    func submit(run: Int) throws -> Int {
        let c = try layout(run).load()
        let n = try jobs.engine.submit(jobSet: c.jobSet)
        if try campaigns.step(Self.stepFit, of: c.campaign).state == .ready {
            try campaigns.apply(.start, campaign: c.campaign, step: Self.stepFit, note: "submitted \(c.feds.count) FED job(s)")
        }
        return n
    }

    /// Polls the schedulers once (all job sets, one query each, no more often than each scheduler's minimum poll
    /// interval unless `force`) and, when every FED job of the run has finished, records the fit step's metrics and
    /// effort and evaluates its quality gates.
    @discardableResult
    func refresh(run: Int, force: Bool = false) throws -> JobSetStatus {
        let c = try layout(run).load()
        _ = try jobs.engine.update(force: force)
        return try settleFitStep(c)
    }

    /// Records metrics/effort of a finished job set on the gain-fit step (idempotent).
    @discardableResult
    func settleFitStep(_ c: PixelGainRunConfig) throws -> JobSetStatus {
        let st = try jobs.engine.status(jobSet: c.jobSet)
        guard st.finished, try campaigns.step(Self.stepFit, of: c.campaign).state == .running else { return st }
        let results = try jobs.engine.results(jobSet: c.jobSet)
        var m = FitAggregate()
        for r in results { m.add(r.metrics) }
        var metrics = m.metrics
        metrics["failed_shards"] = Double(st.failed.count)
        metrics["median_chi2ndf"] = m.medianChi2
        try campaigns.recordMetrics(campaign: c.campaign, step: Self.stepFit, metrics: metrics)
        let shards = st.shards ?? []
        let cpu = shards.compactMap(\.cpuSeconds).reduce(0, +)
        let wall = shards.compactMap { s in s.started.flatMap { a in s.ended.map { $0.timeIntervalSince(a) } } }.reduce(0, +)
        let bytes = results.flatMap(\.outputs).reduce(Int64(0)) { $0 + $1.size }
        try campaigns.recordEffort(campaign: c.campaign, step: Self.stepFit, effort: EffortRecord(
            runs: 1, events: Int64(m.pixels) * 145, jobs: shards.reduce(0) { $0 + $1.attempts }, cpuSeconds: cpu,
            wallSeconds: wall, diskBytesWritten: bytes, diskBytesHeld: bytes))
        // With failed FEDs the gate failed_shards <= 0 fails and the step waits for a sign-off; a resubmit reopens it.
        try campaigns.apply(.done, campaign: c.campaign, step: Self.stepFit, note: st.summaryLine)
        return st
    }

    /// Resubmits failed and lost FEDs only (user errors too: this is an explicit request). Returns the FEDs retried.
    func resubmit(run: Int, feds: [Int]) throws -> [Int] {
        let c = try layout(run).load()
        _ = try jobs.engine.update()
        let st = try jobs.engine.status(jobSet: c.jobSet)
        let failed = st.failed.filter { s in feds.isEmpty || feds.contains(Self.fed(of: s.key)) }
        guard !failed.isEmpty else { return [] }
        let report = try jobs.engine.retry(jobSet: c.jobSet, shards: failed.map(\.index), force: true)
        let step = try campaigns.step(Self.stepFit, of: c.campaign)
        if step.state != .running && step.state != .ready && step.state != .blocked {
            try campaigns.apply(.reopen, campaign: c.campaign, step: Self.stepFit,
                                note: "resubmitted FEDs \(failed.map { String(Self.fed(of: $0.key)) }.joined(separator: ","))")
        }
        if try campaigns.step(Self.stepFit, of: c.campaign).state == .ready {
            try campaigns.apply(.start, campaign: c.campaign, step: Self.stepFit)
        }
        return report.retried.compactMap { i in failed.first { $0.index == i }.map { Self.fed(of: $0.key) } }
    }

    static func fed(of key: String) -> Int { Int(key.split(separator: "=").last ?? "") ?? -1 }
}

/// Aggregates per-FED fit metrics into run-level ones, weighting by pixel count.
struct FitAggregate {
    var pixels = 0.0, good = 0.0, gainSum = 0.0, pedSum = 0.0, chi2Means: [Double] = []
    var counts: [String: Double] = [:]

    mutating func add(_ m: [String: Double]) {
        let p = m["pixels"] ?? 0, g = (m["fraction_good"] ?? 0) * p
        pixels += p
        good += g
        gainSum += (m["mean_gain"] ?? 0) * g
        pedSum += (m["mean_pedestal"] ?? 0) * g
        if let c = m["mean_chi2ndf"] { chi2Means.append(c) }
        for (k, v) in m where k.hasPrefix("count_") { counts[k, default: 0] += v }
    }

    /// The median over FEDs of the mean chi2/ndf (the merged file's per-pixel median is computed by `validate`).
    var medianChi2: Double {
        let s = chi2Means.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }

    var metrics: [String: Double] {
        var m = counts
        m["pixels"] = pixels
        m["fraction_good"] = pixels > 0 ? good / pixels : 0
        m["mean_gain"] = good > 0 ? gainSum / good : 0
        m["mean_pedestal"] = good > 0 ? pedSum / good : 0
        return m
    }
}
