import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// The worker side of one FED's gain fit (`calibctl job run SPEC` with `kind: pixel-gain-fit`).
///
/// Spec: inputs `scan` (the FED's gain-scan file) and `vcal` (the run's VCal table, from the store); output `fit`;
/// parameter `fit_options` (JSON of GainFitOptions). Writes the fit to the temporary output name (the runner renames
/// it after success) and reports the FED's quality metrics, which become the campaign's gate metrics.
struct PixelGainFitJob: JobKind {
    static let name = "pixel-gain-fit"

    func run(spec: JobSpec, context: JobContext) throws -> JobOutcome {
        guard let scan = spec.inputs["scan"], let vcalPath = spec.inputs["vcal"],
              let tmp = context.temporaryOutputPath("fit", in: spec) else {
            return JobOutcome(exitCode: 65, message: "spec \(context.specPath) lacks inputs scan/vcal or output fit")
        }
        var options = GainFitOptions()
        if let json = spec.parameters["fit_options"], let o = try? JSONDecoder().decode(GainFitOptions.self, from: Data(json.utf8)) {
            options = o
        }
        let table = try VCalTable.read(vcalPath)
        do {
            let s = try GainFit.run(inputPath: scan, outputPath: tmp, options: options,
                                    conversion: { table.conversion(detID: $0) })
            var metrics: [String: Double] = [
                "fraction_good": s.fractionGood, "mean_gain": s.meanGain, "rms_gain": s.rmsGain,
                "mean_pedestal": s.meanPedestal, "rms_pedestal": s.rmsPedestal, "mean_chi2ndf": s.meanChi2ndf,
                "max_chi2ndf": s.maxChi2ndf, "pixels": Double(s.pixels), "modules": Double(s.modules),
                "fit_seconds": s.seconds, "fed": Double(s.fed),
            ]
            for (k, v) in s.counts { metrics["count_" + k] = Double(v) }
            return JobOutcome(exitCode: 0, metrics: metrics)
        } catch let e as any DiagnosableError {
            return JobOutcome(exitCode: e.exitStatus.rawValue, message: e.description)
        }
    }
}
