import Foundation

/// Measures this machine's streaming read bandwidth: a large float buffer summed with SIMD16 vectors and four
/// independent accumulators per thread (the pattern a bandwidth-bound kernel needs), best of `repeats`.
public enum MemoryBandwidth {
    /// Bytes per second reading `bytes` with `threads` threads.
    public static func measureRead(bytes: Int = 1 << 30, threads: Int, repeats: Int = 5) -> Double {
        let count = bytes / 4
        let buf = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buf.deallocate() }
        buf.initialize(repeating: 1, count: count)
        let p = SendablePointer(buf)
        var best = Double.infinity
        let sink = ErrorBox()
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let per = (count / threads) & ~63
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                let start = t * per, end = t == threads - 1 ? count & ~63 : start + per
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
            best = min(best, dt)
        }
        return Double(count * 4) / best
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
}
