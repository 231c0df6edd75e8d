@testable import CalibCLI
import CalibRunner
import Foundation
import Testing

/// `jobs status --json` writes times with a hand-made RFC 3339 formatter (300,000 times in a 100,000-shard status):
/// it must give exactly what ISO8601DateFormatter ([.withInternetDateTime, .withFractionalSeconds]) gives.
@Suite struct JobsStatusTimeTests {
    @Test func fastTimesMatchISO8601DateFormatter() {
        var rng = SystemRandomNumberGenerator()
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 1_796_526_897.0347633),
                     Date(timeIntervalSince1970: 1_796_526_897.9999), Date(timeIntervalSince1970: 951_782_400.5)]
        for _ in 0..<20_000 { dates.append(Date(timeIntervalSince1970: Double.random(in: 0...4_102_444_800, using: &rng))) }
        for d in dates {
            #expect(JobsCommand.fastISOTime(d) == JobsCommand.isoFormatter.string(from: d), "\(d.timeIntervalSince1970)")
        }
    }

    /// Issue 14 (`jobs status --json` of a finished 100,000-shard set): the shard entries are written by hand
    /// (`StatusJSONWriter`); the output must be byte for byte what JSONEncoder writes, for every field, escapes in
    /// reasons, fractional numbers and absent values.
    @Test func handWrittenShardsMatchJSONEncoder() throws {
        var shards: [[String: Any]] = []
        for i in 0..<300 {
            var s: [String: Any] = ["index": i, "key": "chunk=\(i)/x", "attempts": i % 3]
            if i % 2 == 0 {
                s["state"] = "succeeded"; s["batchID"] = "123_\(i)"; s["exitCode"] = 0
                s["started"] = 8e8 + Double(i) * 0.37; s["ended"] = 8e8 + Double(i)
                s["cpuSeconds"] = Double(i) * 0.01; s["peakMemoryMB"] = Double(i) * 1.5 + 1e-7
            }
            if i % 5 == 1 {
                s["state"] = "failed"; s["failureClass"] = "user-error"; s["signal"] = 9; s["exitCode"] = -1
                s["reason"] = "exit 3: \"quoted\" a/b \\ tab\t nl\n cr\r ctrl\u{1}\u{1f} é ü 😀"
                s["nextAction"] = "fix the cause, then `calibctl jobs retry`"
            }
            if i == 7 { s["cpuSeconds"] = 1e20; s["peakMemoryMB"] = 123456789.125 }
            shards.append(s)
        }
        let policy = try JSONSerialization.jsonObject(with: JSONEncoder().encode(RetryPolicy.default))
        let object: [String: Any] = [
            "schemaVersion": 2, "name": "bench", "scheduler": "slurm", "campaign": "c/1", "created": 8e8,
            "shardCount": 300, "counts": ["succeeded": 150, "failed": 60], "failureClasses": ["user-error": 60],
            "finished": true, "succeeded": false, "policy": policy, "failed": [shards[1]], "held": [] as [Any],
            "warnings": ["peak memory / request"], "shards": shards,
        ]
        let status = try JSONDecoder().decode(JobSetStatus.self, from: JSONSerialization.data(withJSONObject: object))
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(JobsCommand.fastISOTime(date))
        }
        let expected = String(decoding: try enc.encode(status), as: UTF8.self)
        let written = String(decoding: try StatusJSONWriter.encode(status, time: JobsCommand.fastISOTime), as: UTF8.self)
        #expect(written == expected)
        if written != expected {
            let a = written.split(separator: "\n"), b = expected.split(separator: "\n")
            if let k = zip(a, b).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                Issue.record("first difference at line \(k + 1):\n\(a[k])\n\(b[k])")
            }
        }
    }
}
