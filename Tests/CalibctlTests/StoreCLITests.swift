import CalibTestSupport
import Foundation
import Testing

/// Runs `calibctl` against a store in a temporary directory.
struct StoreCLI {
    let tmp = TemporaryDirectory("store-cli")
    var store: String { tmp.file("store") }

    /// - Parameter initialize: create the store (`store init`); only `store init` creates one.
    init(initialize: Bool = true) {
        if initialize { _ = try? calibctl(["store", "init", "--store", tmp.file("store")]) }
    }

    @discardableResult
    func run(_ args: [String]) throws -> ProcessResult {
        try calibctl(args + ["--store", store])
    }

    func json(_ args: [String]) throws -> Any {
        let r = try run(args + ["--json"])
        #expect(r.status == 0, "\(args): \(r.stderr)")
        return try JSONSerialization.jsonObject(with: r.stdoutData)
    }

    func python(_ script: String, _ args: [String] = []) throws -> ProcessResult {
        try runProcess(TestPaths.python, ["-c", script] + args)
    }
}

@Suite struct StoreCLITests {
    @Test func endToEndThroughEveryVerb() throws {
        let c = StoreCLI()
        #expect(try c.run(["store", "init"]).status == 0)
        #expect(try c.run(["store", "detector", "add", "jf4m", "--kind", "jungfrau", "--hw-index", "170",
                           "--alias", "CxiDs1.0:Jungfrau.0", "--tag", "site=cxi"]).status == 0)
        let py = try c.python("""
            import numpy as np, h5py, sys
            d = sys.argv[1]
            np.save(d + '/a.npy', np.arange(12, dtype=np.float32).reshape(3, 4))
            np.save(d + '/b.npy', (np.arange(12, dtype=np.float32) * 2).reshape(3, 4))
            np.save(d + '/s.npy', np.array([[0, 1], [0, 0]], dtype=np.uint16))
            with h5py.File(d + '/g.h5', 'w') as f:
                f['offline'] = np.full((2, 4), 3, np.uint8); f['detid'] = np.arange(2, dtype=np.int64); f.attrs['unit'] = 'VCAL'
            """, [c.tmp.path])
        #expect(py.status == 0, "\(py.stderr)")
        let put1 = try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "100-", "--comment", "dark 98", "--input-runs", "98", "--campaign", "c7"])
        #expect(put1.status == 0, "\(put1.stderr)")
        #expect(try c.run(["store", "put", "jf4m", "pedestals", "pedestals=" + c.tmp.file("b.npy"), "--runs", "150-200"]).status == 0)
        #expect(try c.run(["store", "put", "CxiDs1.0:Jungfrau.0", "pixel_status", c.tmp.file("s.npy"), "--runs", "all"]).status == 0)
        #expect(try c.run(["store", "put", "jf4m", "gain_offline", c.tmp.file("g.h5"), "--runs=-500"]).status == 0)

        // get: summary JSON, and the payload as npy, txt, h5.
        let g = try c.json(["get", "jf4m", "pedestals", "--run", "160"]) as? [String: Any]
        let entry = g?["entry"] as? [String: Any]
        #expect((entry?["runs"] as? [String: Any])?["text"] as? String == "150-200" && g?["verified"] as? Bool == true)
        let g120 = try c.json(["get", "jf4m", "pedestals", "--run", "120"]) as? [String: Any]
        let prov = ((g120?["entry"] as? [String: Any])?["provenance"] as? [String: Any])
        #expect(((prov?["links"] as? [String: Any])?["inputRuns"] as? String) == "98" && (prov?["commandLine"] as? String)?.contains("put jf4m") == true)
        #expect(try c.run(["get", "jf4m", "pedestals", "--run", "160", "-o", c.tmp.file("out.npy")]).status == 0)
        #expect(try c.run(["get", "jf4m", "gain_offline", "--run", "7", "-o", c.tmp.file("out.h5")]).status == 0)
        let txt = try c.run(["store", "get", "jf4m", "pedestals", "--run", "300", "-o", "-"])
        #expect(txt.stdout.contains("# DTYPE float32") && txt.stdout.contains("# DIM:1 4") && txt.stdout.contains("8.0 9.0 10.0 11.0"))
        let check = try c.python("""
            import numpy as np, h5py, sys
            d = sys.argv[1]
            a = np.load(d + '/out.npy'); assert a.dtype == np.float32 and a.shape == (3, 4) and a[2, 3] == 22, a
            with h5py.File(d + '/out.h5', 'r') as f:
                assert f.attrs['format'] == b'calibctl-payload', dict(f.attrs)
                assert (f['data/offline'][()] == 3).all() and f['data'].attrs['unit'] == b'VCAL'
            import glob
            for p in glob.glob(d + '/store/payloads/*/*.h5'):
                with h5py.File(p, 'r') as f:
                    assert len(f.attrs['sha256']) == 64 and list(f['data'])
            print('ok')
            """, [c.tmp.path])
        #expect(check.stdout.contains("ok"), "\(check.stderr)")

        // explain, list, history, diff.
        let x = try c.json(["store", "explain", "jf4m", "pedestals", "--run", "170"]) as? [String: Any]
        let cands = x?["candidates"] as? [[String: Any]]
        #expect(cands?.count == 2 && (cands?[0]["verdict"] as? String)?.hasPrefix("winner") == true && (cands?[1]["verdict"] as? String)?.hasPrefix("superseded") == true)
        for what in ["detectors", "types", "tags", "iovs", "global-tags", "rules"] {
            #expect(try c.run(["store", "list", what, "--json"]).status == 0, "\(what)")
        }
        #expect((try c.json(["store", "list", "iovs", "--detector", "jf4m", "--type", "pedestals"]) as? [Any])?.count == 2)
        #expect((try c.json(["store", "history", "jf4m", "pedestals"]) as? [Any])?.count == 2)
        let diff = try c.json(["store", "diff", "jf4m/pedestals@120", "jf4m/pedestals@160"]) as? [String: Any]
        let ds = (diff?["datasets"] as? [[String: Any]])?.first
        #expect(ds?["changed"] as? Int == 11 && ds?["maxAbsChange"] as? Double == 11)

        // Tags and global tags.
        #expect(try c.run(["store", "tag", "create", "jf4m", "pedestals", "v1", "--alias", "best"]).status == 0)
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "0-99", "--tag", "best"]).status == 0)
        #expect(try c.run(["store", "tag", "state", "jf4m", "pedestals", "v1", "validated"]).status == 0)
        #expect(try c.run(["store", "tag", "state", "jf4m", "pedestals", "v1", "published"]).status == 0)
        let inside = try c.run(["put", "jf4m", "pedestals", c.tmp.file("b.npy"), "--runs", "50-", "--tag", "v1"])
        #expect(inside.status == 65 && inside.stderr.contains("published"))
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("b.npy"), "--runs", "100-", "--tag", "v1"]).status == 0)
        #expect(try c.run(["store", "tag", "clone", "jf4m", "pedestals", "v1", "v2"]).status == 0)
        let show = try c.json(["store", "tag", "show", "jf4m", "pedestals", "v2"]) as? [String: Any]
        #expect((show?["timeline"] as? [Any])?.count == 2)
        #expect(try c.run(["store", "global-tag", "create", "GT1", "--entry", "jf4m/pedestals=v1", "--entry", "jf4m/pixel_status=default"]).status == 0)
        #expect(try c.run(["store", "global-tag", "create", "GT2", "--base", "GT1", "--entry", "jf4m/pedestals=default"]).status == 0)
        #expect(try c.run(["store", "global-tag", "create", "GT1", "--entry", "jf4m/pedestals=v1"]).status == 65)
        #expect((try c.json(["store", "global-tag", "diff", "GT1", "GT2"]) as? [Any])?.count == 1)
        #expect((try c.json(["store", "global-tag", "diff-at-run", "GT1", "GT2", "--run", "50"]) as? [Any])?.count == 1)
        #expect((try c.json(["store", "global-tag", "show", "GT1"]) as? [String: Any])?["entries"] != nil)
        #expect(try c.run(["get", "jf4m", "pedestals", "--run", "60", "--global-tag", "GT1"]).status == 0)
        #expect(try c.run(["get", "jf4m", "pedestals", "--run", "60", "--global-tag", "GT2"]).status == 65)
        // `get` warns about a retired tag (named by its alias too), and only then; the answer is unchanged.
        #expect(!(try c.run(["get", "jf4m", "pedestals", "--run", "60", "--tag", "best"]).stderr.contains("retired")))
        #expect(try c.run(["store", "tag", "state", "jf4m", "pedestals", "v1", "retired"]).status == 0)
        let retired = try c.run(["get", "jf4m", "pedestals", "--run", "60", "--tag", "best"])
        #expect(retired.status == 0 && retired.stderr.contains("tag v1 of jf4m/pedestals is retired"), "\(retired.stderr)")
        #expect(!(try c.run(["get", "jf4m", "pedestals", "--run", "60"]).stderr.contains("retired")))

        // lint: gap -> exit 1; covered -> 0.
        let lint = try c.run(["store", "lint", "jf4m", "pedestals", "--runs", "50-300"])
        #expect(lint.status == 1 && lint.stdout.contains("gap") && lint.stdout.contains("50-99"))
        #expect(try c.run(["store", "lint", "jf4m", "pedestals", "--runs", "100-300", "--tag", "default"]).status == 0)

        // verify, export / import into an empty store, identical lookups.
        #expect(try c.run(["store", "verify"]).status == 0)
        #expect(try c.run(["store", "export", "--bundle", c.tmp.file("bundles")]).status == 0)
        let bundle = c.tmp.file("bundles/jf4m-170.h5")
        let readable = try c.python("""
            import h5py, sys
            with h5py.File(sys.argv[1], 'r') as f:
                assert f.attrs['format'] == b'calibctl-bundle'
                n = len(f['iovs']); shas = set(f['payloads'])
                for k in f['iovs']:
                    assert f['iovs'][k].attrs['sha256'].decode() in shas
                print(n)
            """, [bundle])
        #expect(readable.status == 0 && Int(readable.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == 8, "\(readable.stderr)")
        let other = c.tmp.file("store2")
        #expect(try calibctl(["store", "init", other]).status == 0)
        let imp = try calibctl(["store", "import", bundle, "--store", other])
        #expect(imp.status == 0, "\(imp.stderr)")
        for tag in ["default", "v1", "v2"] {
            for run in [0, 50, 99, 100, 149, 150, 200, 201, 499, 500, 10_000] {
                let a = try c.run(["get", "jf4m", "pedestals", "--run", String(run), "--tag", tag, "--json"])
                let b = try calibctl(["get", "jf4m", "pedestals", "--run", String(run), "--tag", tag, "--json", "--store", other])
                #expect(a.status == b.status, "\(tag) \(run)")
                if a.status == 0 {
                    let ea = (try JSONSerialization.jsonObject(with: a.stdoutData) as? [String: Any])?["entry"] as? [String: Any]
                    let eb = (try JSONSerialization.jsonObject(with: b.stdoutData) as? [String: Any])?["entry"] as? [String: Any]
                    #expect(ea?["sha256"] as? String == eb?["sha256"] as? String && ea?["insertedAt"] as? String == eb?["insertedAt"] as? String)
                }
            }
        }
        // LCLS tree export, both directions.
        let lcls = try c.run(["store", "export", "jf4m", "--lcls", c.tmp.file("calib"), "--tag", "default"])
        #expect(lcls.status == 0 && lcls.stdout.contains("CxiDs1.0:Jungfrau.0/pedestals/100-149.data") && lcls.stdout.contains("pixel_status/0-end.data"), "\(lcls.stdout)\(lcls.stderr)")
        let third = c.tmp.file("store3")
        #expect(try calibctl(["store", "init", third]).status == 0)
        #expect(try calibctl(["store", "detector", "add", "jfB", "--kind", "jungfrau", "--alias", "CxiDs1.0:Jungfrau.0", "--store", third]).status == 0)
        #expect(try calibctl(["store", "import", "--lcls", c.tmp.file("calib"), "--store", third]).status == 0)
        let s3 = try calibctl(["get", "jfB", "pixel_status", "--run", "77", "-o", "-", "--store", third])
        #expect(s3.stdout.contains("# DTYPE uint16") && s3.stdout.contains("0 1\n0 0"))
    }

    @Test func badInputExitCodesAndMessages() throws {
        let c = StoreCLI(initialize: false)
        let missing = try c.run(["get", "jf4m", "pedestals", "--run", "1"])
        #expect(missing.status == 69 && missing.stderr.contains("no constants store"))
        #expect(try c.run(["store", "init"]).status == 0)
        #expect(try c.run(["store", "detector", "add", "jf4m", "--kind", "jungfrau"]).status == 0)
        _ = try c.python("import numpy as np, sys; np.save(sys.argv[1], np.ones((2, 2), np.float32)); np.save(sys.argv[2], np.ones((2, 2), np.float64).byteswap().view('>f8'))",
                         [c.tmp.file("a.npy"), c.tmp.file("be.npy")])
        let cases: [([String], Int32, String)] = [
            (["put", "jf4n", "pedestals", c.tmp.file("a.npy"), "--runs", "1-2"], 65, "did you mean 'jf4m'"),
            (["put", "jf4m", "pedestal", c.tmp.file("a.npy"), "--runs", "1-2"], 65, "store type add pedestal"),
            (["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "9-2"], 64, "reversed"),
            (["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs=-5-9"], 64, "run range"),
            (["put", "jf4m", "pixel_status", c.tmp.file("a.npy"), "--runs", "1-2"], 65, "dataset 'pixel_status'"),
            (["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "1-2", "--tag", "../../etc"], 64, "path separator"),
            (["put", "jf4m", "pedestals", c.tmp.file("be.npy"), "--runs", "1-2"], 65, "big-endian"),
            (["put", "jf4m", "pedestals", c.tmp.file("nope.npy"), "--runs", "1-2"], 65, "does not exist"),
            (["store", "detector", "add", "a/b", "--kind", "x"], 64, "path separator"),
            (["store", "import", c.tmp.file("a.npy")], 65, "cannot be opened"),
            (["get", "jf4m", "pedestals", "--run", "1"], 65, "no tag default"),
        ]
        for (args, status, text) in cases {
            let r = try c.run(args)
            #expect(r.status == status && r.stderr.contains(text), "\(args): \(r.status) \(r.stderr)")
        }
        #expect(try c.run(["store", "verify"]).status == 0)
        #expect((try c.json(["store", "list", "iovs"]) as? [Any])?.isEmpty == true)
        // A payload changed behind the store's back: get refuses (65) and names it; verify exits 1; --no-verify reads.
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "all"]).status == 0)
        let sha = ((try c.json(["store", "list", "iovs"]) as? [[String: Any]])?.first?["sha256"] as? String) ?? ""
        let path = c.store + "/payloads/\(sha.prefix(2))/\(sha).h5"
        let tamper = try c.python("import h5py, sys\nwith h5py.File(sys.argv[1], 'r+') as f: f['data/pedestals'][0, 0] = 5", [path])
        #expect(tamper.status == 0, "\(tamper.stderr)")
        let damaged = try c.run(["get", "jf4m", "pedestals", "--run", "3"])
        #expect(damaged.status == 65 && damaged.stderr.contains(String(sha.prefix(12))) && damaged.stderr.contains("damaged"))
        #expect(try c.run(["get", "jf4m", "pedestals", "--run", "3", "--no-verify"]).status == 0)
        let v = try c.run(["store", "verify"])
        #expect(v.status == 1 && v.stdout.contains("damaged \(sha.prefix(12))"))
    }

    @Test func benchRunsAndReportsEveryFigure() throws {
        let tmp = TemporaryDirectory("bench")
        let r = try calibctl(["bench", "store", "--dir", tmp.file("s"), "--entries", "400", "--detectors", "4", "--types", "2",
                              "--lookups", "200", "--large-mb", "4", "--cli-calls", "2", "--single-tag-entries", "2000", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let o = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any]
        #expect(o?["entries"] as? Int == 400)
        for k in ["lookupMedianMicroseconds", "globalTagLookupMedianMicroseconds", "cliCallMedianMilliseconds", "put1MBMilliseconds",
                  "putLargeMilliseconds", "readLargeVerifiedMBps", "readLargeUnverifiedMBps", "h5pyReadSeconds", "speedupVersusH5py"] {
            #expect(((o?[k] as? Double) ?? 0) > 0, "\(k)")
        }
        let single = o?["singleTag"] as? [String: Any]
        #expect(single?["entries"] as? Int == 2000)
        for k in ["sqlLookupMedianMicroseconds", "lookupMedianMicroseconds", "cliRatio", "timelineSeconds", "lintSeconds", "lclsExportSeconds"] {
            #expect(((single?[k] as? Double) ?? 0) > 0, "singleTag.\(k)")
        }
        #expect((single?["lclsFiles"] as? Int ?? 0) > 0 && (single?["lintFindings"] as? Int ?? 0) > 0)
        #expect(!FileManager.default.fileExists(atPath: tmp.file("s")))
        #expect(!FileManager.default.fileExists(atPath: tmp.file("s") + "-single"))
    }

    @Test func helpTeaches() throws {
        for args in [["store", "--help"], ["store", "put", "--help"], ["get", "--help"], ["store", "type", "add", "--help"], ["bench", "store", "--help"]] {
            let h = try calibctl(args)
            #expect(h.status == 0 && h.stdout.contains("Example"), "\(args)")
        }
    }
}
