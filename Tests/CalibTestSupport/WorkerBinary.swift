import Foundation

/// calibctl's worker-node binary, which the Slurm and HTCondor tests run on their workers: the release build, whose
/// Swift runtime is linked in statically (Package.swift; docs/runner.md "Worker nodes"), so that one file runs on a
/// node without a Swift toolchain. scripts/test.sh builds it once (`swift build -c release --product calibctl`) and
/// sets `CALIBCTL_TEST_WORKER`; without it the tests use `.build/release/calibctl`.
public enum WorkerBinary {
    /// Libraries of the Swift toolchain that must not appear in the worker binary's `ldd`.
    static let swiftRuntime = ["libswift", "libFoundation", "lib_Foundation", "libdispatch", "libBlocksRuntime"]

    /// The worker binary's path, checked: it exists and links no Swift runtime library dynamically. Throws a message
    /// saying how to build it otherwise.
    public static func path() throws -> String {
        let env = ProcessInfo.processInfo.environment
        let p = env["CALIBCTL_TEST_WORKER"].flatMap { $0.isEmpty ? nil : $0 } ?? TestPaths.packageRoot + "/.build/release/calibctl"
        guard FileManager.default.isExecutableFile(atPath: p) else {
            throw WorkerBinaryError(message: "the worker-node binary \(p) does not exist: build it with "
                                    + "`swift build -c release --product calibctl` (scripts/test.sh does) or set CALIBCTL_TEST_WORKER")
        }
        let ldd = try runProcess("/usr/bin/ldd", [p])
        let dynamic = ldd.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { line in swiftRuntime.contains { line.hasPrefix($0) } }
        guard ldd.status == 0, dynamic.isEmpty else {
            throw WorkerBinaryError(message: "\(p) is not the worker-node binary: it links the Swift runtime "
                                    + "dynamically (\(dynamic.prefix(3).joined(separator: "; "))\(ldd.stderr)); build it with "
                                    + "`swift build -c release --product calibctl`")
        }
        return p
    }

    /// Deploys the worker binary as a site would to a shared file system: copies the ONE file to
    /// `directory/calibctl` (replaced by a rename when it differs, so a running job keeps its copy), mode 0755.
    /// Returns the deployed path.
    public static func deploy(to directory: String) throws -> String {
        let source = try path()
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true,
                               attributes: [.posixPermissions: 0o755])
        let dest = directory + "/calibctl"
        if fm.contentsEqual(atPath: source, andPath: dest) { return dest }
        let tmp = dest + ".tmp.\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.copyItem(atPath: source, toPath: tmp)
        try fm.setAttributes([.posixPermissions: 0o755], ofItemAtPath: tmp)
        guard rename(tmp, dest) == 0 else {
            throw WorkerBinaryError(message: "cannot rename \(tmp) to \(dest): errno \(errno)")
        }
        return dest
    }
}

public struct WorkerBinaryError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
