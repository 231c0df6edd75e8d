import Foundation
import CalibCore

/// The numeric kernels are compiled for x86-64-v3 (AVX2 + FMA, Package.swift `numericFlags`); on an older CPU they
/// would die with SIGILL in the middle of a job. calibctl checks at start-up and says so instead.
enum CPUFeatures {
    static let required = ["avx2", "fma", "bmi2"]

    /// The required flags missing from a `/proc/cpuinfo` `flags` line.
    static func missing(inFlags flags: String) -> [String] {
        missing(from: NumericKernels.flags(inLine: Substring(flags)))
    }

    static func missing(from have: Set<Substring>) -> [String] {
        required.filter { !have.contains(Substring($0)) }
    }

    /// Missing flags of this machine's first CPU; empty when they are all there or when this is not x86-64 Linux.
    static func missingOnThisMachine() -> [String] {
        #if arch(x86_64) && os(Linux)
        let have = NumericKernels.hostFlags
        return have.isEmpty ? [] : missing(from: have)
        #else
        return []
        #endif
    }
}
