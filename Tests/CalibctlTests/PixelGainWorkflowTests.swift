import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// The pixel gain workflow end to end with the built binary: simulate -> VCal tag -> create -> submit (one FED fails
/// because its input is not there yet) -> status -> resubmit -> merge -> summary -> payload refused until sign-off
/// -> payload -> get, decoded within one 8-bit bin of the fit. Runs on every scheduler the machine has.
struct PixelGainWorkflowScenario {
    let scheduler: String
    let root: String
    let environment: [String: String]
    /// Runs every calibctl command through this program and arguments (the binary and its arguments follow),
    /// e.g. a shell that sets the umask first; empty: the binary directly.
    var launcher: [String] = []

    func cli(_ args: [String], expect status: Int32? = 0, _ comment: String = "") throws -> ProcessResult {
        let r = launcher.isEmpty
            ? try calibctl(args, environment: environment, currentDirectory: root)
            : try runProcess(launcher[0], Array(launcher.dropFirst()) + [TestPaths.calibctl] + args,
                             environment: environment, currentDirectory: root)
        if let status {
            #expect(r.status == status, "calibctl \(args.joined(separator: " ")) exited \(r.status) \(comment)\nstdout: \(r.stdout)\nstderr: \(r.stderr)")
        }
        return r
    }

    func json(_ args: [String], expect status: Int32 = 0) throws -> [String: Any] {
        let r = try cli(args + ["--json"], expect: status)
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    /// Polls `status --json` until every FED job has finished (bounded).
    func waitFinished(_ run: Int, expect: Int32, timeout: Double = 240) throws -> [String: Any] {
        let end = Date().addingTimeInterval(timeout)
        while true {
            let r = try cli(["status", String(run), "--json"], expect: nil)
            let obj = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            if obj["finished"] as? Bool == true {
                #expect(r.status == expect, "status exit \(r.status), expected \(expect): \(r.stdout) \(r.stderr)")
                return obj
            }
            if Date() > end {
                Issue.record("run \(run) on \(scheduler) did not finish in \(timeout) s: \(r.stdout) \(r.stderr)")
                return obj
            }
            Thread.sleep(forTimeInterval: 0.5)
        }
    }

    func run() throws {
        let run = 7000
        let scans = root + "/scans"
        _ = try cli(["simulate", "gain", "-o", scans, "--feds", "1200,1201,1296", "--modules-per-fed", "1", "--rows", "160",
                     "--cols", "32", "--run", String(run), "--seed", "11"])
        _ = try cli(["store", "init"])
        _ = try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"])
        // No VCal tag yet: create refuses and names the tag and the fix.
        let noVCal = try cli(["create", String(run), "-t", "VCal_test", "-i", scans, "--scheduler", scheduler], expect: 65)
        #expect(noVCal.stderr.contains("VCal_test") && noVCal.stderr.contains("fix:"))
        _ = try cli(["vcal", "put", "VCal_test", "--runs", "1-"])
        _ = try cli(["create", String(run), "-t", "VCal_test", "-i", scans, "--scheduler", scheduler, "--time-limit", "300"])
        // A second create refuses: outputs are never deleted.
        let again = try cli(["create", String(run), "-t", "VCal_test", "-i", scans], expect: 64)
        #expect(again.stderr.contains("--force"))

        // FED 1201's scan is "still being transferred": its job fails.
        let held = scans + "/fed_1201.h5", parked = root + "/fed_1201.h5.parked"
        try FileManager.default.moveItem(atPath: held, toPath: parked)
        _ = try cli(["submit", String(run)])
        let first = try waitFinished(run, expect: 1)
        let feds = (first["feds"] as? [[String: Any]]) ?? []
        let failed = feds.filter { $0["state"] as? String == "failed" }
        #expect(failed.count == 1 && failed.first?["fed"] as? Int == 1201, "\(first)")
        #expect(failed.first?["failureClass"] as? String == "user-error")
        #expect(feds.filter { $0["state"] as? String == "succeeded" }.count == 2)
        let early = try cli(["merge", String(run)], expect: 75)
        #expect(early.stderr.contains("1201"))

        // A FED the run does not have is a usage error naming the run's FEDs, not "nothing to resubmit".
        let typo = try cli(["resubmit", String(run), "--fed", "1210"], expect: 64)
        #expect(typo.stderr.contains("no FED 1210") && typo.stderr.contains("did you mean 1201?")
                && typo.stderr.contains("1200, 1201, 1296"), "\(typo.stderr)")
        try FileManager.default.moveItem(atPath: parked, toPath: held)
        let re = try cli(["resubmit", String(run)])
        #expect(re.stdout.contains("1201") && !re.stdout.contains("1200"))
        let second = try waitFinished(run, expect: 0)
        #expect((second["feds"] as? [[String: Any]])?.allSatisfy { $0["state"] as? String == "succeeded" } == true, "\(second)")
        let nothing = try cli(["resubmit", String(run)])
        #expect(nothing.stdout.contains("nothing to resubmit"))

        let merged = try json(["merge", String(run)])
        #expect(merged["verified"] as? Bool == true && merged["pixels"] as? Int == 3 * 160 * 32)
        let summary = try json(["summary", String(run)])
        #expect(summary["validationState"] as? String == "awaiting-validation")
        let report = summary["report"] as? String ?? ""
        let html = (try? String(contentsOfFile: report, encoding: .utf8)) ?? ""
        #expect(html.contains("<svg") && html.contains("Per FED") && html.contains("1201"))

        // No sign-off yet: the payload is refused with exit 65 (the step's state forbids it) and the approve command as the fix.
        let refused = try cli(["payload", String(run), "2026", "3"], expect: 65)
        #expect(refused.stderr.contains("step approve pixelgain-\(run) validation"))
        _ = try cli(["step", "approve", "pixelgain-\(run)", "validation", "--note", "reviewed in test"])
        let payload = try json(["payload", String(run), "2026", "3"])
        #expect(payload["offlineTag"] as? String == "SiPixelGainCalibration_2026_v3_offline")

        // Read back through `get` and decode: within one 8-bit bin of the merged fit.
        let out = root + "/offline.h5"
        _ = try cli(["get", "sipixel", "gain_offline", "--run", String(run + 10), "--tag",
                     "SiPixelGainCalibration_2026_v3_offline", "-o", out])
        try checkDecodedWithinOneBin(payload: out, merged: merged["output"] as? String ?? "")
    }

