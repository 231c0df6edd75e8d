import Foundation

/// Measures this machine's streaming read bandwidth: a large float buffer summed with SIMD16 vectors and four
/// independent accumulators per thread (the pattern a bandwidth-bound kernel needs).
///
/// On a shared VM the figure swings by 30-50% between runs, so the benchmarks do not compare a kernel with a probe taken
/// minutes earlier: `interleaved(...)` alternates probe passes with kernel runs and reports both series; fractions are
/// computed against the probe's median (docs/benchmarks-numerics.md).
public enum MemoryBandwidth {
    /// A probe buffer that is allocated and touched once and then read as often as needed.
    public final class Probe: @unchecked Sendable {
        public let bytes: Int
        private let buffer: UnsafeMutablePointer<Float>
        private let count: Int

        public init(bytes: Int = 1 << 30) {
            count = (bytes / 4) & ~63
            self.bytes = count * 4
            buffer = .allocate(capacity: count)
            buffer.initialize(repeating: 1, count: count)
        }

        deinit { buffer.deallocate() }

        /// One pass over the buffer on `threads` threads: bytes per second.
        public func measure(threads: Int) -> Double {
            let p = SendablePointer(buffer), count = self.count
            let sink = ErrorBox()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let per = (count / threads) & ~63
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let start = t * per, end = t == threads - 1 ? count : start + per
                let raw = UnsafeRawPointer(p.base)
                var a = SIMD16<Float>.zero, b = a, c = a, d = a
                var i = start
                while i + 64 <= end {
                    a += raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
                    b += raw.loadUnaligned(fromByteOffset: 4 * (i + 16), as: SIMD16<Float>.self)
                    c += raw.loadUnaligned(fromByteOffset: 4 * (i + 32), as: SIMD16<Float>.self)
                    d += raw.loadUnaligned(fromByteOffset: 4 * (i + 48), as: SIMD16<Float>.self)
                    i += 64
                }
                if ((a + b + c + d).sum()) == -1 { sink.set(NumericsError.badParameter("", "", fix: "")) }
            }
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
            return Double(count * 4) / dt
        }
    }

    /// Bytes per second reading `bytes` with `threads` threads, best of `repeats`.
    public static func measureRead(bytes: Int = 1 << 30, threads: Int, repeats: Int = 5) -> Double {
        let probe = Probe(bytes: bytes)
        return (0..<max(1, repeats)).map { _ in probe.measure(threads: threads) }.max() ?? 0
    }

    /// `rounds` rounds of (one probe pass, one timed `kernel` run), so both see the same machine state.
    /// Returns the probe's bytes/s and the kernel's wall seconds, one entry per round.
    public static func interleaved(rounds: Int, threads: Int, probe: Probe,
                                   _ kernel: () throws -> Void) rethrows -> (probe: [Double], kernelSeconds: [Double]) {
        var bw: [Double] = [], secs: [Double] = []
        for _ in 0..<max(1, rounds) {
            bw.append(probe.measure(threads: threads))
            let t0 = DispatchTime.now().uptimeNanoseconds
            try kernel()
            secs.append(Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        return (bw, secs)
    }
}

/// Min, median and max of a series of measurements (the benchmarks' way of reporting a noisy figure).
public struct Spread: Codable, Sendable, Equatable {
    public var min: Double
    public var median: Double
    public var max: Double

    public init(_ values: [Double]) {
        let s = values.sorted()
        min = s.first ?? .nan
        max = s.last ?? .nan
        median = s.isEmpty ? .nan : (s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2)
    }

    public func scaled(by f: Double) -> Spread {
        var r = self
        r.min *= f; r.median *= f; r.max *= f
        return r
    }
}

/// Wall-clock timing helpers for the benchmarks.
public enum Stopwatch {
    /// Best CPU time of the calling thread over `repeats` runs of a single-threaded `body`, in seconds
    /// (`CLOCK_THREAD_CPUTIME_ID`): unaffected by other processes competing for the cores.
    public static func bestThreadCPU(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        func now() -> Double {
            var ts = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
        }
        for _ in 0..<max(1, repeats) {
            let t0 = now()
            try body()
            best = min(best, now() - t0)
        }
        return best
    }

    /// Best wall time of `repeats` runs of `body`, in seconds.
    public static func best(repeats: Int, _ body: () throws -> Void) rethrows -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9)
        }
        return best
    }

    /// Wall seconds of a subprocess run to completion (stdout and stderr to /dev/null); throws if it fails.
    /// Started with `posix_spawn` and reaped with a blocking `waitpid`: Foundation's `Process.run()` +
    /// `waitUntilExit()` added 30-40 ms per run on this machine (measured: `cat` of 695 MB 0.051 s through it,
    /// 0.02 s under /usr/bin/time), more than the command being timed.
    public static func process(_ executable: String, _ arguments: [String]) throws -> Double {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        let argv = [executable] + arguments
        var cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cenv: [UnsafeMutablePointer<CChar>?] = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cargv + cenv { free(p) } }
        var pid: pid_t = 0
        let t0 = DispatchTime.now().uptimeNanoseconds
        let rc = posix_spawn(&pid, executable, &fa, nil, &cargv, &cenv)
        guard rc == 0 else {
            throw NumericsError.badParameter("benchmark", "cannot start \(executable): \(String(cString: strerror(rc)))",
                                             fix: "check that the executable exists and is executable")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        // Exited normally with status 0: (status & 0x7f) == 0 and (status >> 8) & 0xff == 0.
        guard status == 0 else {
            throw NumericsError.badParameter("benchmark", "\(executable) \(arguments.joined(separator: " ")) ended with wait status \(status)",
                                             fix: "run the command by hand to see its error")
        }
        return dt
    }
}
