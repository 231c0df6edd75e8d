import CalibServe
import CalibTestSupport
import Foundation
import Testing

/// A background process (calibctl serve, nginx, a fake server) stopped with SIGTERM when done.
final class BackgroundProcess: @unchecked Sendable {
    let process = Process()
    let log: String

    init(_ executable: String, _ arguments: [String], log: String) throws {
        self.log = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let h = FileHandle(forWritingAtPath: log)
        process.standardOutput = h
        process.standardError = h
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// Waits until `file` exists and is not empty (at most `seconds`); returns its trimmed text.
    func waitFor(file: String, seconds: Double = 60) -> String? {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let t = try? String(contentsOfFile: file, encoding: .utf8), !t.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                return t.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            if !process.isRunning { return nil }
            usleep(50_000)
        }
        return nil
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// SIGTERM, then SIGKILL after 10 s (a child may inherit a blocked SIGTERM from the test runner).
    func stop() {
        if process.isRunning { process.terminate() }
        let end = Date().addingTimeInterval(10)
        while process.isRunning && Date() < end { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A store with two entries under global tag GT1 and one after it; a snapshot of GT1; a server on it.
struct ServeFixture {
    let c = StoreCLI()
    var url: ServerURL!
    var server: BackgroundProcess!
    var snapshot: String { c.tmp.file("snap") }

    init(serve: Bool = true) throws {
        #expect(try c.run(["store", "detector", "add", "jf4m", "--kind", "jungfrau", "--alias", "CxiDs1.0:Jungfrau.0"]).status == 0)
        let gen = try c.python("""
            import numpy as np, sys
            for i, n in enumerate(sys.argv[1:]): np.save(n, (np.arange(24, dtype=np.float32) * (i + 1)).reshape(2, 3, 4))
            """, [c.tmp.file("a.npy"), c.tmp.file("b.npy"), c.tmp.file("c.npy")])
        #expect(gen.status == 0, "\(gen.stderr)")
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "0-"]).status == 0)
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("b.npy"), "--runs", "10-20"]).status == 0)
        #expect(try c.run(["store", "global-tag", "create", "GT1", "--entry", "jf4m/pedestals=default"]).status == 0)
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("c.npy"), "--runs", "12-14"]).status == 0)
        let snap = try c.run(["store", "snapshot", "--global-tag", "GT1", "-o", c.tmp.file("snap")])
        #expect(snap.status == 0, "\(snap.stderr)")
        if serve {
            (server, url) = try ServeFixture.serve(c.store, tmp: c.tmp)
        }
    }

    static func serve(_ store: String, tmp: TemporaryDirectory, via prefix: [String] = [], binary: String = TestPaths.calibctl) throws -> (BackgroundProcess, ServerURL) {
        let portFile = tmp.file("port-\(UUID().uuidString.prefix(6))")
        let exe = prefix.first ?? binary
        let args = Array(prefix.dropFirst()) + (prefix.isEmpty ? [] : [binary])
            + ["serve", "--store", store, "--listen", "127.0.0.1:0", "--port-file", portFile]
        let p = try BackgroundProcess(exe, args, log: tmp.file("serve-\(UUID().uuidString.prefix(6)).log"))
        guard let port = p.waitFor(file: portFile) else {
            p.stop()
            throw TestFailure("calibctl serve did not start: \(p.output)")
        }
        return (p, try ServerURL(parsing: "http://127.0.0.1:\(port)"))
    }
}

struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

func http(_ url: ServerURL, _ path: String, _ headers: [(String, String)] = []) async throws -> HTTPGet.Result {
    try await HTTPGet.get(url, path: path, headers: headers, connectTimeout: 5, readTimeout: 60)
}

func jsonObject(_ bytes: [UInt8]) -> [String: Any] { (try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any] ?? [:] }

