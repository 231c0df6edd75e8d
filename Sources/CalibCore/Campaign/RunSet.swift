import Foundation

/// A set of run numbers written as ranges: `5000-5100`, `5000-5100,5200,5300-5310`.
public struct RunSet: Sendable, Equatable, Codable, CustomStringConvertible {
    public private(set) var ranges: [ClosedRange<Int>]

    /// Parses `A-B,C,...`; ranges are sorted and merged. Throws `CampaignError.badRuns` on bad text.
    public init(parsing text: String) throws {
        var rs: [ClosedRange<Int>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let p = part.trimmingCharacters(in: .whitespaces)
            let ends = p.split(separator: "-", omittingEmptySubsequences: false)
            guard (1...2).contains(ends.count), let lo = Int(ends[0]), let hi = Int(ends.last!), lo >= 0, lo <= hi else {
                throw CampaignError.badRuns(text: text, part: p)
            }
            rs.append(lo...hi)
        }
        self.init(ranges: rs)
    }

    public init(ranges: [ClosedRange<Int>]) {
        var merged: [ClosedRange<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            if let last = merged.last, r.lowerBound <= last.upperBound + 1 {
                merged[merged.count - 1] = last.lowerBound...Swift.max(last.upperBound, r.upperBound)
            } else {
                merged.append(r)
            }
        }
        self.ranges = merged
    }

    public var count: Int { ranges.reduce(0) { $0 + $1.count } }
    public func contains(_ run: Int) -> Bool { ranges.contains { $0.contains(run) } }
    /// Every run, ascending.
    public var runs: [Int] { ranges.flatMap { Array($0) } }

    public var description: String {
        ranges.map { $0.count == 1 ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",")
    }
}

