import Foundation

/// Resolution of overlapping validity entries into non-overlapping segments (newest insertion wins), in
/// O(n log n): a sweep over the range boundaries with a max-heap of the entries that have started, keyed by
/// insertion order; an entry whose range has ended is dropped when it reaches the top.
enum IOVTimeline {
    /// One resolved segment: runs `first...last` (nil: open-ended) won by the entry at index `winner`.
    struct Segment: Equatable { var first: Int64; var last: Int64?; var winner: Int }

    /// `count` ranges in insertion order (oldest first), read through `first(i)`/`last(i)`. Segments follow run
    /// order; runs no entry covers are absent; adjacent segments with the same winner are merged.
    static func resolve(count: Int, first: (Int) -> Int64, last: (Int) -> Int64?) -> [Segment] {
        guard count > 0 else { return [] }
        let byFirst = (0..<count).sorted { first($0) < first($1) }
        var points: [Int64] = []
        points.reserveCapacity(2 * count)
        for i in 0..<count {
            points.append(first(i))
            if let l = last(i), l < .max { points.append(l + 1) }
        }
        points.sort()
        var heap = MaxHeap()
        var next = 0
        var out: [Segment] = []
        var k = 0
        while k < points.count {
            let start = points[k]
            var j = k + 1
            while j < points.count && points[j] == start { j += 1 }
            // No entry starts or ends inside [start, next point - 1], so one winner holds for the whole segment.
            let end: Int64? = j < points.count ? points[j] - 1 : nil
            while next < byFirst.count && first(byFirst[next]) <= start { heap.push(byFirst[next]); next += 1 }
            while let top = heap.top, let l = last(top), l < start { heap.pop() }
            if let w = heap.top {
                if let prev = out.last, prev.winner == w, let pl = prev.last, pl + 1 == start {
                    out[out.count - 1].last = end
                } else {
                    out.append(Segment(first: start, last: end, winner: w))
                }
            }
            k = j
        }
        return out
    }

    /// `entries` in insertion order (oldest first).
    static func resolve(_ entries: [IOVEntry]) -> [(runs: RunRange, entry: IOVEntry)] {
        resolve(count: entries.count, first: { entries[$0].runs.first }, last: { entries[$0].runs.last }).map {
            (try! RunRange(first: $0.first, last: $0.last), entries[$0.winner])
        }
    }

    /// The segment containing `run` in segments sorted by run (binary search).
    static func find(_ segments: [Segment], run: Int64) -> Segment? {
        var lo = 0, hi = segments.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if segments[mid].first <= run { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let s = segments[lo - 1]
        if let l = s.last, l < run { return nil }
        return s
    }
}

/// The order of a `BinaryHeap`: `above(a, b)` is true when `a` belongs nearer the top than `b`.
protocol HeapOrdering {
    associatedtype Element
    static func above(_ a: Element, _ b: Element) -> Bool
}

/// A binary heap; the ordering is a type, so each use is specialised (no closure call per comparison).
struct BinaryHeap<Order: HeapOrdering> {
    private var a: [Order.Element] = []
    var top: Order.Element? { a.first }
    var elements: [Order.Element] { a }
    var isEmpty: Bool { a.isEmpty }
    mutating func push(_ x: Order.Element) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !Order.above(a[i], a[p]) { break }
            a.swapAt(p, i); i = p
        }
    }
    mutating func pop() {
        guard !a.isEmpty else { return }
        a.swapAt(0, a.count - 1)
        a.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < a.count && Order.above(a[l], a[m]) { m = l }
            if r < a.count && Order.above(a[r], a[m]) { m = r }
            if m == i { break }
            a.swapAt(m, i); i = m
        }
    }
}

/// Entry indices, the largest (newest insertion) on top.
enum LargestFirst: HeapOrdering {
    static func above(_ a: Int, _ b: Int) -> Bool { a > b }
}

/// (key, value) pairs, the smallest key on top.
enum SmallestKeyFirst: HeapOrdering {
    static func above(_ a: (key: Int64, value: Int), _ b: (key: Int64, value: Int)) -> Bool { a.key < b.key }
}

typealias MaxHeap = BinaryHeap<LargestFirst>
typealias MinHeap = BinaryHeap<SmallestKeyFirst>

/// The validity entries of one tag held in memory for repeated lookups: ids, ranges and insertion times only
/// (oldest insertion first), with the resolved timeline per as-of cap built on first use. A lookup is a binary
/// search; the full entry is read by id.
final class TagIndex {
    let ids: [Int64]
    let firsts: [Int64]
    let lasts: [Int64?]
    let insertedAt: [Int64]
    private var resolved: [Int64: [IOVTimeline.Segment]] = [:]

    init(ids: [Int64], firsts: [Int64], lasts: [Int64?], insertedAt: [Int64]) {
        self.ids = ids; self.firsts = firsts; self.lasts = lasts; self.insertedAt = insertedAt
    }

    /// The id of the entry that wins at `run` among entries inserted at or before `asOf`.
    func winner(run: Int64, asOf: Int64) -> Int64? {
        // Entries are in insertion order: those inserted by `asOf` are a prefix.
        var lo = 0, hi = insertedAt.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if insertedAt[mid] <= asOf { lo = mid + 1 } else { hi = mid }
        }
        let n = lo
        let segments: [IOVTimeline.Segment]
        if let s = resolved[Int64(n)] {
            segments = s
        } else {
            if resolved.count >= 8 { resolved.removeAll() }
            let f = firsts, l = lasts
            segments = IOVTimeline.resolve(count: n, first: { f[$0] }, last: { l[$0] })
            resolved[Int64(n)] = segments
        }
        return IOVTimeline.find(segments, run: run).map { ids[$0.winner] }
    }
}
