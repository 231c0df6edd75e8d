import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import Foundation

/// The run.py verbs of the CMS pixel gain calibration (create, submit, status, resubmit, merge, summary, payload) as
/// thin front ends over the workflow engine: a run is the campaign `pixelgain-RUN` of the shipped `cms-pixel-gain`
/// checklist, and every step runs through `WorkflowEngine.runStep`, exactly as `calibctl tick` runs it.
public final class PixelGainRuns {
    public let engine: WorkflowEngine
    var jobs: JobEngine { engine.jobs }
    var campaigns: CampaignStore { engine.campaigns }
    var workspace: Workspace { engine.workspace }

    public init(engine: WorkflowEngine) { self.engine = engine }

    public struct CreateRequest: Sendable {
        public var run: Int
        public var vcalTag: String
        public var input: String?
        public var output: String?
        public var feds: [Int] = []
        /// `bpix`, `fpix` or nil (every FED).
        public var partition: String?
        public var scheduler = "local"
        public var force = false
        public var memoryMB = 2000
        public var timeLimitSeconds = 3 * 3600
        public var options = GainFitOptions()
        /// The payload tags' year, and the first version to try: the run takes the next version of that year no tag
        /// and no other campaign uses (`nextFreeVersion`).
        public var payloadYear: Int?
        public var payloadVersion: Int?
        public var payloadComment: String?
        public var note: String?
        /// `dmp`, `h5` or nil (auto: the run's raw dumps when `input` holds any, else the HDF5 scans).
        public var inputFormat: String?
        /// The store tag of the cabling map (`sipixel/cabling`); required for raw dumps.
        public var cablingTag: String?
        /// For raw dumps: the anomaly fraction above which a FED fails (default 0.001).
        public var maxAnomalies: Double?

        public init(run: Int, vcalTag: String, input: String? = nil, output: String? = nil) {
            self.run = run
            self.vcalTag = vcalTag
            self.input = input
            self.output = output
        }
    }

    /// What `create` made (`create --json`).
    public struct RunInfo: Codable, Sendable {
        public var run: Int
        public var campaign: String
        public var vcalTag: String
        public var vcalPayload: String
        public var inputDirectory: String
        public var outputDirectory: String
        public var feds: [Int]
        public var scheduler: String
        /// The job set `submit` creates (`<campaign>.gain-fit.1`).
        public var jobSet: String
        public var payloadTags: [String]?
        public var createdAt: Date
        public var createdBy: String
        public var calibctlVersion: String
        public var fitOptions: GainFitOptions
        /// `h5` or `dmp`.
        public var inputFormat: String?
        public var cablingTag: String?
        public var cablingPayload: String?
    }

    // MARK: create

