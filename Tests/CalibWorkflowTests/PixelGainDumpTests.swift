@testable import CalibWorkflow
import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import CalibTestSupport
import Foundation
import Testing

/// The `pixel-gain-fit` job on CMS raw dumps, and the cabling as a versioned constant of the store.
@Suite struct PixelGainDumpTests {
    /// A simulated FED (2 modules of 16 x 32) written as a dump into `dir`; returns the dump path.
    static func simulate(_ dir: String, fed: Int = 1205, run: Int = 400_000, corrupt: Bool = false) throws -> String {
        var sim = GainScanSimulator()
        sim.rows = 16; sim.cols = 32; sim.seed = 4; sim.run = run
        return try sim.writeDump(directory: dir, fed: fed, modules: 2, corruptions: corrupt ? .init() : nil, threads: 1)
    }

    static func vcal(_ path: String) throws {
        try VCalTable(tag: "V1", payload: String(repeating: "0", count: 64), highToLow: CMSPixelTopology.vcalHighToLow,
                      defaultSlope: 47, defaultOffset: -60, detIDs: [], slopes: [47], offsets: [-60]).write(to: path)
    }

    static func spec(_ dir: String, dump: String, fed: Int = 1205, run: Int = 400_000, maxAnomalies: String = "0.001") -> JobSpec {
        JobSpec(kind: PixelGainFitJob.name, key: "fed=\(fed)",
                inputs: ["dump": dump, "calib": dir + "/calib.json", "cabling": dir + "/cabling_\(fed).json", "vcal": dir + "/vcal.json"],
                outputs: ["fit": dir + "/fit.h5"], parameters: ["run": String(run), "max_anomalies": maxAnomalies])
    }

    /// A clean dump fits; a corrupt one fails its shard with every count in the reason and as metrics, and a
    /// threshold above its anomaly fraction lets it through with the counts still reported.
    @Test func anomaliesAreShardMetricsAndTheThresholdFailsTheShard() throws {
        let tmp = TemporaryDirectory("dmp-job")
        let good = tmp.file("good"), bad = tmp.file("bad")
        let dumpGood = try Self.simulate(good), dumpBad = try Self.simulate(bad, corrupt: true)
        for d in [good, bad] { try Self.vcal(d + "/vcal.json") }

        let spec = Self.spec(good, dump: dumpGood)
        try spec.write(to: good + "/spec.json")
        let ok = try PixelGainFitJob().run(spec: spec, context: JobContext(specPath: good + "/spec.json", attempt: 1))
        #expect(ok.exitCode == 0, "\(ok.message ?? "")")
        #expect(ok.metrics["anomalies"] == 0 && ok.metrics["dump_hits"] ?? 0 > 0 && ok.metrics["fraction_good"] ?? 0 > 0.9)
        #expect(ok.metrics["pixels"] == Double(2 * 16 * 32))
        #expect(!FileManager.default.fileExists(atPath: good + "/.fit.h5.partial.scan.h5"), "the decoded scan is removed")

        let badSpec = Self.spec(bad, dump: dumpBad)
        try badSpec.write(to: bad + "/spec.json")
        let ctx = JobContext(specPath: bad + "/spec.json", attempt: 1)
        let refused = try PixelGainFitJob().run(spec: badSpec, context: ctx)
        #expect(refused.exitCode == 65)
        let msg = refused.message ?? ""
        #expect(msg.contains("FED 1205") && msg.contains("truncated blocks 1") && msg.contains("hits outside pattern")
                && msg.contains("error words 29:"), "\(msg)")
        #expect(refused.metrics["anomaly_truncated_blocks"] == 1)
        #expect(refused.metrics["anomaly_hits_outside_pattern"] ?? 0 > 0)
        #expect(refused.metrics["anomaly_error_words_code29"] ?? 0 > 0)
        #expect(refused.metrics["anomalies"] ?? 0 > 0 && refused.metrics["fraction_good"] == nil)

