import ArgumentParser
import CalibCore
import Foundation

struct BenchDecode: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Benchmark decoding a CMS raw FED dump (decode + accumulate, one core) next to a plain read. Prints JSON.",
        discussion: reflow("""
        Writes a simulated dump of --modules CMS modules (or takes DUMP with calib.json and cabling_<FED>.json beside \
        it), reads it once plainly (page cache warm) and then decodes it into n/sum/sum2 per pixel and point, best of \
        --repeats. Figures per second of wall time and per second of the thread's CPU time (GB/s per core on a \
        shared machine), with the 1-minute load average. Build with `swift build -c release`; docs/benchmarks-numerics.md has recorded runs.

        Example:
          .build/release/calibctl bench decode --modules 4
        """))

    @Argument(help: "A .dmp file (default: a simulated one).") var dump: String?
    @Option(help: "Simulated CMS modules (66,560 pixels each).") var modules: Int = 4
    @Option(help: "Repeats (best time wins).") var repeats: Int = 3
    @Option(help: "Directory for the simulated dump.") var dir: String = NSTemporaryDirectory()

    func run() throws {
        var path = dump ?? ""
        var cleanup: String? = nil
        let fed = 1200
        if dump == nil {
            let d = (dir as NSString).appendingPathComponent("calibctl-bench-decode-\(getpid())")
            var sim = GainScanSimulator()
            sim.seed = 3
            path = try sim.writeDump(directory: d, fed: fed, modules: modules)
            cleanup = d
        }
        defer { if let c = cleanup { try? FileManager.default.removeItem(atPath: c) } }
        let dirOf = (path as NSString).deletingLastPathComponent
        let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension.split(separator: "_")
        let fedID = name.count >= 3 ? Int(name[name.count - 2]) ?? fed : fed
        let calib = try JSONDecoder().decode(CMSCalibConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: dirOf + "/calib.json")))
        let cabling = try JSONDecoder().decode(CMSCablingMap.self, from: Data(contentsOf: URL(fileURLWithPath: dirOf + "/cabling_\(fedID).json")))
        // CPU time of this thread: the figure per core, whatever else the machine runs (wall time is reported too).
        func cpu() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }
        var bestRead = Double.infinity, bestDecode = Double.infinity, bestReadCPU = Double.infinity, bestDecodeCPU = Double.infinity, bestDirectCPU = Double.infinity
        var bytes = 0, summary: CMSDumpSummary? = nil, tile = false
        for _ in 0..<max(1, repeats) {
            let t0 = Date(), c0 = cpu()
            guard let fh = FileHandle(forReadingAtPath: path) else { throw UsageError("cannot open \(path)") }
            var total = 0, x: UInt8 = 0
            while let d = try fh.read(upToCount: 8 << 20), !d.isEmpty { total += d.count; x ^= d[d.startIndex] }
            try fh.close()
            bestRead = min(bestRead, Date().timeIntervalSince(t0)); bestReadCPU = min(bestReadCPU, cpu() - c0)
            bytes = total + Int(x & 0)
            let dec = try CMSDumpDecoder(calib: calib, cabling: cabling)
            let t1 = Date(), c1 = cpu()
            summary = try dec.decode(path: path, expectedFED: fedID)
            bestDecode = min(bestDecode, Date().timeIntervalSince(t1)); bestDecodeCPU = min(bestDecodeCPU, cpu() - c1)
            tile = dec.usesTile
            let direct = try CMSDumpDecoder(calib: calib, cabling: cabling, tile: false)
            let c2 = cpu()
            _ = try direct.decode(path: path, expectedFED: fedID)
            bestDirectCPU = min(bestDirectCPU, cpu() - c2)
        }
        struct Out: Encodable {
            var file: String; var bytes: Int; var hits: Int; var anomalies: Int
            var plainReadGBps: Double; var decodeGBps: Double; var decodeHitsPerSecond: Double
            /// The same per second of this thread's CPU time (GB/s per core).
            var plainReadGBpsCPU: Double; var decodeGBpsCPU: Double
            var patternTile: Bool; var loadAverage: Double
            /// Without the pattern tile (every hit straight into the accumulators), per core.
            var decodeDirectGBpsCPU: Double
        }
        var load = [0.0, 0, 0]
        _ = getloadavg(&load, 3)
        try printJSON(Out(file: path, bytes: bytes, hits: summary?.hits ?? 0, anomalies: summary?.anomalies.total ?? 0,
                          plainReadGBps: Double(bytes) / bestRead / 1e9, decodeGBps: Double(bytes) / bestDecode / 1e9,
                          decodeHitsPerSecond: Double(summary?.hits ?? 0) / bestDecode,
                          plainReadGBpsCPU: Double(bytes) / bestReadCPU / 1e9, decodeGBpsCPU: Double(bytes) / bestDecodeCPU / 1e9,
                          patternTile: tile, loadAverage: load[0], decodeDirectGBpsCPU: Double(bytes) / bestDirectCPU / 1e9))
    }
}
