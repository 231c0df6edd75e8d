import CalibIO
import CalibTestSupport
import Foundation

/// Helpers for the job CLI tests: a workspace, calibctl with --home, waiting for a job set to finish.
struct JobsWorkspace {
    let tmp = TemporaryDirectory("jobs")
    var home: String { tmp.path + "/home" }

    @discardableResult
    func run(_ args: [String]) throws -> ProcessResult {
        try calibctl(args + ["--home", home], environment: ["CALIBCTL_LOCAL_GRACE": "1"])
    }

    /// `jobs status NAME --json` as a dictionary.
    func status(_ name: String) throws -> [String: Any] {
        let r = try run(["jobs", "status", name, "--json"])
        guard let obj = try JSONSerialization.jsonObject(with: r.stdoutData) as? [String: Any] else {
            throw CocoaError(.coderReadCorrupt, userInfo: [NSDebugDescriptionErrorKey: r.stderr])
        }
        return obj
    }

    /// Ticks until the job set is finished (or `timeout` passes); returns the last status.
    @discardableResult
    func tickUntilFinished(_ name: String, timeout: Double = 60) throws -> [String: Any] {
        let t0 = Date()
        var s = try status(name)
        while Date().timeIntervalSince(t0) < timeout {
            try run(["tick"])
            s = try status(name)
            if s["finished"] as? Bool == true { return s }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return s
    }

    /// Rows of the attempts table, for exact before/after comparisons.
    func attempts() throws -> [[SQLValue]] {
        let db = try SQLiteDatabase(path: home + "/calibctl.db")
        return try db.query("SELECT * FROM attempts ORDER BY id").map(\.values)
    }

    func db() throws -> SQLiteDatabase { try SQLiteDatabase(path: home + "/calibctl.db") }
}

/// Starts calibctl in the background (for kill tests).
func startCalibctl(_ args: [String], environment: [String: String] = [:]) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: TestPaths.calibctl)
    p.arguments = args
    if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, b in b } }
    p.standardOutput = FileHandle.nullDevice
    p.standardError = FileHandle.nullDevice
    try p.run()
    return p
}
