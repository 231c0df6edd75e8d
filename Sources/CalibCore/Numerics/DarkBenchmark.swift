import CalibIO
import Foundation

/// The dark benchmark: the stage-2 kernel over frames in memory against read bandwidth and numpy mean/std of the same
/// frames, and end-to-end dark processing of a whole run streamed from an HDF5 file.
public struct DarkBenchmark: Sendable {
    public struct Result: Codable, Sendable {
        public var file: String
        public var shape: [Int]
        public var frames: Int
        public var threads: Int
        public var memoryReadGBpsAllThreads: Double
        public var kernelFrames: Int
        public var kernelSeconds: Double
        public var kernelGBps: Double
        public var kernelFractionOfBandwidth: Double
        public var scalar1ThreadGBps: Double
        public var numpySeconds: Double?
        public var speedupOverNumpy: Double?
        public var endToEndSeconds: Double
        public var endToEndGBps: Double
        public var simulatedSeconds: Double?
        public var loadAverage: String
    }

    public var input: String?
    public var shape = [8, 512, 1024]
    public var frames = 1000
    public var kernelFrames = 100
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var repeats = 3
    public var python: String? = "python3"
    public var workDirectory = NSTemporaryDirectory()

    public init() {}

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
        let f = try HDF5File.open(path)
        let ds = try f.dataset(DarkFormat.frames)
        let F = ds.shape[0], P = ds.rowSize
        let o0 = DarkOptions()
        let K = min(kernelFrames, F)
        // Frames padded apart as in DarkFit (stride P + 96) for the stage-2 timing; stage 1 reads them contiguous.
        let stride = P + 96
        let buf = UnsafeMutablePointer<UInt16>.allocate(capacity: K * stride)
        let flat = UnsafeMutablePointer<UInt16>.allocate(capacity: min(K, o0.nrecs1) * P)
        defer { buf.deallocate(); flat.deallocate() }
        for f in 0..<K { try ds.readRows(f..<(f + 1), into: UnsafeMutableBufferPointer(start: buf + f * stride, count: P)) }
        try ds.readRows(0..<min(K, o0.nrecs1), into: UnsafeMutableBufferPointer(start: flat, count: min(K, o0.nrecs1) * P))
        try f.close()
        let o = o0
        let gl = UnsafeMutablePointer<Float>.allocate(capacity: 3 * P)
        defer { gl.deallocate() }
        let gates = DarkGates(lo: gl, hi: gl + P, ref: gl + 2 * P)
        let bp = SendablePointer(buf), fp = SendablePointer(flat)
        let tile = 16384, tiles = (P + tile - 1) / tile
        DispatchQueue.concurrentPerform(iterations: tiles) { t in
            DarkKernel.gatesVector(frames: fp.base, frameCount: min(K, o.nrecs1), pixels: P,
                             range: (t * tile)..<min(P, (t + 1) * tile), options: o, into: gates)
        }
        progress("measuring memory bandwidth")
        let bw = MemoryBandwidth.measureRead(threads: threads)
        let acc = DarkAccumulators.allocate(pixels: P)
        defer { acc.deallocate() }
        progress("timing the stage-2 kernel on \(K) frames in memory")
        // Blocks of 16 frames, as in the streaming code.
        let tk = Stopwatch.best(repeats: repeats) {
            var f0 = 0
            while f0 < K {
                let c = min(16, K - f0), start = f0
                DispatchQueue.concurrentPerform(iterations: tiles) { t in
                    DarkKernel.accumulateVector(frames: bp.base + start * stride, frameCount: c, pixels: P,
                                                range: (t * tile)..<min(P, (t + 1) * tile), expectedGain: 0,
                                                gates: gates, commonMode: nil, options: o, into: acc,
                                                frameStride: stride)
                }
                f0 += c
            }
        }
        let sub = min(P, 262_144)
        let ts = Stopwatch.best(repeats: 1) {
            DarkKernel.accumulateScalar(frames: buf, frameCount: K, pixels: P, range: 0..<sub, expectedGain: 0,
                                        gates: gates, commonMode: nil, options: o, into: acc, frameStride: stride)
        }
        let kb = Double(K * P * 2)
        var result = Result(file: path, shape: Array(ds.shape.dropFirst()), frames: F, threads: threads,
                            memoryReadGBpsAllThreads: bw / 1e9, kernelFrames: K, kernelSeconds: tk,
                            kernelGBps: kb / tk / 1e9, kernelFractionOfBandwidth: kb / tk / bw,
                            scalar1ThreadGBps: Double(K * sub * 2) / ts / 1e9, numpySeconds: nil, speedupOverNumpy: nil,
                            endToEndSeconds: 0, endToEndGBps: 0, simulatedSeconds: simulated,
                            loadAverage: (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?
                                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
        if let python {
            progress("running the numpy baseline")
            let r = try PythonBaseline.run(python: python, script: PythonBaseline.darkScript,
                                           arguments: [path, String(K), String(repeats)])
            result.numpySeconds = r["seconds"]
            if let s = r["seconds"] { result.speedupOverNumpy = s / tk }
        }
        progress("end-to-end dark processing of \(F) frames from \(path)")
        let out = (workDirectory as NSString).appendingPathComponent("calibctl-bench-dark-out-\(getpid()).h5")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let s = try DarkFit.run(inputPath: path, outputPath: out, threads: threads)
        result.endToEndSeconds = s.seconds
        result.endToEndGBps = Double(s.bytesRead) / s.seconds / 1e9
        return result
    }
}
