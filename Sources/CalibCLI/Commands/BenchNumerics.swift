import ArgumentParser
import CalibCore
import Foundation

struct BenchFit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fit",
        abstract: "Benchmark the gain fit on simulated scans in memory (release build). Prints JSON.",
        discussion: reflow("""
        Measures, in one run: streaming read bandwidth (1 GiB, one and all threads); the SIMD kernel on its native \
        interleaved layout (16-pixel groups, one vector per point) on all cores and on one (vectorGBps, \
        vectorFractionOfBandwidth, vector1Thread*); the same kernel on pixel-major input, the gain-scan file layout \
        (pixelMajor*); the scalar reference; and the numpy closed-form fit in a python3 subprocess on the same data \
        (numpy*, speedupOverNumpy). layoutMismatches counts pixels whose results differ between the layouts (0 \
        expected). Build with `swift build -c release`; docs/benchmarks-numerics.md has recorded runs.

        Example:
          .build/release/calibctl bench fit --modules 30
        """))

    @Option(help: "Simulated CMS modules (66,560 pixels each).") var modules: Int = 30
    @Option(help: "Threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Repeats (best time wins).") var repeats: Int = 5
    @Option(help: "Python with numpy and h5py.") var python: String = "python3"
    @Flag(help: "Skip the numpy baseline.") var noNumpy = false
    @Option(help: "Directory for the temporary baseline input.") var dir: String = NSTemporaryDirectory()

    func run() throws {
        guard modules > 0, threads > 0 else { throw UsageError("--modules and --threads must be positive") }
        var b = GainFitBenchmark()
        b.modules = modules; b.threads = threads; b.repeats = repeats; b.python = noNumpy ? nil : python
        b.workDirectory = dir
        let r = try b.run { Diagnostics.info("bench fit: \($0)") }
        try printJSON(r)
    }
}

struct BenchDark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dark",
        abstract: "Benchmark dark processing: kernel in memory and a whole run streamed from HDF5. Prints JSON.",
        discussion: reflow("""
        Without --input a Jungfrau 4M run of --frames frames is simulated once into --dir (8.4 GB for 1000 frames) and
        reused by later runs.

        Example:
          .build/release/calibctl bench dark --frames 1000 --dir /tmp
        """))

    @Option(help: "An existing dark-run file.") var input: String?
    @Option(help: "Shape PANELSxROWSxCOLS of the simulated run.") var shape: String = "8x512x1024"
    @Option(help: "Frames of the simulated run.") var frames: Int = 1000
    @Option(help: "Frames held in memory for the kernel timing.") var kernelFrames: Int = 100
    @Option(help: "Threads.") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Repeats (best time wins).") var repeats: Int = 3
    @Option(help: "Python with numpy and h5py.") var python: String = "python3"
    @Flag(help: "Skip the numpy baseline.") var noNumpy = false
    @Option(help: "Directory for the simulated run.") var dir: String = NSTemporaryDirectory()

    func run() throws {
        let dims = shape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }), frames > 0, kernelFrames > 0 else {
            throw UsageError("--shape must be PANELSxROWSxCOLS and --frames/--kernel-frames positive")
        }
        var b = DarkBenchmark()
        b.input = input; b.shape = dims; b.frames = frames; b.kernelFrames = kernelFrames; b.threads = threads
        b.repeats = repeats; b.python = noNumpy ? nil : python; b.workDirectory = dir
        let r = try b.run { Diagnostics.info("bench dark: \($0)") }
        try printJSON(r)
    }
}
