import CalibTestSupport
import Foundation
import Testing

/// A simulated scan written as CMS raw dumps goes through create/submit/merge/payload, and through `tick`, to the
/// same payloads as its HDF5 form; corrupt dumps fail their FEDs with the counts as the reason.
@Suite(.serialized) struct PixelGainDumpCLITests {
    struct WS {
        let root: String
        let env: [String: String]
        init(_ root: String, _ name: String) {
            self.root = root
            env = ["CALIBCTL_HOME": root + "/\(name)/home", "CALIBCTL_STORE": root + "/\(name)/store"]
        }
        @discardableResult
        func cli(_ a: [String], _ status: Int32? = 0) throws -> ProcessResult {
            let r = try calibctl(a, environment: env, currentDirectory: root)
            if let status { #expect(r.status == status, "\(a.joined(separator: " ")): \(r.stdout) \(r.stderr)") }
            return r
        }
        func json(_ a: [String]) throws -> [String: Any] {
            let r = try cli(a + ["--json"])
            return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        func setUp(cabling: String?) throws {
            try cli(["store", "init"]); try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"])
            try cli(["vcal", "put", "V1", "--runs", "1-"])
            if let cabling { try cli(["cabling", "put", "C1", "--runs", "1-", cabling]) }
        }
        /// create (extra arguments) -> submit -> wait -> merge -> summary -> approve -> payload: the payloads' SHA-256s.
        func verbs(_ run: Int, _ create: [String]) throws -> [String] {
            try cli(["create", String(run), "-t", "V1"] + create)
            try cli(["submit", String(run)])
            try cli(["status", String(run), "--watch", "--interval", "0.3"])
            #expect(try json(["merge", String(run)])["verified"] as? Bool == true)
            try cli(["summary", String(run)])
            try cli(["step", "approve", "pixelgain-\(run)", "validation", "--note", "test"])
            let p = try json(["payload", String(run), "2026", "3"])
            return [p["offlineSHA256"] as? String ?? "", p["hltSHA256"] as? String ?? ""]
        }
    }

    @Test func dumpsGiveTheSamePayloadAsTheirHDF5Form() throws {
        let tmp = TemporaryDirectory("pixelgain-dmp")
        let run = 7000, scans = tmp.file("scans")
        let boot = WS(tmp.path, "sim")
        try boot.cli(["simulate", "gain", "-o", scans, "--feds", "1200,1296", "--modules-per-fed", "1", "--rows", "160",
                      "--cols", "32", "--run", String(run), "--seed", "11", "--dmp"])

        let h5 = WS(tmp.path, "h5")
        try h5.setUp(cabling: nil)
        let fromH5 = try h5.verbs(run, ["-i", scans, "--input-format", "h5"])

        let dmp = WS(tmp.path, "dmp")
        try dmp.setUp(cabling: scans)
        // Raw dumps need a cabling tag; the refusal names the option.
        let noTag = try dmp.cli(["create", String(run), "-t", "V1", "-i", scans], 64)
        #expect(noTag.stderr.contains("--cabling-tag"))
        let fromDmp = try dmp.verbs(run, ["-i", scans, "--cabling-tag", "C1"])
        #expect(fromDmp == fromH5 && fromH5.allSatisfy { $0.count == 64 }, "\(fromDmp) vs \(fromH5)")

        // The inbox with the dumps alone (no HDF5 file): tick takes it to the same payloads.
        let inbox = tmp.file("inbox/\(run)")
        try FileManager.default.createDirectory(atPath: inbox, withIntermediateDirectories: true)
        for name in try FileManager.default.contentsOfDirectory(atPath: scans) where name.hasSuffix(".dmp") || name == "calib.json" {
            try FileManager.default.copyItem(atPath: scans + "/" + name, toPath: inbox + "/" + name)
        }
        #expect(FileManager.default.createFile(atPath: inbox + "/READY", contents: Data()))
        let tick = WS(tmp.path, "tick")
        try tick.setUp(cabling: scans)
        try FileManager.default.createDirectory(atPath: tick.env["CALIBCTL_HOME"]!, withIntermediateDirectories: true)
        try Data(#"{"inbox": "\#(tmp.file("inbox"))", "vcalTag": "V1", "cablingTag": "C1", "payloadYear": 2026, "payloadVersion": 3}"#.utf8)
            .write(to: URL(fileURLWithPath: tick.env["CALIBCTL_HOME"]! + "/pixelgain.json"))
        #expect(try tick.cli(["tick"]).stdout.contains("pixelgain-\(run): new scan"))
        var last = ""
        for _ in 0..<80 {
            last = try tick.cli(["tick"]).stdout
            if last.contains("validation awaiting-validation") { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(last.contains("sign off: calibctl step approve pixelgain-\(run) validation"), "\(last)")
        try tick.cli(["step", "approve", "pixelgain-\(run)", "validation", "--note", "test"])
        try tick.cli(["tick"])
        let p = try tick.json(["payload", String(run), "2026", "3"])
        #expect([p["offlineSHA256"] as? String ?? "", p["hltSHA256"] as? String ?? ""] == fromH5)
    }

    @Test func corruptDumpsFailPerFEDWithTheirCounts() throws {
        let tmp = TemporaryDirectory("pixelgain-dmp-bad")
        let run = 7001, scans = tmp.file("bad")
        let ws = WS(tmp.path, "ws")
        try ws.cli(["simulate", "gain", "-o", scans, "--feds", "1200,1296", "--modules-per-fed", "1", "--rows", "16",
                    "--cols", "32", "--run", String(run), "--seed", "3", "--dmp", "--corrupt"])
        try ws.setUp(cabling: scans)
        try ws.cli(["create", String(run), "-t", "V1", "-i", scans, "--cabling-tag", "C1"])
        try ws.cli(["submit", String(run)])
        try ws.cli(["status", String(run), "--watch", "--interval", "0.3"], 1)
        let st = try ws.cli(["status", String(run), "--json"], 1)
        let feds = ((try? JSONSerialization.jsonObject(with: Data(st.stdout.utf8)) as? [String: Any])?["feds"] as? [[String: Any]]) ?? []
        #expect(feds.count == 2, "\(st.stdout)")
        for f in feds {
            let fed = f["fed"] as? Int ?? 0, reason = f["reason"] as? String ?? ""
            #expect(f["state"] as? String == "failed" && f["failureClass"] as? String == "user-error", "\(f)")
            #expect(reason.contains("FED \(fed)") && reason.contains("truncated blocks 1") && reason.contains("hits outside pattern"),
                    "\(reason)")
        }
    }
}
