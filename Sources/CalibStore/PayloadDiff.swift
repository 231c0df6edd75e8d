import CalibIO

/// Per-dataset comparison of two payloads.
public struct PayloadDiff: Sendable, Codable {
    public struct DatasetDiff: Sendable, Codable, Equatable {
        public var name: String
        /// "compared", "only in a", "only in b", "shape differs", "dtype differs"
        public var status: String
        public var elements: Int
        public var changed: Int
        public var maxAbsChange: Double
        /// max |b - a| / |a| over elements with a != 0.
        public var maxRelChange: Double
        /// Elements zero in a and non-zero in b (for masks/status: good -> flagged, or masked -> used).
        public var becameNonZero: Int
        public var becameZero: Int
    }
    public var a: String
    public var b: String
    public var datasets: [DatasetDiff]
    public var attributesChanged: [String]
    public var identical: Bool { a == b }

    /// Compares every dataset by name; arrays of different dtype are compared as doubles when shapes match.
    public init(a: Payload, b: Payload, nameA: String, nameB: String) {
        self.a = nameA
        self.b = nameB
        var out: [DatasetDiff] = []
        let names = Set(a.arrays.map(\.name) + b.arrays.map(\.name)).sorted()
        for n in names {
            guard let x = a[n] else { out.append(.init(name: n, status: "only in b", elements: b[n]!.count, changed: 0, maxAbsChange: 0, maxRelChange: 0, becameNonZero: 0, becameZero: 0)); continue }
            guard let y = b[n] else { out.append(.init(name: n, status: "only in a", elements: x.count, changed: 0, maxAbsChange: 0, maxRelChange: 0, becameNonZero: 0, becameZero: 0)); continue }
            guard x.shape == y.shape else {
                out.append(.init(name: n, status: "shape differs (\(x.shapeText) vs \(y.shapeText))", elements: x.count, changed: 0, maxAbsChange: 0, maxRelChange: 0, becameNonZero: 0, becameZero: 0))
                continue
            }
            let da = x.doubles(), db = y.doubles()
            var changed = 0, nz = 0, z = 0
            var maxAbs = 0.0, maxRel = 0.0
            for i in 0..<da.count {
                let u = da[i], v = db[i]
                if u == v || (u.isNaN && v.isNaN) { continue }
                changed += 1
                let d = abs(v - u)
                if d > maxAbs || d.isNaN { maxAbs = d.isNaN ? .nan : Swift.max(maxAbs, d) }
                if u != 0 { maxRel = Swift.max(maxRel, d / abs(u)) }
                if u == 0 && v != 0 { nz += 1 }
                if u != 0 && v == 0 { z += 1 }
            }
            out.append(.init(name: n, status: x.dtype == y.dtype ? "compared" : "dtype differs (\(x.dtype) vs \(y.dtype)), compared as float64",
                             elements: da.count, changed: changed, maxAbsChange: maxAbs, maxRelChange: maxRel,
                             becameNonZero: nz, becameZero: z))
        }
        datasets = out
        attributesChanged = Set(a.attributes.keys).union(b.attributes.keys).filter { a.attributes[$0] != b.attributes[$0] }.sorted()
    }
}
