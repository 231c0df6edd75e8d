import CalibIO
import CalibStore
import CalibTestSupport
import Foundation
import Testing

/// The pixel gain defects of issue 11, each tried as a user would (every test failed before its fix).
@Suite(.serialized) struct PixelGainDefectTests {
    struct Workspace {
        let tmp: TemporaryDirectory
        var env: [String: String] { ["CALIBCTL_HOME": tmp.file("home"), "CALIBCTL_STORE": tmp.file("store")] }

        init(_ name: String) throws {
            tmp = TemporaryDirectory(name)
            try cli(["store", "init"])
            try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"])
            try cli(["vcal", "put", "V1"])
        }

        @discardableResult
        func cli(_ a: [String], _ status: Int32? = 0) throws -> ProcessResult {
            let r = try calibctl(a, environment: env, currentDirectory: tmp.path)
            if let status { #expect(r.status == status, "\(a.joined(separator: " ")): exit \(r.status)\n\(r.stdout)\n\(r.stderr)") }
            return r
        }

        func simulate(_ dir: String, run: Int, seed: Int = 3) throws {
            try cli(["simulate", "gain", "-o", dir, "--feds", "1200", "--modules-per-fed", "1", "--rows", "160",
                     "--cols", "32", "--run", String(run), "--seed", String(seed)])
        }

        /// An inbox of runs with the READY marker and the automation settings.
        func inbox(runs: [Int], settings: String) throws {
            for r in runs {
                try simulate(tmp.file("inbox/\(r)"), run: r, seed: r)
                #expect(FileManager.default.createFile(atPath: tmp.file("inbox/\(r)/READY"), contents: Data()))
            }
            try FileManager.default.createDirectory(atPath: tmp.file("home"), withIntermediateDirectories: true)
            try Data(settings.utf8).write(to: URL(fileURLWithPath: tmp.file("home/pixelgain.json")))
        }

        /// Ticks until every campaign waits for the validation sign-off (or a bound); every tick must exit 0.
        func tickUntilValidation(_ campaigns: [String]) throws -> String {
            var out = ""
            for _ in 0..<80 {
                let r = try cli(["tick"], nil)
                #expect(r.status == 0, "tick exited \(r.status): \(r.stdout) \(r.stderr)")
                if r.status != 0 { return r.stdout }
                out = r.stdout
                if campaigns.allSatisfy({ c in out.contains("\(c): validation awaiting-validation") }) { return out }
                Thread.sleep(forTimeInterval: 0.3)
            }
            Issue.record("campaigns \(campaigns) did not reach the validation sign-off: \(out)")
            return out
        }

        func offlineEntries(tag: String) throws -> [IOVEntry] {
            try ConstantsStore(directory: tmp.file("store")).entries(detector: "sipixel", type: "gain_offline", tag: tag)
        }
    }

    /// (a) A previous offline payload of another module geometry (here 2 modules of 100 bytes) used to crash `summary`
    /// with SIGILL (exit 132) in `previousOffline`, and then every tick on the same run. Now the comparison is
    /// skipped with a note, and the other campaign moves on in the same ticks.
    @Test func previousPayloadOfAnotherGeometry() throws {
        let w = try Workspace("pixelgain-geometry")
        try w.inbox(runs: [6100, 6200], settings: #"{"inbox": "\#(w.tmp.file("inbox"))", "vcalTag": "V1"}"#)
        let bad = w.tmp.file("old.h5")
        do {
            let f = try HDF5File.create(bad, overwrite: true)
            try f.write("offline", [UInt8](repeating: 7, count: 200), shape: [2, 100])
            try f.write("detid", [Int64(1), 2])
            try f.close()
        }
        try w.cli(["put", "sipixel", "gain_offline", bad, "--runs", "6150-", "--tag", "Old_v1", "--create-tag"])

        let out = try w.tickUntilValidation(["pixelgain-6100", "pixelgain-6200"])
        #expect(out.contains("pixelgain-6100: validation awaiting-validation"), "\(out)")
        let s = try w.cli(["summary", "6200", "--json"])
        let obj = (try? JSONSerialization.jsonObject(with: Data(s.stdout.utf8)) as? [String: Any]) ?? [:]
        let v = obj["validation"] as? [String: Any] ?? [:]
        #expect((v["comparisonNote"] as? String ?? "").contains("Old_v1"), "\(s.stdout)")
        let html = (try? String(contentsOfFile: obj["report"] as? String ?? "", encoding: .utf8)) ?? ""
        #expect(html.contains("comparison skipped"))
    }

    /// (b) `merge` on a run whose payloads are published used to reopen the campaign silently, and the next tick and
    /// sign-off wrote a second entry into the same tags. Now it is refused, naming the step and the explicit way.
    @Test func mergeOfAPublishedRunIsRefused() throws {
        let w = try Workspace("pixelgain-published")
        try w.simulate(w.tmp.file("scans"), run: 6300)
        try w.cli(["create", "6300", "-t", "V1", "-i", w.tmp.file("scans")])
        try w.cli(["submit", "6300"])
        try w.cli(["status", "6300", "--watch", "--interval", "0.2"])
        try w.cli(["merge", "6300"])
        try w.cli(["summary", "6300"])
        try w.cli(["step", "approve", "pixelgain-6300", "validation", "--note", "fine"])
        try w.cli(["payload", "6300", "2026", "1"])
        let log = try w.cli(["step", "log", "pixelgain-6300", "--json"]).stdout

        let again = try w.cli(["merge", "6300"], 65)
        #expect(again.stderr.contains("merge") && again.stderr.contains("payload-offline")
                && again.stderr.contains("calibctl step reopen pixelgain-6300 merge"), "\(again.stderr)")
        #expect(try w.cli(["step", "log", "pixelgain-6300", "--json"]).stdout == log, "the campaign changed")
        try w.cli(["tick"])
        try w.cli(["step", "approve", "pixelgain-6300", "validation", "--note", "again"], nil)
        try w.cli(["tick"])
        #expect(try w.offlineEntries(tag: "SiPixelGainCalibration_2026_v1_offline").count == 1)
    }

    /// (c) The unattended settings took one fixed payload version: every run from the inbox wrote into the same
    /// `_vN` tags. Now each run gets the next free version of the year (from `payloadVersion` on).
    @Test func eachInboxRunGetsItsOwnVersion() throws {
        let w = try Workspace("pixelgain-versions")
        try w.inbox(runs: [6400, 6500], settings: #"{"inbox": "\#(w.tmp.file("inbox"))", "vcalTag": "V1", "payloadYear": 2026, "payloadVersion": 4}"#)
        _ = try w.tickUntilValidation(["pixelgain-6400", "pixelgain-6500"])
        try w.cli(["step", "approve", "pixelgain-6400", "validation", "--note", "fine"])
        try w.cli(["step", "approve", "pixelgain-6500", "validation", "--note", "fine"])
        try w.cli(["tick"])
        try w.cli(["tick"])
        let v4 = try w.offlineEntries(tag: "SiPixelGainCalibration_2026_v4_offline")
        let v5 = try w.offlineEntries(tag: "SiPixelGainCalibration_2026_v5_offline")
        #expect(v4.count == 1 && v5.count == 1, "v4: \(v4.map(\.runs)), v5: \(v5.map(\.runs))")
        #expect(Set((v4 + v5).map(\.runs.description)) == ["6400-", "6500-"])
        #expect(try w.cli(["get", "sipixel", "gain_hlt", "--run", "6500", "--tag", "SiPixelGainCalibration_2026_v5_hlt"]).status == 0)
    }
}
