import CalibCore
import CalibWorkflow
import Testing

@Suite struct PixelGainActionTests {
    /// The cms-pixel-gain checklist's builtins are registered with their modes, and the fit's job kind is known to
    /// workers; the shipped checklist names nothing the registry lacks.
    @Test func registryRunsTheShippedPixelGainChecklist() throws {
        let registry = ActionRegistry.standard
        #expect(registry.actions["pixel-gain-fit"]?.mode == .jobs)
        for n in ["pixel-gain-merge", "pixel-gain-validate", "pixel-gain-payload"] { #expect(registry.actions[n]?.mode == .inline, "\(n)") }
        #expect(WorkflowJobKinds.all.contains { $0.name == PixelGainFitJob.name })
        let shipped = try #require(ShippedChecklists.named(PixelGain.checklist))
        let checklist = try ChecklistLoader.load(yaml: shipped.yaml, file: shipped.file)
        for s in checklist.steps where s.action != nil { #expect(registry.action(for: s) != nil, "\(s.id)") }
        #expect(PixelGain.tagName(year: 2026, version: 3, flavour: "hlt") == "SiPixelGainCalibration_2026_v3_hlt")
        #expect(PixelGain.fed(of: "fed=1200") == 1200)
    }
}
