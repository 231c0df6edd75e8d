import Foundation

/// Where calibctl keeps its state on disk.
///
/// - `home/calibctl.db`: one SQLite database for campaigns, steps, job sets and job attempts (WAL mode).
///   Each component owns its tables and migrations (`schema_versions` table).
/// - `home/jobs/`: per-job-set spec and result files written by workers (workers never write the database).
/// - `store/`: the constants store (its own `index.db` + `payloads/`), by default `home/store`, often shared.
///
/// Defaults: `--home` or `$CALIBCTL_HOME`, else `$HOME/.calibctl`; `--store` or `$CALIBCTL_STORE`, else `home/store`.
public struct Workspace: Sendable, Equatable {
    public let home: String
    public let store: String

    public init(home: String, store: String? = nil) {
        self.home = Workspace.absolute(home)
        self.store = Workspace.absolute(store ?? (home as NSString).appendingPathComponent("store"))
    }

    /// Resolves the workspace from explicit options, then the environment, then the defaults.
    public static func resolve(home: String?, store: String?,
                               environment: [String: String] = ProcessInfo.processInfo.environment) -> Workspace {
        let h = home ?? environment["CALIBCTL_HOME"]
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".calibctl")
        return Workspace(home: h, store: store ?? environment["CALIBCTL_STORE"])
    }

    public var databasePath: String { (home as NSString).appendingPathComponent("calibctl.db") }
    public var jobsDirectory: String { (home as NSString).appendingPathComponent("jobs") }

    /// Creates the home directory if needed.
    public func ensureHome() throws {
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    }

    static func absolute(_ p: String) -> String {
        let expanded = (p as NSString).expandingTildeInPath
        return URL(fileURLWithPath: expanded).standardizedFileURL.path
    }
}

/// Who is running calibctl: the OS user (access control and provenance use it), the host and the command line.
public struct Identity: Sendable, Codable, Equatable {
    public var user: String
    public var host: String
    public var commandLine: String

    public init(user: String, host: String, commandLine: String) {
        self.user = user
        self.host = host
        self.commandLine = commandLine
    }

    /// The current process's identity. The user is the effective OS user (`getpwuid(geteuid())`), never an
    /// environment variable, so access rules cannot be sidestepped by setting one.
    public static var current: Identity {
        var user = "uid\(geteuid())"
        // Reentrant: getpwuid's static buffer is shared with every other lookup in the process.
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        if getpwuid_r(geteuid(), &pw, &buffer, buffer.count, &result) == 0, result != nil, let name = pw.pw_name {
            user = String(cString: name)
        }
        return Identity(user: user, host: ProcessInfo.processInfo.hostName,
                        commandLine: CommandLine.arguments.joined(separator: " "))
    }
}

extension Workspace {
    /// An absolute, standardised path (`~` expanded, relative paths against the current directory).
    public static func absolutePath(_ p: String) -> String { absolute(p) }

    /// `p` made absolute when it names an existing file or directory (a relative `--param input=D` must still mean
    /// the same directory for jobs that run elsewhere); any other text unchanged.
    public static func absolutePathIfExists(_ p: String) -> String {
        guard !p.isEmpty, !p.hasPrefix("/"), FileManager.default.fileExists(atPath: p) else { return p }
        return absolute(p)
    }
}