    func checkDecodedWithinOneBin(payload: String, merged: String) throws {
        let p = try HDF5File.open(payload)
        let blobDS = try p.dataset("/data/offline")
        let blob = try blobDS.read(as: UInt8.self)
        let m = try HDF5File.open(merged)
        let gain = try m.read("/gain", as: Float.self), ped = try m.read("/pedestal", as: Float.self)
        let status = try m.read("/status", as: UInt8.self)
        let rows = 160, cols = 32, ppm = rows * cols
        let enc = GainPayloadEncoder()
        let pedBin = (enc.pedestalMax - enc.pedestalMin) / 253, gainBin = (enc.gainMax - enc.gainMin) / 253
        #expect(blobDS.shape == [3, blob.count / 3])
        var checkedPixels = 0, checkedColumns = 0
        for module in 0..<3 {
            let size = blob.count / 3
            let dec = enc.decodeOffline(Array(blob[(module * size)..<((module + 1) * size)]), rows: rows, cols: cols)
            // The reference rule: bad pixels take the module mean of good pixels, then gains average over 80 rows.
            let range = (module * ppm)..<((module + 1) * ppm)
            let good = range.map { enc.isGood(gain: gain[$0], pedestal: ped[$0], status: GainPixelStatus(rawValue: status[$0]) ?? .notANumber) }
            let goodGains = zip(range, good).filter(\.1).map { Double(gain[$0.0]) }
            let moduleMean = goodGains.reduce(0, +) / Double(max(goodGains.count, 1))
            for c in 0..<cols {
                for g in 0..<(rows / 80) {
                    var sum = 0.0
                    for r in (g * 80)..<((g + 1) * 80) {
                        let i = module * ppm + r * cols + c
                        guard good[r * cols + c] else { sum += moduleMean; continue }
                        #expect(abs(dec.pedestal[r * cols + c] - ped[i]) <= pedBin, "pixel \(i)")
                        checkedPixels += 1
                        sum += Double(gain[i])
                    }
                    let decoded = Double(dec.gain[c * (rows / 80) + g])
                    #expect(abs(decoded - sum / 80) <= Double(gainBin) + 1e-3, "module \(module) column \(c) group \(g)")
                    checkedColumns += 1
                }
            }
        }
        #expect(checkedPixels > 3 * ppm * 9 / 10 && checkedColumns == 3 * cols * 2)
    }
}

@Suite(.serialized) struct PixelGainWorkflowTests {
    @Test func localScheduler() throws {
        let tmp = TemporaryDirectory("pixelgain-local")
        try PixelGainWorkflowScenario(scheduler: "local", root: tmp.path,
                                      environment: ["CALIBCTL_HOME": tmp.path + "/home", "CALIBCTL_STORE": tmp.path + "/store"]).run()
    }

    /// The same workflow with the FED jobs on the real Slurm that scripts/test.sh starts (CALIBCTL_TEST_SLURM).
    @Test func slurmScheduler() throws {
        let env = ProcessInfo.processInfo.environment
        if env["CALIBCTL_SKIP_SCHEDULERS"] == "1" { return }  // explicitly asked for; scripts/test.sh never sets it
        guard let prefix = env["CALIBCTL_TEST_SLURM"] else {
            Issue.record("CALIBCTL_TEST_SLURM is not set: run the tests with scripts/test.sh, which starts Slurm")
            return
        }
        let tmp = TemporaryDirectory("pixelgain-slurm")
        try PixelGainWorkflowScenario(scheduler: "slurm", root: tmp.path, environment: [
            "CALIBCTL_HOME": tmp.path + "/home", "CALIBCTL_STORE": tmp.path + "/store",
            "SLURM_CONF": prefix + "/etc/slurm.conf", "CALIBCTL_POLL_INTERVAL": "0",
            "CALIBCTL_WORKER": try WorkerBinary.path() + " job run",
        ]).run()
    }

