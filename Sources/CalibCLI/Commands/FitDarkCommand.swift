import ArgumentParser
import CalibCore
import Foundation

struct FitDark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dark",
        abstract: "Dark processing: pedestals, rms, min, max and pixel_status per gain mode.",
        discussion: reflow("""
        Stage 1 sets per-pixel gates from the 5% and 95% quantiles of the first --nrecs1 frames; stage 2 accumulates
        the gated values of all frames (up to --nrecs). pixel_status bits: 1 rms high, 2 rms low, 4 saturated,
        8 cold, 16 pedestal high, 32 pedestal low, 64 bad gain bits (docs/numerics.md). Deterministic.

        Example:
          calibctl fit dark dark.h5 -o dark_constants.h5 --json
          calibctl fit dark jf4m.h5 -o jf4m_constants.h5 --common-mode bank
        """))

    @Argument(help: "Dark-run HDF5 file.") var input: String
    @Option(name: .shortAndLong, help: "Output HDF5 file.") var output: String
    @Option(help: "Frames of stage 1.") var nrecs1: Int = 50
    @Option(help: "Frames of stage 2 at most, per gain mode.") var nrecs: Int = 1000
    @Option(help: "n-sigma of the rms and pedestal limits.") var nsigma: Float = 6
    @Option(help: "Median common-mode correction: bank, row or column.") var commonMode: String?
    @Option(help: "Worker threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() throws {
        var o = DarkOptions()
        guard nrecs1 > 0, nrecs > 0, nsigma > 0 else { throw UsageError("--nrecs1, --nrecs and --nsigma must be positive") }
        o.nrecs1 = nrecs1; o.nrecs = nrecs; o.nSigmaLo = nsigma; o.nSigmaHi = nsigma
        if let cm = commonMode {
            guard let m = CommonModeMode(rawValue: cm) else {
                throw UsageError("--common-mode '\(cm)' is unknown", fix: "use bank, row or column")
            }
            o.commonMode = m
        }
        let s = try DarkFit.run(inputPath: input, outputPath: output, options: o, threads: max(1, threads))
        if json { try printJSON(s); return }
        print(String(format: "%@: %d pixels, %.2f s -> %@", s.input, s.pixels, s.seconds, s.output))
        for m in s.modes {
            print(String(format: "  gain mode %d: %d frames, pedestal %.1f, rms %.2f (limits %.3f..%.3f), bad pixels %d",
                         m.gainMode, m.frames, m.meanPedestal, m.meanRMS, m.rmsLimits[0], m.rmsLimits[1],
                         m.statusCounts["bad"] ?? 0))
        }
    }
}
