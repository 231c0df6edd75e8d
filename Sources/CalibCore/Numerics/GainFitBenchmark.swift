import CalibIO
import Foundation

/// The gain-fit benchmark: simulated scans in memory, the SIMD kernel on 1 and N threads and the scalar reference,
/// against measured read bandwidth and a fully vectorised numpy closed-form fit on the same data.
public struct GainFitBenchmark: Sendable {
    public struct Result: Codable, Sendable {
        public var pixels: Int
        public var points: Int
        public var bytesPerPass: Int
        public var threads: Int
        public var memoryReadGBps1Thread: Double
        public var memoryReadGBpsAllThreads: Double
        /// The SIMD kernel on its native layout (GainScanLayout.interleaved), all threads.
        public var vectorSeconds: Double
        public var vectorGBps: Double
        public var vectorFractionOfBandwidth: Double
        public var vector1ThreadSeconds: Double
        public var vector1ThreadGBps: Double
        public var vector1ThreadFractionOf1ThreadBandwidth: Double
        /// The same fit on pixel-major input (the file layout; the kernel transposes 16 pixels at a time), all threads.
        public var pixelMajorSeconds: Double
        public var pixelMajorGBps: Double
        public var pixelMajorFractionOfBandwidth: Double
        public var pixelMajorSpeedupOverNumpy: Double?
        public var scalar1ThreadGBps: Double
        /// One thread, measured in thread CPU time (what the core does when it is not shared).
        public var vector1ThreadCPUGBps: Double
        public var numpySeconds: Double?
        public var numpyGBps: Double?
        public var speedupOverNumpy: Double?
        public var numpyMedianGain: Double?
        public var swiftMedianGain: Double
        /// Pixels whose gain, pedestal, chi2/ndf, points or status differ between the native and the pixel-major run
        /// (0 expected; NaN outputs compare by bit pattern, which the kernel writes identically).
        public var layoutMismatches: Int
        /// Pixels of the simulated scan the vector kernel handed to the scalar reference (missing points, float
        /// margins below GainFitKernel.tieMargin), as a fraction of all pixels.
        public var scalarFraction: Double
        /// The read probe, one pass before each kernel run (interleaved), GB/s: all threads and one thread.
        public var probeGBps: Spread
        public var probe1ThreadGBps: Spread
        /// Kernel throughput per run (GB/s), native layout all threads, one thread, and pixel-major all threads.
        public var vectorRunsGBps: Spread
        public var vector1ThreadRunsGBps: Spread
        public var pixelMajorRunsGBps: Spread
        /// Medians over the medians: the figures the goals are stated in (docs/benchmarks-numerics.md).
        public var vectorFractionOfProbeMedian: Double
        public var vector1ThreadFractionOfProbeMedian: Double
        public var pixelMajorFractionOfProbeMedian: Double
        /// The compute ceiling: the kernel on a native block of `cacheResidentPixels` pixels that stays in each core's
        /// L2 (fitted over and over, no memory traffic), all threads, GB/s per round interleaved with the probe, and its
        /// median over the probe median. A kernel reading its input from memory cannot go faster than this.
        public var cacheResidentPixels: Int
        public var cacheResidentGBps: Spread
        public var cacheResidentFractionOfProbeMedian: Double
        /// The instruction-set level of the kernel measured above (`NumericKernels.gain`) and, when that is above
        /// x86-64-v3, CalibCore's x86-64-v3 build measured in the same run, native layout and L2-resident (the AVX2
        /// kernel the AVX-512 one replaces; nil otherwise).
        public var kernelISA: String
        public var portableVectorRunsGBps: Spread?
        public var portableCacheResidentGBps: Spread?
        /// End to end: `calibctl fit gain` on FED files in the page cache against `cat` of the same files.
        public var endToEnd: EndToEnd?
        public var loadAverage: String
        public var loadAverageAfter: String
    }

