import Foundation

/// The x86-64 instruction-set level a numeric kernel was compiled for (docs/numerics.md, "Instruction sets").
public enum KernelISA: String, Sendable, Codable, CaseIterable {
    /// AVX2 + FMA: CalibCore's own kernels, on every current farm node.
    case v3 = "x86-64-v3"
    /// AVX-512 (F, BW, CD, DQ, VL): CalibKernelsAVX512, the same source compiled for 512-bit registers.
    case v4 = "x86-64-v4"
}

/// One compiled gain kernel: `fitRange(block, x, range, options, out)` returns how many pixels the scalar reference
/// fitted (`GainFitKernel.fitVector`).
public struct GainKernel: Sendable {
    public typealias FitRange = @Sendable (GainScanBlock, UnsafePointer<Float>, Range<Int>, GainFitOptions, GainFitResults) -> Int
    public let isa: KernelISA
    public let fitRange: FitRange

    public init(isa: KernelISA, fitRange: @escaping FitRange) {
        self.isa = isa; self.fitRange = fitRange
    }

    /// CalibCore's kernel (x86-64-v3).
    public static let portable = GainKernel(isa: .v3) { b, x, r, o, out in GainFitKernel.fitRange(b, x: x, range: r, options: o, into: out) }
}

/// One compiled exact-integer dark stage-2 kernel (`DarkKernel.accumulateInteger`: frames, frame count, pixels, range,
/// expected gain bits, gates, integer gates, options, accumulators, frame stride).
package struct DarkIntegerKernel: Sendable {
    package typealias Accumulate = @Sendable (UnsafePointer<UInt16>, Int, Int, Range<Int>, UInt16?, DarkGates, IntegerGates,
                                              DarkOptions, DarkAccumulators, Int?) -> Void
    package let isa: KernelISA
    package let accumulate: Accumulate

    package init(isa: KernelISA, accumulate: @escaping Accumulate) { self.isa = isa; self.accumulate = accumulate }

    /// CalibCore's kernel (x86-64-v3, 16 pixels per register).
    package static let portable = DarkIntegerKernel(isa: .v3) { f, c, P, r, e, g, ig, o, a, s in
        DarkKernel.accumulateInteger(frames: f, frameCount: c, pixels: P, range: r, expectedGain: e, gates: g,
                                     integerGates: ig, options: o, into: a, frameStride: s)
    }
}

/// The kernels the numeric code runs. CalibCore holds the x86-64-v3 builds; a module compiled for a higher level
/// (CalibKernelsAVX512) installs its own at start-up when the CPU has the instructions and `CALIBCTL_ISA` does not
/// name a lower level. Every build gives the same bits (lane-wise IEEE operations in the same order; tested), so the
/// choice changes speed only.
public enum NumericKernels {
    private final class Table: @unchecked Sendable {
        let lock = NSLock()
        var gain = GainKernel.portable
        var darkInteger = DarkIntegerKernel.portable
    }
    private static let table = Table()

    /// The gain kernel in use.
    public static var gain: GainKernel {
        get { table.lock.withLock { table.gain } }
        set { table.lock.withLock { table.gain = newValue } }
    }

    /// The exact-integer dark stage-2 kernel in use.
    package static var darkInteger: DarkIntegerKernel {
        get { table.lock.withLock { table.darkInteger } }
        set { table.lock.withLock { table.darkInteger = newValue } }
    }

    /// The environment variable that caps the level: `x86-64-v3` keeps the AVX2 kernels on an AVX-512 machine
    /// (to compare the two, or to rule the wider build out).
    public static let isaVariable = "CALIBCTL_ISA"

    /// The highest level this process may use: what the CPU and kernel support (x86-64-v4 needs avx512f, bw, cd, dq,
    /// vl in /proc/cpuinfo, which Linux lists only when it saves the registers), capped by `CALIBCTL_ISA`.
    public static func allowedLevel(environment: [String: String] = ProcessInfo.processInfo.environment,
                                    cpuFlags: Set<Substring>? = nil) -> KernelISA {
        let flags = cpuFlags ?? hostFlags
        let host: KernelISA = ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy { flags.contains(Substring($0)) } ? .v4 : .v3
        guard let cap = environment[isaVariable].flatMap(KernelISA.init(rawValue:)) else { return host }
        return cap == .v3 ? .v3 : host
    }

    /// The CPU flags of the first processor in /proc/cpuinfo (empty elsewhere). Only the first processor's block is
    /// read (the file of a 256-core node is half a megabyte).
    public static let hostFlags: Set<Substring> = {
        guard let fh = FileHandle(forReadingAtPath: "/proc/cpuinfo") else { return [] }
        defer { try? fh.close() }
        guard let data = try? fh.read(upToCount: 16384) else { return [] }
        let text = String(decoding: data, as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        return flags(inLine: line)
    }()

    /// The flags of a /proc/cpuinfo `flags` line: the words after its colon (all its words without one).
    public static func flags(inLine line: Substring) -> Set<Substring> {
        let list = line.firstIndex(of: ":").map { line[line.index(after: $0)...] } ?? line
        return Set(list.split(whereSeparator: { $0 == " " || $0 == "\t" }))
    }
}
