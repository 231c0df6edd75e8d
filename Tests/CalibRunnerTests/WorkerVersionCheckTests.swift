@testable import CalibRunner
import CalibCore
import CalibTestSupport
import Foundation
import Testing

/// The version check between the submitting calibctl (recorded in the spec) and the worker's `calibctl job run`.
struct WorkerVersionCheckTests {
    @Test func comparesVersions() {
        #expect(WorkerVersionCheck.check(submitter: "0.1.0", worker: "0.1.0") == .same)
        #expect(WorkerVersionCheck.check(submitter: nil, worker: "0.1.0") == .unrecorded)
        guard case .refuse(let older) = WorkerVersionCheck.check(submitter: "0.10.0", worker: "0.9.2") else {
            Issue.record("an older worker must refuse"); return
        }
        #expect(older.contains("calibctl 0.9.2 on this worker is older than calibctl 0.10.0"))
        #expect(older.contains("deploy the same calibctl build to the worker nodes"))
        guard case .warn(let newer) = WorkerVersionCheck.check(submitter: "0.1.0", worker: "0.2.0") else {
            Issue.record("a newer worker must run with a warning"); return
        }
        #expect(newer.contains("calibctl 0.2.0 on this worker is newer than calibctl 0.1.0"))
        guard case .refuse(let other) = WorkerVersionCheck.check(submitter: "0.1.0-dev", worker: "0.1.0") else {
            Issue.record("an unordered build must refuse"); return
        }
        #expect(other.contains("another build"))
        // Builds as SemVer build metadata: release numbers are compared, builds are not (recorded on both sides);
        // a spec without a build (older calibctl) is the same release; releases still order with builds attached.
        #expect(WorkerVersionCheck.check(submitter: "0.1.0+aaaa", worker: "0.1.0+bbbb") == .same)
        #expect(WorkerVersionCheck.check(submitter: "0.1.0", worker: "0.1.0+bbbb") == .same)
        #expect(WorkerVersionCheck.check(submitter: "0.1.0+aaaa", worker: "0.1.0+aaaa") == .same)
        guard case .refuse = WorkerVersionCheck.check(submitter: "0.2.0+aaaa", worker: "0.1.0+aaaa") else {
            Issue.record("an older worker must refuse whatever its build"); return
        }
    }

    /// This executable's build ID (the GNU note the linker writes) is read from the loaded program: the 16 hex digits
    /// `readelf -n` prints for the test binary.
    @Test func ownBuildIDMatchesReadelf() throws {
        let build = try #require(CalibctlVersion.build)
        #expect(build.count == 16 && build.allSatisfy(\.isHexDigit))
        #expect(CalibctlVersion.full == "\(CalibctlVersion.string)+\(build)")
        guard let readelf = which("readelf") else { return }
        let notes = try runProcess(readelf, ["-n", CommandLine.arguments[0]]).stdout
        #expect(notes.contains("Build ID: \(build)"), "\(notes.prefix(600))")
    }

    @Test func specsRecordTheSubmittingVersion() throws {
        let tmp = TemporaryDirectory("version-spec")
        let path = tmp.path + "/spec.json"
        try JobSpec(kind: CommandJobKind.name, parameters: ["shell": "true"]).write(to: path)
        #expect(try JobSpec.read(path).calibctlVersion == CalibctlVersion.full)
        // A spec of an older calibctl (no field) still reads, unchecked.
        try Data(#"{"formatVersion":1,"kind":"command","key":"","index":0,"inputs":{},"outputs":{},"parameters":{"shell":"true"}}"#.utf8)
            .write(to: URL(fileURLWithPath: path))
        #expect(try JobSpec.read(path).calibctlVersion == nil)
    }

    /// A spec from a newer calibctl is refused without running its command (exit 78, both versions named, in the
    /// result record); one from an older calibctl runs and the record's message says so.
    @Test func jobRunRefusesANewerSubmitterAndNotesAnOlderOne() throws {
        let tmp = TemporaryDirectory("version-run")
        let runner = JobRunner(registry: .builtIn)
        var spec = JobSpec(kind: CommandJobKind.name, outputs: ["o": "out.txt"],
                           parameters: ["shell": "echo ran > {output:o}"])

        spec.calibctlVersion = "999.0.0"
        let newer = tmp.path + "/newer/spec.json"
        try FileManager.default.createDirectory(atPath: tmp.path + "/newer", withIntermediateDirectories: true)
        try spec.write(to: newer)
        let refused = try runner.run(specPath: newer, attempt: 1)
        #expect(refused.exitCode == 78)
        #expect(refused.message?.contains("calibctl \(CalibctlVersion.string) on this worker is older than calibctl 999.0.0") == true,
                "\(refused.message ?? "")")
        #expect(!FileManager.default.fileExists(atPath: tmp.path + "/newer/out.txt"), "the command must not run")
        #expect(try JobResult.read(JobRunner.resultPath(specPath: newer, attempt: 1)).exitCode == 78)

        spec.calibctlVersion = "0.0.1"
        let older = tmp.path + "/older/spec.json"
        try FileManager.default.createDirectory(atPath: tmp.path + "/older", withIntermediateDirectories: true)
        try spec.write(to: older)
        let ran = try runner.run(specPath: older, attempt: 1)
        #expect(ran.exitCode == 0 && ran.outputs.map(\.name) == ["o"])
        #expect(ran.message?.contains("newer than calibctl 0.0.1 that submitted the job") == true, "\(ran.message ?? "")")

        // Another build of the same release runs without a note; the result record names the worker's build.
        spec.calibctlVersion = CalibctlVersion.string + "+0000000000000000"
        let other = tmp.path + "/other/spec.json"
        try FileManager.default.createDirectory(atPath: tmp.path + "/other", withIntermediateDirectories: true)
        try spec.write(to: other)
        let same = try runner.run(specPath: other, attempt: 1)
        #expect(same.exitCode == 0 && same.message == nil)
        #expect(try JobResult.read(JobRunner.resultPath(specPath: other, attempt: 1)).calibctlVersion == CalibctlVersion.full)
    }
}
