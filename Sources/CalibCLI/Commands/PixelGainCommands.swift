import ArgumentParser
import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import CalibWorkflow
import Foundation

// The pixel gain calibration verbs, with the words of the reference tool (run.py) so its users feel at home:
// create, submit, status, resubmit, merge, summary, payload. They parse and render; the work is
// CalibWorkflow's `PixelGainRuns` over the workflow engine (the campaign pixelgain-RUN). docs/workflow.md.

extension WorkspaceOptions {
    /// The pixel gain front end over this workspace's workflow engine.
    func pixelGainRuns() throws -> PixelGainRuns {
        PixelGainRuns(engine: try JobsContext(workspace).workflowEngine())
    }
}

/// `calibctl create RUN -t VCALTAG`.
struct CreateRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Create a pixel gain calibration run: a run directory, one job per FED, and its campaign.",
        discussion: reflow("""
        Creates the campaign pixelgain-RUN of the shipped cms-pixel-gain checklist with the run's parameters. Reads the
        VCal-to-electrons conversion of RUN from the store (type vcal, tag VCALTAG) and refuses if it is missing.
        FEDs: --fed, else every fed_<id>.h5 in INPUT_DIR (restricted by --bpix-only / --fpix-only). Never deletes
        anything: an existing run is refused, or with --force its outputs are moved aside (<dir>.moved-<time>) and
        the run becomes the campaign pixelgain-RUN-vN.

        CMS raw dumps: when INPUT_DIR holds GainCalibration_<FED>_<RUN>.dmp files (and calib.json), the FED jobs
        decode them with the cabling valid for RUN in the store (type cabling, tag --cabling-tag; calibctl cabling put
        stores one) and fit them; every anomaly count is a shard metric, and a FED whose anomalies exceed
        --max-anomalies of its hits fails with the counts as its reason. --input-format h5 takes the fed_<id>.h5
        files of a directory holding both.

        Examples:
          calibctl create 5000 -t VCal_2026_v1 -i /data/scans/5000 --fed 1200 --fed 1201 --scheduler slurm
          calibctl create 10901 -t VCal_2026_v1 --cabling-tag Cabling_2026_v1 -i /data/dumps/10901
        """))

    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number of the gain scan.", valueName: "run")) var runNumber: Int
    @Option(name: [.customShort("t"), .customLong("vcal-tag")], help: "The store tag holding the VCal conversion.") var vcalTag: String
    @Option(name: [.customShort("i"), .customLong("input")], help: "Directory of the scan files fed_<id>.h5 (default HOME/scans/RUN).") var input: String?
    @Option(name: [.customShort("o"), .customLong("output")], help: "Directory for the fit outputs (default HOME/runs/RUN/output).") var output: String?
    @Flag(name: .customLong("bpix-only"), help: "Only BPix FEDs.") var bpixOnly = false
    @Flag(name: .customLong("fpix-only"), help: "Only FPix FEDs.") var fpixOnly = false
    @Option(name: .customLong("fed"), help: "A FED to calibrate (repeatable).") var feds: [Int] = []
    @Option(help: "local (default), slurm or htcondor.") var scheduler = "local"
    @Option(help: "Memory per FED job in MB.") var memory = 2000
    @Option(name: .customLong("time-limit"), help: "Time limit per FED job in seconds.") var timeLimit = 3 * 3600
    @Option(name: .customLong("cabling-tag"), help: "For .dmp inputs: the store tag holding the cabling map (type cabling).")
    var cablingTag: String?
    @Option(name: .customLong("input-format"), help: "dmp, h5 or auto (default: the run's .dmp files if INPUT_DIR has any, else fed_<id>.h5).")
    var inputFormat: String?
    @Option(name: .customLong("max-anomalies"), help: "For .dmp inputs: fail a FED whose anomalies exceed this fraction of its hits (default 0.001).")
    var maxAnomalies: Double?
    @Flag(help: "Move an existing run directory and outputs aside instead of refusing.") var force = false
    @Flag(help: "Print the run configuration as JSON.") var json = false

    func run() throws {
        guard !(bpixOnly && fpixOnly) else { throw UsageError("--bpix-only and --fpix-only exclude each other") }
        guard runNumber > 0 else { throw UsageError("run number \(runNumber) must be positive") }
        var r = PixelGainRuns.CreateRequest(run: runNumber, vcalTag: vcalTag, input: input, output: output)
        r.feds = feds
        r.partition = bpixOnly ? "bpix" : fpixOnly ? "fpix" : nil
        r.scheduler = scheduler
        r.force = force
        r.memoryMB = memory
        r.timeLimitSeconds = timeLimit
        r.cablingTag = cablingTag
        r.inputFormat = inputFormat
        if let m = maxAnomalies {
            guard m.isFinite, m >= 0 else { throw UsageError("--max-anomalies \(m) must be a non-negative fraction", fix: "e.g. --max-anomalies 0.001") }
            r.maxAnomalies = m
        }
        let c = try ws.pixelGainRuns().create(r)
        if json { try printJSON(c); return }
        print("created run \(c.run): \(c.feds.count) FED job(s) on \(c.scheduler), campaign \(c.campaign)")
        print("  input  \(c.inputDirectory) (\(c.inputFormat ?? "h5"))\n  output \(c.outputDirectory)\n  vcal   \(c.vcalTag) (\(c.vcalPayload.prefix(12)))")
        if let t = c.cablingTag { print("  cabling \(t) (\(c.cablingPayload?.prefix(12) ?? ""))") }
        print("next: calibctl submit \(c.run)")
    }
}

