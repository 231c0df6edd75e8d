import ArgumentParser
import CalibCore
import CalibStore
import Foundation

/// `calibctl bench store`.
struct StoreBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store", abstract: "Benchmark the constants store: lookups, puts, large reads vs h5py.",
        discussion: reflow("""
        Fills a scratch store with --entries validity entries over --detectors x --types, then prints the median
        in-process lookup latency and lookups/s, the latency of a `calibctl get` process, put latency for a 1 MB and
        a large payload, and read throughput of the large float32 payload with and without hash verification,
        next to h5py reading the same file in the same run. Then one tag of --single-tag-entries entries (per-run
        constants, 1% overlapping): lookups, `calibctl get` against a one-entry store, timeline, lint and LCLS export. Build with `swift build -c release` first.

        Example: calibctl bench store --dir /tmp/bench-store --json
        """))
    @Option(help: "Scratch store directory (removed first).") var dir: String = NSTemporaryDirectory() + "calibctl-bench-store"
    @Option(help: "IOV entries to insert.") var entries: Int = 100_000
    @Option(help: "Detectors the entries are spread over.") var detectors: Int = 100
    @Option(help: "Calibration types per detector.") var types: Int = 10
    @Option(help: "In-process lookups to time.") var lookups: Int = 20_000
    @Option(name: .customLong("large-mb"), help: "Size of the large payload in MB.") var largeMB: Int = 128
    @Option(name: .customLong("cli-calls"), help: "`calibctl get` processes to time.") var cliCalls: Int = 20
    @Option(help: "python3 with h5py for the comparison (default: python3 on PATH; 'none' skips).") var python: String?
    @Option(name: .customLong("single-tag-entries"), help: "Entries of the one-tag scale test (0 skips it).") var singleTagEntries: Int = 1_000_000
    @Flag(name: .customLong("keep"), help: "Keep the scratch store.") var keep = false
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        var s = StoreBenchmark.Settings(directory: dir)
        s.entries = entries; s.detectors = detectors; s.types = types; s.lookups = lookups; s.largeMB = largeMB; s.cliCalls = cliCalls
        s.singleTagEntries = singleTagEntries
        s.executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if python != "none" {
            s.python = python ?? (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":")
                .map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }
        let r = try StoreBenchmark.run(s) { if !json { Diagnostics.info($0) } }
        if !keep { try? FileManager.default.removeItem(atPath: dir) }
        if json { try printJSON(r); return }
        print(String(format: "entries %d (%d detectors x %d types), fill %.1f s", r.entries, r.detectors, r.types, r.fillSeconds))
        print(String(format: "in-process lookup: median %.2f us, p90 %.2f us; %.0f lookups/s first pass (loads each tag once), %.0f lookups/s warm",
                     r.lookupMedianMicroseconds, r.lookupP90Microseconds, r.lookupsPerSecond, r.warmLookupsPerSecond))
        print(String(format: "in-process lookup through a global tag: median %.2f us", r.globalTagLookupMedianMicroseconds))
        if let m = r.cliCallMedianMilliseconds { print(String(format: "CLI `calibctl get`: median %.1f ms per call, %.1f calls/s", m, 1000 / m)) }
        print(String(format: "put: 1 MB %.1f ms, %d MB %.0f ms", r.put1MBMilliseconds, r.largeMB, r.putLargeMilliseconds))
        print(String(format: "read %d MB float32: %.0f MB/s verified, %.0f MB/s unverified (%.1f ms); typed copy %.1f ms", r.largeMB, r.readLargeVerifiedMBps, r.readLargeUnverifiedMBps, r.readLargeUnverifiedSeconds * 1e3, r.typedCopyMilliseconds))
        if let h = r.h5pyReadSeconds, let x = r.speedupVersusH5py {
            print(String(format: "h5py same file: %.1f ms (%.0f MB/s); h5py time / calibctl time = %.2f", h * 1e3, r.h5pyReadMBps ?? 0, x))
        }
        if let c = r.h5pyReadCPUSeconds {
            print(String(format: "CPU time per read (user+system): calibctl %.1f ms, h5py %.1f ms", r.readLargeUnverifiedCPUSeconds * 1e3, c * 1e3))
        }
        if let t = r.singleTag {
            print(String(format: "one tag of %d entries (fill %.1f s): lookup median %.2f us (p90 %.2f us) after loading its ranges once (%.2f s); SQL lookup median %.1f us",
                         t.entries, t.fillSeconds, t.lookupMedianMicroseconds, t.lookupP90Microseconds, t.indexLoadSeconds, t.sqlLookupMedianMicroseconds))
            if let c = t.cliCallMedianMilliseconds, let tiny = t.tinyStoreCLICallMedianMilliseconds, let x = t.cliRatio {
                print(String(format: "  `calibctl get`: %.1f ms per call, one-entry store %.1f ms: ratio %.2f", c, tiny, x))
            }
            print(String(format: "  timeline (tag show) %.2f s, %d segments; lint %.2f s, %d findings; LCLS export of %d entries %.2f s, %d files",
                         t.timelineSeconds, t.timelineSegments, t.lintSeconds, t.lintFindings, t.entries, t.lclsExportSeconds, t.lclsFiles))
        }
    }
}
