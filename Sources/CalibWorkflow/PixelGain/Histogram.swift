/// A fixed-bin histogram with under/overflow, filled in one pass (streaming-friendly).
struct Histogram: Codable, Sendable {
    let lo: Double
    let hi: Double
    var counts: [Int]
    var underflow = 0
    var overflow = 0
    var nan = 0

    init(lo: Double, hi: Double, bins: Int) {
        self.lo = lo
        self.hi = hi
        counts = [Int](repeating: 0, count: bins)
    }

    var total: Int { counts.reduce(0, +) + underflow + overflow }

    mutating func fill(_ x: Double) {
        guard !x.isNaN else { nan += 1; return }
        if x < lo { underflow += 1; return }
        if x >= hi { overflow += 1; return }
        let i = Int((x - lo) / (hi - lo) * Double(counts.count))
        counts[min(i, counts.count - 1)] += 1
    }

    mutating func fill<S: Sequence>(_ xs: S) where S.Element == Float { for x in xs { fill(Double(x)) } }

    mutating func merge(_ other: Histogram) {
        precondition(other.counts.count == counts.count && other.lo == lo && other.hi == hi)
        for i in counts.indices { counts[i] += other.counts[i] }
        underflow += other.underflow
        overflow += other.overflow
        nan += other.nan
    }

    func binCenter(_ i: Int) -> Double { lo + (Double(i) + 0.5) * (hi - lo) / Double(counts.count) }
}
