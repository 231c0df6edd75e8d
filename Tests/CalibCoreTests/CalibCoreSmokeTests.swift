import CalibCore
import Testing

@Suite struct CalibCoreSmokeTests {
    @Test func versionIsSemantic() {
        #expect(CalibctlVersion.string.split(separator: ".").count == 3)
    }
}
