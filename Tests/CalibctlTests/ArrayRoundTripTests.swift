import CalibTestSupport
import Foundation
import Testing

/// End-to-end: the built binary writes HDF5 + SQLite, reads back byte for byte, and h5dump / h5py read the file.
@Suite struct ArrayRoundTripTests {
    @Test func versionAndHelp() throws {
        let v = try calibctl(["--version"])
        #expect(v.status == 0 && v.stdout.trimmingCharacters(in: .whitespacesAndNewlines).contains("."))
        let h = try calibctl(["--help"])
        #expect(h.status == 0 && h.stdout.contains("SUBCOMMANDS") && h.stdout.contains("array"))
    }

    @Test func writeReadByteForByteAndForeignReaders() throws {
        let tmp = TemporaryDirectory()
        let file = tmp.file("a.h5"), index = tmp.file("idx.db")
        let w = try calibctl(["array", "write", file, "--shape", "7x9", "--seed", "42", "--attr", "run=5000",
                              "--attr", "detector=sipixel", "--index", index])
        #expect(w.status == 0, "\(w.stderr)")
        let raw = try calibctl(["array", "read", file, "--index", index, "--raw"])
        #expect(raw.status == 0 && raw.stdoutData.count == 7 * 9 * 4)

        // h5py reads the same bytes and attributes.
        let py = try runProcess(TestPaths.python, ["-c", """
            import h5py, sys
            f = h5py.File(sys.argv[1], 'r'); d = f['data']
            assert d.dtype.str == '<f4' and d.shape == (7, 9), (d.dtype, d.shape)
            assert int(d.attrs['run']) == 5000
            sys.stdout.buffer.write(d[()].tobytes())
            """, file])
        #expect(py.status == 0, "\(py.stderr)")
        #expect(py.stdoutData == raw.stdoutData)

        let dump = try runProcess(which("h5dump") ?? "/usr/bin/h5dump", ["-H", file])
        #expect(dump.status == 0 && dump.stdout.contains("ATTRIBUTE \"run\"") && dump.stdout.contains("( 7, 9 )"))

        let j = try calibctl(["array", "read", file, "--index", index, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any]
        #expect(obj?["verified"] as? Bool == true && (obj?["attributes"] as? [String: String])?["detector"] == "sipixel")
    }

    @Test func badInputGivesDocumentedExitCodes() throws {
        let tmp = TemporaryDirectory()
        let index = tmp.file("idx.db")
        let usage = try calibctl(["array", "write", tmp.file("a.h5"), "--shape", "7by9", "--index", index])
        #expect(usage.status == 64 && usage.stderr.contains("--shape"))
        let junk = tmp.file("junk.h5")
        try Data("not hdf5".utf8).write(to: URL(fileURLWithPath: junk))
        let bad = try calibctl(["array", "read", junk, "--index", index])
        #expect(bad.status == 65 && bad.stderr.contains("junk.h5"))
        // Changed behind the index's back: detected, exit 65.
        let file = tmp.file("b.h5")
        #expect(try calibctl(["array", "write", file, "--shape", "2x2", "--index", index]).status == 0)
        #expect(try calibctl(["array", "write", tmp.file("c.h5"), "--shape", "2x2", "--seed", "9",
                              "--index", tmp.file("other.db")]).status == 0)
        try FileManager.default.removeItem(atPath: file)
        try FileManager.default.copyItem(atPath: tmp.file("c.h5"), toPath: file)
        let changed = try calibctl(["array", "read", file, "--index", index])
        #expect(changed.status == 65 && changed.stderr.contains("differs"))
    }
}