    /// Checks the inputs and the VCal table, then creates the campaign `pixelgain-RUN` with the run's parameters and
    /// FEDs and approves its `vcal-tag` step (choosing the tag with `-t` is the explicit decision), in one
    /// transaction. An existing run is refused; with `force` its non-empty output directory is moved aside
    /// (`.moved-<time>`, never deleted) and the run becomes the campaign `pixelgain-RUN-vN`.
    @discardableResult
    public func create(_ r: CreateRequest) throws -> RunInfo {
        let base = PixelGain.campaignName(run: r.run)
        let existing = try runCampaigns(r.run)
        let input = Workspace.absolutePath(r.input ?? (workspace.home + "/scans/\(r.run)"))
        let output = Workspace.absolutePath(r.output ?? (workspace.home + "/runs/\(r.run)/output"))
        let outputUsed = !((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).isEmpty
        if !existing.isEmpty || outputUsed {
            guard r.force else { throw PixelGainError.runExists(run: r.run, campaign: existing.last?.name ?? output) }
        }
        guard FileManager.default.fileExists(atPath: input) else { throw PixelGainError.noInputs(run: r.run, directory: input) }
        let format = try PixelGain.scanFormat(in: input, run: r.run, requested: r.inputFormat)
        let feds: [Int]
        if r.feds.isEmpty {
            feds = try PixelGain.scanFEDs(in: input, partition: r.partition, run: r.run, format: format)
        } else {
            feds = Array(Set(r.feds)).sorted().filter { PixelGain.inPartition($0, r.partition) }
            let missing = feds.filter { !FileManager.default.fileExists(atPath: PixelGain.scanPath(input, fed: $0, run: r.run, format: format)) }
            if !missing.isEmpty { throw PixelGainError.missingInputs(run: r.run, directory: input, feds: missing) }
            if feds.isEmpty { throw PixelGainError.noInputs(run: r.run, directory: input) }
        }
        let vcal = try VCalTable.fromStore(try engine.store(), tag: r.vcalTag, run: r.run)
        var cablingPayload: String?
        if format == .dmp {
            // A dump cannot be decoded without its calibration configuration and the cabling valid for the run.
            guard FileManager.default.fileExists(atPath: input + "/calib.json") else {
                throw PixelGainError.corruptFile(path: input + "/calib.json", detail: "missing: raw dumps need the scan's calibration configuration beside them")
            }
            guard let tag = r.cablingTag, !tag.isEmpty else { throw PixelGainError.missingCablingTag(run: r.run) }
            let cabling = try PixelGainCabling.fromStore(try engine.store(), tag: tag, run: r.run)
            let uncabled = feds.filter { cabling.maps[$0] == nil }
            if !uncabled.isEmpty { throw PixelGainError.noCablingForFEDs(tag: tag, run: r.run, feds: uncabled) }
            cablingPayload = cabling.payload
        }
        if outputUsed && r.force {
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            try FileManager.default.moveItem(atPath: output, toPath: output + ".moved-\(stamp)")
        }
        let name = existing.isEmpty ? base : "\(base)-v\(existing.count + 1)"
        var params: [String: String] = [
            PixelGain.Param.input: input, PixelGain.Param.vcalTag: r.vcalTag, PixelGain.Param.output: output,
            PixelGain.Param.fitOptions: String(decoding: try JSONEncoder().encode(r.options), as: UTF8.self),
        ]
        if let p = r.partition { params[PixelGain.Param.partition] = p }
        params[PixelGain.Param.inputFormat] = format.rawValue
        if let t = r.cablingTag, !t.isEmpty { params[PixelGain.Param.cablingTag] = t }
        if let m = r.maxAnomalies { params[PixelGain.Param.maxAnomalies] = String(m) }
        if let c = r.payloadComment { params[PixelGain.Param.payloadComment] = c }
        var tags: [String]?
        let shipped = ShippedChecklists.named(PixelGain.checklist)!
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let c = try engine.jobs.database.transaction {
            if let year = r.payloadYear {
                let v = try nextFreeVersion(year: year, from: r.payloadVersion ?? 1)
                params[PixelGain.Param.payloadYear] = String(year)
                params[PixelGain.Param.payloadVersion] = String(v)
                tags = ["offline", "hlt"].map { PixelGain.tagName(year: year, version: v, flavour: $0) }
            }
            let settings = CampaignSettings(params: params, units: ["fed": feds.map(String.init)], scheduler: r.scheduler,
                                            memoryMB: r.memoryMB, timeLimitSeconds: r.timeLimitSeconds,
                                            environment: CampaignSettings.capturedEnvironment())
            let c = try engine.createCampaign(name: name, checklistYAML: shipped.yaml, file: shipped.file,
                                              runs: RunSet(ranges: [r.run...r.run]), settings: settings,
                                              note: r.note ?? "calibctl create \(r.run) -t \(r.vcalTag)")
            try campaigns.apply(.start, campaign: name, step: PixelGain.stepVCal, by: engine.identity, note: "VCal tag \(r.vcalTag)")
            try campaigns.apply(.done, campaign: name, step: PixelGain.stepVCal, by: engine.identity)
            if try campaigns.step(PixelGain.stepVCal, of: name).state != .done {
                try campaigns.apply(.approve, campaign: name, step: PixelGain.stepVCal, by: engine.identity,
                                    note: "VCal tag \(r.vcalTag) chosen explicitly with create -t (payload \(vcal.payload.prefix(12)))")
            }
            return c
        }
        return RunInfo(run: r.run, campaign: c.name, vcalTag: r.vcalTag, vcalPayload: vcal.payload, inputDirectory: input,
                       outputDirectory: output, feds: feds, scheduler: r.scheduler,
                       jobSet: WorkflowEngine.jobSetName(campaign: c.name, step: PixelGain.stepFit, iteration: 1),
                       payloadTags: tags, createdAt: c.createdAt, createdBy: c.createdBy,
                       calibctlVersion: CalibctlVersion.string, fitOptions: r.options, inputFormat: format.rawValue,
                       cablingTag: format == .dmp ? r.cablingTag : nil, cablingPayload: cablingPayload)
    }

    /// Decision (docs/workflow.md): each run publishes under its own version. The smallest version >= `from` of
    /// `year` that no `SiPixelGainCalibration_<year>_v<N>_*` tag in the store and no other pixel gain campaign uses.
    public func nextFreeVersion(year: Int, from: Int) throws -> Int {
        var used = Set<Int>()
        let prefix = "SiPixelGainCalibration_\(year)_v"
        for t in (try? engine.store().tags(detector: PixelGain.detector)) ?? [] where t.name.hasPrefix(prefix) {
            if let v = Int(t.name.dropFirst(prefix.count).prefix { $0.isNumber }) { used.insert(v) }
        }
        for c in try campaigns.campaigns() where c.checklistName == PixelGain.checklist {
            let p = try engine.settings(of: c).params
            if p[PixelGain.Param.payloadYear] == String(year), let v = p[PixelGain.Param.payloadVersion].flatMap(Int.init) {
                used.insert(v)
            }
        }
        var v = max(from, 1)
        while used.contains(v) { v += 1 }
        return v
    }

    /// The campaigns of a run, oldest first (`pixelgain-RUN`, `pixelgain-RUN-v2`, ...).
    func runCampaigns(_ run: Int) throws -> [Campaign] {
        let base = PixelGain.campaignName(run: run)
        return try campaigns.campaigns().filter { c in
            c.name == base || (c.name.hasPrefix(base + "-v") && Int(c.name.dropFirst(base.count + 2)) != nil)
        }.sorted { $0.id < $1.id }
    }

    /// The current campaign of a run (its newest).
    public func campaign(run: Int) throws -> Campaign {
        guard let c = try runCampaigns(run).last else { throw PixelGainError.noSuchRun(run: run) }
        return c
    }

    func state(_ c: Campaign, _ step: String) throws -> CampaignStep { try campaigns.step(step, of: c.name) }

    // MARK: submit / status / resubmit

    /// Starts the `gain-fit` step (its job set `<campaign>.gain-fit.<iteration>`, one shard per FED) and submits
    /// what is not submitted yet; returns the number of jobs submitted (0: nothing new).
    public func submit(run: Int) throws -> Int {
        let c = try campaign(run: run)
        switch try state(c, PixelGain.stepFit).state {
        case .ready, .failed, .running:
            return try engine.runStep(campaign: c.name, step: PixelGain.stepFit, note: "calibctl submit \(run)").submitted
        default:
            return 0
        }
    }

    /// The job set of the run's current fit (throws if the run was not submitted yet).
    public func fitJobSet(run: Int) throws -> String {
        let c = try campaign(run: run)
        guard let js = try engine.currentJobSet(campaign: c.name, step: PixelGain.stepFit) else {
            throw PixelGainError.notFinished(run: run, what: "show the FED jobs", detail: "the run has not been submitted (calibctl submit \(run))")
        }
        return js
    }

    /// Polls the schedulers once (no more often than each one's minimum poll interval unless `force`) and lets the
    /// engine complete the fit step when every FED job has finished (metrics, effort, gates).
    @discardableResult
    public func status(run: Int, force: Bool = false) throws -> JobSetStatus {
        let c = try campaign(run: run)
        let js = try fitJobSet(run: run)
        _ = try jobs.update(force: force)
        try resumeIfRetried(c, jobSet: js)
        if try state(c, PixelGain.stepFit).state == .running {
            try engine.advance(campaign: c.name, only: PixelGain.stepFit)
        }
        return try jobs.status(jobSet: js)
    }

    /// New attempts for failed and lost FEDs of the current fit's job set only (user errors too: an explicit
    /// request); the fit step runs again on the same job set and the engine completes it. Returns the FEDs retried.
    public func resubmit(run: Int, feds: [Int]) throws -> [Int] {
        let c = try campaign(run: run)
        let js = try fitJobSet(run: run)
        _ = try jobs.update()
        let st = try jobs.status(jobSet: js)
        // A FED the run does not have is a typo, not "nothing to resubmit": name the run's FEDs.
        let known = Set((st.shards ?? []).map { PixelGain.fed(of: $0.key) } + st.failed.map { PixelGain.fed(of: $0.key) })
        let unknown = Array(Set(feds).subtracting(known)).sorted()
        if !unknown.isEmpty { throw UnknownFEDError(run: run, unknown: unknown, known: known.sorted()) }
        let failed = st.failed.filter { feds.isEmpty || feds.contains(PixelGain.fed(of: $0.key)) }
        guard !failed.isEmpty else { return [] }
        let report = try jobs.retry(jobSet: js, shards: failed.map(\.index), force: true)
        // The new attempts may have finished already (a fast local job): the step runs again regardless.
        if !report.retried.isEmpty, [.failed, .awaitingSignOff].contains(try state(c, PixelGain.stepFit).state) {
            try engine.resume(campaign: c.name, step: PixelGain.stepFit, note: "FED jobs resubmitted (calibctl resubmit)")
        }
        return report.retried.compactMap { i in failed.first { $0.index == i }.map { PixelGain.fed(of: $0.key) } }
    }

    /// A fit step completed (failed, or awaiting a sign-off) while its job set has new attempts again runs again.
    func resumeIfRetried(_ c: Campaign, jobSet: String) throws {
        let s = try state(c, PixelGain.stepFit)
        guard [.failed, .awaitingSignOff].contains(s.state), !(try jobs.status(jobSet: jobSet).finished) else { return }
        try engine.resume(campaign: c.name, step: PixelGain.stepFit, note: "FED jobs resubmitted (calibctl resubmit)")
    }

    // MARK: merge / summary / payload

    public struct MergeReport: Codable, Sendable {
        public var run: Int
        public var output: String
        public var feds: Int
        public var modules: Int
        public var pixels: Int
        public var verified: Bool
        public var sha256: String
    }

    /// Runs the `merge` step (verified merge of the FED fits). A merged run is not merged again: with its payloads
    /// published this is refused (`PixelGainError.published`), otherwise the recorded merge is returned; redoing it
    /// is an explicit `calibctl step reopen`.
    public func merge(run: Int) throws -> MergeReport {
        let c = try campaign(run: run)
        let fit = try state(c, PixelGain.stepFit)
        guard fit.state.satisfiesDependents else {
            var detail = "the fit step is \(fit.state.rawValue)"
            if fit.state == .awaitingSignOff {
                detail = "the fit's quality gates failed (\(fit.gates?.failingSummary ?? "see calibctl checklist show \(c.name)")) and nobody signed off: inspect it, then calibctl step approve \(c.name) \(PixelGain.stepFit) --note \"why it is fine\""
            } else if let js = try engine.currentJobSet(campaign: c.name, step: PixelGain.stepFit) {
                let st = try jobs.status(jobSet: js)
                let failed = st.failed.map { String(PixelGain.fed(of: $0.key)) }
                detail = failed.isEmpty ? "jobs are still running (\(st.summaryLine))"
                    : "FED(s) \(failed.joined(separator: ", ")) failed: resubmit them with calibctl resubmit \(run)"
            }
            throw PixelGainError.notFinished(run: run, what: "merge", detail: detail)
        }
        try runOrReuse(c, PixelGain.stepMerge)
        guard let o = try engine.latestOutput(campaign: c.name, step: PixelGain.stepMerge, named: "merged") else {
            throw PixelGainError.stepFailed(campaign: c.name, step: PixelGain.stepMerge, reason: "no merged file recorded")
        }
        let m = try campaigns.metrics(campaign: c.name, step: PixelGain.stepMerge)
        return MergeReport(run: run, output: o.path, feds: Int(m["feds"] ?? 0), modules: Int(m["modules"] ?? 0),
                           pixels: Int(m["pixels"] ?? 0), verified: true, sha256: o.sha256)
    }

    /// Runs `step` if it is ready, failed or running; a step that has run is reused, unless work built on it is
    /// published (refused). Throws the step's failure.
    func runOrReuse(_ c: Campaign, _ step: String) throws {
        let s = try state(c, step)
        switch s.state {
        case .ready, .failed, .running:
            try engine.runStep(campaign: c.name, step: step, note: "calibctl \(step == PixelGain.stepValidation ? "summary" : step)")
        case .done, .awaitingSignOff, .awaitingValidation:
            let published = try PixelGain.payloadSteps.filter { try state(c, $0).state == .done }
            if !published.isEmpty { throw PixelGainError.published(campaign: c.name, step: step, published: published) }
        default:
            throw CampaignError.illegalTransition(campaign: c.name, step: step, state: s.state, command: .start,
                                                  allowed: [], unmet: s.unmetPrerequisites)
        }
        let after = try state(c, step)
        if after.state == .failed {
            throw PixelGainError.stepFailed(campaign: c.name, step: step, reason: after.reason ?? "see calibctl step log \(c.name)")
        }
    }

    public struct SummaryResult: Codable, Sendable {
        public var run: Int
        public var report: String
        public var validation: GainRunValidation
        public var validationState: String
        /// The PDF next to the report (nil: not printed, `pdfNote` says why).
        public var pdf: String?
        public var pdfNote: String?
        /// The archive (`--archive`): report, PDF, merged fit, per-FED logs, text summary.
        public var archive: String?
    }

    public struct SummaryRequest: Sendable {
        public var output: String?
        /// Modules to drill into (detids) besides the worst ones.
        public var modules: [Int64] = []
        public var pdf = true
        public var archive = false
        public init(output: String? = nil) { self.output = output }
    }

    /// Runs the `validation` step (metrics and the HTML report) unless it has run; copies the report to `output`.
    public func summary(run: Int, output: String? = nil) throws -> SummaryResult {
        try summary(run: run, SummaryRequest(output: output))
    }

    /// The summary with its extras: a report with drill-downs of `modules` (written to `output`, else next to the
    /// step's report as `summary-modules.html`), the PDF next to the report (headless Chromium; a note when it is
    /// missing), and the archive.
    public func summary(run: Int, _ req: SummaryRequest) throws -> SummaryResult {
        let c = try campaign(run: run)
        guard try state(c, PixelGain.stepMerge).state.satisfiesDependents else {
            throw PixelGainError.notFinished(run: run, what: "summarise", detail: "the run is not merged yet (calibctl merge \(run))")
        }
        try runOrReuse(c, PixelGain.stepValidation)
        guard let html = try engine.latestOutput(campaign: c.name, step: PixelGain.stepValidation, named: "summary.html"),
              let json = try engine.latestOutput(campaign: c.name, step: PixelGain.stepValidation, named: "validation.json"),
              let data = FileManager.default.contents(atPath: json.path) else {
            throw PixelGainError.stepFailed(campaign: c.name, step: PixelGain.stepValidation, reason: "no report recorded")
        }
        let v = try JSONDecoder().decode(GainRunValidation.self, from: data)
        var path = html.path
        var report: PixelGainReport?
        if !req.modules.isEmpty {
            let r = try PixelGainReport.gather(engine: engine, campaign: c, extraModules: req.modules)
            let known = Set(r.data.detIDs)
            if let missing = req.modules.first(where: { !known.contains($0) }) {
                throw ReportError.noSuchModule(detID: "0x" + String(missing, radix: 16), run: run,
                                               known: r.data.detIDs.prefix(3).map { "0x" + String($0, radix: 16) }.joined(separator: ", "))
            }
            path = Workspace.absolutePath(req.output ?? ((html.path as NSString).deletingLastPathComponent + "/summary-modules.html"))
            try AtomicFile.write(Data(r.html().utf8), to: path)
            report = r
        } else if let output = req.output {
            path = Workspace.absolutePath(output)
            let tmp = path + ".tmp-\(getpid())"
            try? FileManager.default.removeItem(atPath: tmp)
            try FileManager.default.copyItem(atPath: html.path, toPath: tmp)
            try AtomicFile.commit(temporary: tmp, to: path)
        }
        var result = SummaryResult(run: run, report: path, validation: v,
                                   validationState: try state(c, PixelGain.stepValidation).state.rawValue)
        if req.pdf || req.archive {
            let pdf = Self.pdfPath(forReport: path)
            do {
                try ReportPrinter.printPDF(html: path, to: pdf)
                result.pdf = pdf
            } catch let e as ReportError {
                result.pdfNote = e.description
            }
        }
        if req.archive {
            let r = try report ?? PixelGainReport.gather(engine: engine, campaign: c)
            result.archive = try writeArchive(run: run, campaign: c, report: r, html: path, pdf: result.pdf, validation: json.path)
        }
        return result
    }

    static func pdfPath(forReport html: String) -> String {
        (html.hasSuffix(".html") ? String(html.dropLast(5)) : html) + ".pdf"
    }

    /// run.py's `twiki` equivalent: `pixelgain-RUN-report.tar.gz` next to the report, holding the report, its PDF,
    /// the merged fit, every attempt's log of every FED job, validation.json and a text summary.
    func writeArchive(run: Int, campaign c: Campaign, report: PixelGainReport, html: String, pdf: String?,
                      validation: String) throws -> String {
        let dir = (html as NSString).deletingLastPathComponent
        let name = "pixelgain-\(run)-report"
        let archive = dir + "/\(name).tar.gz"
        let staging = dir + "/.\(name).staging-\(getpid())"
        try? FileManager.default.removeItem(atPath: staging)
        defer { try? FileManager.default.removeItem(atPath: staging) }
        let root = staging + "/" + name
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: root + "/logs", withIntermediateDirectories: true)
            try fm.copyItem(atPath: html, toPath: root + "/summary.html")
            if let pdf { try fm.copyItem(atPath: pdf, toPath: root + "/summary.pdf") }
            try fm.copyItem(atPath: report.data.path, toPath: root + "/" + (report.data.path as NSString).lastPathComponent)
            try fm.copyItem(atPath: validation, toPath: root + "/validation.json")
            var text = report.text()
            if pdf == nil { text += "no PDF: headless Chromium was not available\n" }
            try AtomicFile.write(Data(text.utf8), to: root + "/summary.txt")
            if let js = try engine.currentJobSet(campaign: c.name, step: PixelGain.stepFit) {
                for shard in try jobs.status(jobSet: js).shards ?? [] where shard.attempts > 0 {
                    let fedDir = root + "/logs/fed_\(PixelGain.fed(of: shard.key))"
                    try fm.createDirectory(atPath: fedDir, withIntermediateDirectories: true)
                    for a in 1...shard.attempts {
                        let files = try jobs.logFiles(jobSet: js, shard: shard.index, attempt: a)
                        for (src, ext) in [(files.stdout, "out"), (files.stderr, "err"), (files.result, "result.json")] {
                            let dst = fedDir + "/attempt-\(a).\(ext)"
                            if fm.fileExists(atPath: src) {
                                try fm.copyItem(atPath: src, toPath: dst)
                            } else if ext != "result.json" && fm.fileExists(atPath: files.result) {
                                // The runner does not keep empty logs of an attempt that ended: archived as empty.
                                try AtomicFile.write(Data(), to: dst)
                            }
                        }
                    }
                }
            }
        } catch {
            throw ReportError.archiveFailed(path: archive, detail: "\(error)")
        }
        let tmp = archive + ".tmp-\(getpid())"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["tar", "-czf", tmp, "-C", staging, name]
        p.standardOutput = FileHandle.nullDevice
        let err = Pipe()
        p.standardError = err
        do { try p.run() } catch { throw ReportError.archiveFailed(path: archive, detail: "tar cannot be started: \(error)") }
        let msg = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            try? fm.removeItem(atPath: tmp)
            throw ReportError.archiveFailed(path: archive, detail: "tar exited \(p.terminationStatus): \(String(decoding: msg, as: UTF8.self))")
        }
        try? fm.removeItem(atPath: archive)
        try fm.moveItem(atPath: tmp, toPath: archive)
        return archive
    }

    public struct PayloadReport: Codable, Sendable {
        public var run: Int
        public var offlineTag: String
        public var hltTag: String
        public var offlineSHA256: String
        public var hltSHA256: String
        public var modules: Int
        public var replacedPixels: Int
        public var noisyPixels: Int
        public var deadPixels: Int
        public var validity: String
        public var approvedBy: String?
    }

    /// Sets the payload year and version of the run (unless its payloads ran already) and runs the two payload steps.
    /// Refused while the validation step is not done (gates failed, or no sign-off of its manual check).
    public func payload(run: Int, year: Int, version: Int, comment: String = "") throws -> PayloadReport {
        let c = try campaign(run: run)
        let v = try state(c, PixelGain.stepValidation)
        guard v.state == .done else {
            let detail: String
            switch v.state {
            case .awaitingSignOff: detail = v.gates?.failingSummary ?? "gates failed"
            case .awaitingValidation: detail = "manual checks not yet signed off (summary plots reviewed)"
            default: detail = "validation is \(v.state.rawValue); run calibctl summary \(run) first"
            }
            throw PixelGainError.gatesFailed(run: run, step: PixelGain.stepValidation, detail: detail, campaign: c.name)
        }
        let wanted = [PixelGain.Param.payloadYear: String(year), PixelGain.Param.payloadVersion: String(version)]
        let current = try engine.settings(of: c).params
        if wanted.contains(where: { current[$0.key] != $0.value }) || (!comment.isEmpty && current[PixelGain.Param.payloadComment] != comment) {
            var p = wanted
            if !comment.isEmpty { p[PixelGain.Param.payloadComment] = comment }
            do { try engine.setParams(campaign: c.name, p, guarding: PixelGain.payloadSteps) } catch is CampaignError {
                let published = try PixelGain.payloadSteps.filter { try state(c, $0).state != .ready && state(c, $0).state != .failed }
                throw PixelGainError.published(campaign: c.name, step: published.first ?? PixelGain.stepOffline, published: published)
            }
        }
        for s in PixelGain.payloadSteps { try runOrReuse(c, s, allowPublished: true) }
        func record(_ step: String) throws -> PixelGainPayloadRecord {
            guard let o = try engine.latestOutput(campaign: c.name, step: step, named: "payload.json"),
                  let d = FileManager.default.contents(atPath: o.path) else {
                throw PixelGainError.stepFailed(campaign: c.name, step: step, reason: "no payload recorded")
            }
            return try JSONDecoder().decode(PixelGainPayloadRecord.self, from: d)
        }
        let off = try record(PixelGain.stepOffline), hlt = try record(PixelGain.stepHLT)
        return PayloadReport(run: run, offlineTag: off.tag, hltTag: hlt.tag, offlineSHA256: off.sha256, hltSHA256: hlt.sha256,
                             modules: off.modules, replacedPixels: off.replacedPixels, noisyPixels: off.noisyPixels,
                             deadPixels: off.deadPixels, validity: off.validity, approvedBy: off.approvedBy)
    }

    func runOrReuse(_ c: Campaign, _ step: String, allowPublished: Bool) throws {
        if allowPublished, try state(c, step).state == .done { return }
        try runOrReuse(c, step)
    }
}

