import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// `action: {builtin: pixel-gain-fit, per: fed}`: one `pixel-gain-fit` job per FED.
///
/// Units: the campaign's `--units fed=...`, else every `fed_<id>.h5` in parameter `input` within parameter
/// `partition` (bpix/fpix). When the job set is created, the VCal table of the run is read from the store (parameter
/// `vcal_tag`) into `vcal.json` in the step directory, which every spec names. Each FED's fit goes to
/// `<output>/fed_<id>_fit.h5` (parameter `output`, else the unit's directory). Step metrics: the pixel-weighted
/// `fraction_good`, `mean_gain` and `mean_pedestal` of good pixels, `median_chi2ndf` over FEDs, `pixels`, `count_*`
/// (and the engine's `failed_shards`), the names the cms-pixel-gain gates use.
public struct PixelGainFitAction: WorkflowAction {
    public static let actionName = "pixel-gain-fit"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .jobs }
    public init() {}

    public func discoverUnits(axis: String, context: ActionContext) throws -> [String]? {
        guard axis == "fed" else { return nil }
        let input = Workspace.absolutePath(try PixelGain.requiredParam(
            context, PixelGain.Param.input, fix: "create the campaign with --param input=DIR (the directory of the fed_<id>.h5 or .dmp scan files)"))
        let run = PixelGain.run(context)
        let format = try PixelGain.scanFormat(in: input, run: run, requested: context.param(PixelGain.Param.inputFormat))
        return try PixelGain.scanFEDs(in: input, partition: context.param(PixelGain.Param.partition), run: run,
                                      format: format).map(String.init)
    }

    public func spec(for unit: WorkUnit, context: ActionContext) throws -> JobSpec {
        guard let fedText = unit.value("fed"), let fed = Int(fedText) else {
            throw WorkflowEngineError.actionFailed(campaign: context.campaign.name, step: context.step.id,
                                                   detail: "pixel-gain-fit runs per: fed (unit \(unit.key) has no FED)")
        }
        let input = Workspace.absolutePath(try PixelGain.requiredParam(
            context, PixelGain.Param.input, fix: "create the campaign with --param input=DIR"))
        let run = PixelGain.run(context)
        let format = try PixelGain.scanFormat(in: input, run: run, requested: context.param(PixelGain.Param.inputFormat))
        let vcal = try Self.vcalFile(context)
        let out = try PixelGain.outputDirectory(context, fallback: context.unitDirectory(unit))
        var inputs = ["vcal": vcal]
        var parameters = ["fit_options": context.param(PixelGain.Param.fitOptions) ?? "{}", "run": String(run), "fed": fedText]
        switch format {
        case .h5:
            inputs["scan"] = PixelGain.scanPath(input, fed: fed, run: run, format: .h5)
        case .dmp:
            inputs["dump"] = PixelGain.scanPath(input, fed: fed, run: run, format: .dmp)
            inputs["calib"] = input + "/calib.json"
            inputs["cabling"] = try Self.cablingFile(context, fed: fed)
            parameters["max_anomalies"] = context.param(PixelGain.Param.maxAnomalies) ?? "0.001"
        }
        return JobSpec(kind: PixelGainFitJob.name, key: unit.key, inputs: inputs,
                       outputs: ["fit": out + "/fed_\(fed)_fit.h5"], parameters: parameters)
    }

    /// `cabling_<FED>.json` of the step iteration: the FED's map of the cabling valid for the run, read from the store
    /// (parameter `cabling_tag`) once, when the job set is created.
    static func cablingFile(_ context: ActionContext, fed: Int) throws -> String {
        let path = (context.stepDirectory as NSString).appendingPathComponent("cabling_\(fed).json")
        if FileManager.default.fileExists(atPath: path) { return path }
        let run = PixelGain.run(context)
        guard let tag = context.param(PixelGain.Param.cablingTag), !tag.isEmpty else {
            throw PixelGainError.missingParam(campaign: context.campaign.name, step: context.step.id, param: PixelGain.Param.cablingTag,
                                              fix: "create the campaign with --param cabling_tag=TAG (the store tag of sipixel/cabling)")
        }
        let cabling = try PixelGainCabling.fromStore(try context.store(), tag: tag, run: run)
        guard let map = cabling.maps[fed] else { throw PixelGainError.noCablingForFEDs(tag: tag, run: run, feds: [fed]) }
        try FileManager.default.createDirectory(atPath: context.stepDirectory, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(map), to: path)
        return path
    }

    /// `vcal.json` of the step iteration: read from the store once, when the job set is created.
    static func vcalFile(_ context: ActionContext) throws -> String {
        let path = (context.stepDirectory as NSString).appendingPathComponent("vcal.json")
        if FileManager.default.fileExists(atPath: path) { return path }
        let tag = try PixelGain.requiredParam(context, PixelGain.Param.vcalTag,
                                              fix: "create the campaign with --param vcal_tag=TAG (the store tag of sipixel/vcal)")
        let table = try VCalTable.fromStore(try context.store(), tag: tag, run: PixelGain.run(context))
        try FileManager.default.createDirectory(atPath: context.stepDirectory, withIntermediateDirectories: true)
        try table.write(to: path)
        return path
    }

    public func aggregate(_ results: [UnitResult], context: ActionContext) throws -> [String: Double] {
        var m = FitAggregate()
        for r in results { m.add(r.metrics) }
        return m.metrics
    }
}