    /// `calibctl fit gain FILES -o DIR` and `cat FILES > /dev/null` as processes, alternating, files in the page cache.
    public struct EndToEnd: Codable, Sendable {
        public var files: [String]
        public var bytes: Int
        public var rounds: Int
        public var fitSeconds: Spread
        public var catSeconds: Spread
        /// median(fit) / median(cat).
        public var ratioToCat: Double
        public var fitGBps: Double
        public var catGBps: Double
        /// The pixel-major kernel alone on the same number of bytes (already in memory, median rate of this run) over
        /// median(cat): the least the end-to-end ratio can be with this kernel, before any reading or process start.
        public var pixelMajorKernelOverCat: Double?
        /// `calibctl --version` (process start and exit of the same executable), median seconds over the rounds.
        public var processStartSeconds: Double?
    }

    public var modules = 30
    public var rows = CMSPixelTopology.rowsPerModule
    public var cols = CMSPixelTopology.colsPerModule
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var repeats = 5
    public var python: String? = "python3"
    public var workDirectory = NSTemporaryDirectory()
    /// The calibctl executable for the end-to-end run (nil skips it).
    public var executable: String? = nil
    /// FED files for the end-to-end run (modules split over two files), simulated once into workDirectory.
    public var endToEndFEDs = 2

    public init() {}

