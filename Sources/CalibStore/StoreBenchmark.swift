import CalibCore
import CalibIO
import Foundation

/// `calibctl bench store`: fills a store with many validity entries and measures lookups, puts and reads, with the
/// same read done by h5py in the same run for comparison. Timings are wall-clock medians (monotonic clock).
public enum StoreBenchmark {
    public struct Settings: Sendable {
        public var directory: String
        public var detectors = 100
        public var types = 10
        public var entries = 100_000
        public var lookups = 20_000
        public var cliCalls = 20
        public var largeMB = 128
        /// The calibctl binary for per-call timing (nil: skip).
        public var executable: String?
        /// A python3 with h5py (nil: skip the comparison).
        public var python: String?
        /// Entries of the one-tag scale test (0: skip it).
        public var singleTagEntries = 1_000_000
        public init(directory: String) { self.directory = directory }
    }

    public struct Result: Sendable, Codable {
        public var entries: Int
        public var detectors: Int
        public var types: Int
        public var fillSeconds: Double
        public var lookupMedianMicroseconds: Double
        public var lookupP90Microseconds: Double
        /// First pass over random (detector, type, run): includes loading each tag's entries from SQLite once.
        public var lookupsPerSecond: Double
        /// Second pass: every tag already in memory.
        public var warmLookupsPerSecond: Double
        /// Median lookup through a global tag mapping all (detector, type) pairs.
        public var globalTagLookupMedianMicroseconds: Double
        public var cliCallMedianMilliseconds: Double?
        public var cliCallsPerSecond: Double?
        public var put1MBMilliseconds: Double
        public var putLargeMilliseconds: Double
        public var largeMB: Int
        public var readLargeVerifiedMBps: Double
        public var readLargeUnverifiedMBps: Double
        public var readLargeUnverifiedSeconds: Double
        public var typedCopyMilliseconds: Double
        public var h5pyReadSeconds: Double?
        public var h5pyReadMBps: Double?
        /// h5py time / calibctl (unverified) time: above 1 means calibctl reads faster.
        public var speedupVersusH5py: Double?
        /// CPU seconds (user + system) of one unverified read, calibctl and h5py: robust on a loaded machine.
        public var readLargeUnverifiedCPUSeconds: Double
        public var h5pyReadCPUSeconds: Double?
        public var payloadFile: String
        /// The one-tag scale test (nil when skipped).
        public var singleTag: SingleTag?
    }

    /// One tag of many entries (per-run constants over years): `entries` single-run entries, the last 1% of them
    /// 10-run ranges inserted over the others (overlaps); a second tag of as many entries within runs 0-9999
    /// (heavily overlapping) for the LCLS export.
    public struct SingleTag: Sendable, Codable {
        public var entries: Int
        public var fillSeconds: Double
        /// Lookups of a fresh connection answered by indexed SQL (the first ``ConstantsStore/indexAfterLookups``).
        public var sqlLookupMedianMicroseconds: Double
        /// The lookup that loads the tag's ranges into memory.
        public var indexLoadSeconds: Double
        /// Lookups after that (binary search), random runs.
        public var lookupMedianMicroseconds: Double
        public var lookupP90Microseconds: Double
        /// `calibctl get` processes on this store and on a one-entry store (median wall time), and their ratio.
        public var cliCallMedianMilliseconds: Double?
        public var tinyStoreCLICallMedianMilliseconds: Double?
        public var cliRatio: Double?
        /// The resolved timeline `calibctl store tag show` prints, in process.
        public var timelineSeconds: Double
        public var timelineSegments: Int
        /// `lint` over every run of the tag, in process.
        public var lintSeconds: Double
        public var lintFindings: Int
        /// LCLS calib-tree export of the second tag (in process), and the files it wrote.
        public var lclsExportSeconds: Double
        public var lclsFiles: Int
    }

    static func clock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    /// CPU time of the whole process (user + system), which a loaded machine does not inflate the way it does
    /// wall time.
    static func cpuClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    static func median(_ v: [Double]) -> Double { let s = v.sorted(); return s.isEmpty ? .nan : s[s.count / 2] }
    static func percentile(_ v: [Double], _ p: Double) -> Double { let s = v.sorted(); return s.isEmpty ? .nan : s[Swift.min(s.count - 1, Int(Double(s.count) * p))] }

