@testable import CalibStore
import CalibCore
import Testing

@Suite struct CalibStoreSmokeTests {
    @Test func versionIsSemantic() {
        #expect(CalibctlVersion.string.split(separator: ".").count == 3)
    }
}
