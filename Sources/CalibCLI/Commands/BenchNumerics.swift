import ArgumentParser
import CalibCore
import Foundation

struct BenchFit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Benchmark the gain fit on simulated scans in memory (release build). Prints JSON.",
        discussion: reflow("""
        Measures, in one run: the SIMD kernel on its native interleaved layout (16-pixel groups, one vector per \
        point) on all cores and on one, and on pixel-major input (the gain-scan file layout), each run preceded by one \
        pass of a streaming read probe (1 GiB) so kernel and probe see the same machine (probeGBps: min/median/max; \
        *FractionOfProbeMedian: median kernel run / median probe); the share of pixels handed to the scalar \
        reference (scalarFraction); the scalar reference; the numpy closed-form fit in a python3 subprocess on the \
        same data (numpy*); and end to end, `calibctl fit gain` on FED files in the page cache against `cat` of the \
        same files, alternating (endToEnd.ratioToCat; the files are simulated once into --dir and kept). The \
        ceilings, measured in the same run: the kernel on a block that stays in each core's L2 (cacheResident*: \
        no memory traffic, so no kernel reading memory runs faster), the pixel-major kernel alone on the same bytes \
        over cat (endToEnd.pixelMajorKernelOverCat) and the start of the executable (endToEnd.processStartSeconds). \
        layoutMismatches counts pixels whose results differ between the layouts (0 expected). kernelISA names the \
        kernel build in use (x86-64-v4 on AVX-512 CPUs); above x86-64-v3 the AVX2 build is measured too \
        (portable*), and CALIBCTL_ISA=x86-64-v3 runs the whole bench with it. JSON on stdout, a \
        summary on stderr. Build with `swift build -c release`; docs/benchmarks-numerics.md has recorded runs.

        Example:
          .build/release/calibctl bench fit --modules 30
        """))

    @Option(help: "Simulated CMS modules (66,560 pixels each).") var modules: Int = 30
    @Option(help: "Threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Repeats (best time wins).") var repeats: Int = 5
    @Option(help: "Python with numpy and h5py.") var python: String = "python3"
    @Flag(help: "Skip the numpy baseline.") var noNumpy = false
    @Option(help: "Directory for the temporary baseline input and the end-to-end FED files.") var dir: String = NSTemporaryDirectory()
    @Flag(help: "Skip the end-to-end fit of FED files against cat.") var noEndToEnd = false

    func run() throws {
        guard modules > 0, threads > 0, repeats > 0 else { throw UsageError("--modules, --threads and --repeats must be positive") }
        var b = GainFitBenchmark()
        b.modules = modules; b.threads = threads; b.repeats = repeats; b.python = noNumpy ? nil : python
        b.workDirectory = dir
        b.executable = noEndToEnd ? nil : JobsContext.selfPath
        let r = try b.run { Diagnostics.info("bench fit: \($0)") }
        func pct(_ v: Double) -> String { String(format: "%.0f%%", 100 * v) }
        func gb(_ s: Spread) -> String { String(format: "%.1f/%.1f/%.1f", s.min, s.median, s.max) }
        Diagnostics.info("bench fit: probe GB/s min/median/max \(gb(r.probeGBps)) (\(r.threads) threads), \(gb(r.probe1ThreadGBps)) (1 thread)")
        Diagnostics.info("bench fit: kernel native \(gb(r.vectorRunsGBps)) GB/s = \(pct(r.vectorFractionOfProbeMedian)) of the probe; "
            + "pixel-major \(gb(r.pixelMajorRunsGBps)) = \(pct(r.pixelMajorFractionOfProbeMedian)); "
            + "1 thread \(gb(r.vector1ThreadRunsGBps)) = \(pct(r.vector1ThreadFractionOfProbeMedian)); "
            + String(format: "scalar path %.2f%% of pixels", 100 * r.scalarFraction))
        Diagnostics.info("bench fit: compute ceiling, \(r.cacheResidentPixels) pixels in each core's L2: \(gb(r.cacheResidentGBps)) GB/s = "
            + "\(pct(r.cacheResidentFractionOfProbeMedian)) of the probe median (kernel build \(r.kernelISA))")
        if let v = r.portableVectorRunsGBps, let c = r.portableCacheResidentGBps {
            Diagnostics.info("bench fit: the x86-64-v3 build in the same run: native \(gb(v)) GB/s = \(pct(v.median / r.probeGBps.median)); "
                + "in L2 \(gb(c)) = \(pct(c.median / r.probeGBps.median)) of the probe median")
        }
        if let e = r.endToEnd {
            Diagnostics.info(String(format: "bench fit: end to end, %d files %.0f MB: fit gain %.3f s, cat %.3f s (medians): %.2fx cat; "
                                    + "the pixel-major kernel alone %.2fx cat; process start %.3f s",
                                    e.files.count, Double(e.bytes) / 1e6, e.fitSeconds.median, e.catSeconds.median, e.ratioToCat,
                                    e.pixelMajorKernelOverCat ?? .nan, e.processStartSeconds ?? .nan))
        }
        try printJSON(r)
    }
}

