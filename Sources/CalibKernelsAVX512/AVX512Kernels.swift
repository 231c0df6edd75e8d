// CalibKernelsAVX512: CalibCore's numeric kernels compiled for x86-64-v4 (AVX-512). The files in Shared/ are symbolic
// links to CalibCore's own sources; this module's GainFitKernel is a separate type, so each module's kernel is
// self-contained, and `install()` hands this one to CalibCore's dispatch (docs/numerics.md, "Instruction sets").
import CalibCore
import Foundation

/// The host of the shared kernel sources in this module (shadows CalibCore.GainFitKernel here).
enum GainFitKernel {}

public enum AVX512Kernels {
    /// The gain kernel of this module.
    public static let gain = CalibCore.GainKernel(isa: .v4) { b, x, r, o, out in
        GainFitKernel.fitRange(b, x: x, range: r, options: o, into: out)
    }

    /// Installs this module's kernels when the CPU supports x86-64-v4 and `CALIBCTL_ISA` does not cap the level
    /// lower; returns the level now in use.
    @discardableResult
    public static func install(environment: [String: String] = ProcessInfo.processInfo.environment) -> KernelISA {
        guard NumericKernels.allowedLevel(environment: environment) == .v4 else { return NumericKernels.gain.isa }
        NumericKernels.gain = gain
        return .v4
    }
}
