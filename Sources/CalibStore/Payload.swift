import CalibIO
import Foundation

/// One named n-d array of a payload: dtype, shape and the little-endian element bytes (row-major, C order).
public struct PayloadArray: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Little-endian element bytes, `count * dtype.size` of them.
    public let bytes: [UInt8]

    /// Creates an array from raw little-endian bytes; checks the byte count against dtype and shape.
    public init(name: String, dtype: DType, shape: [Int], bytes: [UInt8]) throws {
        try StoreNames.check(name, what: "dataset name")
        guard shape.allSatisfy({ $0 >= 0 }) else {
            throw StoreError.usage("dataset '\(name)' has a negative dimension in shape \(shape)")
        }
        guard let size = PayloadArray.byteCount(shape: shape, dtype: dtype) else {
            throw StoreError.bad("dataset '\(name)' has shape \(PayloadArray.shapeText(shape)), too large to address (more than 2^63 bytes)")
        }
        guard bytes.count == size else {
            throw StoreError.bad("dataset '\(name)' has \(bytes.count) bytes, but \(dtype) \(PayloadArray.shapeText(shape)) needs \(size)")
        }
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Creates an array from typed values (row-major).
    public init<T: HDF5Scalar>(name: String, values: [T], shape: [Int]? = nil) throws {
        let shape = shape ?? [values.count]
        let bytes = values.withUnsafeBytes { Array($0) }
        try self.init(name: name, dtype: T.dtype, shape: shape, bytes: bytes)
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// The number of elements of `shape`, or nil when it overflows `Int` (checked arithmetic: shapes come from files).
    public static func elementCount(_ shape: [Int]) -> Int? {
        var n = 1
        for d in shape {
            guard d >= 0 else { return nil }
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = m
        }
        return n
    }

    /// The byte count of `shape` elements of `dtype`, or nil when it overflows `Int`.
    public static func byteCount(shape: [Int], dtype: DType) -> Int? {
        guard let n = elementCount(shape) else { return nil }
        let (b, overflow) = n.multipliedReportingOverflow(by: dtype.size)
        return overflow ? nil : b
    }

    /// The values as `T`, which must be this array's dtype (no silent conversion).
    public func values<T: HDF5Scalar>(as type: T.Type = T.self) throws -> [T] {
        guard T.dtype == dtype else {
            throw StoreError.usage("dataset '\(name)' holds \(dtype), not \(T.dtype)",
                                   fix: "read it as \(dtype) or use doubles() to convert")
        }
        return [T](unsafeUninitializedCapacity: count) { buf, n in
            if count > 0 {
                PayloadFile.adviseHugePages(UnsafeMutableRawBufferPointer(buf))
                _ = bytes.withUnsafeBytes { memcpy(buf.baseAddress!, $0.baseAddress!, $0.count) }
            }
            n = count
        }
    }

    /// Calls `body` with the values viewed as `T` without copying (`T` must be this array's dtype).
    public func withUnsafeValues<T: HDF5Scalar, R>(as type: T.Type = T.self,
                                                   _ body: (UnsafeBufferPointer<T>) throws -> R) throws -> R {
        guard T.dtype == dtype else {
            throw StoreError.usage("dataset '\(name)' holds \(dtype), not \(T.dtype)")
        }
        return try bytes.withUnsafeBytes { raw in try body(raw.bindMemory(to: T.self)) }
    }

    /// The values converted to Double, whatever the dtype.
    public func doubles() -> [Double] {
        bytes.withUnsafeBytes { raw -> [Double] in
            switch dtype {
            case .float32: raw.bindMemory(to: Float.self).map(Double.init)
            case .float64: Array(raw.bindMemory(to: Double.self))
            case .int8: raw.bindMemory(to: Int8.self).map(Double.init)
            case .int16: raw.bindMemory(to: Int16.self).map(Double.init)
            case .int32: raw.bindMemory(to: Int32.self).map(Double.init)
            case .int64: raw.bindMemory(to: Int64.self).map(Double.init)
            case .uint8: raw.bindMemory(to: UInt8.self).map(Double.init)
            case .uint16: raw.bindMemory(to: UInt16.self).map(Double.init)
            case .uint32: raw.bindMemory(to: UInt32.self).map(Double.init)
            case .uint64: raw.bindMemory(to: UInt64.self).map(Double.init)
            }
        }
    }

    static func shapeText(_ shape: [Int]) -> String {
        shape.isEmpty ? "scalar" : shape.map(String.init).joined(separator: "x")
    }
    public var shapeText: String { PayloadArray.shapeText(shape) }
}

/// A payload: one or more named arrays plus attributes. Stored once per distinct content, in an HDF5 file named by
/// ``contentHash`` (docs/formats-store.md).
public struct Payload: Sendable, Equatable {
    /// The arrays, sorted by name.
    public let arrays: [PayloadArray]
    /// Attributes (normalised: a one-element list is stored as a scalar, as HDF5 reads it back).
    public let attributes: [String: AttributeValue]

    public init(arrays: [PayloadArray], attributes: [String: AttributeValue] = [:]) throws {
        guard !arrays.isEmpty else { throw StoreError.usage("a payload needs at least one dataset") }
        let sorted = arrays.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where a.name == b.name {
            throw StoreError.usage("the payload has two datasets named '\(a.name)'")
        }
        var norm: [String: AttributeValue] = [:]
        for (k, v) in attributes {
            try StoreNames.check(k, what: "attribute name")
            if case .string(let s) = v, s.utf8.contains(0) {
                throw StoreError.usage("attribute '\(k)' holds a NUL character")
            }
            switch v {
            case .ints(let a) where a.count == 1: norm[k] = .int(a[0])
            case .doubles(let a) where a.count == 1: norm[k] = .double(a[0])
            default: norm[k] = v
            }
        }
        self.arrays = sorted
        self.attributes = norm
    }

    /// The array with this name, if any.
    public subscript(_ name: String) -> PayloadArray? { arrays.first { $0.name == name } }

    /// Total element bytes.
    public var byteCount: Int { arrays.reduce(0) { $0 + $1.bytes.count } }

    /// The canonical content hash (hash rule `calibctl-content-v1`, docs/formats-store.md): SHA-256 over
    /// a header, then for each dataset in byte order of its name: name, dtype, rank, dims and the little-endian
    /// bytes; then for each attribute in byte order of its name: name, kind and value. Every field is
    /// length-prefixed, so no two different payloads share a hash input.
    public var contentHash: String {
        let h = ContentHasher()
        h.begin(datasets: arrays.count)
        for a in arrays {
            h.dataset(name: a.name, dtype: a.dtype, shape: a.shape, byteCount: a.bytes.count)
            a.bytes.withUnsafeBytes { if let b = $0.baseAddress { h.bytes(b, count: $0.count) } }
        }
        h.attributes(attributes)
        return h.finish()
    }

    /// The name of the hash rule, recorded in every payload file.
    public static let hashRule = "calibctl-content-v1"
}
