/// Element types a payload or an input dataset may hold. Files are always written little-endian.
public enum DType: String, Sendable, Codable, CaseIterable, CustomStringConvertible {
    case float32, float64, int8, int16, int32, int64, uint8, uint16, uint32, uint64

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .int8, .uint8: 1
        case .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .float64, .int64, .uint64: 8
        }
    }

    public var isFloatingPoint: Bool { self == .float32 || self == .float64 }
    public var isSigned: Bool { isFloatingPoint || rawValue.hasPrefix("int") }

    /// The numpy spelling (`<f4`, `<u2`, ...) used in `.npy` headers.
    public var numpyDescr: String {
        switch self {
        case .float32: "<f4"
        case .float64: "<f8"
        case .int8: "|i1"
        case .int16: "<i2"
        case .int32: "<i4"
        case .int64: "<i8"
        case .uint8: "|u1"
        case .uint16: "<u2"
        case .uint32: "<u4"
        case .uint64: "<u8"
        }
    }

    public var description: String { rawValue }

    /// Parses `float32`, `f4`, `<f4`, `float`, `double`, `uint16`, ... .
    public init?(parsing text: String) {
        let t = text.lowercased().trimmingCharacters(in: ["<", "|", "=", " "])
        if let d = DType(rawValue: t) { self = d; return }
        switch t {
        case "f4", "float", "single": self = .float32
        case "f8", "double": self = .float64
        case "i1": self = .int8
        case "i2", "short": self = .int16
        case "i4", "int": self = .int32
        case "i8", "long": self = .int64
        case "u1", "byte": self = .uint8
        case "u2": self = .uint16
        case "u4": self = .uint32
        case "u8": self = .uint64
        default: return nil
        }
    }
}

/// Swift scalar types that map one-to-one onto a ``DType``.
public protocol HDF5Scalar: Sendable, Numeric {
    static var dtype: DType { get }
}
extension Float: HDF5Scalar { public static var dtype: DType { .float32 } }
extension Double: HDF5Scalar { public static var dtype: DType { .float64 } }
extension Int8: HDF5Scalar { public static var dtype: DType { .int8 } }
extension Int16: HDF5Scalar { public static var dtype: DType { .int16 } }
extension Int32: HDF5Scalar { public static var dtype: DType { .int32 } }
extension Int64: HDF5Scalar { public static var dtype: DType { .int64 } }
extension UInt8: HDF5Scalar { public static var dtype: DType { .uint8 } }
extension UInt16: HDF5Scalar { public static var dtype: DType { .uint16 } }
extension UInt32: HDF5Scalar { public static var dtype: DType { .uint32 } }
extension UInt64: HDF5Scalar { public static var dtype: DType { .uint64 } }

/// An attribute value on an HDF5 object.
public enum AttributeValue: Sendable, Equatable, Codable, CustomStringConvertible {
    case string(String)
    case int(Int64)
    case double(Double)
    case ints([Int64])
    case doubles([Double])

    public var description: String {
        switch self {
        case .string(let s): s
        case .int(let i): String(i)
        case .double(let d): String(d)
        case .ints(let a): a.map(String.init).joined(separator: ",")
        case .doubles(let a): a.map { String($0) }.joined(separator: ",")
        }
    }
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var intValue: Int64? {
        switch self {
        case .int(let i): i
        case .double(let d) where d == d.rounded(): Int64(d)
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .double(let d): d
        case .int(let i): Double(i)
        default: nil
        }
    }
    public var doublesValue: [Double]? {
        switch self {
        case .doubles(let a): a
        case .ints(let a): a.map(Double.init)
        case .double(let d): [d]
        case .int(let i): [Double(i)]
        default: nil
        }
    }
}