struct BenchDark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dark",
        abstract: "Benchmark dark processing: kernel in memory and a whole run streamed from HDF5. Prints JSON.",
        discussion: reflow("""
        Without --input a Jungfrau 4M run of --frames frames is simulated once into --dir (8.4 GB for 1000 frames) and \
        reused by later runs. The stage-2 kernel runs on --kernel-frames frames in memory in --repeats rounds, each \
        after one pass of the read probe (probeGBps min/median/max; kernelFractionOfBandwidth = kernel median over \
        probe median); the compute ceiling, the kernel on a block of frames already in each core's L2 \
        (cacheResident*). End to end, `DarkFit.run` on the whole file alternates with `cat FILE > /dev/null` (both \
        from the page cache, after one warm-up cat) for --rounds rounds (endToEndOverCat = median over median), and the \
        streamed stage 2's preads alone, the floor of that design (readsAloneSeconds, readsAloneOverCat). A summary \
        goes to stderr; docs/benchmarks-numerics.md has recorded runs.

        Example:
          .build/release/calibctl bench dark --frames 1000 --dir /tmp
        """))

    @Option(help: "An existing dark-run file.") var input: String?
    @Option(help: "Shape PANELSxROWSxCOLS of the simulated run.") var shape: String = "8x512x1024"
    @Option(help: "Frames of the simulated run.") var frames: Int = 1000
    @Option(help: "Frames held in memory for the kernel timing.") var kernelFrames: Int = 128
    @Option(help: "Threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Interleaved probe / kernel rounds.") var repeats: Int = 7
    @Option(help: "Alternating cat / end-to-end rounds.") var rounds: Int = 3
    @Option(help: "Python with numpy and h5py.") var python: String = "python3"
    @Flag(help: "Skip the numpy baseline.") var noNumpy = false
    @Option(help: "Directory for the simulated run.") var dir: String = NSTemporaryDirectory()

    func run() throws {
        let dims = shape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }), frames > 0, kernelFrames > 0, repeats > 0, rounds > 0 else {
            throw UsageError("--shape must be PANELSxROWSxCOLS and --frames/--kernel-frames/--repeats/--rounds positive")
        }
        var b = DarkBenchmark()
        b.input = input; b.shape = dims; b.frames = frames; b.kernelFrames = kernelFrames; b.threads = threads
        b.repeats = repeats; b.endToEndRounds = rounds; b.python = noNumpy ? nil : python; b.workDirectory = dir
        let r = try b.run { Diagnostics.info("bench dark: \($0)") }
        for line in DarkBenchmark.summary(r) where !line.isEmpty { Diagnostics.info("bench dark: " + line) }
        try printJSON(r)
    }
}