/// The unattended pixel gain calibration (`HOME/pixelgain.json`, optional), a campaign trigger of every tick:
/// `{"inbox": "/data/gainscans", "vcalTag": "VCal_2026_v1", "scheduler": "slurm", "payloadYear": 2026, "payloadVersion": 1}`.
/// A scan directory `<inbox>/<RUN>/` with its `fed_<id>.h5` files (or raw dumps `GainCalibration_<FED>_<RUN>.dmp` with
/// `calib.json`, decoded with the cabling of `cablingTag`) and a `READY` marker (written last by the transfer)
/// becomes the campaign `pixelgain-RUN` (the same `create` as the verb); the engine then moves it like any other.
/// With `payloadYear`, each run gets its own payload version: the next free one from `payloadVersion` (default 1)
/// on; without it the payload steps wait for `calibctl payload RUN YEAR VERSION`.
public struct PixelGainInbox: CampaignTrigger {
    public var name: String { "pixel-gain inbox" }
    public init() {}

    struct Settings: Codable {
        var inbox: String?
        var vcalTag: String?
        var cablingTag: String?
        var scheduler: String?
        var payloadYear: Int?
        var payloadVersion: Int?
    }

    public func scan(engine: WorkflowEngine, deadline: Date?) throws -> [String] {
        let path = engine.workspace.home + "/pixelgain.json"
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let s: Settings
        do { s = try JSONDecoder().decode(Settings.self, from: data) } catch {
            throw PixelGainError.badSettings(path: path, detail: "\(error)")
        }
        guard let inbox = s.inbox, let tag = s.vcalTag else { return [] }
        let runs = PixelGainRuns(engine: engine)
        var lines: [String] = []
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: inbox)) ?? []
        for run in entries.compactMap(Int.init).sorted() {
            if let d = deadline, Date() > d { break }
            let dir = inbox + "/\(run)"
            guard FileManager.default.fileExists(atPath: dir + "/READY"), try runs.runCampaigns(run).isEmpty else { continue }
            var r = PixelGainRuns.CreateRequest(run: run, vcalTag: tag, input: dir)
            r.scheduler = s.scheduler ?? "local"
            r.cablingTag = s.cablingTag
            r.payloadYear = s.payloadYear
            r.payloadVersion = s.payloadVersion
            r.payloadComment = "written by calibctl tick"
            r.note = "new scan in \(dir) (\(path))"
            do {
                let c = try runs.create(r)
                lines.append("\(c.campaign): new scan \(dir) with \(c.feds.count) FED(s)"
                             + (c.payloadTags.map { "; payloads " + $0.joined(separator: ", ") } ?? ""))
            } catch let e as DiagnosableError {
                lines.append("\(PixelGain.campaignName(run: run)): cannot create from \(dir): \(e.message)")
            }
        }
        return lines
    }
}

/// `resubmit --fed N` with a FED that is not in the run: exit 64 naming the run's FEDs (the nearest first).
public struct UnknownFEDError: DiagnosableError {
    public var run: Int
    public var unknown: [Int]
    public var known: [Int]

    public var exitStatus: ExitStatus { .usage }

    /// The run's FED nearest to `fed` (did you mean), nil when the run has none.
    public static func nearest(_ fed: Int, in known: [Int]) -> Int? { known.min { abs($0 - fed) < abs($1 - fed) } }

    public var message: String {
        let list = unknown.map(String.init).joined(separator: ", ")
        let guess = unknown.count == 1 ? Self.nearest(unknown[0], in: known).map { " (did you mean \($0)?)" } ?? "" : ""
        return "run \(run) has no FED \(list)\(guess)"
    }

    public var fix: String? {
        known.isEmpty ? "the run has no FED jobs yet: calibctl submit \(run)"
            : "give --fed with FEDs of the run: \(known.map(String.init).joined(separator: ", ")) (or no --fed for every failed one)"
    }
}