    /// The same workflow with the FED jobs on the real HTCondor pool that scripts/test.sh starts
    /// (CALIBCTL_TEST_CONDOR=PREFIX). The pool's jobs run inside its chroot as the unprivileged pool user: the worker
    /// is calibctl's worker-node binary deployed to PREFIX/shared (`WorkerBinary`), and the workflow lives under
    /// PREFIX/shared, which the chroot sees at the same path.
    @Test func htcondorScheduler() throws {
        let env = ProcessInfo.processInfo.environment
        if env["CALIBCTL_SKIP_SCHEDULERS"] == "1" { return }  // explicitly asked for; scripts/test.sh never sets it
        guard let prefix = env["CALIBCTL_TEST_CONDOR"] else {
            Issue.record("CALIBCTL_TEST_CONDOR is not set: run the tests with scripts/test.sh, which starts HTCondor")
            return
        }
        let worker = try WorkerBinary.deploy(to: prefix + "/shared/calibctl-worker")
        // The CLI runs here as root, the FED jobs as the pool's user: the workflow directory is world-writable and the
        // CLI runs with umask 000, so everything it creates below (job, shard, scheduler and output directories) is
        // writable by the jobs too. Nothing here is shared with other users, and it keeps the CLI and the job engine
        // exactly as in production (no chown or chmod of calibctl's files behind its back).
        let tmp = TemporaryDirectory("pixelgain-condor", in: prefix + "/shared")
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: tmp.path)
        try PixelGainWorkflowScenario(scheduler: "htcondor", root: tmp.path, environment: [
            "CALIBCTL_HOME": tmp.path + "/home", "CALIBCTL_STORE": tmp.path + "/store",
            "CALIBCTL_HTCONDOR_BIN": prefix + "/bin", "CALIBCTL_POLL_INTERVAL": "0", "CALIBCTL_WORKER": worker + " job run",
        ], launcher: ["/bin/sh", "-c", "umask 000 && exec \"$0\" \"$@\""]).run()
    }

    /// The summary renders in a real browser: headless Chromium parses it (its DOM holds the SVG charts) and
    /// takes a screenshot.
    @Test func summaryRendersInChromium() throws {
        guard let chromium = which("chromium") ?? which("chromium-browser") else {
            Issue.record("chromium is not installed: scripts/test.sh installs it (bootstrap --with-browser)")
            return
        }
        let tmp = TemporaryDirectory("pixelgain-html")
        let env = ["CALIBCTL_HOME": tmp.path + "/home", "CALIBCTL_STORE": tmp.path + "/store"]
        func cli(_ a: [String]) throws {
            let r = try calibctl(a, environment: env, currentDirectory: tmp.path)
            #expect(r.status == 0, "\(a) \(r.stderr)")
        }
        try cli(["simulate", "gain", "-o", "scans", "--feds", "1200", "--modules-per-fed", "2", "--rows", "160", "--cols", "64"])
        try cli(["store", "init"]); try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"])
        try cli(["vcal", "put", "V1"]); try cli(["create", "400000", "-t", "V1", "-i", "scans"]); try cli(["submit", "400000"])
        let st = try calibctl(["status", "400000", "--watch", "--interval", "0.3"], environment: env)
        #expect(st.status == 0, "\(st.stdout) \(st.stderr)")
        try cli(["merge", "400000"]); try cli(["summary", "400000", "-o", "report.html"])
        let url = "file://" + tmp.file("report.html")
        let dom = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", url])
        #expect(dom.status == 0)
        #expect(dom.stdout.components(separatedBy: "<svg").count - 1 >= 4, "the browser's DOM lacks the charts")
        #expect(dom.stdout.contains("Pixel gain calibration, run 400000"))
        let png = tmp.file("shot.png")
        let shot = try runProcess(chromium, ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                             "--window-size=1400,2400", "--screenshot=\(png)", url])
        #expect(shot.status == 0)
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(size > 20_000, "screenshot of \(size) bytes: blank page?")
    }

    @Test func shippedChecklistsMatchTheirFixtures() throws {
        // The compiled-in copies are what `create` and `campaign create --checklist NAME` use; they must not drift
        // from the fixtures (scripts/embed-checklists.sh rewrites them).
        let source = try String(contentsOfFile: TestPaths.packageRoot + "/Sources/CalibWorkflow/ShippedChecklists.swift", encoding: .utf8)
        let dir = TestPaths.fixtures + "/checklists"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }
        #expect(files.count >= 4)
        for f in files {
            let r = try calibctl(["checklist", "validate", dir + "/" + f])
            #expect(r.status == 0, "\(f): \(r.stderr)")
            let fixture = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            #expect(source.contains(fixture), "\(f) differs from its embedded copy: run scripts/embed-checklists.sh")
        }
    }
}