    /// Runs everything; `progress` receives one line per phase.
    public static func run(_ cfg: Settings, progress: (String) -> Void = { _ in }) throws -> Result {
        try? FileManager.default.removeItem(atPath: cfg.directory)
        let store = try ConstantsStore(directory: cfg.directory, create: true)
        var rng = SplitMix64(seed: 7)
        let t0 = clock()
        let schema = TypeSchema(datasets: [try .init(parsing: "values:float32:any")])
        for t in 0..<cfg.types { try store.addType("bench_t\(t)", schema: schema) }
        let perPair = Swift.max(1, cfg.entries / (cfg.detectors * cfg.types))
        for d in 0..<cfg.detectors {
            let det = String(format: "bdet%03d", d)
            try store.addDetector(DetectorSpec(name: det, kind: "bench", hardwareIndex: Int64(d)))
        }
        // One real put per (detector, type) (payload file + fsync + commit), then bulk entries that share payloads.
        var shas: [String] = []
        for d in 0..<cfg.detectors {
            for t in 0..<cfg.types {
                let values = (0..<64).map { _ in Float(rng.nextGaussian()) }
                let p = try Payload(arrays: [PayloadArray(name: "values", values: values)])
                let e = try store.put(detector: String(format: "bdet%03d", d), type: "bench_t\(t)", runs: try RunRange(first: 0, last: 99), payload: p)
                shas.append(e.sha256)
            }
        }
        progress(String(format: "filled %d payloads in %.1f s", shas.count, clock() - t0))
        try store.write {
            let now = try store.transactionTime()
            let prov = try store.insertProvenance(links: ProvenanceLinks(comment: "bench fill"), at: now)
            let tags = try store.db.query("SELECT id FROM tags ORDER BY id").compactMap { $0.int("id") }
            for (i, tagID) in tags.enumerated() {
                for k in 1..<perPair {
                    try store.db.run("INSERT INTO iovs(tag_id, first_run, last_run, sha256, inserted_at_us, provenance_id) VALUES(?,?,?,?,?,?)",
                                     tagID, Int64(k * 100), Int64(k * 100 + 99), shas[(i + k) % shas.count], now + Int64(k), prov)
                }
            }
            try store.db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES('clock_us', ?)", String(now + Int64(perPair)))
        }
        let fill = clock() - t0
        let total = Int(try store.db.first("SELECT COUNT(*) AS n FROM iovs")?.int("n") ?? 0)
        progress(String(format: "%d validity entries in %.1f s", total, fill))

        // In-process lookups.
        let maxRun = perPair * 100
        var lat: [Double] = []
        lat.reserveCapacity(cfg.lookups)
        let names = (0..<cfg.detectors).map { String(format: "bdet%03d", $0) }, typeNames = (0..<cfg.types).map { "bench_t\($0)" }
        for _ in 0..<200 { _ = try store.lookup(detector: names[0], type: typeNames[0], run: 5) }
        let tl = clock()
        for _ in 0..<cfg.lookups {
            let d = names[Int(rng.next() % UInt64(names.count))], t = typeNames[Int(rng.next() % UInt64(typeNames.count))]
            let run = Int64(rng.next() % UInt64(maxRun))
            let a = clock()
            let e = try store.lookup(detector: d, type: t, run: run)
            lat.append(clock() - a)
            precondition(e.runs.contains(run))
        }
        let lookupTotal = clock() - tl
        // A second pass: every tag's entries are now in memory (a long-running reconstruction job's steady state).
        let tw = clock()
        for _ in 0..<cfg.lookups {
            let d = names[Int(rng.next() % UInt64(names.count))], t = typeNames[Int(rng.next() % UInt64(typeNames.count))]
            _ = try store.lookup(detector: d, type: t, run: Int64(rng.next() % UInt64(maxRun)))
        }
        let warmTotal = clock() - tw
        // Through a global tag naming every (detector, type): what a reconstruction job does.
        _ = try store.createGlobalTag(name: "BENCH_GT", entries: names.flatMap { d in typeNames.map { GlobalTag.Entry(detector: d, type: $0, tag: ConstantsStore.defaultTag) } })
        var gtLat: [Double] = []
        for _ in 0..<cfg.lookups {
            let d = names[Int(rng.next() % UInt64(names.count))], t = typeNames[Int(rng.next() % UInt64(typeNames.count))]
            let run = Int64(rng.next() % UInt64(maxRun))
            let a = clock()
            _ = try store.lookup(detector: d, type: t, run: run, globalTag: "BENCH_GT")
            gtLat.append(clock() - a)
        }
        progress(String(format: "in-process lookup median %.1f us", median(lat) * 1e6))

        // Per CLI call.
        var cliMedian: Double? = nil
        if let exe = cfg.executable {
            var times: [Double] = []
            for i in 0..<cfg.cliCalls {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: exe)
                p.arguments = ["get", names[i % names.count], typeNames[i % typeNames.count], "--run", String(i * 37 % maxRun), "--json", "--store", cfg.directory]
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
                let a = clock()
                try p.run()
                p.waitUntilExit()
                times.append(clock() - a)
                guard p.terminationStatus == 0 else { throw StoreError(.internalError, "bench: `calibctl get` exited \(p.terminationStatus)") }
            }
            cliMedian = median(times)
            progress(String(format: "CLI get median %.1f ms", median(times) * 1e3))
        }

