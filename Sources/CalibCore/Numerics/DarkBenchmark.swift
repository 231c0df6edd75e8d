import CalibIO
import Foundation

/// The dark benchmark: the stage-2 kernel over frames in memory against the read probe (interleaved passes, so both see
/// the same machine state), numpy mean/std of the same frames, and end-to-end dark processing of a whole run streamed
/// from an HDF5 file in the page cache against `cat` of the same file (alternating rounds).
public struct DarkBenchmark: Sendable {
    public struct Result: Codable, Sendable {
        public var file: String
        public var shape: [Int]
        public var frames: Int
        public var threads: Int
        /// Frames per stage-2 block (as `DarkFit.run` streams them): one pass over the accumulators per block.
        public var framesPerBlock: Int
        /// Median of the read probe passes interleaved with the kernel runs (bytes/s / 1e9).
        public var memoryReadGBpsAllThreads: Double
        /// The probe passes: min/median/max GB/s.
        public var probeGBps: Spread
        public var kernelFrames: Int
        /// Median kernel wall time over the interleaved rounds.
        public var kernelSeconds: Double
        /// Median kernel GB/s (frames read per second) and the spread over the rounds.
        public var kernelGBps: Double
        public var kernelGBpsSpread: Spread
        /// Median kernel GB/s over the probe's median.
        public var kernelFractionOfBandwidth: Double
        /// One thread, thread CPU time (unaffected by other processes on the cores): GB/s per core.
        public var kernel1ThreadCPUGBps: Double
        /// The compute ceiling: the kernel on one block of frames already in each core's L2 (a slice of `cacheResidentPixels` copied once,
        /// accumulated over and over), all threads, GB/s of frames per round, and its median over the probe median.
        /// No memory traffic: a kernel that reads its frames from memory cannot go faster than this.
        public var cacheResidentPixels: Int
        public var cacheResidentKernelGBpsSpread: Spread
        public var cacheResidentFractionOfBandwidth: Double
        public var scalar1ThreadGBps: Double
        public var numpySeconds: Double?
        public var speedupOverNumpy: Double?
        /// End to end (`DarkFit.run` on the whole file): median wall seconds, spread, CPU seconds of the process
        /// (user + system, all threads) per round.
        public var endToEndSeconds: Double
        public var endToEndGBps: Double
        public var endToEndSecondsSpread: Spread
        public var endToEndCPUSeconds: [Double]
        /// `cat FILE > /dev/null` (page cache), alternating with the end-to-end runs: min/median/max seconds.
        public var catSeconds: Spread
        /// Median end-to-end seconds over median cat seconds.
        public var endToEndOverCat: Double
        /// The floor of the streamed stage 2: its preads alone over the whole file (same slices, same threads, no
        /// kernel), alternating with `cat` as well; median over the cat median.
        public var readsAloneSeconds: Spread?
        public var readsAloneOverCat: Double?
        public var rounds: Int
        public var simulatedSeconds: Double?
        public var loadAverage: String
    }

    public var input: String?
    public var shape = [8, 512, 1024]
    public var frames = 1000
    /// Frames in memory for the kernel timing: two blocks of `DarkOptions.framesPerBlock` (64).
    public var kernelFrames = 128
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    /// Interleaved probe/kernel rounds.
    public var repeats = 7
    /// Alternating cat / end-to-end rounds.
    public var endToEndRounds = 3
    public var python: String? = "python3"
    public var workDirectory = NSTemporaryDirectory()

    public init() {}