    static func loadAverage() -> String {
        (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    public func run(progress: (String) -> Void = { _ in }) throws -> Result {
        var simVar = GainScanSimulator()
        simVar.rows = rows; simVar.cols = cols; simVar.seed = 2026
        let sim = simVar
        let ppm = rows * cols, np = sim.vcal.count, P = modules * ppm
        let per = P * np
        let data = UnsafeMutablePointer<Float>.allocate(capacity: 3 * per)
        let truth = UnsafeMutablePointer<Float>.allocate(capacity: 4 * ppm)
        let kinds = UnsafeMutablePointer<UInt8>.allocate(capacity: ppm)
        defer { data.deallocate(); truth.deallocate(); kinds.deallocate() }
        progress("simulating \(P) pixels x \(np) points")
        let dp = SendablePointer(data)
        DispatchQueue.concurrentPerform(iterations: modules) { m in
            let t = UnsafeMutablePointer<Float>.allocate(capacity: 4 * ppm)
            let k = UnsafeMutablePointer<UInt8>.allocate(capacity: ppm)
            defer { t.deallocate(); k.deallocate() }
            // Every module uses the electrons of module 200 (not BPix layer 1) so one x vector serves all.
            var s = sim
            s.seed = sim.seed &+ UInt64(m)
            s.generateModule(globalModule: 200, n: dp.base + m * ppm * np, sum: dp.base + per + m * ppm * np,
                             sumsq: dp.base + 2 * per + m * ppm * np, truthGain: t, truthPedestal: t + ppm,
                             truthPlateau: t + 2 * ppm, truthNoise: t + 3 * ppm, truthKind: k)
        }
        let x = sim.electrons(globalModule: 200)
        let block = GainScanBlock(n: data, sum: data + per, sumsq: data + 2 * per, pixels: P, points: np)
        let outF = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P)
        let outB = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * P)
        defer { outF.deallocate(); outB.deallocate() }
        let out = GainFitResults(gain: outF, pedestal: outF + P, chi2ndf: outF + 2 * P, npoints: outB, status: outB + P)
        let bytes = 3 * per * 4
        let loadBefore = Self.loadAverage()
        // The kernel's native layout: 16-pixel groups, one vector per point (GainScanLayout.interleaved).
        let icount = GainScanBlock.interleavedCount(pixels: P, points: np)
        let inter = UnsafeMutablePointer<Float>.allocate(capacity: 3 * icount)
        defer { inter.deallocate() }
        for a in 0..<3 { GainScanBlock.interleave(data + a * per, pixels: P, points: np, into: inter + a * icount) }
        let native = GainScanBlock(n: inter, sum: inter + icount, sumsq: inter + 2 * icount, pixels: P, points: np,
                                   layout: .interleaved)
        // Probe passes interleaved with the kernel runs: the probe swings by a third between minutes on this VM.
        let probe = MemoryBandwidth.Probe()
        progress("timing the SIMD kernel, native layout, \(threads) threads, each run after a read probe pass")
        let (bwN, tNs) = MemoryBandwidth.interleaved(rounds: repeats, threads: threads, probe: probe) {
            GainFitKernel.fit(native, x: x, into: out, threads: threads)
        }
        progress("timing the SIMD kernel, pixel-major input")
        let (bwP, tPs) = MemoryBandwidth.interleaved(rounds: repeats, threads: threads, probe: probe) {
            GainFitKernel.fit(block, x: x, into: out, threads: threads)
        }
        progress("timing the SIMD kernel, one thread")
        let (bw1, t1s) = MemoryBandwidth.interleaved(rounds: repeats, threads: 1, probe: probe) {
            GainFitKernel.fit(native, x: x, into: out, threads: 1)
        }
        let tc = Stopwatch.bestThreadCPU(repeats: repeats) { GainFitKernel.fit(native, x: x, into: out, threads: 1) }
        // Compute ceiling: each thread fits the first `cachePixels` pixels of the native block (3 x 237 kB, in its L2)
        // `reps` times into its own outputs.
        let cachePixels = min(P, 2048) / GainFitKernel.lanes * GainFitKernel.lanes, reps = 400
        let th = max(1, threads)
        let cOutF = UnsafeMutablePointer<Float>.allocate(capacity: 3 * th * max(cachePixels, 1))
        let cOutB = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * th * max(cachePixels, 1))
        defer { cOutF.deallocate(); cOutB.deallocate() }
        let small = GainScanBlock(n: inter, sum: inter + icount, sumsq: inter + 2 * icount, pixels: cachePixels,
                                  points: np, layout: .interleaved)
        let cof = SendablePointer(cOutF), cob = SendablePointer(cOutB)
        func ceiling() -> ([Double], [Double]) {
            x.withUnsafeBufferPointer { xb in
                let xp = SendablePointer(xb.baseAddress!)
                return MemoryBandwidth.interleaved(rounds: repeats, threads: threads, probe: probe) {
                    DispatchQueue.concurrentPerform(iterations: th) { t in
                        let c = cachePixels, fo = cof.base + 3 * c * t, bo = cob.base + 2 * c * t
                        let o = GainFitResults(gain: fo, pedestal: fo + c, chi2ndf: fo + 2 * c, npoints: bo, status: bo + c)
                        for _ in 0..<reps { GainFitKernel.fitVector(small, x: xp.base, range: 0..<c, into: o) }
                    }
                }
            }
        }
        progress("timing the compute ceiling: \(cachePixels) pixels in each core's L2, \(reps) fits per thread")
        let (bwC, tCs) = ceiling()
        let isa = NumericKernels.gain.isa
        var portable: (probe: [Double], native: [Double], ceiling: [Double])? = nil
        if isa != .v3 {
            progress("timing the x86-64-v3 build of the kernel (native layout, then in L2) for comparison")
            let kernel = NumericKernels.gain
            NumericKernels.gain = .portable
            defer { NumericKernels.gain = kernel }
            let (bwV, tVs) = MemoryBandwidth.interleaved(rounds: repeats, threads: threads, probe: probe) {
                GainFitKernel.fit(native, x: x, into: out, threads: threads)
            }
            let (bwV2, tV2s) = ceiling()
            portable = (bwV + bwV2, tVs, tV2s)
        }
        let scalarPixels = x.withUnsafeBufferPointer { xb in
            GainFitKernel.fitVector(native, x: xb.baseAddress!, range: 0..<P, into: out)
        }
        let gb = Double(bytes) / 1e9
        let probeN = Spread(bwN + bwP + bwC + (portable?.probe ?? [])).scaled(by: 1e-9), probe1 = Spread(bw1).scaled(by: 1e-9)
        let cacheGB = Double(th * reps * cachePixels * np * 12) / 1e9
        let runsC = Spread(tCs.map { cacheGB / $0 })
        let runsN = Spread(tNs.map { gb / $0 }), runsP = Spread(tPs.map { gb / $0 }), runs1 = Spread(t1s.map { gb / $0 })
        let tN = tNs.min()!, t1 = t1s.min()!, tP = tPs.min()!
        let sub = min(P, 200_000)
        let ts = x.withUnsafeBufferPointer { xb in
            Stopwatch.best(repeats: 2) { GainFitKernel.fitScalar(block, x: xb.baseAddress!, range: 0..<sub, into: out) }
        }
        GainFitKernel.fit(block, x: x, into: out, threads: threads)
        // Both layouts must give the same bits in every output (the pixel-major results stay in `out`).
        let chkF = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P), chkB = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * P)
        defer { chkF.deallocate(); chkB.deallocate() }
        GainFitKernel.fit(native, x: x, into: GainFitResults(gain: chkF, pedestal: chkF + P, chi2ndf: chkF + 2 * P,
                                                                npoints: chkB, status: chkB + P), threads: threads)
        var layoutMismatches = 0
        for p in 0..<P {
            let floatsDiffer = (0..<3).contains { chkF[$0 * P + p].bitPattern != outF[$0 * P + p].bitPattern }
            if floatsDiffer || chkB[p] != outB[p] || chkB[P + p] != outB[P + p] { layoutMismatches += 1 }
        }
        var gains: [Float] = []
        for p in 0..<P where GainPixelStatus(rawValue: out.status[p])?.hasUsableFit == true { gains.append(out.gain[p]) }
        gains.sort()
        let swiftMedian = gains.isEmpty ? 0 : Double(gains[gains.count / 2])
        var result = Result(
            pixels: P, points: np, bytesPerPass: bytes, threads: threads,
            memoryReadGBps1Thread: probe1.median, memoryReadGBpsAllThreads: probeN.median,
            vectorSeconds: tN, vectorGBps: gb / tN, vectorFractionOfBandwidth: gb / tN / probeN.median,
            vector1ThreadSeconds: t1, vector1ThreadGBps: gb / t1,
            vector1ThreadFractionOf1ThreadBandwidth: gb / t1 / probe1.median,
            pixelMajorSeconds: tP, pixelMajorGBps: gb / tP,
            pixelMajorFractionOfBandwidth: gb / tP / probeN.median, pixelMajorSpeedupOverNumpy: nil,
            scalar1ThreadGBps: Double(sub * np * 12) / ts / 1e9, vector1ThreadCPUGBps: Double(bytes) / tc / 1e9,
            numpySeconds: nil, numpyGBps: nil, speedupOverNumpy: nil, numpyMedianGain: nil, swiftMedianGain: swiftMedian,
            layoutMismatches: layoutMismatches, scalarFraction: Double(scalarPixels) / Double(P),
            probeGBps: probeN, probe1ThreadGBps: probe1, vectorRunsGBps: runsN, vector1ThreadRunsGBps: runs1,
            pixelMajorRunsGBps: runsP, vectorFractionOfProbeMedian: runsN.median / probeN.median,
            vector1ThreadFractionOfProbeMedian: runs1.median / probe1.median,
            pixelMajorFractionOfProbeMedian: runsP.median / probeN.median,
            cacheResidentPixels: cachePixels, cacheResidentGBps: runsC,
            cacheResidentFractionOfProbeMedian: runsC.median / probeN.median, kernelISA: isa.rawValue,
            portableVectorRunsGBps: portable.map { Spread($0.native.map { gb / $0 }) },
            portableCacheResidentGBps: portable.map { Spread($0.ceiling.map { cacheGB / $0 }) }, endToEnd: nil,
            loadAverage: loadBefore, loadAverageAfter: "")
        if let python {
            progress("running the numpy baseline")
            let file = (workDirectory as NSString).appendingPathComponent("calibctl-bench-gain-\(getpid()).h5")
            defer { try? FileManager.default.removeItem(atPath: file) }
            let h = try HDF5File.create(file, overwrite: true)
            try h.write("/n", Array(UnsafeBufferPointer(start: data, count: per)), shape: [P, np])
            try h.write("/sum", Array(UnsafeBufferPointer(start: data + per, count: per)), shape: [P, np])
            try h.write("/sumsq", Array(UnsafeBufferPointer(start: data + 2 * per, count: per)), shape: [P, np])
            try h.write("/x", x)
            try h.close()
            let r = try PythonBaseline.run(python: python, script: PythonBaseline.gainScript, arguments: [file, String(repeats)])
            result.numpySeconds = r["seconds"]
            result.numpyMedianGain = r["median_gain"]
            if let s = r["seconds"] {
                result.numpyGBps = Double(bytes) / s / 1e9
                result.speedupOverNumpy = s / tN
                result.pixelMajorSpeedupOverNumpy = s / tP
            }
        }
        if let executable {
            var e = try endToEnd(executable: executable, simulator: sim, progress: progress)
            e.pixelMajorKernelOverCat = Double(e.bytes) / 1e9 / runsP.median / e.catSeconds.median
            result.endToEnd = e
        }
        result.loadAverageAfter = Self.loadAverage()
        return result
    }

    /// Simulates `endToEndFEDs` FED files of modules/FEDs modules each (kept for later runs), reads them once into the
    /// page cache, then alternates `cat` and `calibctl fit gain` of the same files, `repeats` rounds.
    func endToEnd(executable: String, simulator: GainScanSimulator, progress: (String) -> Void) throws -> EndToEnd {
        let feds = max(1, endToEndFEDs), perFED = max(1, modules / feds)
        let dir = (workDirectory as NSString).appendingPathComponent("calibctl-bench-fit-\(feds)x\(perFED)")
        let fedIDs = Array(1200..<(1200 + feds))
        var files = fedIDs.map { "\(dir)/fed_\($0).h5" }
        if !files.allSatisfy({ FileManager.default.fileExists(atPath: $0) }) {
            progress("simulating \(feds) FED files of \(perFED) modules into \(dir)")
            files = try simulator.write(directory: dir, feds: fedIDs, modulesPerFED: perFED, threads: threads)
        }
        let bytes = files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
        let outDir = (workDirectory as NSString).appendingPathComponent("calibctl-bench-fit-out-\(getpid())")
        defer { try? FileManager.default.removeItem(atPath: outDir) }
        let catFiles = files   // `cat FILES` with its output to /dev/null (as `cat FILES > /dev/null`)
        let cat = { try Stopwatch.process("/bin/cat", catFiles) }
        let fit = { try Stopwatch.process(executable, ["fit", "gain"] + files + ["-o", outDir, "--threads", String(threads)]) }
        progress("end to end: fit gain and cat of \(files.count) files (\(bytes / 1_000_000) MB), \(repeats) rounds")
        _ = try cat()   // into the page cache
        _ = try fit()   // and the executable
        let start = { try Stopwatch.process(executable, ["--version"]) }
        var fits: [Double] = [], cats: [Double] = [], starts: [Double] = []
        for _ in 0..<repeats {
            cats.append(try cat())
            fits.append(try fit())
            starts.append(try start())
        }
        let f = Spread(fits), c = Spread(cats), gb = Double(bytes) / 1e9
        let ratio: Double = f.median / c.median, fitRate: Double = gb / f.median, catRate: Double = gb / c.median
        return EndToEnd(files: files, bytes: bytes, rounds: repeats, fitSeconds: f, catSeconds: c, ratioToCat: ratio,
                        fitGBps: fitRate, catGBps: catRate, pixelMajorKernelOverCat: nil,
                        processStartSeconds: Spread(starts).median)
    }
}