@Suite(.serialized) struct ServeCLITests {
    /// Lookups, explain, payloads (ETag, 304, Range), errors and cache rules of `calibctl serve`, each compared with
    /// the command line on the same store.
    @Test func serveAnswersAsTheCommandLineDoes() async throws {
        let f = try ServeFixture()
        defer { f.server.stop() }
        let c = f.c
        for run in [0, 5, 10, 12, 15, 20, 21, 99] {
            for (q, args, final) in [("&global-tag=GT1", ["--global-tag", "GT1"], true), ("", [], false),
                                     ("&as-of=2000-01-01", ["--as-of", "2000-01-01"], true)] {
                let r = try await http(f.url, "/v1/lookup?detector=jf4m&type=pedestals&run=\(run)" + q)
                let local = try c.run(["get", "jf4m", "pedestals", "--run", "\(run)", "--json"] + args)
                if local.status == 0 {
                    #expect(r.status == 200)
                    let a = jsonObject(r.body), l = jsonObject(Array(local.stdoutData))
                    #expect((a["entry"] as? NSDictionary) == (l["entry"] as? NSDictionary), "run \(run) \(q)")
                    #expect(r.header("Cache-Control") == (final ? "public, max-age=31536000, immutable" : "public, max-age=10"))
                    let etag = try #require(r.header("ETag"))
                    let again = try await http(f.url, "/v1/lookup?detector=jf4m&type=pedestals&run=\(run)" + q, [("If-None-Match", etag)])
                    #expect(again.status == 304 && again.body.isEmpty)
                } else {
                    // The same message and fix as the command line, the same exit status, never cached.
                    let e = (jsonObject(r.body)["error"] as? [String: Any]) ?? [:]
                    #expect(r.status == 404 && r.header("Cache-Control") == "no-store")
                    #expect(e["exitStatus"] as? Int == Int(local.status))
                    #expect(local.stderr.contains(e["message"] as? String ?? "?") && local.stderr.contains(e["fix"] as? String ?? "?"), "\(e) vs \(local.stderr)")
                }
            }
            let x = try await http(f.url, "/v1/explain?detector=CxiDs1.0:Jungfrau.0&type=pedestals&run=\(run)&global-tag=GT1")
            let lx = try c.run(["store", "explain", "CxiDs1.0:Jungfrau.0", "pedestals", "--run", "\(run)", "--global-tag", "GT1", "--json"])
            #expect(x.status == 200 && lx.status == 0)
            #expect((jsonObject(x.body)["winner"] as? NSDictionary) == (jsonObject(Array(lx.stdoutData))["winner"] as? NSDictionary))
        }
        // Errors: unknown detector (404, the CLI's message and fix), bad run (400), future as-of (400).
        let unknown = try await http(f.url, "/v1/lookup?detector=jf4x&type=pedestals&run=1")
        let local = try c.run(["get", "jf4x", "pedestals", "--run", "1"])
        let e = (jsonObject(unknown.body)["error"] as? [String: Any]) ?? [:]
        #expect(unknown.status == 404 && local.status == 65 && e["exitStatus"] as? Int == 65)
        #expect(local.stderr.contains(e["message"] as? String ?? "?") && local.stderr.contains(e["fix"] as? String ?? "?"))
        #expect(try await http(f.url, "/v1/lookup?detector=jf4m&type=pedestals&run=x").status == 400)
        #expect(try await http(f.url, "/v1/lookup?detector=jf4m&type=pedestals&run=1&as-of=2999-01-01").status == 400)
        #expect(try await http(f.url, "/v1/lookup?detector=jf4m&type=pedestals&run=1&global-tag=GT1&tag=default").status == 400)
        // Payloads: the file's bytes, strong ETag = hash, immutable, 304, ranges, 416, unknown hash 404.
        let a = jsonObject(try await http(f.url, "/v1/lookup?detector=jf4m&type=pedestals&run=15&global-tag=GT1").body)
        let sha = try #require((a["entry"] as? [String: Any])?["sha256"] as? String)
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(c.store)/payloads/\(sha.prefix(2))/\(sha).h5")))
        let p = try await http(f.url, "/payloads/\(sha)")
        #expect(p.status == 200 && p.body == file && p.header("ETag") == "\"\(sha)\"")
        #expect(p.header("Cache-Control") == "public, max-age=31536000, immutable" && p.header("Accept-Ranges") == "bytes")
        #expect(try await http(f.url, "/payloads/\(sha)", [("If-None-Match", "\"\(sha)\"")]).status == 304)
        let part = try await http(f.url, "/payloads/\(sha)", [("Range", "bytes=100-199")])
        #expect(part.status == 206 && part.body == Array(file[100...199]) && part.header("Content-Range") == "bytes 100-199/\(file.count)")
        let tail = try await http(f.url, "/payloads/\(sha)", [("Range", "bytes=-16")])
        #expect(tail.status == 206 && tail.body == Array(file.suffix(16)))
        let stale = try await http(f.url, "/payloads/\(sha)", [("Range", "bytes=0-9"), ("If-Range", "\"other\"")])
        #expect(stale.status == 200 && stale.body == file)
        #expect(try await http(f.url, "/payloads/\(sha)", [("Range", "bytes=\(file.count)-")]).status == 416)
        #expect(try await http(f.url, "/payloads/\(String(repeating: "0", count: 64))").status == 404)
        #expect(try await http(f.url, "/payloads/nothex").status == 400)
        // Run ranges, global tags, health and the index page.
        let tl = try await http(f.url, "/v1/timeline?detector=jf4m&type=pedestals&global-tag=GT1&runs=5-12")
        #expect(tl.status == 200 && ((try? JSONSerialization.jsonObject(with: Data(tl.body))) as? [Any])?.count == 2)
        let gt = try await http(f.url, "/v1/global-tags/GT1")
        #expect(gt.status == 200 && gt.header("Cache-Control") == "public, max-age=31536000, immutable")
        let h = try await http(f.url, "/health")
        #expect(h.status == 200 && jsonObject(h.body)["status"] as? String == "ok")
        let index = try await http(f.url, "/")
        #expect(index.status == 200 && String(decoding: index.body, as: UTF8.self).contains("GT1"))
    }