    /// User + system CPU seconds of this process so far (all threads).
    static func processCPUSeconds() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) * 1e-6
            + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) * 1e-6
    }

    public func run(progress: (String) -> Void = { _ in }) throws -> Result {
        var simulated: Double? = nil
        let path: String
        if let input { path = input } else {
            path = (workDirectory as NSString).appendingPathComponent(
                "calibctl-bench-dark-\(shape.map(String.init).joined(separator: "x"))-\(frames).h5")
            if !FileManager.default.fileExists(atPath: path) {
                progress("simulating \(path)")
                var sim = DarkRunSimulator()
                sim.panels = shape[0]; sim.rows = shape[1]; sim.cols = shape[2]; sim.frames = frames; sim.seed = 2026
                let t0 = Date()
                try sim.write(path: path, truthPath: path + ".truth")
                simulated = Date().timeIntervalSince(t0)
            }
        }
        // The in-memory figures first, in a function of their own, so that their 1.4 GB of buffers are freed before
        // the end-to-end rounds.
        func inMemory() throws -> (Result, frames: Int) {
            let f = try HDF5File.open(path)
            let ds = try f.dataset(DarkFormat.frames)
            let F = ds.shape[0], P = ds.rowSize
            let o = DarkOptions()
            let B = o.framesPerBlock
            let K = min(kernelFrames, F)
            // Frames padded apart as in DarkFit (stride P + 96) for the stage-2 timing; stage 1 reads them contiguous.
            let stride = P + 96
            let n1 = min(K, o.nrecs1)
            let buf = LargeBuffer.zeroed(UInt16.self, count: K * stride)
            let flat = UnsafeMutablePointer<UInt16>.allocate(capacity: n1 * P)
            defer { free(buf); flat.deallocate() }
            for f in 0..<K { try ds.readRows(f..<(f + 1), into: UnsafeMutableBufferPointer(start: buf + f * stride, count: P)) }
            try ds.readRows(0..<n1, into: UnsafeMutableBufferPointer(start: flat, count: n1 * P))
            try f.close()
            let gl = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P)
            defer { gl.deallocate() }
            let gates = DarkGates(lo: gl, hi: gl + P, ref: gl + 2 * P)
            let bp = SendablePointer(buf), fp = SendablePointer(flat)
            let tile = 16384, tiles = (P + tile - 1) / tile
            DispatchQueue.concurrentPerform(iterations: tiles) { t in
                DarkKernel.gatesVector(frames: fp.base, frameCount: n1, pixels: P,
                                       range: (t * tile)..<min(P, (t + 1) * tile), options: o, into: gates)
            }
            var withInteger = gates
            withInteger.integer = DarkKernel.makeIntegerGates(gates, pixels: P, dataMask: o.dataMask, threads: threads)
            defer { withInteger.integer?.deallocate() }
            let g2 = withInteger
            let acc = DarkAccumulators.allocate(pixels: P)
            defer { acc.deallocate() }
            // The frames in blocks of B over all pixels, as DarkFit's block-buffered stage 2 does (`Stage2.accumulate`:
            // tiles of 16,384 pixels read in place, the kernel prefetching its frame streams).
            let stage2 = Stage2(pixels: P, options: o, gates: g2, accumulators: acc, expectedGain: 0, threads: threads)
            let tilesAll = (P + Stage2.tile - 1) / Stage2.tile
            func kernel(threads th: Int, tiles: Int = tilesAll) {
                var f0 = 0
                while f0 < K {
                    let c = min(B, K - f0)
                    stage2.accumulate(frames: UnsafePointer(bp.base + f0 * stride), frameCount: c, frameStride: stride,
                                      commonMode: nil, threads: th, tiles: tiles)
                    f0 += c
                }
            }
            // The compute ceiling: every thread copies its own slice of B frames x `slice` pixels (512 kB) once into a
            // buffer in its L2 (frames `Stage2.slicePadding` apart) and accumulates it `reps` times.
            let slice = max(16, 262_144 / B / 16 * 16), reps = 64
            let scratchPool = BufferPool<UInt16>(elements: B * (slice + Stage2.slicePadding))
            func cacheResident() {
                let th = max(1, threads)
                DispatchQueue.concurrentPerform(iterations: th) { t in
                    let lo = min(P - 1, t * slice) & ~15, hi = min(P, lo + slice)
                    let scratch = scratchPool.take()
                    defer { scratchPool.give(scratch) }
                    let fs = hi - lo + Stage2.slicePadding
                    for i in 0..<B { (scratch + i * fs).update(from: bp.base + (i * stride + lo), count: hi - lo) }
                    for _ in 0..<reps {
                        DarkKernel.accumulateVector(frames: UnsafePointer(scratch) - lo, frameCount: B, pixels: P, range: lo..<hi,
                                                    expectedGain: 0, gates: g2, commonMode: nil, options: o, into: acc,
                                                    frameStride: fs)
                    }
                }
            }
            progress("timing the stage-2 kernel on \(K) frames in memory, interleaved with the read probe (\(repeats) rounds)")
            let probe = MemoryBandwidth.Probe()
            kernel(threads: threads)  // warm-up: page faults of the accumulators
            let runs = MemoryBandwidth.interleaved(rounds: repeats, threads: threads, probe: probe) { kernel(threads: threads) }
            progress("timing the compute ceiling (frames in each core's L2), interleaved with the read probe")
            let cacheRuns = MemoryBandwidth.interleaved(rounds: repeats, threads: threads, probe: probe) { cacheResident() }
            let kb = Double(K * P * 2)
            let probeSpread = Spread(runs.probe + cacheRuns.probe)
            let kernelSpread = Spread(runs.kernelSeconds.map { kb / $0 / 1e9 })
            let cacheBytes = Double(max(1, threads) * reps * B * min(P, slice) * 2)
            let cacheSpread = Spread(cacheRuns.kernelSeconds.map { cacheBytes / $0 / 1e9 })
            let tk = Spread(runs.kernelSeconds).median
            // One thread, thread CPU time, a quarter of the pixels.
            let quarter = max(1, tilesAll / 4)
            let cpu1 = Stopwatch.bestThreadCPU(repeats: 3) { kernel(threads: 1, tiles: quarter) }
            let sub = min(P, 262_144)
            let ts = Stopwatch.best(repeats: 1) {
                DarkKernel.accumulateScalar(frames: buf, frameCount: K, pixels: P, range: 0..<sub, expectedGain: 0,
                                            gates: gates, commonMode: nil, options: o, into: acc, frameStride: stride)
            }
            var result = Result(file: path, shape: Array(ds.shape.dropFirst()), frames: F, threads: threads,
                                framesPerBlock: B, memoryReadGBpsAllThreads: probeSpread.median / 1e9,
                                probeGBps: probeSpread.scaled(by: 1e-9), kernelFrames: K, kernelSeconds: tk,
                                kernelGBps: kernelSpread.median, kernelGBpsSpread: kernelSpread,
                                kernelFractionOfBandwidth: kernelSpread.median * 1e9 / probeSpread.median,
                                kernel1ThreadCPUGBps: Double(K * min(P, quarter * Stage2.tile) * 2) / cpu1 / 1e9,
                                cacheResidentPixels: min(P, slice), cacheResidentKernelGBpsSpread: cacheSpread,
                                cacheResidentFractionOfBandwidth: cacheSpread.median * 1e9 / probeSpread.median,
                                scalar1ThreadGBps: Double(K * sub * 2) / ts / 1e9, numpySeconds: nil, speedupOverNumpy: nil,
                                endToEndSeconds: 0, endToEndGBps: 0, endToEndSecondsSpread: Spread([]), endToEndCPUSeconds: [],
                                catSeconds: Spread([]), endToEndOverCat: 0, rounds: endToEndRounds,
                                simulatedSeconds: simulated, loadAverage: "")
            if let python {
                progress("running the numpy baseline")
                let r = try PythonBaseline.run(python: python, script: PythonBaseline.darkScript,
                                               arguments: [path, String(K), String(min(repeats, 3))])
                result.numpySeconds = r["seconds"]
                if let s = r["seconds"] { result.speedupOverNumpy = s / tk }
            }
            return (result, F)
        }
        var (result, F) = try inMemory()
        progress("end-to-end dark processing of \(F) frames from \(path) against cat, \(endToEndRounds) rounds")
        let out = (workDirectory as NSString).appendingPathComponent("calibctl-bench-dark-out-\(getpid()).h5")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let catFiles = [path]   // `cat FILE` with its output to /dev/null
        let cat = { try Stopwatch.process("/bin/cat", catFiles) }
        _ = try cat()  // warm-up: the whole file into the page cache
        var cats: [Double] = [], e2e: [Double] = [], cpu: [Double] = []
        var bytes = 0
        // The floor of the streamed design: its preads alone, the whole file in the same slices, on the same threads.
        let rf = try HDF5File.open(path)
        guard let reader = HDF5DirectReader(try rf.dataset(DarkFormat.frames)) else {
            throw NumericsError.badParameter("bench dark", "\(path) is not uncompressed uint16 frames, one per row",
                                             fix: "give a run in calibctl's layout (calibctl simulate dark)")
        }
        var reads: [Double] = []
        let readPool = BufferPool<UInt16>(elements: Stage2.streamFrames * (Stage2.streamSlice + Stage2.slicePadding))
        for _ in 0..<max(1, endToEndRounds) {
            cats.append(try cat())
            let r0 = DispatchTime.now().uptimeNanoseconds
            try Stage2.readOnly(frames: 0..<F, pixels: reader.rowSize / 2, reader: reader, pool: readPool, threads: threads)
            reads.append(Double(DispatchTime.now().uptimeNanoseconds - r0) * 1e-9)
            let c0 = Self.processCPUSeconds(), t0 = DispatchTime.now().uptimeNanoseconds
            let s = try DarkFit.run(inputPath: path, outputPath: out, threads: threads)
            e2e.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
            cpu.append(Self.processCPUSeconds() - c0)
            bytes = s.bytesRead
        }
        let es = Spread(e2e), cs = Spread(cats)
        result.endToEndSeconds = es.median
        result.endToEndGBps = Double(bytes) / es.median / 1e9
        result.endToEndSecondsSpread = es
        result.endToEndCPUSeconds = cpu
        result.catSeconds = cs
        result.endToEndOverCat = es.median / cs.median
        result.readsAloneSeconds = Spread(reads)
        result.readsAloneOverCat = Spread(reads).median / cs.median
        try rf.close()
        result.loadAverage = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        return result
    }

    /// A few lines for humans (stderr): the fractions and ratios the issue asks for.
    public static func summary(_ r: Result) -> [String] {
        func f(_ x: Double, _ d: Int = 2) -> String { String(format: "%.\(d)f", x) }
        return [
            "read probe \(r.threads) threads: min/median/max \(f(r.probeGBps.min, 1)) / \(f(r.probeGBps.median, 1)) / \(f(r.probeGBps.max, 1)) GB/s",
            "stage-2 kernel (\(r.kernelFrames) frames, blocks of \(r.framesPerBlock)): median \(f(r.kernelGBps, 1)) GB/s (\(f(r.kernelGBpsSpread.min, 1))-\(f(r.kernelGBpsSpread.max, 1))) = \(f(100 * r.kernelFractionOfBandwidth, 0))% of the probe median; 1 thread \(f(r.kernel1ThreadCPUGBps, 1)) GB/s per core (thread CPU time)",
            "compute ceiling, \(r.framesPerBlock) frames x \(r.cacheResidentPixels) pixels in each core's L2: median \(f(r.cacheResidentKernelGBpsSpread.median, 1)) GB/s (\(f(r.cacheResidentKernelGBpsSpread.min, 1))-\(f(r.cacheResidentKernelGBpsSpread.max, 1))) = \(f(100 * r.cacheResidentFractionOfBandwidth, 0))% of the probe median",
            "end to end \(r.frames) frames: median \(f(r.endToEndSeconds)) s (\(f(r.endToEndSecondsSpread.min))-\(f(r.endToEndSecondsSpread.max))), CPU \(r.endToEndCPUSeconds.map { f($0) }.joined(separator: ", ")) s; cat median \(f(r.catSeconds.median)) s (\(f(r.catSeconds.min))-\(f(r.catSeconds.max))); end to end / cat = \(f(r.endToEndOverCat))",
            r.readsAloneSeconds.map { "floor of the streamed design: its preads alone \(f($0.median)) s (\(f($0.min))-\(f($0.max))) = \(f(r.readsAloneOverCat ?? .nan))x cat" } ?? "",
            "load average: \(r.loadAverage)",
        ]
    }
}
