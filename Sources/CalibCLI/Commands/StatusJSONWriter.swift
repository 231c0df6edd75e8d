import CalibRunner
import Foundation

/// `jobs status --json` of a large job set: the `shards` array written by hand, the rest by JSONEncoder.
///
/// JSONEncoder spent ~0.7 s on the 100,000 entries of a finished 100,000-shard set (33 MB pretty printed), which
/// put the whole command at the 1 s limit. The shard entries have a fixed set of scalar fields, so they are written
/// here directly, in the same layout (pretty, keys sorted, absent values omitted, `/` escaped as JSONEncoder does);
/// everything else (and any status with `--history`) still goes through JSONEncoder. The test
/// `JobsStatusTimeTests.handWrittenShardsMatchJSONEncoder` compares the two outputs byte for byte.
enum StatusJSONWriter {
    /// The status as `jobs status --json` prints it (without the final newline).
    static func encode(_ status: JobSetStatus, time: @escaping @Sendable (Date) -> String) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(time(date))
        }
        guard let shards = status.shards, shards.count >= 100, shards.allSatisfy({ $0.history == nil }) else {
            return try enc.encode(status)
        }
        var rest = status
        rest.shards = nil
        let head = try enc.encode(rest)
        // "shards" sorts right after "shardCount" (a top-level key, two spaces in; never the last key: "succeeded"
        // follows), so the array goes after that line.
        let marker = Array("\n  \"shardCount\" : ".utf8)
        guard let at = head.firstRange(of: marker), let eol = head[at.upperBound...].firstIndex(of: 0x0A) else {
            return try enc.encode(status)
        }
        var out = [UInt8]()
        out.reserveCapacity(head.count + shards.count * 330)
        out.append(contentsOf: head[..<(eol + 1)])
        out.append(contentsOf: "  \"shards\" : [\n".utf8)
        for (k, s) in shards.enumerated() {
            write(s, into: &out, time: time)
            out.append(contentsOf: (k + 1 < shards.count ? ",\n" : "\n").utf8)
        }
        out.append(contentsOf: "  ],\n".utf8)
        out.append(contentsOf: head[(eol + 1)...])
        return Data(out)
    }

    /// One shard entry, indented as an element of a top-level array (four spaces, fields six).
    static func write(_ s: ShardStatus, into out: inout [UInt8], time: (Date) -> String) {
        var first = true
        func key(_ k: String) {
            out.append(contentsOf: (first ? "    {\n      \"" : ",\n      \"").utf8)
            out.append(contentsOf: k.utf8)
            out.append(contentsOf: "\" : ".utf8)
            first = false
        }
        func string(_ k: String, _ v: String?) {
            guard let v else { return }
            key(k)
            quote(v, into: &out)
        }
        func raw(_ k: String, _ v: String?) {
            guard let v else { return }
            key(k)
            out.append(contentsOf: v.utf8)
        }
        raw("attempts", String(s.attempts))
        string("batchID", s.batchID)
        raw("cpuSeconds", s.cpuSeconds.map(number))
        string("ended", s.ended.map(time))
        raw("exitCode", s.exitCode.map { String($0) })
        string("failureClass", s.failureClass?.rawValue)
        raw("index", String(s.index))
        string("key", s.key)
        string("nextAction", s.nextAction)
        raw("peakMemoryMB", s.peakMemoryMB.map(number))
        string("reason", s.reason)
        raw("signal", s.signal.map { String($0) })
        string("started", s.started.map(time))
        string("state", s.state?.rawValue)
        out.append(contentsOf: "\n    }".utf8)
    }

    /// A Double as JSONEncoder writes it (`3`, `0.25`, `1e-05`); non-finite values cannot occur in a status.
    static func number(_ v: Double) -> String {
        if v.isFinite, v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// A JSON string as JSONEncoder writes it: `"` `\` and control characters escaped, `/` as `\/`.
    static func quote(_ s: String, into out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x2F: out.append(contentsOf: [0x5C, 0x2F])
            case 0x0A: out.append(contentsOf: [0x5C, 0x6E])
            case 0x0D: out.append(contentsOf: [0x5C, 0x72])
            case 0x09: out.append(contentsOf: [0x5C, 0x74])
            case 0x08: out.append(contentsOf: [0x5C, 0x62])
            case 0x0C: out.append(contentsOf: [0x5C, 0x66])
            case 0..<0x20: out.append(contentsOf: String(format: "\\u%04x", b).utf8)
            default: out.append(b)
            }
        }
        out.append(0x22)
    }
}