    /// `get --server`: the same answer as a local get; failover to the next URL, then to a local snapshot.
    @Test func getFromServersFailsOverToTheNextServerThenToTheSnapshot() throws {
        let f = try ServeFixture()
        defer { f.server.stop() }
        let c = f.c
        let url = f.url.description
        for run in [0, 11, 13, 25] {
            for args in [["--global-tag", "GT1"], [], ["--tag", "default"]] {
                let remote = try c.run(["get", "jf4m", "pedestals", "--run", "\(run)", "--server", url, "--json"] + args)
                let local = try c.run(["get", "jf4m", "pedestals", "--run", "\(run)", "--json"] + args)
                #expect(remote.status == local.status && remote.status == 0, "\(remote.stderr)")
                let r = jsonObject(Array(remote.stdoutData)), l = jsonObject(Array(local.stdoutData))
                #expect((r["entry"] as? NSDictionary) == (l["entry"] as? NSDictionary))
                #expect((r["datasets"] as? NSArray) == (l["datasets"] as? NSArray) && r["verified"] as? Bool == true)
                let ro = c.tmp.file("r\(run).npy"), lo = c.tmp.file("l\(run).npy")
                #expect(try c.run(["get", "jf4m", "pedestals", "--run", "\(run)", "--server", url, "-o", ro] + args).status == 0)
                #expect(try c.run(["get", "jf4m", "pedestals", "--run", "\(run)", "-o", lo] + args).status == 0)
                #expect(FileManager.default.contents(atPath: ro) == FileManager.default.contents(atPath: lo))
            }
        }
        // An error of the store is final: the same message and exit status as a local get.
        let bad = try c.run(["get", "jf4x", "pedestals", "--run", "1", "--server", url])
        let badLocal = try c.run(["get", "jf4x", "pedestals", "--run", "1"])
        #expect(bad.status == 65 && bad.stderr == badLocal.stderr, "\(bad.stderr) vs \(badLocal.stderr)")
        // A dead first server: the next one answers.
        let over = try calibctl(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "--server", "http://127.0.0.1:1,\(url)", "-o", c.tmp.file("o.npy")])
        #expect(over.status == 0 && over.stderr.contains("connection refused"), "\(over.stderr)")
        // Every server down: the snapshot given by --store answers (with a warning); without one, exit 69.
        f.server.stop()
        let fb = try calibctl(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "--server", url,
                               "--connect-timeout", "1", "--store", f.snapshot, "-o", c.tmp.file("fb.npy")])
        #expect(fb.status == 0 && fb.stderr.contains("answering from the local store"), "\(fb.stderr)")
        let lo = c.tmp.file("l15gt.npy")
        #expect(try c.run(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "-o", lo]).status == 0)
        #expect(FileManager.default.contents(atPath: c.tmp.file("fb.npy")) == FileManager.default.contents(atPath: lo))
        let none = try calibctl(["get", "jf4m", "pedestals", "--run", "15", "--server", url], environment: ["CALIBCTL_STORE": ""])
        #expect(none.status == 69 && none.stderr.contains("no constants server answered") && none.stderr.contains("--store"), "\(none.stderr)")
    }

    /// Retries with back-off on server errors (5xx) only, bounded by --retries, then the next server; a 4xx is final.
    @Test func retriesOnlyServerErrorsAndBoundsThem() throws {
        let f = try ServeFixture()
        defer { f.server.stop() }
        let c = f.c
        // A fake server that answers every request 503 (or 404) and counts them.
        let script = """
            import http.server, sys, json, signal
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            code = int(sys.argv[1]); count = sys.argv[2]
            class H(http.server.BaseHTTPRequestHandler):
                def do_GET(self):
                    with open(count, 'a') as f: f.write('x')
                    body = json.dumps({"error": {"message": "fake", "fix": None, "exitStatus": 75 if code >= 500 else 65, "kind": "x"}}).encode()
                    self.send_response(code); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
                def log_message(self, *a): pass
            s = http.server.HTTPServer(('127.0.0.1', 0), H)
            with open(sys.argv[3], 'w') as f: f.write(str(s.server_address[1]))
            s.serve_forever()
            """
        let count = c.tmp.file("count"), portFile = c.tmp.file("fakeport")
        _ = FileManager.default.createFile(atPath: count, contents: nil)
        let fake = try BackgroundProcess(TestPaths.python, ["-c", script, "503", count, portFile], log: c.tmp.file("fake.log"))
        defer { fake.stop() }
        let port = try #require(fake.waitFor(file: portFile))
        let r = try c.run(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "--json",
                           "--server", "http://127.0.0.1:\(port),\(f.url!)", "--retries", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let requests = try String(contentsOfFile: count, encoding: .utf8)
        #expect(requests.count == 3, "1 request + 2 retries")
        #expect(r.stderr.contains("retry 1 of 2") && r.stderr.contains("retry 2 of 2"), "\(r.stderr)")
        // A 4xx answer from the first server is final: the second is not asked.
        try Data().write(to: URL(fileURLWithPath: count))
        let bad = try c.run(["get", "jf4x", "pedestals", "--run", "1", "--server", "\(f.url!),http://127.0.0.1:\(port)"])
        let asked = try String(contentsOfFile: count, encoding: .utf8)
        #expect(bad.status == 65 && asked.isEmpty)
    }

    /// A snapshot on a read-only copy, read by another OS user: `get --store` and `serve --store` work.
    @Test(.enabled(if: geteuid() == 0 && which("setpriv") != nil && which("useradd") != nil))
    func aReadOnlySnapshotServesAnotherUser() async throws {
        let f = try ServeFixture(serve: false)
        let c = f.c
        let user = "calibctltest"
        guard let pw = try OSUser.ensure(user) else { Issue.record("could not create \(user)"); return }
        let bin = c.tmp.file("calibctl")
        try FileManager.default.copyItem(atPath: TestPaths.calibctl, toPath: bin)
        let copy = c.tmp.file("ro-snap")
        _ = try runProcess("/bin/cp", ["-a", f.snapshot, copy])
        _ = try runProcess("/bin/chmod", ["-R", "a-w,a+rX", copy])
        _ = try runProcess("/bin/chmod", ["a+rwx", c.tmp.path])
        _ = try runProcess("/bin/chmod", ["a+rx", bin])
        let setpriv = [which("setpriv")!, "--reuid=\(pw.uid)", "--regid=\(pw.gid)", "--clear-groups"]
        let lo = c.tmp.file("l.npy")
        #expect(try c.run(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "-o", lo]).status == 0)
        _ = try runProcess("/bin/chmod", ["a+r", lo])
        for run in [0, 11, 13, 25] {
            let got = try runProcess(setpriv[0], Array(setpriv.dropFirst()) + [bin, "get", "jf4m", "pedestals", "--run", "\(run)", "--global-tag", "GT1", "--store", copy, "--json"])
            let local = try c.run(["get", "jf4m", "pedestals", "--run", "\(run)", "--global-tag", "GT1", "--json"])
            #expect(got.status == 0, "\(got.stderr)")
            #expect((jsonObject(Array(got.stdoutData))["entry"] as? NSDictionary) == (jsonObject(Array(local.stdoutData))["entry"] as? NSDictionary))
        }
        let put = try runProcess(setpriv[0], Array(setpriv.dropFirst()) + [bin, "put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "50-", "--store", copy])
        #expect(put.status == 77 && put.stderr.contains("snapshot"), "\(put.stderr)")
        #expect(try runProcess(setpriv[0], Array(setpriv.dropFirst()) + [bin, "store", "verify", "--store", copy]).status == 0)
        // serve as that user, from the read-only copy.
        let (server, url) = try ServeFixture.serve(copy, tmp: c.tmp, via: setpriv, binary: bin)
        defer { server.stop() }
        let r = try await http(url, "/v1/lookup?detector=jf4m&type=pedestals&run=15&global-tag=GT1")
        #expect(r.status == 200, "\(server.output)")
        let h = jsonObject(try await http(url, "/health").body)
        #expect(h["snapshotOf"] as? String == "GT1" && h["readOnly"] as? Bool == true)
        #expect(!FileManager.default.fileExists(atPath: copy + "/index.db-wal") && !FileManager.default.fileExists(atPath: copy + "/index.db-shm"))
    }
}

/// Debian's nginx, when installed (scripts/bootstrap.sh --with-nginx; scripts/test.sh passes it).
let nginxBinary: String? = [which("nginx"), "/usr/sbin/nginx"].compactMap { $0 }.first { FileManager.default.isExecutableFile(atPath: $0) }

/// `calibctl serve` behind a real caching nginx on loopback (scripts/nginx-cache.sh): cache hits, 304s and the
/// same bytes as the store. No timing is asserted (the load figures are scripts/bench-serve.sh's).
@Suite(.serialized) struct ServeNginxTests {
    @Test(.enabled(if: nginxBinary != nil, "needs nginx: scripts/bootstrap.sh --with-nginx"))
    func cachingProxyServesHitsAnd304sWithIdenticalBytes() async throws {
        let f = try ServeFixture()
        defer { f.server.stop() }
        let c = f.c
        let prefix = c.tmp.file("nginx")
        let free = try runProcess(TestPaths.python, ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        let port = free.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let nginx = try BackgroundProcess(TestPaths.packageRoot + "/scripts/nginx-cache.sh", [prefix, port, String(f.url.port)],
                                          log: c.tmp.file("nginx.log"))
        defer {
            _ = try? runProcess(nginxBinary!, ["-p", prefix, "-c", prefix + "/nginx.conf", "-s", "stop"])
            nginx.stop()
        }
        let proxy = try ServerURL(parsing: "http://127.0.0.1:\(port)")
        // nginx is up when it answers /health (never cached).
        var up = false
        for _ in 0..<100 {
            if let h = try? await http(proxy, "/health"), h.status == 200 { up = true; break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        try #require(up, "nginx did not start: \(nginx.output) \((try? String(contentsOfFile: prefix + "/logs/error.log", encoding: .utf8)) ?? "")")
        // A global-tag lookup: MISS, then HIT with the same bytes as the service answers directly.
        let q = "/v1/lookup?detector=jf4m&type=pedestals&run=15&global-tag=GT1"
        let direct = try await http(f.url, q)
        let first = try await http(proxy, q), second = try await http(proxy, q)
        #expect(first.header("X-Cache-Status") == "MISS" && second.header("X-Cache-Status") == "HIT")
        #expect(first.body == direct.body && second.body == direct.body)
        let etag = try #require(direct.header("ETag"))
        let cond = try await http(proxy, q, [("If-None-Match", etag)])
        #expect(cond.status == 304 && cond.header("X-Cache-Status") == "HIT")
        // The payload: MISS, HIT, identical to the file; 304 and ranges answered from the cache.
        let sha = try #require((jsonObject(direct.body)["entry"] as? [String: Any])?["sha256"] as? String)
        let file = try [UInt8](Data(contentsOf: URL(fileURLWithPath: "\(c.store)/payloads/\(sha.prefix(2))/\(sha).h5")))
        let p1 = try await http(proxy, "/payloads/\(sha)"), p2 = try await http(proxy, "/payloads/\(sha)")
        #expect(p1.header("X-Cache-Status") == "MISS" && p2.header("X-Cache-Status") == "HIT")
        #expect(p1.body == file && p2.body == file && p2.header("ETag") == "\"\(sha)\"")
        let p304 = try await http(proxy, "/payloads/\(sha)", [("If-None-Match", "\"\(sha)\"")])
        #expect(p304.status == 304 && p304.header("X-Cache-Status") == "HIT")
        let part = try await http(proxy, "/payloads/\(sha)", [("Range", "bytes=10-19")])
        #expect(part.status == 206 && part.body == Array(file[10...19]) && part.header("X-Cache-Status") == "HIT")
        // Errors are never cached; the client reads through the proxy as from the service itself.
        let e1 = try await http(proxy, "/v1/lookup?detector=jf4x&type=pedestals&run=1"), e2 = try await http(proxy, "/v1/lookup?detector=jf4x&type=pedestals&run=1")
        #expect(e1.status == 404 && e2.status == 404 && e2.header("X-Cache-Status") != "HIT")
        let viaProxy = try c.run(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "--server", proxy.description, "-o", c.tmp.file("px.npy")])
        let local = try c.run(["get", "jf4m", "pedestals", "--run", "15", "--global-tag", "GT1", "-o", c.tmp.file("lx.npy")])
        #expect(viaProxy.status == 0 && local.status == 0, "\(viaProxy.stderr)")
        #expect(FileManager.default.contents(atPath: c.tmp.file("px.npy")) == FileManager.default.contents(atPath: c.tmp.file("lx.npy")))
    }
}
