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
        discussion: reflow("""
        The kernels run as AVX-512 builds on CPUs that have AVX-512 and as AVX2 builds elsewhere; both give the same \
        bits. CALIBCTL_ISA=x86-64-v3 keeps the AVX2 builds (docs/numerics.md, "Instruction sets").
        """),
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
          calibctl fit gain scan/GainCalibration_1205_10901.dmp -o fit_1205.h5   # calib.json, cabling_1205.json beside it
        """))

    @Argument(help: "Gain-scan HDF5 file(s).") var inputs: [String]
    @Option(name: .shortAndLong, help: "Output file (one input) or directory (several).") var output: String
    @Option(help: "Worker threads (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "For .dmp inputs: the calibration configuration JSON (default: calib.json beside the dump).") var calib: String?
    @Option(help: "For .dmp inputs: the FED's cabling JSON (default: cabling_<FED>.json beside the dump).") var cabling: String?
    @Option(help: "For .dmp inputs: refuse a FED whose anomalies exceed this fraction of its hits.") var maxAnomalies: Double = 0.001
    @Flag(help: "Print the summaries as JSON.") var json = false

    func run() throws {
        guard !inputs.isEmpty else { throw UsageError("no input file", fix: "pass at least one gain-scan file") }
        var isDir: ObjCBool = false
        let toDirectory = inputs.count > 1 || (FileManager.default.fileExists(atPath: output, isDirectory: &isDir) && isDir.boolValue)
        if toDirectory { try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true) }
        var summaries: [GainFitSummary] = []
        let t0 = Date()
        var bytes = 0.0
        let drop = inputs.count > 1
            && PageCache.shouldDrop(inputBytes: inputs.reduce(0) { $0 + Int(JobFiles.size($1) ?? 0) })
        for (i, given) in inputs.enumerated() {
            var input = given
            if given.hasSuffix(".dmp") { input = try decodeDump(given) }
            defer { if input != given { try? FileManager.default.removeItem(atPath: input) } }
            var target = output
            if toDirectory {
                let reader = try GainScanReader(path: input)
                target = (output as NSString).appendingPathComponent("fit_\(reader.fed).h5")
            }
            let s = try GainFit.run(inputPath: input, outputPath: target, threads: max(1, threads))
            summaries.append(s)
            // Inputs larger than memory: drop the fitted file from the page cache rather than let it be reclaimed
            // under pressure. Measured on 108 FEDs (42 GB, cold cache): 100 s without, 39 s with (`cat` of the same
            // files: 80 s). Asking for readahead of the next file (WILLNEED) made it slower (61 s). Inputs that fit
            // stay cached (PageCache.shouldDrop).
            if drop { PageCache.dontNeed(input) }
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

    /// A CMS raw dump -> a temporary gain-scan file beside the output (docs/formats-cms-raw.md); anomalies on stderr.
    func decodeDump(_ path: String) throws -> String {
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
        let parts = name.split(separator: "_")
        guard parts.count >= 3, let fed = Int(parts[parts.count - 2]) else {
            throw UsageError("\(path) is not named GainCalibration_<FED>_<RUN>.dmp", fix: "rename it so the FED id can be read")
        }
        let dir = (path as NSString).deletingLastPathComponent
        func load<T: Decodable>(_ p: String, _ t: T.Type) throws -> T {
            do { return try JSONDecoder().decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: p))) } catch {
                throw NumericsError.badInput(file: p, object: "JSON", problem: "cannot be read: \(error)",
                                             fix: "pass --calib and --cabling files as `calibctl simulate gain --dmp` writes them")
            }
        }
        let c = try load(calib ?? (dir.isEmpty ? "calib.json" : dir + "/calib.json"), CMSCalibConfiguration.self)
        let m = try load(cabling ?? (dir.isEmpty ? "" : dir + "/") + "cabling_\(fed).json", CMSCablingMap.self)
        let tmp = NSTemporaryDirectory() + "calibctl-dmp-\(fed)-\(UUID().uuidString.prefix(8)).h5"
        let s = try CMSRawDump.convert(dumpPath: path, calib: c, cabling: m, outputPath: tmp, maxAnomalyFraction: maxAnomalies)
        if s.anomalies.total > 0 {
            Diagnostics.warning("\(path): FED \(fed): \(s.anomalies.total) anomalies in \(s.hits) hits: \(String(decoding: try JSONEncoder().encode(s.anomalies), as: UTF8.self))")
        }
        return tmp
    }
}