/// `calibctl submit RUN`.
struct SubmitRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Submit the per-FED fit jobs of a run.",
        discussion: "Submits every FED job not yet submitted (running it twice submits nothing twice).\n\nExample: calibctl submit 5000")
    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number.", valueName: "run")) var runNumber: Int

    func run() throws {
        let n = try ws.pixelGainRuns().submit(run: runNumber)
        print(n == 0 ? "run \(runNumber): nothing new to submit" : "run \(runNumber): submitted \(n) job(s); follow with calibctl status \(runNumber) --watch")
    }
}

/// `calibctl status RUN`.
struct StatusRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show per-FED job states of a run (polls the scheduler once).",
        discussion: reflow("""
        Exit codes: 0 all done, or still running (with a note); 1 some FEDs failed (class and reason shown).

        Example: calibctl status 5000 --watch
        """))
    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number.", valueName: "run")) var runNumber: Int
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Repeat until every FED job has finished.") var watch = false
    @Option(help: "Seconds between polls with --watch.") var interval: Double = 2
    @Flag(name: .customLong("poll-now"), help: "Query the scheduler even if its minimum poll interval has not passed.")
    var pollNow = false

    struct Out: Codable {
        var run: Int
        var jobSet: String
        var finished: Bool
        var succeeded: Bool
        var counts: [String: Int]
        var failureClasses: [String: Int]
        var feds: [FED]
        struct FED: Codable { var fed: Int; var state: String; var attempts: Int; var failureClass: String?; var reason: String?; var exitCode: Int32?; var batchID: String? }
    }

    func run() throws {
        let wf = try ws.pixelGainRuns()
        var st = try wf.status(run: runNumber, force: pollNow)
        while watch && !st.finished {
            if Diagnostics.isTerminal { Diagnostics.write("\r\(st.summaryLine)   ") }
            Thread.sleep(forTimeInterval: interval)
            st = try wf.status(run: runNumber, force: pollNow)
        }
        if watch && Diagnostics.isTerminal { Diagnostics.write("\n") }
        let feds = (st.shards ?? []).map {
            Out.FED(fed: PixelGain.fed(of: $0.key), state: $0.state?.rawValue ?? "created", attempts: $0.attempts,
                    failureClass: $0.failureClass?.rawValue, reason: $0.reason, exitCode: $0.exitCode, batchID: $0.batchID)
        }
        let out = Out(run: runNumber, jobSet: st.name, finished: st.finished, succeeded: st.succeeded, counts: st.counts,
                      failureClasses: st.failureClasses, feds: feds)
        if json { try printJSON(out) } else {
            print("run \(runNumber) (\(st.name)): \(st.summaryLine)")
            print(TextTable([
                .init("FED", .right), .init("state", style: TextTable.stateStyle), .init("attempts", .right),
                .init("class / reason", truncatable: true, minWidth: 20),
            ], rows: feds.map { f in
                [String(f.fed), f.state, String(f.attempts), [f.failureClass, f.reason].compactMap { $0 }.joined(separator: ": ")]
            }).render(), terminator: "")
            if !st.finished { print("note: jobs are still running; calibctl status \(runNumber) --watch follows them") }
            else if st.succeeded { print("all FEDs done; next: calibctl merge \(runNumber)") }
        }
        if st.finished && !st.failed.isEmpty { throw ExitCode(ExitStatus.failuresFound.rawValue) }
    }
}

