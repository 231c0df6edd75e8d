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
        let input = try PixelGain.requiredParam(context, PixelGain.Param.input,
                                                fix: "create the campaign with --param input=DIR (the directory of the fed_<id>.h5 scan files)")
        return try PixelGain.scanFEDs(in: Workspace.absolutePath(input), partition: context.param(PixelGain.Param.partition),
                                      run: PixelGain.run(context)).map(String.init)
    }

    public func spec(for unit: WorkUnit, context: ActionContext) throws -> JobSpec {
        guard let fedText = unit.value("fed"), let fed = Int(fedText) else {
            throw WorkflowEngineError.actionFailed(campaign: context.campaign.name, step: context.step.id,
                                                   detail: "pixel-gain-fit runs per: fed (unit \(unit.key) has no FED)")
        }
        let input = Workspace.absolutePath(try PixelGain.requiredParam(
            context, PixelGain.Param.input, fix: "create the campaign with --param input=DIR"))
        let vcal = try Self.vcalFile(context)
        let out = try PixelGain.outputDirectory(context, fallback: context.unitDirectory(unit))
        return JobSpec(kind: PixelGainFitJob.name, key: unit.key,
                       inputs: ["scan": input + "/fed_\(fed).h5", "vcal": vcal],
                       outputs: ["fit": out + "/fed_\(fed)_fit.h5"],
                       parameters: ["fit_options": context.param(PixelGain.Param.fitOptions) ?? "{}",
                                    "run": String(PixelGain.run(context)), "fed": fedText])
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
/// Spec: inputs `scan` (the FED's gain-scan file) and `vcal` (the run's VCal table, from the store); output `fit`;
/// parameter `fit_options` (JSON of GainFitOptions). Writes the fit to the temporary output name (the runner renames
/// it after success) and reports the FED's quality metrics, which become the campaign's gate metrics.
public struct PixelGainFitJob: JobKind {
    public static let name = "pixel-gain-fit"
    public init() {}

    public func run(spec: JobSpec, context: JobContext) throws -> JobOutcome {
        guard let scan = spec.inputs["scan"], let vcalPath = spec.inputs["vcal"],
              let tmp = context.temporaryOutputPath("fit", in: spec) else {
            return JobOutcome(exitCode: 65, message: "spec \(context.specPath) lacks inputs scan/vcal or output fit")
        }
        var options = GainFitOptions()
        if let json = spec.parameters["fit_options"], let o = try? JSONDecoder().decode(GainFitOptions.self, from: Data(json.utf8)) {
            options = o
        }
        do {
            let table = try VCalTable.read(vcalPath)
            let s = try GainFit.run(inputPath: scan, outputPath: tmp, options: options,
                                    conversion: { table.conversion(detID: $0) })
            var metrics: [String: Double] = [
                "fraction_good": s.fractionGood, "mean_gain": s.meanGain, "rms_gain": s.rmsGain,
                "mean_pedestal": s.meanPedestal, "rms_pedestal": s.rmsPedestal, "mean_chi2ndf": s.meanChi2ndf,
                "max_chi2ndf": s.maxChi2ndf, "pixels": Double(s.pixels), "modules": Double(s.modules),
                "fit_seconds": s.seconds, "fed": Double(s.fed), "events": Double(s.pixels) * 145,
            ]
            for (k, v) in s.counts { metrics["count_" + k] = Double(v) }
            return JobOutcome(exitCode: 0, metrics: metrics)
        } catch let e as any DiagnosableError {
            return JobOutcome(exitCode: e.exitStatus.rawValue, message: e.description)
        }
    }
}
