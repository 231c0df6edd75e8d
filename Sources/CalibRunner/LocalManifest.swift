import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk protocol between `LocalScheduler` (in calibctl commands) and `LocalExecutor` (the detached process
/// that runs one submission). Directory `ROOT/<submission name>/`:
/// - `manifest.json`: the submission (shards, commands, limits), written before the executor starts.
/// - `executor.pid`: `PID START HOST` of the executor (START = /proc start time, guards against pid reuse); when it
///   has finished, `done HOST CPU CHILDREN_CPU` (CPU seconds of the executor and of the shards it waited for).
/// - `events.log`: append-only lines `S idx pid epoch` (started), `E idx exit|signal value start end cpu maxrssKB flags`
///   (ended; flags `-`, `timeout` or `cancel`), `C idx epoch` (cancelled before it started). Lines are written with
///   one `write(2)` on an O_APPEND descriptor, so readers never see interleaved halves; a torn last line is ignored.
/// - `cancel.log`: indices (one a line, or `all`) whose cancellation was requested.
public struct LocalManifest: Sendable, Codable {
    public var submission: Submission
    public var concurrency: Int
    public var graceSeconds: Double
    public var slotDirectory: String
    /// Enforce `memoryMB` with `ulimit -v` (off by default: virtual-size limits break runtimes that reserve address space).
    public var enforceMemory: Bool
    /// The worker command prefix (`calibctl job run`) whose shards of kind `command` the executor runs itself: it
    /// starts the command directly (own process group, the same files, limits and signals) and writes the same result
    /// record, instead of starting one `calibctl job run` per shard (docs/runner.md). Nil (older manifests): off.
    public var directWorker: [String]?

    static let name = "manifest.json"
}

/// What `events.log` says about one shard.
struct LocalShardRecord {
    var pid: pid_t?
    var started: Double?
    var exitCode: Int32?
    var signal: Int32?
    var ended: Double?
    var cpu: Double?
    var maxRSSKB: Double?
    var flags: String?
    var cancelledBeforeStart = false
}

enum LocalEvents {
    /// Parses `events.log` into records by shard index.
    static func read(_ path: String) -> [Int: LocalShardRecord] {
        guard let data = FileManager.default.contents(atPath: path) else { return [:] }
        var out: [Int: LocalShardRecord] = [:]
        out.reserveCapacity(1024)
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            var lineStart = 0
            let bytes = raw.bindMemory(to: UInt8.self)
            for i in 0..<bytes.count where bytes[i] == 10 {
                let line = String(decoding: UnsafeBufferPointer(rebasing: bytes[lineStart..<i]), as: UTF8.self)
                lineStart = i + 1
                let f = line.split(separator: " ")
                guard f.count >= 3, let idx = Int(f[1]) else { continue }
                var r = out[idx] ?? LocalShardRecord()
                switch f[0] {
                case "S":
                    r.pid = pid_t(f[2])
                    r.started = f.count > 3 ? Double(f[3]) : nil
                case "E" where f.count >= 9:
                    if f[2] == "exit" { r.exitCode = Int32(f[3]) } else { r.signal = Int32(f[3]) }
                    r.started = Double(f[4]) ?? r.started
                    r.ended = Double(f[5])
                    r.cpu = Double(f[6])
                    r.maxRSSKB = Double(f[7])
                    r.flags = String(f[8])
                case "C":
                    r.cancelledBeforeStart = true
                    r.ended = Double(f[2])
                default: continue
                }
                out[idx] = r
            }
        }
        return out
    }

    /// Appends one line with a single write(2) on an O_APPEND descriptor.
    static func append(_ line: String, fd: Int32) {
        var s = line
        if !s.hasSuffix("\n") { s += "\n" }
        _ = s.withCString { write(fd, $0, strlen($0)) }
    }

    /// Reads `cancel.log`: the cancelled indices and whether everything was cancelled.
    static func readCancels(_ path: String) -> (all: Bool, indices: Set<Int>) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return (false, []) }
        var all = false
        var set = Set<Int>()
        for l in text.split(separator: "\n") {
            if l == "all" { all = true } else if let i = Int(l) { set.insert(i) }
        }
        return (all, set)
    }
}
