// CalibKernelsAVX512: CalibCore's numeric kernels compiled for x86-64-v4 (AVX-512). The files in Shared/ are symbolic
// links to CalibCore's own sources; this module's GainFitKernel is a separate type, so each module's kernel is
// self-contained, and `install()` hands this one to CalibCore's dispatch (docs/numerics.md, "Instruction sets").
import CalibCore
import Foundation

/// The hosts of the shared kernel sources in this module (they shadow CalibCore's enums of the same names here).
enum GainFitKernel {}
enum DarkKernel {
    /// The scalar reference (CalibCore's) for the pixels the integer kernel hands on.
    @inline(__always)
    static func accumulateScalar(frames: UnsafePointer<UInt16>, frameCount: Int, pixels: Int, range: Range<Int>,
                                 expectedGain: UInt16?, gates g: DarkGates, commonMode: CommonModeBlock?,
                                 options o: DarkOptions, into a: DarkAccumulators, frameStride: Int? = nil) {
        CalibCore.DarkKernel.accumulateScalar(frames: frames, frameCount: frameCount, pixels: pixels, range: range,
                                              expectedGain: expectedGain, gates: g, commonMode: commonMode, options: o,
                                              into: a, frameStride: frameStride)
    }
}

public enum AVX512Kernels {
    /// The gain kernel of this module.
    public static let gain = CalibCore.GainKernel(isa: .v4) { b, x, r, o, out in
        GainFitKernel.fitRange(b, x: x, range: r, options: o, into: out)
    }

    /// The exact-integer dark stage-2 kernel of this module (32 pixels per register).
    package static let darkInteger = DarkIntegerKernel(isa: .v4) { f, c, P, r, e, g, ig, o, a, s in
        DarkKernel.accumulateInteger(frames: f, frameCount: c, pixels: P, range: r, expectedGain: e, gates: g,
                                     integerGates: ig, options: o, into: a, frameStride: s)
    }

    /// Installs this module's kernels when the CPU supports x86-64-v4 and `CALIBCTL_ISA` does not cap the level
    /// lower; returns the level now in use.
    @discardableResult
    public static func install(environment: [String: String] = ProcessInfo.processInfo.environment) -> KernelISA {
        guard NumericKernels.allowedLevel(environment: environment) == .v4 else { return NumericKernels.gain.isa }
        NumericKernels.gain = gain
        NumericKernels.darkInteger = darkInteger
        return .v4
    }
}
