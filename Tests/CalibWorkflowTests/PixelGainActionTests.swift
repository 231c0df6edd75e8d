import CalibWorkflow
import Testing

@Suite struct PixelGainActionTests {
    @Test func registryKnowsThePixelGainActions() throws {
        #expect(ActionRegistry.standard.actions["command"] != nil)
    }
}
