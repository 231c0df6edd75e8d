import CalibIO
import CalibTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// docs/exit-codes.md against the binary: every documented code is a published `ExitStatus`, every code has a checked
/// example, and every checked example exits with its code. The table and the binary cannot drift apart.
@Suite struct ExitCodeTableTests {
    static let doc = TestPaths.packageRoot + "/docs/exit-codes.md"

    /// The rows of the markdown table that follows `heading` (or the first table when nil): the cells of each row.
    static func table(after heading: String?) throws -> [[String]] {
        var lines = try String(contentsOfFile: doc, encoding: .utf8).split(separator: "\n").map(String.init)
        if let heading, let i = lines.firstIndex(of: heading) { lines = Array(lines[i...]) }
        guard let start = lines.firstIndex(where: { $0.hasPrefix("|") }) else { return [] }
        return lines[start...].prefix { $0.hasPrefix("|") }.dropFirst(2).map { row in
            row.split(separator: "|", omittingEmptySubsequences: false).dropFirst().dropLast()
                .map { $0.trimmingCharacters(in: .whitespaces) }
        }
    }

    @Test func everyDocumentedCodeIsPublishedAndChecked() throws {
        let documented = try Self.table(after: nil).compactMap { Int32($0[0]) }
        #expect(Set(documented) == Set(ExitStatus.allCases.map(\.rawValue)), "docs/exit-codes.md vs ExitStatus")
        #expect(documented == documented.sorted() && Set(documented).count == documented.count)
        let checked = Set(try Self.table(after: "## Checked examples").compactMap { Int32($0[0]) })
        for code in documented { #expect(checked.contains(code), "no checked example exits \(code)") }
        // The root help names the same codes.
        let help = try calibctl(["--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
        for code in documented { #expect(help.contains("\(code) "), "calibctl --help does not mention exit \(code)") }
    }

    @Test func everyCheckedExampleExitsWithItsCode() throws {
        let tmp = TemporaryDirectory()
        let env = ["CALIBCTL_HOME": tmp.file("home"), "CALIBCTL_STORE": tmp.file("store")]
        let root = TestPaths.packageRoot
        func setup(_ args: [String]) throws {
            let r = try calibctl(args, environment: env, currentDirectory: root)
            #expect(r.status == 0, "setup \(args.joined(separator: " ")): \(r.stderr)")
        }
        try setup(["campaign", "create", "demo", "--checklist", "Fixtures/checklists/cms-pixel-gain.yaml", "--runs", "1-3"])
        try setup(["campaign", "create", "signoff", "--checklist", "Fixtures/exit-codes/approvers.yaml", "--runs", "1"])
        try setup(["step", "start", "signoff", "check"])
        try setup(["step", "done", "signoff", "check"])
        try setup(["store", "init"])
        try setup(["store", "detector", "add", "jf4m", "--kind", "jungfrau"])
        try setup(["put", "jf4m", "pedestals", "Fixtures/exit-codes/pedestals.txt", "--runs", "10-20"])
        try FileManager.default.createDirectory(atPath: tmp.file("empty"), withIntermediateDirectories: true)
        // A home whose tick lock is held (by this process, as another tick would).
        try FileManager.default.createDirectory(atPath: tmp.file("locked"), withIntermediateDirectories: true)
        let lock = open(tmp.file("locked") + "/tick.lock", O_RDWR | O_CREAT, 0o644)
        #expect(lock >= 0 && flock(lock, LOCK_EX | LOCK_NB) == 0)
        defer { close(lock) }
        // A store written by a newer calibctl.
        try setup(["store", "init", tmp.file("newer")])
        let db = try SQLiteDatabase(path: tmp.file("newer") + "/index.db")
        try db.execute("UPDATE schema_versions SET version = 99")
        // A home whose database is not a database.
        try FileManager.default.createDirectory(atPath: tmp.file("damaged"), withIntermediateDirectories: true)
        try "not a database\n".write(toFile: tmp.file("damaged") + "/calibctl.db", atomically: true, encoding: .utf8)

        let rows = try Self.table(after: "## Checked examples")
        #expect(rows.count >= 9)
        for row in rows {
            guard let code = Int32(row[0]), row.count >= 2, row[1].hasPrefix("`calibctl "), row[1].hasSuffix("`") else {
                Issue.record("malformed row \(row)"); continue
            }
            let command = row[1].dropFirst().dropLast().replacingOccurrences(of: "$TMP", with: tmp.path)
            let args = command.split(separator: " ").dropFirst().map(String.init)
            let r = try calibctl(args, environment: env, currentDirectory: root)
            #expect(r.status == code, "`\(command)` exited \(r.status), documented \(code): \(r.stderr)")
            // Every refusal says why on stderr.
            if code >= 64 { #expect(r.stderr.contains("calibctl"), "`\(command)` printed no diagnostic") }
        }
    }
}
