@testable import CalibCLI
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
}