/// `calibctl resubmit RUN`.
struct ResubmitRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resubmit", abstract: "Resubmit failed and lost FED jobs of a run (only those).",
        discussion: "With nothing to resubmit it says so and does nothing.\n\nExample: calibctl resubmit 5000 --fed 1200")
    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number.", valueName: "run")) var runNumber: Int
    @Option(name: .customLong("fed"), help: "Only these FEDs (repeatable).") var feds: [Int] = []

    func run() throws {
        let done = try ws.pixelGainRuns().resubmit(run: runNumber, feds: feds)
        print(done.isEmpty ? "run \(runNumber): nothing to resubmit (no failed or lost FED jobs\(feds.isEmpty ? "" : " among those given"))"
                           : "run \(runNumber): resubmitted FED(s) \(done.map(String.init).joined(separator: ", "))")
    }
}

/// `calibctl merge RUN`.
struct MergeRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge", abstract: "Merge the per-FED fit outputs of a run into one verified HDF5 file (alias: hadd).",
        discussion: reflow("""
        Runs the merge step: checks every FED output against its job's checksum, merges, reads the result back and
        compares. A merged run is not merged again (its result is shown); once its payloads are published this is
        refused (exit 65): redo it on purpose with calibctl step reopen pixelgain-RUN merge --note "why".

        Example: calibctl merge 5000
        """),
        aliases: ["hadd"])
    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number.", valueName: "run")) var runNumber: Int
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let r = try ws.pixelGainRuns().merge(run: runNumber)
        if json { try printJSON(r); return }
        print("merged run \(runNumber): \(r.feds) FED(s), \(r.modules) modules, \(r.pixels) pixels -> \(r.output) (verified)")
    }
}

/// `calibctl summary RUN`.
struct SummaryRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "summary", abstract: "Validate a merged run and write its summary report (HTML and PDF).",
        discussion: reflow("""
        One self-contained HTML file a pixel expert signs off on: gain, pedestal and status maps per BPix layer and
        FPix disk in the detector's geometry (bad modules and ROCs outlined), a drill-down of the worst modules
        (160 x 416 maps, per-ROC figures), example fits of every status re-fitted from the scan files, the per-module
        comparison with the payload in use, the per-FED and per-layer tables with the failed FEDs and why. The PDF
        (headless Chromium's print-to-PDF) is written next to it when Chromium is installed. Records the validation
        step's metrics; its manual check (plots reviewed) waits for `calibctl step approve`.

        --module DETID adds that module's drill-down (decimal or 0x hex; repeatable). --archive also writes
        pixelgain-RUN-report.tar.gz next to the report (run.py's twiki): report, PDF, merged fit, every FED job's
        logs and a text summary.

        Examples:
          calibctl summary 5000 -o summary.html
          calibctl summary 5000 --module 0x12000005 -o module.html
          calibctl summary 5000 --archive
        """))
    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number.", valueName: "run")) var runNumber: Int
    @Option(name: .shortAndLong, help: "Also write the report here (it is kept in the validation step's directory).") var output: String?
    @Option(name: .customLong("module"), help: ArgumentHelp("Drill into this module too (detid, decimal or 0x hex; repeatable).", valueName: "detid"))
    var modules: [String] = []
    @Flag(name: .customLong("no-pdf"), help: "Do not print the PDF.") var noPDF = false
    @Flag(help: "Also write the archive pixelgain-RUN-report.tar.gz (report, PDF, merged fit, FED logs, text summary).") var archive = false
    @Flag(help: "Print JSON.") var json = false

    static func parseDetID(_ s: String) throws -> Int64 {
        let t = s.lowercased()
        if t.hasPrefix("0x"), let v = Int64(t.dropFirst(2), radix: 16) { return v }
        if let v = Int64(t) { return v }
        throw UsageError("--module \(s) is not a detid", fix: "give it in decimal or as 0x hex, e.g. --module 0x12000005")
    }

    func run() throws {
        var req = PixelGainRuns.SummaryRequest(output: output)
        req.modules = try modules.map(Self.parseDetID)
        req.pdf = !noPDF
        req.archive = archive
        let r = try ws.pixelGainRuns().summary(run: runNumber, req)
        if let note = r.pdfNote { Diagnostics.warning(note) }
        if json { try printJSON(r); return }
        let v = r.validation
        print(String(format: "run %d: %.3f%% good pixels, mean gain %.2f e/ADC, mean pedestal %.2f ADC, median chi2/ndf %.3f",
                     runNumber, 100 * v.fractionGood, v.meanGain, v.meanPedestal, v.medianChi2ndf))
        if let n = v.comparisonNote { print("  \(n)") }
        if let t = v.previousTag { print(String(format: "  vs %@: mean gain shift %.3f%%, %d pixel(s) changed by > 1 bin", t, 100 * v.meanGainShift, v.changedPixels)) }
        print("validation: \(r.validationState)")
        print("report: \(r.report)")
        if let p = r.pdf { print("pdf: \(p)") }
        if let a = r.archive { print("archive: \(a)") }
    }
}