/// The worker side of one FED's gain fit (`calibctl job run SPEC` with `kind: pixel-gain-fit`).
///
/// Spec: inputs `scan` (the FED's gain-scan file) or `dump`, `calib` and `cabling` (its raw dump, the scan's
/// calibration configuration and the FED's cabling map from the store), and `vcal` (the run's VCal table, from the
/// store); output `fit`; parameters `fit_options` (JSON of GainFitOptions), `run`, and for dumps `max_anomalies`.
/// A dump is decoded with bounded memory (`CMSDumpDecoder`) into a gain-scan file beside the output, then fitted
/// like any scan. Writes the fit to the temporary output name (the runner renames it after success) and reports the
/// FED's quality metrics, which become the campaign's gate metrics; for a dump also every anomaly count
/// (`anomaly_*`) and the decode figures (`dump_*`), reported even when the anomalies fail the shard.
public struct PixelGainFitJob: JobKind {
    public static let name = "pixel-gain-fit"
    public init() {}

    public func run(spec: JobSpec, context: JobContext) throws -> JobOutcome {
        guard let vcalPath = spec.inputs["vcal"], let tmp = context.temporaryOutputPath("fit", in: spec),
              spec.inputs["scan"] != nil || spec.inputs["dump"] != nil else {
            return JobOutcome(exitCode: 65, message: "spec \(context.specName) lacks inputs scan (or dump)/vcal or output fit")
        }
        var options = GainFitOptions()
        if let json = spec.parameters["fit_options"], let o = try? JSONDecoder().decode(GainFitOptions.self, from: Data(json.utf8)) {
            options = o
        }
        var metrics: [String: Double] = [:]
        var decoded: String?
        defer { if let decoded { try? FileManager.default.removeItem(atPath: decoded) } }
        do {
            let scan: String
            if let dump = spec.inputs["dump"] {
                let path = tmp + ".scan.h5"
                decoded = path
                let (m, failure) = try Self.decode(dump: dump, spec: spec, to: path)
                metrics = m
                if let failure { return JobOutcome(exitCode: failure.exitStatus.rawValue, message: failure.description, metrics: metrics) }
                scan = path
            } else {
                scan = spec.inputs["scan"]!
            }
            let table = try VCalTable.read(vcalPath)
            let s = try GainFit.run(inputPath: scan, outputPath: tmp, options: options,
                                    conversion: { table.conversion(detID: $0) })
            metrics.merge([
                "fraction_good": s.fractionGood, "mean_gain": s.meanGain, "rms_gain": s.rmsGain,
                "mean_pedestal": s.meanPedestal, "rms_pedestal": s.rmsPedestal, "mean_chi2ndf": s.meanChi2ndf,
                "max_chi2ndf": s.maxChi2ndf, "pixels": Double(s.pixels), "modules": Double(s.modules),
                "fit_seconds": s.seconds, "fed": Double(s.fed), "events": Double(s.pixels) * 145,
            ]) { $1 }
            // The run the FED's scan belongs to: the step's effort counts distinct runs from it.
            if let run = spec.parameters["run"].flatMap(Double.init) { metrics["run"] = run }
            for (k, v) in s.counts { metrics["count_" + k] = Double(v) }
            return JobOutcome(exitCode: 0, metrics: metrics)
        } catch let e as any DiagnosableError {
            return JobOutcome(exitCode: e.exitStatus.rawValue, message: e.description, metrics: metrics)
        }
    }

    /// Decodes the FED's dump into the gain-scan file `output`; returns the anomaly and decode metrics and, when the
    /// anomalies exceed `max_anomalies` of the hits (or the dump is of another run), the failure naming every count.
    static func decode(dump: String, spec: JobSpec, to output: String) throws -> ([String: Double], (any DiagnosableError)?) {
        guard let calibPath = spec.inputs["calib"], let cablingPath = spec.inputs["cabling"] else {
            throw PixelGainError.corruptFile(path: dump, detail: "the job spec lacks inputs calib and cabling for the dump")
        }
        func load<T: Decodable>(_ path: String, _ type: T.Type) throws -> T {
            guard let d = FileManager.default.contents(atPath: path) else {
                throw PixelGainError.corruptFile(path: path, detail: "missing (a .dmp scan needs its calib.json beside the dumps)")
            }
            do { return try JSONDecoder().decode(T.self, from: d) } catch {
                throw PixelGainError.corruptFile(path: path, detail: "\(error)")
            }
        }
        let calib = try load(calibPath, CMSCalibConfiguration.self)
        let cabling = try load(cablingPath, CMSCablingMap.self)
        let limit = spec.parameters["max_anomalies"].flatMap(Double.init) ?? 0.001
        let s = try CMSRawDump.convert(dumpPath: dump, calib: calib, cabling: cabling, outputPath: output,
                                       maxAnomalyFraction: nil)
        var m = CMSRawDump.metrics(s)
        m["fed"] = Double(cabling.fed)
        if let run = spec.parameters["run"].flatMap(Int.init), s.run >= 0, s.run != run {
            return (m, PixelGainError.corruptFile(path: dump, detail: "its run word says run \(s.run), the campaign's run is \(run)"))
        }
        return (m, CMSRawDump.anomalyError(s, maxAnomalyFraction: limit))
    }
}
