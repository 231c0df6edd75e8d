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
        8 cold, 16 pedestal high, 32 pedestal low, 64 bad gain bits (docs/numerics.md). Deterministic, and the same \
        bits on every CPU (CALIBCTL_ISA=x86-64-v3 keeps the AVX2 kernels on an AVX-512 CPU).

        Example:
          calibctl fit dark dark.h5 -o dark_constants.h5 --json
          calibctl fit dark jf4m.h5 -o jf4m_constants.h5 --common-mode bank

        Other layouts (docs/formats-numerics.md): --dataset names the frames, --frame-axes how many leading axes
        index frames (the rest is the constants' shape), --gain-source where each frame's gain mode comes from
        (bits: Jungfrau bits 14-15; dataset:PATH: one value per frame; fixed:G), --gain-bits/--no-gain-bits whether
        bits 14-15 are checked per pixel, --data-mask the ADC bits. Any integer type, chunked or contiguous.
          calibctl fit dark xfel.h5 -o c.h5 --dataset /INSTRUMENT/SPB_IRDA_JF4M/DET/JNGFR01:daqOutput/data/adc \\
              --frame-axes 1 --gain-source fixed:0
          calibctl fit dark lcls.h5 -o c.h5 --dataset /jungfrau4m/raw --gain-source bits

        A gain mode with fewer than --min-frames (20) frames is refused (exit 65); fewer than --nrecs1 frames is
        processed with a warning (stderr, and "warnings" in --json).
        """))

    @Argument(help: "Dark-run HDF5 file.") var input: String
    @Option(name: .shortAndLong, help: "Output HDF5 file.") var output: String
    @Option(help: "Frames of stage 1.") var nrecs1: Int = 50
    @Option(help: "Frames of stage 2 at most, per gain mode.") var nrecs: Int = 1000
    @Option(help: "n-sigma of the rms and pedestal limits.") var nsigma: Float = 6
    @Option(help: "Median common-mode correction: bank, row or column.") var commonMode: String?
    @Option(help: "HDF5 path of the raw frames (default: a calibctl dark run's /frames).") var dataset: String?
    @Option(help: "Leading axes of the dataset that index frames.") var frameAxes: Int = 1
    @Option(help: "Gain mode per frame: bits, dataset:PATH or fixed:G (default: /frame_gain_mode of a calibctl run, else 0).")
    var gainSource: String?
    @Flag(inversion: .prefixedNo, help: "Check the gain bits 14-15 of every value (default: from the file / the gain source).")
    var gainBits: Bool?
    @Option(help: "ADC bits of a raw value of other layouts, e.g. 0x3fff (a calibctl run's datamask attribute wins).") var dataMask: String?
    @Option(help: "Refuse gain modes with fewer frames than this.") var minFrames: Int = 20
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
        o.dataset = dataset; o.frameAxes = frameAxes; o.gainBits = gainBits; o.minFrames = minFrames
        if let gs = gainSource {
            guard let g = DarkGainSource(parsing: gs) else {
                throw UsageError("--gain-source '\(gs)' is not bits, dataset:PATH or fixed:0|1|2", fix: "e.g. --gain-source fixed:0")
            }
            o.gainSource = g
        }
        if let m = dataMask {
            let t = m.lowercased()
            guard let v = t.hasPrefix("0x") ? UInt16(t.dropFirst(2), radix: 16) : UInt16(t) else {
                throw UsageError("--data-mask '\(m)' is not a 16-bit number", fix: "e.g. --data-mask 0x3fff")
            }
            o.dataMask = v
        }
        let s = try DarkFit.run(inputPath: input, outputPath: output, options: o, threads: max(1, threads))
        for w in s.warnings { Diagnostics.warning(w) }
        if json { try printJSON(s); return }
        print(String(format: "%@: %d pixels, %.2f s -> %@", s.input, s.pixels, s.seconds, s.output))
        for m in s.modes {
            print(String(format: "  gain mode %d: %d frames, pedestal %.1f, rms %.2f (limits %.3f..%.3f), bad pixels %d",
                         m.gainMode, m.frames, m.meanPedestal, m.meanRMS, m.rmsLimits[0], m.rmsLimits[1],
                         m.statusCounts["bad"] ?? 0))
        }
    }
}