/// `calibctl payload RUN YEAR VERSION`.
struct PayloadRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "payload", abstract: "Write the offline and HLT gain payloads of a run into the store.",
        discussion: reflow("""
        Tags SiPixelGainCalibration_<YEAR>_v<VERSION>_offline and _hlt, validity RUN- (open-ended), provenance with
        the run, FEDs, input checksums, software version and configuration. Refuses (exit 65) while the validation
        step is not done: its gates failed or its manual check is not signed off (calibctl step approve). A tag
        already holding another run's payload is refused (exit 65): choose a new version.

        Example: calibctl step approve pixelgain-5000 validation --note "plots fine" && calibctl payload 5000 2026 1
        """))
    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Argument(help: ArgumentHelp("Run number.", valueName: "run")) var runNumber: Int
    @Argument(help: "Year in the tag name.") var year: Int
    @Argument(help: "Version in the tag name.") var version: Int
    @Option(help: "A comment recorded in the provenance.") var comment = ""
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let r = try ws.pixelGainRuns().payload(run: runNumber, year: year, version: version, comment: comment)
        if json { try printJSON(r); return }
        print("run \(runNumber): \(r.modules) modules, \(r.replacedPixels) pixel(s) replaced by module means, \(r.noisyPixels) noisy, \(r.deadPixels) dead")
        print("  \(r.offlineTag)  runs \(r.validity)  \(r.offlineSHA256.prefix(16))")
        print("  \(r.hltTag)  runs \(r.validity)  \(r.hltSHA256.prefix(16))")
    }
}

/// `calibctl vcal put TAG`: the VCal-to-electrons conversion table of the whole detector into the store.
struct VCalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcal", abstract: "Manage the VCal-to-electrons conversion tables (type vcal of detector sipixel).",
        subcommands: [Put.self])

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put the standard per-module conversion (BPix L1 45.7*corr / -308, others 47 / -60) into a tag.",
            discussion: reflow("""
            electrons = slope * VCal * 6.5 + offset. Corrections per BPix layer and FPix ring multiply the slopes \
            (docs/numerics.md, "VCal corrections"); --luminosity computes them from the Run-3 integrated luminosity \
            with the dose model of SiPixelTools-GainCalibration's calc_corrections.py.

            Examples:
              calibctl vcal put VCal_2026_v1 --runs 1- --correction 1.08
              calibctl vcal put VCal_2025_v1 --corrections-bpix 1:1.095,2:1.056,3:1.039,4:1.023 --corrections-fpix 1:1.1397,2:1.0914
              calibctl vcal put VCal_2025_v1 --luminosity 226
            """))
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "Tag name.") var tag: String
        @Option(parsing: .unconditional, help: "Validity (100-200, 100-, -200, all).") var runs = "all"
        @Option(help: "Radiation correction of the BPix L1 slope only (without per-layer corrections).") var correction = 1.0
        @Option(help: "Slope corrections per BPix layer, e.g. 1:1.095,2:1.056,3:1.039,4:1.023 (missing layers: 1).")
        var correctionsBpix: String?
        @Option(help: "Slope corrections per FPix ring, e.g. 1:1.1397,2:1.0914 (missing rings: 1).") var correctionsFpix: String?
        @Option(help: "Compute the per-layer/ring corrections from the Run-3 integrated luminosity (1/fb).") var luminosity: Double?

        func run() throws {
            var corr: VCalCorrections? = nil
            if let l = luminosity {
                guard l.isFinite, l >= 0, correctionsBpix == nil, correctionsFpix == nil else {
                    throw UsageError("--luminosity must be a non-negative number and excludes --corrections-bpix/-fpix")
                }
                corr = VCalCorrections.fromLuminosity(run3: l)
            } else if correctionsBpix != nil || correctionsFpix != nil {
                var c = VCalCorrections()
                if let t = correctionsBpix {
                    guard let v = VCalCorrections.parse(t, keys: 1...4) else {
                        throw UsageError("--corrections-bpix '\(t)' is not LAYER:FACTOR,... with layers 1-4 and positive factors",
                                         fix: "e.g. --corrections-bpix 1:1.095,2:1.056,3:1.039,4:1.023")
                    }
                    c.bpix = v
                }
                if let t = correctionsFpix {
                    guard let v = VCalCorrections.parse(t, keys: 1...2) else {
                        throw UsageError("--corrections-fpix '\(t)' is not RING:FACTOR,... with rings 1-2 and positive factors",
                                         fix: "e.g. --corrections-fpix 1:1.1397,2:1.0914")
                    }
                    c.fpix = v
                }
                corr = c
            }
            if corr != nil && correction != 1.0 {
                throw UsageError("--correction (L1 only) and per-layer corrections exclude each other", fix: "give the L1 factor as --corrections-bpix 1:F")
            }
            let store = try StoreCLI.open(ws)
            let m = CMSPixelTopology.bpixModules + CMSPixelTopology.fpixModules
            let conv: [(slope: Double, offset: Double)] = (0..<m).map { g in
                corr.map { CMSPixelTopology.vcalConversion(globalModule: g, corrections: $0) }
                    ?? CMSPixelTopology.vcalConversion(globalModule: g, radiationCorrection: correction)
            }
            var attrs: [String: AttributeValue] = ["vcal_high_to_low": .double(CMSPixelTopology.vcalHighToLow),
                                                   "radiation_correction": .double(corr?.bpix[1] ?? correction)]
            if let c = corr {
                attrs["corrections_bpix"] = .doubles((1...4).map { c.bpix[$0] ?? 1 })
                attrs["corrections_fpix"] = .doubles((1...2).map { c.fpix[$0] ?? 1 })
                if let l = luminosity { attrs["run3_luminosity_fb"] = .double(l) }
            }
            let p = try Payload(arrays: [
                try PayloadArray(name: "detid", values: (0..<m).map { CMSPixelTopology.detID(globalModule: $0) }),
                try PayloadArray(name: "slope", values: conv.map(\.slope)),
                try PayloadArray(name: "offset", values: conv.map(\.offset)),
            ], attributes: attrs)
            let e = try store.put(detector: PixelGain.detector, type: "vcal", runs: try RunRange(parsing: runs),
                                  payload: p, tag: tag, provenance: ProvenanceLinks(comment: "calibctl vcal put"), createTag: true)
            print("vcal tag \(tag): \(m) modules, runs \(e.runs), payload \(e.sha256.prefix(16))")
        }
    }
}

