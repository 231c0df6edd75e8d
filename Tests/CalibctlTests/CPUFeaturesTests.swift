@testable import CalibCLI
import Testing

@Suite struct CPUFeaturesTests {
    @Test func findsMissingFlags() {
        let modern = "flags\t\t: fpu vme sse2 ssse3 fma cx16 sse4_1 sse4_2 avx f16c bmi1 avx2 bmi2 avx512f"
        #expect(CPUFeatures.missing(inFlags: modern).isEmpty)
        let sandyBridge = "flags\t\t: fpu vme sse2 ssse3 cx16 sse4_1 sse4_2 avx"
        #expect(CPUFeatures.missing(inFlags: sandyBridge) == ["avx2", "fma", "bmi2"])
        // "avx2" must not be satisfied by "avx512f" or "fma4"-like prefixes.
        #expect(CPUFeatures.missing(inFlags: "flags : avx512f fma4 bmi2") == ["avx2", "fma"])
    }

    @Test func thisMachineHasThem() {
        // The whole test suite runs the AVX2 kernels here; the start-up check must agree.
        #expect(CPUFeatures.missingOnThisMachine().isEmpty)
    }
}
