import CalibTestSupport
import Foundation
import Testing

/// `calibctl tick` alone takes a scan from the inbox to a payload waiting for sign-off, changes nothing when run
/// again, and writes the payload at the first tick after the sign-off.
@Suite struct PixelGainTickTests {
    @Test func cronTakesAScanToThePayload() throws {
        let tmp = TemporaryDirectory("pixelgain-tick")
        let env = ["CALIBCTL_HOME": tmp.file("home"), "CALIBCTL_STORE": tmp.file("store")]
        func cli(_ a: [String], _ status: Int32 = 0) throws -> ProcessResult {
            let r = try calibctl(a, environment: env, currentDirectory: tmp.path)
            #expect(r.status == status, "\(a): \(r.stdout) \(r.stderr)")
            return r
        }
        _ = try cli(["simulate", "gain", "-o", "inbox/6100", "--feds", "1200,1296", "--modules-per-fed", "1", "--rows", "160",
                     "--cols", "32", "--run", "6100"])
        _ = try cli(["store", "init"]); _ = try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"])
        _ = try cli(["vcal", "put", "V1"])
        try FileManager.default.createDirectory(atPath: tmp.file("home"), withIntermediateDirectories: true)
        try Data(#"{"inbox": "\#(tmp.file("inbox"))", "vcalTag": "V1", "payloadYear": 2026, "payloadVersion": 7}"#.utf8)
            .write(to: URL(fileURLWithPath: tmp.file("home/pixelgain.json")))

        // Not READY yet: the transfer is still going on, nothing happens.
        #expect(!(try cli(["tick"]).stdout.contains("new scan")))
        #expect(FileManager.default.createFile(atPath: tmp.file("inbox/6100/READY"), contents: Data()))
        #expect(try cli(["tick"]).stdout.contains("pixelgain-6100: new scan"))
        var last = ""
        for _ in 0..<60 {
            last = try cli(["tick"]).stdout
            if last.contains("validation awaiting-validation") { break }
            Thread.sleep(forTimeInterval: 0.5)
        }
        #expect(last.contains("sign off: calibctl step approve pixelgain-6100 validation"), "\(last)")
        // The validation step run by tick printed the report's PDF too (Chromium installed).
        if which("chromium") != nil || which("chromium-browser") != nil {
            #expect(FileManager.default.fileExists(atPath: tmp.file("home/campaigns/pixelgain-6100/validation/i1/summary.pdf")))
        }
        // Idempotent: the next tick changes nothing.
        let log1 = try cli(["step", "log", "pixelgain-6100", "--json"]).stdout
        _ = try cli(["tick"])
        #expect(try cli(["step", "log", "pixelgain-6100", "--json"]).stdout == log1)
        let noPayload = try cli(["get", "sipixel", "gain_offline", "--run", "6100"], 65)
        #expect(!noPayload.stderr.isEmpty)

        _ = try cli(["step", "approve", "pixelgain-6100", "validation", "--note", "plots fine"])
        let after = try cli(["tick"])
        #expect(after.stdout.contains("pixelgain-6100: ready for a person: release"), "\(after.stdout) \(after.stderr)")
        // Effort without `step effort`: the fit's two FED jobs read one run (6100).
        let report = try JSONSerialization.jsonObject(with: Data(try cli(["report", "--campaign", "pixelgain-6100", "--json"]).stdout.utf8)) as? [String: Any]
        let fit = (report?["steps"] as? [[String: Any]])?.first { $0["id"] as? String == "gain-fit" }
        #expect(fit?["jobs"] as? Int == 2 && fit?["runs"] as? Int == 1, "\(String(describing: fit))")
        let got = try cli(["get", "sipixel", "gain_offline", "--run", "6200", "--tag", "SiPixelGainCalibration_2026_v7_offline", "--json"])
        #expect(got.stdout.contains("SiPixelGainCalibration_2026_v7_offline") && got.stdout.contains("written by calibctl tick"))
    }
}
