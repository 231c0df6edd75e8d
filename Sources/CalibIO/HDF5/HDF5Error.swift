internal import CHDF5

/// An HDF5 failure, with the file and object it concerns and HDF5's own error stack.
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let file: String
    public let object: String?
    public let detail: String

    public init(operation: String, file: String, object: String?, detail: String) {
        self.operation = operation
        self.file = file
        self.object = object
        self.detail = detail
    }

    public var description: String {
        var s = "HDF5 \(operation) failed for \(file)"
        if let object { s += " (object \(object))" }
        if !detail.isEmpty { s += ": \(detail)" }
        return s
    }
}

/// Library-wide setup: silence HDF5's automatic error printing (libraries never print; errors are thrown).
enum HDF5Library {
    static let initialised: Bool = {
        H5open()
        return true
    }()

    /// Opens the library once and silences HDF5's own error printing on the calling thread (errors are thrown).
    /// Every wrapper entry point calls this first.
    @inline(__always) static func ensure() {
        _ = initialised
        calib_h5_quiet_this_thread()
    }

    /// Walks the current thread's HDF5 error stack and returns the innermost descriptions, joined.
    static func stackDescription() -> String {
        final class Box { var lines: [String] = [] }
        let box = Box()
        let unmanaged = Unmanaged.passRetained(box)
        defer { unmanaged.release() }
        H5Ewalk2(calib_h5e_default(), H5E_WALK_UPWARD, { _, desc, data in
            guard let desc, let data else { return 0 }
            let box = Unmanaged<Box>.fromOpaque(data).takeUnretainedValue()
            let fn = desc.pointee.func_name.map { String(cString: $0) } ?? "?"
            let text = desc.pointee.desc.map { String(cString: $0) } ?? ""
            box.lines.append("\(fn): \(text)")
            return 0
        }, unmanaged.toOpaque())
        H5Eclear2(calib_h5e_default())
        return box.lines.prefix(3).joined(separator: "; ")
    }

    static func check(_ status: herr_t, _ op: String, file: String, object: String? = nil) throws {
        if status < 0 { throw HDF5Error(operation: op, file: file, object: object, detail: stackDescription()) }
    }

    static func check(id: hid_t, _ op: String, file: String, object: String? = nil) throws -> hid_t {
        if id < 0 { throw HDF5Error(operation: op, file: file, object: object, detail: stackDescription()) }
        return id
    }

    static func nativeType(_ d: DType) -> hid_t {
        switch d {
        case .float32: calib_h5t_native_float()
        case .float64: calib_h5t_native_double()
        case .int8: calib_h5t_native_int8()
        case .int16: calib_h5t_native_int16()
        case .int32: calib_h5t_native_int32()
        case .int64: calib_h5t_native_int64()
        case .uint8: calib_h5t_native_uint8()
        case .uint16: calib_h5t_native_uint16()
        case .uint32: calib_h5t_native_uint32()
        case .uint64: calib_h5t_native_uint64()
        }
    }

    static func fileType(_ d: DType) -> hid_t {
        switch d {
        case .float32: calib_h5t_ieee_f32le()
        case .float64: calib_h5t_ieee_f64le()
        case .int8: calib_h5t_std_i8le()
        case .int16: calib_h5t_std_i16le()
        case .int32: calib_h5t_std_i32le()
        case .int64: calib_h5t_std_i64le()
        case .uint8: calib_h5t_std_u8le()
        case .uint16: calib_h5t_std_u16le()
        case .uint32: calib_h5t_std_u32le()
        case .uint64: calib_h5t_std_u64le()
        }
    }

    /// Maps a dataset's stored type onto a ``DType``; nil for types calibctl does not handle (compound, string, ...).
    static func dtype(ofType t: hid_t) -> DType? {
        let cls = H5Tget_class(t)
        let size = H5Tget_size(t)
        if cls == H5T_FLOAT {
            return size == 4 ? .float32 : size == 8 ? .float64 : nil
        }
        if cls == H5T_INTEGER {
            let signed = H5Tget_sign(t) == H5T_SGN_2
            switch (size, signed) {
            case (1, true): return .int8
            case (2, true): return .int16
            case (4, true): return .int32
            case (8, true): return .int64
            case (1, false): return .uint8
            case (2, false): return .uint16
            case (4, false): return .uint32
            case (8, false): return .uint64
            default: return nil
            }
        }
        return nil
    }
}