/// `calibctl cabling put TAG FILES`: the CMS pixel cabling map into the store (type cabling of detector sipixel).
struct CablingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cabling", abstract: "Manage the CMS pixel cabling maps (type cabling of detector sipixel), one IOV per cabling.",
        subcommands: [Put.self])

    struct Put: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put the cabling of one or more FEDs (cabling_<FED>.json, as simulate gain --dmp writes them) into a tag.",
            discussion: reflow("""
            All FEDs given go into one payload (their (link, ROC) -> module, ROC position entries and module counts, \
            docs/formats-cms-raw.md). A new cabling is a new IOV: runs from its first run on decode their raw dumps \
            with it (calibctl create --cabling-tag TAG).

            Examples:
              calibctl cabling put Cabling_2026_v1 --runs 1- scans/
              calibctl cabling put Cabling_2026_v1 --runs 401000- new/cabling_1200.json new/cabling_1201.json
            """))
        @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
        @Argument(help: "Tag name.") var tag: String
        @Argument(help: "cabling_<FED>.json files, or directories holding them.") var files: [String]
        @Option(parsing: .unconditional, help: "Validity (100-200, 100-, -200, all).") var runs = "all"
        @Option(help: "A comment recorded with the IOV.") var comment = "calibctl cabling put"
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            guard !files.isEmpty else { throw UsageError("give cabling_<FED>.json files or a directory holding them") }
            let maps = try PixelGainCabling.readJSON(files.map(Workspace.absolutePath))
            let p = try PixelGainCabling.payload(maps)
            let store = try StoreCLI.open(ws)
            let e = try store.put(detector: PixelGain.detector, type: PixelGainCabling.type, runs: try RunRange(parsing: runs),
                                  payload: p, tag: tag, provenance: ProvenanceLinks(comment: comment), createTag: true)
            struct Out: Codable { var tag: String; var feds: [Int]; var runs: String; var sha256: String }
            let out = Out(tag: tag, feds: maps.map(\.fed).sorted(), runs: "\(e.runs)", sha256: e.sha256)
            if json { try printJSON(out); return }
            print("cabling tag \(tag): FED\(out.feds.count == 1 ? "" : "s") \(out.feds.map(String.init).joined(separator: ", ")), runs \(e.runs), payload \(e.sha256.prefix(16))")
        }
    }
}