        // Puts.
        try store.addType("bench_large", schema: schema)
        func payload(floats: Int, seed: UInt64) throws -> Payload {
            var r = SplitMix64(seed: seed)
            var v = [Float](repeating: 0, count: floats)
            for i in 0..<floats { v[i] = Float(r.next() >> 40) * 1e-3 }
            return try Payload(arrays: [PayloadArray(name: "values", values: v, shape: [floats / 1024, 1024])])
        }
        var put1: [Double] = []
        for k in 0..<5 {
            let p = try payload(floats: 262_144, seed: 100 + UInt64(k))
            let a = clock()
            try store.put(detector: names[0], type: "bench_large", runs: try RunRange(first: Int64(k * 10), last: Int64(k * 10 + 9)), payload: p)
            put1.append(clock() - a)
        }
        let large = try payload(floats: cfg.largeMB * 262_144, seed: 999)
        let a = clock()
        let le = try store.put(detector: names[0], type: "bench_large", runs: try RunRange(first: 1000, last: nil), payload: large)
        let putLarge = clock() - a
        progress(String(format: "put 1 MB %.1f ms, %d MB %.0f ms", median(put1) * 1e3, cfg.largeMB, putLarge * 1e3))

        // Reads of the large payload, alternating with h5py reading the same file (same page-cache state, same load).
        let bytes = Double(large.byteCount)
        let file = store.payloadPath(le.sha256)
        var rv: [Double] = [], ru: [Double] = [], ruCPU: [Double] = [], copy: [Double] = [], py: [(Double, Double)] = []
        let script = """
            import sys, time, h5py
            ts = []
            for i in range(int(sys.argv[2])):
                t = time.perf_counter(); c = time.process_time()
                with h5py.File(sys.argv[1], 'r') as f:
                    a = f['data/values'][()]
                ts.append('%r,%r' % (time.perf_counter() - t, time.process_time() - c))
                assert a.size == \(large.arrays[0].count)
            print(' '.join(ts))
            """
        func h5py(_ n: Int) throws -> [(Double, Double)] {
            guard let python = cfg.python else { return [] }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = ["-c", script, file, String(n)]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return String(decoding: data, as: UTF8.self).split(separator: " ").compactMap { item in
                let v = item.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Double($0) }
                return v.count == 2 ? (v[0], v[1]) : nil
            }
        }
        for _ in 0..<5 {
            var s = clock()
            let g = try store.get(detector: names[0], type: "bench_large", run: 2000, verify: true)
            rv.append(clock() - s)
            s = clock()
            let c0 = cpuClock()
            let u = try store.get(detector: names[0], type: "bench_large", run: 2000, verify: false)
            let sum = try u.payload["values"]!.withUnsafeValues(as: Float.self) { $0[0] + $0[$0.count - 1] }
            ruCPU.append(cpuClock() - c0)
            ru.append(clock() - s)
            s = clock()
            let typed: [Float] = try g.payload["values"]!.values()
            copy.append(clock() - s)
            precondition(typed.count == large.arrays[0].count && sum.isFinite)
            py += try h5py(2).dropFirst()
        }
        let single = cfg.singleTagEntries > 0 ? try runSingleTag(cfg, progress: progress) : nil
        let h5py: Double? = py.isEmpty ? nil : median(py.map(\.0))
        let h5pyCPU: Double? = py.isEmpty ? nil : median(py.map(\.1))
        let ours = median(ru)
        return Result(entries: total, detectors: cfg.detectors, types: cfg.types, fillSeconds: fill,
                      lookupMedianMicroseconds: median(lat) * 1e6, lookupP90Microseconds: percentile(lat, 0.9) * 1e6,
                      lookupsPerSecond: Double(cfg.lookups) / lookupTotal, warmLookupsPerSecond: Double(cfg.lookups) / warmTotal,
                      globalTagLookupMedianMicroseconds: median(gtLat) * 1e6,
                      cliCallMedianMilliseconds: cliMedian.map { $0 * 1e3 }, cliCallsPerSecond: cliMedian.map { 1 / $0 },
                      put1MBMilliseconds: median(put1) * 1e3, putLargeMilliseconds: putLarge * 1e3, largeMB: cfg.largeMB,
                      readLargeVerifiedMBps: bytes / median(rv) / 1e6, readLargeUnverifiedMBps: bytes / ours / 1e6,
                      readLargeUnverifiedSeconds: ours, typedCopyMilliseconds: median(copy) * 1e3,
                      h5pyReadSeconds: h5py, h5pyReadMBps: h5py.map { bytes / $0 / 1e6 },
                      speedupVersusH5py: h5py.map { $0 / ours }, readLargeUnverifiedCPUSeconds: median(ruCPU),
                      h5pyReadCPUSeconds: h5pyCPU, payloadFile: file, singleTag: single)
    }

    static func cliGet(_ exe: String, store: String, run: Int64) throws -> Double {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = ["get", "sdet", "pedestals", "--run", String(run), "--json", "--store", store]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        let a = clock()
        try p.run()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw StoreError(.internalError, "bench: `calibctl get` exited \(p.terminationStatus)") }
        return clock() - a
    }

    /// The one-tag scale test (``SingleTag``), in `<directory>-single` and `<directory>-tiny`.
    static func runSingleTag(_ cfg: Settings, progress: (String) -> Void) throws -> SingleTag {
        let dir = cfg.directory + "-single", tinyDir = cfg.directory + "-tiny", lclsDir = cfg.directory + "-lcls"
        for d in [dir, tinyDir, lclsDir] { try? FileManager.default.removeItem(atPath: d) }
        defer { for d in [dir, tinyDir, lclsDir] { try? FileManager.default.removeItem(atPath: d) } }
        let n = cfg.singleTagEntries
        var rng = SplitMix64(seed: 11)
        let t0 = clock()
        var shas: [String] = []
        do {
            let store = try ConstantsStore(directory: dir, create: true)
            try store.addDetector(DetectorSpec(name: "sdet", kind: "jungfrau", aliases: ["Bench:Jungfrau.0"], hardwareIndex: 1))
            for k in 0..<16 {
                let values = (0..<64).map { _ in Float(rng.nextGaussian()) }
                let p = try Payload(arrays: [PayloadArray(name: "pedestals", values: values)])
                shas.append(try store.put(detector: "sdet", type: "pedestals", runs: try RunRange(first: Int64(k), last: Int64(k)),
                                          payload: p, tag: "seed", createTag: true).sha256)
            }
            let tiny = try ConstantsStore(directory: tinyDir, create: true)
            try tiny.addDetector(DetectorSpec(name: "sdet", kind: "jungfrau", hardwareIndex: 1))
            try tiny.put(detector: "sdet", type: "pedestals", runs: try RunRange(first: 0, last: nil),
                         payload: try Payload(arrays: [PayloadArray(name: "pedestals", values: [Float](repeating: 1, count: 64))]))
            try store.write {
                let now = try store.transactionTime()
                let prov = try store.insertProvenance(links: ProvenanceLinks(comment: "bench single tag"), at: now)
                let d = try store.detectorID("sdet"), t = try store.typeID("pedestals")
                let main = try store.insertTag(name: ConstantsStore.defaultTag, detectorID: d, typeID: t, alias: nil, comment: "", at: now)
                let lcls = try store.insertTag(name: "lcls", detectorID: d, typeID: t, alias: nil, comment: "", at: now)
                let overlapFrom = n - n / 100
                let insert = "INSERT INTO iovs(tag_id, first_run, last_run, sha256, inserted_at_us, provenance_id) VALUES(?,?,?,?,?,?)"
                for k in 0..<n {
                    // Single runs; the last 1% are 10-run ranges over earlier runs, inserted later (they win there).
                    let first = k < overlapFrom ? Int64(k) : Int64((k - overlapFrom) * 100)
                    let last = k < overlapFrom ? first : first + 9
                    try store.db.run(insert, main, first, last, shas[k % shas.count], now + Int64(k), prov)
                    let lf = Int64((k &* 7919) % 10_000)
                    try store.db.run(insert, lcls, lf, Swift.min(lf + Int64(k % 5), 9999), shas[(k / 7) % shas.count], now + Int64(k), prov)
                }
                try store.db.run("INSERT OR REPLACE INTO store_meta(key, value) VALUES('clock_us', ?)", String(now + Int64(n) + 1))
            }
        }
        let fill = clock() - t0
        progress(String(format: "single tag: %d + %d entries in %.1f s", n, n, fill))
        let store = try ConstantsStore(directory: dir)
        let maxRun = UInt64(n - n / 100)
        var sql: [Double] = [], warm: [Double] = []
        var load = 0.0
        for i in 0..<(ConstantsStore.indexAfterLookups + 1 + cfg.lookups) {
            let run = Int64(rng.next() % maxRun)
            let a = clock()
            let e = try store.lookup(detector: "sdet", type: "pedestals", run: run)
            let dt = clock() - a
            precondition(e.runs.contains(run))
            if i < ConstantsStore.indexAfterLookups { sql.append(dt) } else if i == ConstantsStore.indexAfterLookups { load = dt } else { warm.append(dt) }
        }
        progress(String(format: "single tag: SQL lookup median %.1f us, index load %.2f s, then median %.1f us", median(sql) * 1e6, load, median(warm) * 1e6))
        var cli: Double? = nil, tinyCLI: Double? = nil
        if let exe = cfg.executable {
            var big: [Double] = [], small: [Double] = []
            for i in 0..<cfg.cliCalls {
                // Alternate, so both see the same machine load.
                big.append(try cliGet(exe, store: dir, run: Int64(i) * 9973 % Int64(maxRun)))
                small.append(try cliGet(exe, store: tinyDir, run: Int64(i)))
            }
            cli = median(big); tinyCLI = median(small)
            progress(String(format: "single tag: CLI get %.1f ms, tiny store %.1f ms", cli! * 1e3, tinyCLI! * 1e3))
        }
        var a = clock()
        let segs = try store.timeline(detector: "sdet", type: "pedestals")
        let timeline = clock() - a
        a = clock()
        let findings = try store.lint(required: try RunRange(first: 0, last: Int64(maxRun) - 1), detector: "sdet", type: "pedestals", tag: ConstantsStore.defaultTag)
        let lint = clock() - a
        a = clock()
        let report = try store.exportLCLS(detector: "sdet", to: lclsDir, tag: "lcls", types: ["pedestals"])
        let export = clock() - a
        progress(String(format: "single tag: timeline %.1f s (%d segments), lint %.1f s (%d findings), LCLS export %.1f s (%d files)",
                        timeline, segs.count, lint, findings.count, export, report.files.count))
        return SingleTag(entries: n, fillSeconds: fill, sqlLookupMedianMicroseconds: median(sql) * 1e6, indexLoadSeconds: load,
                         lookupMedianMicroseconds: median(warm) * 1e6, lookupP90Microseconds: percentile(warm, 0.9) * 1e6,
                         cliCallMedianMilliseconds: cli.map { $0 * 1e3 }, tinyStoreCLICallMedianMilliseconds: tinyCLI.map { $0 * 1e3 },
                         cliRatio: cli.flatMap { c in tinyCLI.map { c / $0 } }, timelineSeconds: timeline, timelineSegments: segs.count,
                         lintSeconds: lint, lintFindings: findings.count, lclsExportSeconds: export, lclsFiles: report.files.count)
    }
}