        let lenient = Self.spec(bad, dump: dumpBad, maxAnomalies: "1")
        let passed = try PixelGainFitJob().run(spec: lenient, context: ctx)
        #expect(passed.exitCode == 0, "\(passed.message ?? "")")
        #expect(passed.metrics["anomaly_truncated_blocks"] == 1 && passed.metrics["fraction_good"] != nil)

        // A dump of another run is refused, naming both runs.
        let other = Self.spec(good, dump: dumpGood, run: 400_001)
        let wrongRun = try PixelGainFitJob().run(spec: other, context: JobContext(specPath: good + "/spec.json", attempt: 1))
        #expect(wrongRun.exitCode == 65 && (wrongRun.message ?? "").contains("400000"), "\(wrongRun.message ?? "")")

        // The step metrics sum the anomaly counts over FEDs (not the fractions).
        var agg = FitAggregate()
        agg.add(passed.metrics); agg.add(passed.metrics)
        #expect(agg.metrics["anomaly_truncated_blocks"] == 2 && agg.metrics["anomaly_fraction"] == nil)
    }

    /// The cabling is a constant of the store: a second IOV changes the map for the runs from its first run on, and
    /// decoding the same dump with it moves the readings to the other module.
    @Test func aSecondCablingIOVChangesTheMappingForLaterRuns() throws {
        let tmp = TemporaryDirectory("dmp-cabling")
        let store = try ConstantsStore(directory: tmp.file("store"), create: true)
        try store.addDetector(DetectorSpec(name: "sipixel", kind: "sipixel"))
        #expect(try store.type("cabling").builtin)
        let dir = tmp.file("scan")
        let dump = try Self.simulate(dir)
        let v1 = try PixelGainCabling.readJSON([dir])
        #expect(v1.map(\.fed) == [1205])
        var v2 = v1[0]
        v2.version = "v2"
        for i in v2.entries.indices { v2.entries[i].module = 1 - v2.entries[i].module }  // the two modules' links swapped
        try store.put(detector: "sipixel", type: "cabling", runs: try RunRange(parsing: "1-"), payload: try PixelGainCabling.payload(v1),
                      tag: "Cabling_test", createTag: true)
        try store.put(detector: "sipixel", type: "cabling", runs: try RunRange(parsing: "400000-"),
                      payload: try PixelGainCabling.payload([v2]), tag: "Cabling_test")
        let before = try PixelGainCabling.fromStore(store, tag: "Cabling_test", run: 399_999)
        let after = try PixelGainCabling.fromStore(store, tag: "Cabling_test", run: 400_000)
        #expect(before.maps[1205] == v1[0])
        #expect(after.maps[1205] == v2)
        #expect(before.payload != after.payload)
        #expect(throws: PixelGainError.self) { try PixelGainCabling.fromStore(store, tag: "Cabling_test", run: 0) }

        let calib = try JSONDecoder().decode(CMSCalibConfiguration.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/calib.json")))
        func sums(_ m: CMSCablingMap) throws -> [Float] {
            let d = try CMSDumpDecoder(calib: calib, cabling: m)
            _ = try d.decode(path: dump, expectedFED: 1205)
            return d.sum
        }
        let a = try sums(try #require(before.maps[1205])), b = try sums(try #require(after.maps[1205]))
        let half = a.count / 2
        #expect(a != b)
        #expect(Array(a[..<half]) == Array(b[half...]) && Array(a[half...]) == Array(b[..<half]))
    }

    /// A payload that breaks the declared schema of `cabling` is refused by the store.
    @Test func theCablingSchemaIsEnforced() throws {
        let tmp = TemporaryDirectory("dmp-schema")
        let store = try ConstantsStore(directory: tmp.file("store"), create: true)
        try store.addDetector(DetectorSpec(name: "sipixel", kind: "sipixel"))
        let p = try Payload(arrays: [try PayloadArray(name: "fed", values: [Int32(1200)])])
        #expect(throws: (any Error).self) {
            try store.put(detector: "sipixel", type: "cabling", runs: .all, payload: p, tag: "X", createTag: true)
        }
    }
}
