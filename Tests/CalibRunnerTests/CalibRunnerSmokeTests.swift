@testable import CalibRunner
import CalibCore
import Testing

@Suite struct CalibRunnerSmokeTests {
    @Test func versionIsSemantic() {
        #expect(CalibctlVersion.string.split(separator: ".").count == 3)
    }
}
