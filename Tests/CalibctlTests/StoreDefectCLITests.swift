import CalibTestSupport
import Foundation
import Testing

/// The store defects of issue 12 as a user meets them on the command line: exit codes and messages.
@Suite(.serialized) struct StoreDefectCLITests {
    @Test func aMistypedStoreIsNeverCreated() throws {
        let c = StoreCLI()
        _ = try c.python("import numpy as np, sys; np.save(sys.argv[1], np.ones((2, 2), np.float32))", [c.tmp.file("a.npy")])
        let typo = c.tmp.file("stroe")
        for args in [["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "1-2"], ["store", "detector", "add", "jf4m", "--kind", "jungfrau"],
                     ["store", "grant", "bob", "write"]] {
            let r = try calibctl(args + ["--store", typo])
            #expect(r.status == 69 && r.stderr.contains("calibctl store init"), "\(args): \(r.status) \(r.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: typo))
    }

    @Test func hostileInputsAreErrorsNotCrashes() throws {
        let c = StoreCLI()
        #expect(try c.run(["store", "detector", "add", "jf4m", "--kind", "jungfrau", "--alias", "CxiDs1.0:Jungfrau.0"]).status == 0)
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }"
        header += String(repeating: " ", count: (64 - (10 + header.utf8.count + 1) % 64) % 64) + "\n"
        var npy = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xff), UInt8(header.utf8.count >> 8)])
        npy.append(contentsOf: Array(header.utf8) + [0, 0, 0, 0])
        try npy.write(to: URL(fileURLWithPath: c.tmp.file("huge.npy")))
        try "# NDIM 2\n# DIM:0 4611686018427387904\n# DIM:1 4\n1 2 3 4\n".write(toFile: c.tmp.file("huge.txt"), atomically: true, encoding: .utf8)
        try Data([0x31, 0x20, 0x32, 0x0a, 0xff, 0xfe, 0x0a]).write(to: URL(fileURLWithPath: c.tmp.file("latin.txt")))
        try "".write(toFile: c.tmp.file("empty.txt"), atomically: true, encoding: .utf8)
        try "# DTYPE float32\n".write(toFile: c.tmp.file("empty.data"), atomically: true, encoding: .utf8)
        _ = try c.python("import numpy as np, sys; np.save(sys.argv[1], np.zeros((0,), np.float32)); np.save(sys.argv[2], np.ones((2, 2), np.float32))",
                         [c.tmp.file("empty.npy"), c.tmp.file("a.npy")])
        let cases: [([String], Int32, String)] = [
            (["put", "jf4m", "pedestals", c.tmp.file("huge.npy"), "--runs", "1-2"], 65, "too large"),
            (["put", "jf4m", "pedestals", c.tmp.file("huge.txt"), "--runs", "1-2"], 65, "too large"),
            (["put", "jf4m", "pedestals", c.tmp.file("latin.txt"), "--runs", "1-2"], 65, "not UTF-8"),
            (["put", "jf4m", "pedestals", c.tmp.file("empty.txt"), "--runs", "1-2"], 65, "no values"),
            (["put", "jf4m", "pedestals", c.tmp.file("empty.data"), "--runs", "1-2"], 65, "no values"),
            (["put", "jf4m", "pedestals", c.tmp.file("empty.npy"), "--runs", "1-2"], 65, "empty"),
            (["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "-"], 64, "`all`"),
            (["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", ""], 64, "run range"),
            (["store", "global-tag", "create", "G", "--entry", "jf4m/pedestals=default", "--as-of", "2026-02-31"], 64, "not a valid date"),
            (["get", "jf4m", "pedestals", "--run", "1", "--as-of", "2999-01-01"], 64, "future"),
        ]
        for (args, status, text) in cases {
            let r = try c.run(args)
            #expect(r.status == status && r.stderr.contains(text), "\(args): \(r.status) \(r.stderr)")
        }
        #expect((try c.json(["store", "list", "iovs"]) as? [Any])?.isEmpty == true)
        // A published tag reaching run 2^63-1, then a put there: the tag state refuses it (65), no overflow trap.
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "-9223372036854775807"]).status == 0)
        #expect(try c.run(["store", "tag", "state", "jf4m", "pedestals", "default", "validated"]).status == 0)
        #expect(try c.run(["store", "tag", "state", "jf4m", "pedestals", "default", "published"]).status == 0)
        let p = try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "-9223372036854775807"])
        #expect(p.status == 65 && p.stderr.contains("published"), "\(p.status) \(p.stderr)")
        #expect(try c.run(["store", "lint", "--runs", "0-"]).status == 0)
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "all", "--tag", "t2", "--create-tag"]).status == 0)
        // revoke by alias works like grant by alias; revoking nothing is an error; printed commands quote '*'.
        #expect(try c.run(["store", "grant", "bob", "write", "--detector", "CxiDs1.0:Jungfrau.0", "--type", "pedestals"]).status == 0)
        let rv = try c.run(["store", "revoke", "bob", "write", "--detector", "CxiDs1.0:Jungfrau.0", "--type", "pedestals"])
        #expect(rv.status == 0 && rv.stdout.contains("removed 1 rule"), "\(rv.stdout) \(rv.stderr)")
        let none = try c.run(["store", "revoke", "bob", "write", "--detector", "jf4m", "--type", "pedestals"])
        #expect(none.status == 65 && none.stderr.contains("nothing was revoked"), "\(none.stderr)")
    }

    /// Several writer processes at once while a global tag is created and as-of answers are taken: afterwards every
    /// answer is the same, and insertion times follow commit order.
    @Test func answersGivenDuringConcurrentWriterProcessesNeverChange() throws {
        let c = StoreCLI()
        #expect(try c.run(["store", "detector", "add", "jf4m", "--kind", "jungfrau"]).status == 0)
        let gen = try c.python("""
            import numpy as np, sys
            for w in range(6):
                for k in range(4):
                    np.save(sys.argv[1] + f'/w{w}_{k}.npy', np.full((4, 4), w * 100 + k, np.float32))
            """, [c.tmp.path])
        #expect(gen.status == 0, "\(gen.stderr)")
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("w0_0.npy"), "--runs", "0-"]).status == 0)
        final class Given: @unchecked Sendable {
            let lock = NSLock()
            var answers: [(args: [String], out: String)] = []
            var failures: [String] = []
        }
        let given = Given()
        let store = c.store
        // Plain lock contention: another connection holds the write lock 30 ms out of every 35 ms meanwhile, so
        // writers queue for it (where a time taken before the lock goes stale).
        let stop = c.tmp.file("stop-locker")
        let locker = Process()
        locker.executableURL = URL(fileURLWithPath: TestPaths.python)
        locker.arguments = ["-c", """
            import sqlite3, sys, time, os
            con = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
            while not os.path.exists(sys.argv[2]):
                con.execute('BEGIN IMMEDIATE'); time.sleep(0.03); con.execute('COMMIT'); time.sleep(0.005)
            """, store + "/index.db", stop]
        try locker.run()
        defer { _ = FileManager.default.createFile(atPath: stop, contents: nil); locker.waitUntilExit() }
        DispatchQueue.concurrentPerform(iterations: 7) { w in
            if w == 6 {
                for g in 0..<3 {
                    usleep(150_000)
                    let gt = try? calibctl(["store", "global-tag", "create", "GT\(g)", "--entry", "jf4m/pedestals=default", "--store", store])
                    let asOf = try? calibctl(["store", "global-tag", "show", "GT\(g)", "--json", "--store", store])
                    for run in ["0", "10", "20"] {
                        let args = ["get", "jf4m", "pedestals", "--run", run, "--global-tag", "GT\(g)", "--json", "--store", store]
                        if let r = try? calibctl(args), r.status == 0 {
                            given.lock.lock(); given.answers.append((args, Self.sha(r.stdout))); given.lock.unlock()
                        }
                        if let j = asOf.flatMap({ try? JSONSerialization.jsonObject(with: $0.stdoutData) as? [String: Any] }), let t = j["asOf"] as? String {
                            let a2 = ["get", "jf4m", "pedestals", "--run", run, "--as-of", t, "--json", "--store", store]
                            if let r = try? calibctl(a2), r.status == 0 { given.lock.lock(); given.answers.append((a2, Self.sha(r.stdout))); given.lock.unlock() }
                        }
                    }
                    if gt?.status != 0 { given.lock.lock(); given.failures.append(gt?.stderr ?? "gt"); given.lock.unlock() }
                }
                return
            }
            for k in 0..<4 {
                let first = (w * 3 + k * 7) % 25
                let r = try? calibctl(["put", "jf4m", "pedestals", c.tmp.file("w\(w)_\(k).npy"), "--runs", "\(first)-\(first + 10)", "--store", store])
                if r?.status != 0 { given.lock.lock(); given.failures.append(r?.stderr ?? "put"); given.lock.unlock() }
            }
        }
        #expect(given.failures.isEmpty, "\(given.failures)")
        #expect(given.answers.count >= 9)
        for a in given.answers {
            let r = try calibctl(a.args)
            #expect(r.status == 0 && Self.sha(r.stdout) == a.out, "\(a.args) changed")
        }
        let entries = (try c.json(["store", "list", "iovs"]) as? [[String: Any]] ?? [])
            .map { (($0["id"] as? Int) ?? 0, ($0["insertedAtMicroseconds"] as? Int) ?? 0) }.sorted { $0.0 < $1.0 }
        #expect(entries.count == 25)
        #expect(zip(entries, entries.dropFirst()).allSatisfy { $0.1 < $1.1 })
    }

    static func sha(_ json: String) -> String {
        let j = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        return ((j?["entry"] as? [String: Any])?["sha256"] as? String) ?? "?"
    }

    /// A second OS user: reads a read-only copy of a store (no write permission anywhere), and gets clear 77s for
    /// writes it may not do (needs root to create and become the user).
    @Test(.enabled(if: geteuid() == 0 && which("setpriv") != nil && which("useradd") != nil))
    func readOnlyCopiesAndOSPermissionsAsAnotherUser() throws {
        let c = StoreCLI()
        let user = "calibctltest"
        guard let pw = try OSUser.ensure(user) else { Issue.record("could not create \(user)"); return }
        #expect(try c.run(["store", "detector", "add", "jf4m", "--kind", "jungfrau"]).status == 0)
        _ = try c.python("import numpy as np, sys; np.save(sys.argv[1], np.ones((2, 2), np.float32)); np.save(sys.argv[2], np.zeros((2, 2), np.float32))",
                         [c.tmp.file("a.npy"), c.tmp.file("b.npy")])
        #expect(try c.run(["put", "jf4m", "pedestals", c.tmp.file("a.npy"), "--runs", "0-9"]).status == 0)
        let bin = c.tmp.file("calibctl")
        try FileManager.default.copyItem(atPath: TestPaths.calibctl, toPath: bin)
        // A read-only copy: every file and directory a-w.
        let copy = c.tmp.file("ro-store")
        _ = try runProcess("/bin/cp", ["-a", c.store, copy])
        _ = try runProcess("/bin/chmod", ["-R", "a-w,a+rX", copy])
        _ = try runProcess("/bin/chmod", ["a+rx", c.tmp.path, bin])
        _ = try runProcess("/bin/chmod", ["a+r", c.tmp.file("a.npy"), c.tmp.file("b.npy")])
        func asUser(_ args: [String], store: String) throws -> ProcessResult {
            try runProcess(which("setpriv")!, ["--reuid=\(pw.uid)", "--regid=\(pw.gid)", "--clear-groups", bin] + args + ["--store", store])
        }
        let got = try asUser(["get", "jf4m", "pedestals", "--run", "5", "-o", "-"], store: copy)
        #expect(got.status == 0 && got.stdout.contains("1.0 1.0"), "\(got.status) \(got.stderr)")
        #expect(try asUser(["store", "verify"], store: copy).status == 0)
        let put = try asUser(["put", "jf4m", "pedestals", c.tmp.file("b.npy"), "--runs", "10-19"], store: copy)
        #expect(put.status == 77 && put.stderr.contains("read-only") && !put.stderr.contains("NSPOSIXErrorDomain"), "\(put.status) \(put.stderr)")
        // A store whose index the user may write but whose payload directory it may not: 77 with the fix.
        _ = try runProcess("/bin/chmod", ["-R", "a+rwX", c.store])
        _ = try runProcess("/bin/chmod", ["a-w", c.store + "/payloads/.tmp"])
        let denied = try asUser(["put", "jf4m", "pedestals", c.tmp.file("b.npy"), "--runs", "10-19"], store: c.store)
        #expect(denied.status == 77 && denied.stderr.contains("permission denied for user \(user)") && denied.stderr.contains("chmod")
                && !denied.stderr.contains("NSPOSIXErrorDomain"), "\(denied.status) \(denied.stderr)")
    }

    /// A store on a full file system (a 2 MB tmpfs, needs root): a put too large for it exits 75 with a clear message
    /// and leaves the store as it was.
    @Test(.enabled(if: geteuid() == 0 && which("mount") != nil))
    func aFullDiskIsATemporaryFailureWithAClearMessage() throws {
        let tmp = TemporaryDirectory("store-full")
        let mnt = tmp.file("mnt")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard try runProcess(which("mount")!, ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt]).status == 0 else { return }
        defer { _ = try? runProcess(which("umount")!, [mnt]) }
        let store = mnt + "/store"
        #expect(try calibctl(["store", "init", store]).status == 0)
        #expect(try calibctl(["store", "detector", "add", "jf4m", "--kind", "jungfrau", "--store", store]).status == 0)
        let gen = try runProcess(TestPaths.python, ["-c", "import numpy as np, sys; np.save(sys.argv[1], np.ones((1024, 1024), np.float32))", tmp.file("big.npy")])
        #expect(gen.status == 0, "\(gen.stderr)")
        let r = try calibctl(["put", "jf4m", "pedestals", tmp.file("big.npy"), "--runs", "all", "--store", store])
        #expect(r.status == 75 && r.stderr.contains("full") && !r.stderr.contains("NSPOSIXErrorDomain"), "\(r.status) \(r.stderr)")
        let v = try calibctl(["store", "verify", "--store", store])
        #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
        let list = try calibctl(["store", "list", "iovs", "--json", "--store", store])
        #expect(list.status == 0 && (try? JSONSerialization.jsonObject(with: list.stdoutData) as? [Any])?.isEmpty == true, "\(list.stdout)")
    }
}
