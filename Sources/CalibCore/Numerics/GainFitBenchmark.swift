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
        public var loadAverage: String
    }

    public var modules = 30
    public var rows = CMSPixelTopology.rowsPerModule
    public var cols = CMSPixelTopology.colsPerModule
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var repeats = 5
    public var python: String? = "python3"
    public var workDirectory = NSTemporaryDirectory()

    public init() {}

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
        progress("measuring memory bandwidth")
        let bw1 = MemoryBandwidth.measureRead(threads: 1)
        let bwN = MemoryBandwidth.measureRead(threads: threads)
        progress("timing the SIMD kernel")
        // The kernel's native layout: 16-pixel groups, one vector per point (GainScanLayout.interleaved).
        let icount = GainScanBlock.interleavedCount(pixels: P, points: np)
        let inter = UnsafeMutablePointer<Float>.allocate(capacity: 3 * icount)
        defer { inter.deallocate() }
        for a in 0..<3 { GainScanBlock.interleave(data + a * per, pixels: P, points: np, into: inter + a * icount) }
        let native = GainScanBlock(n: inter, sum: inter + icount, sumsq: inter + 2 * icount, pixels: P, points: np,
                                   layout: .interleaved)
        let tN = Stopwatch.best(repeats: repeats) { GainFitKernel.fit(native, x: x, into: out, threads: threads) }
        let t1 = Stopwatch.best(repeats: repeats) { GainFitKernel.fit(native, x: x, into: out, threads: 1) }
        let tc = Stopwatch.bestThreadCPU(repeats: repeats) { GainFitKernel.fit(native, x: x, into: out, threads: 1) }
        let tP = Stopwatch.best(repeats: repeats) { GainFitKernel.fit(block, x: x, into: out, threads: threads) }
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
            memoryReadGBps1Thread: bw1 / 1e9, memoryReadGBpsAllThreads: bwN / 1e9,
            vectorSeconds: tN, vectorGBps: Double(bytes) / tN / 1e9, vectorFractionOfBandwidth: Double(bytes) / tN / bwN,
            vector1ThreadSeconds: t1, vector1ThreadGBps: Double(bytes) / t1 / 1e9,
            vector1ThreadFractionOf1ThreadBandwidth: Double(bytes) / t1 / bw1,
            pixelMajorSeconds: tP, pixelMajorGBps: Double(bytes) / tP / 1e9,
            pixelMajorFractionOfBandwidth: Double(bytes) / tP / bwN, pixelMajorSpeedupOverNumpy: nil,
            scalar1ThreadGBps: Double(sub * np * 12) / ts / 1e9, vector1ThreadCPUGBps: Double(bytes) / tc / 1e9,
            numpySeconds: nil, numpyGBps: nil, speedupOverNumpy: nil, numpyMedianGain: nil, swiftMedianGain: swiftMedian,
            layoutMismatches: layoutMismatches,
            loadAverage: (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
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
        return result
    }
}
