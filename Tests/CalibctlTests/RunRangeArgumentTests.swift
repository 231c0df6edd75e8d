import CalibTestSupport
import Foundation
import Testing

/// `--runs -200` (a range open at the start) is a value, not an unknown option.
@Suite struct RunRangeArgumentTests {
    @Test func leadingDashRangeIsAcceptedAsAValue() throws {
        let tmp = TemporaryDirectory("runs-arg")
        let env = ["CALIBCTL_HOME": tmp.file("h"), "CALIBCTL_STORE": tmp.file("s")]
        func cli(_ a: [String]) throws -> ProcessResult { try calibctl(a, environment: env, currentDirectory: tmp.path) }
        #expect(try cli(["store", "init"]).status == 0)
        #expect(try cli(["store", "detector", "add", "sipixel", "--kind", "sipixel"]).status == 0)
        let put = try cli(["vcal", "put", "T", "--runs", "-200"])
        #expect(put.status == 0 && put.stdout.contains("runs 0-200"), "\(put.stdout) \(put.stderr)")
        #expect(try cli(["get", "sipixel", "vcal", "--run", "150", "--tag", "T"]).status == 0)
        #expect(try cli(["get", "sipixel", "vcal", "--run", "201", "--tag", "T"]).status != 0)
    }
}
