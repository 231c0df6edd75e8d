import ArgumentParser
import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// `calibctl fit gain|dark`: the per-pixel fits.
struct FitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Fit per-pixel gains and pedestals (gain scans) or dark-run statistics.",
        subcommands: [FitGain.self, FitDark.self]
    )
}

struct FitGain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gain",
        abstract: "Fit gain and pedestal of every pixel of gain-scan files (one per FED).",
        discussion: reflow("""
        Per pixel: means and errors from n/sum/sumsq, plateau detection, point selection, weighted linear least squares
        in electrons; gain = 1/slope (e/ADC), pedestal = intercept (ADC), chi2/ndf, points used and a status
        (docs/numerics.md lists the statuses and their reference codes). Files are streamed module by module.

        With one INPUT, -o is the output file; with several, -o is a directory receiving fit_<fed>.h5.
        Example:
          calibctl fit gain scan/fed_1200.h5 -o fit_1200.h5 --json
          calibctl fit gain scan/fed_*.h5 -o fits/
        """))

    @Argument(help: "Gain-scan HDF5 file(s).") var inputs: [String]
    @Option(name: .shortAndLong, help: "Output file (one input) or directory (several).") var output: String
    @Option(help: "Worker threads (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print the summaries as JSON.") var json = false

    func run() throws {
        guard !inputs.isEmpty else { throw UsageError("no input file", fix: "pass at least one gain-scan file") }
        var isDir: ObjCBool = false
        let toDirectory = inputs.count > 1 || (FileManager.default.fileExists(atPath: output, isDirectory: &isDir) && isDir.boolValue)
        if toDirectory { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        var summaries: [GainFitSummary] = []
        let t0 = Date()
        var bytes = 0.0
        for (i, input) in inputs.enumerated() {
            var target = output
            if toDirectory {
                let reader = try GainScanReader(path: input)
                target = (output as NSString).appendingPathComponent("fit_\(reader.fed).h5")
            }
            let s = try GainFit.run(inputPath: input, outputPath: target, threads: max(1, threads))
            summaries.append(s)
            // Many inputs usually exceed memory: drop the fitted file from the page cache rather than let it be
            // reclaimed under pressure. Measured on 108 FEDs (42 GB, cold cache): 100 s without, 39 s with
            // (`cat` of the same files: 80 s). Asking for readahead of the next file (WILLNEED) made it slower (61 s).
            if inputs.count > 1 { PageCache.dontNeed(input) }
            // Progress on stderr when it is a terminal and stdout is not printing per-FED lines to the same screen.
            if Diagnostics.isTerminal && inputs.count > 1 && (json || isatty(1) == 0) {
                bytes += Double(JobFiles.size(input) ?? 0)
                let dt = Date().timeIntervalSince(t0)
                Diagnostics.write(String(format: "\r[%d/%d] FED %d, %.0f s elapsed, %.2f GB/s read   ", i + 1,
                                         inputs.count, s.fed, dt, bytes / max(dt, 1e-9) / 1e9))
                if i + 1 == inputs.count { Diagnostics.write("\n") }
            }
            if !json {
                print(String(format: "FED %d: %d pixels, %.2f%% good, gain %.2f +- %.2f e/ADC, pedestal %.2f +- %.2f ADC, %.2f s -> %@",
                             s.fed, s.pixels, 100 * s.fractionGood, s.meanGain, s.rmsGain, s.meanPedestal, s.rmsPedestal,
                             s.seconds, s.output))
                let bad = s.counts.filter { $0.key != "ok" && $0.value > 0 }.sorted { $0.key < $1.key }
                if !bad.isEmpty { print("  " + bad.map { "\($0.key) \($0.value)" }.joined(separator: ", ")) }
            }
        }
        if json { try printJSON(summaries) }
    }
}
