internal import CHDF5

/// Attribute reading and writing (`H5Acreate_by_name`, `H5Aread`, ...), shared by files, groups and datasets.
enum HDF5Attributes {
    static func set(_ name: String, _ value: AttributeValue, objectID: hid_t, objectPath: String, file: String) throws {
        HDF5Library.ensure()
        let dflt = calib_h5p_default()
        if H5Aexists_by_name(objectID, objectPath, name, dflt) > 0 {
            try HDF5Library.check(H5Adelete_by_name(objectID, objectPath, name, dflt), "replace attribute \(name)",
                                  file: file, object: objectPath)
        }
        H5Eclear2(calib_h5e_default())
        func write<T>(_ fileType: hid_t, _ memType: hid_t, _ values: [T]) throws {
            let dims = [hsize_t(values.count)]
            let space = values.count == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims, nil)
            defer { H5Sclose(space) }
            let a = try HDF5Library.check(id: H5Acreate_by_name(objectID, objectPath, name, fileType, space, dflt, dflt,
                                                                dflt), "create attribute \(name)", file: file,
                                          object: objectPath)
            defer { H5Aclose(a) }
            try values.withUnsafeBufferPointer { buf in
                try HDF5Library.check(H5Awrite(a, memType, buf.baseAddress), "write attribute \(name)", file: file,
                                      object: objectPath)
            }
        }
        switch value {
        case .int(let i): try write(calib_h5t_std_i64le(), calib_h5t_native_int64(), [i])
        case .double(let d): try write(calib_h5t_ieee_f64le(), calib_h5t_native_double(), [d])
        case .ints(let a): try write(calib_h5t_std_i64le(), calib_h5t_native_int64(), a.isEmpty ? [] : a)
        case .doubles(let a): try write(calib_h5t_ieee_f64le(), calib_h5t_native_double(), a)
        case .string(let s):
            // Fixed-length, null-terminated UTF-8: read by h5py as bytes/str and by h5dump as text.
            let bytes = Array(s.utf8)
            let t = H5Tcopy(calib_h5t_c_s1())
            defer { H5Tclose(t) }
            H5Tset_size(t, Swift.max(bytes.count, 1))
            H5Tset_strpad(t, H5T_STR_NULLTERM)
            H5Tset_cset(t, H5T_CSET_UTF8)
            let space = H5Screate(H5S_SCALAR)
            defer { H5Sclose(space) }
            let a = try HDF5Library.check(id: H5Acreate_by_name(objectID, objectPath, name, t, space, dflt, dflt, dflt),
                                          "create attribute \(name)", file: file, object: objectPath)
            defer { H5Aclose(a) }
            let padded = bytes.isEmpty ? [UInt8(0)] : bytes
            try padded.withUnsafeBufferPointer { buf in
                try HDF5Library.check(H5Awrite(a, t, buf.baseAddress), "write attribute \(name)", file: file,
                                      object: objectPath)
            }
        }
    }

    static func get(_ name: String, objectID: hid_t, objectPath: String, file: String) throws -> AttributeValue {
        HDF5Library.ensure()
        let dflt = calib_h5p_default()
        guard H5Aexists_by_name(objectID, objectPath, name, dflt) > 0 else {
            H5Eclear2(calib_h5e_default())
            throw HDF5Error(operation: "read attribute", file: file, object: objectPath,
                            detail: "no attribute named '\(name)'")
        }
        let a = try HDF5Library.check(id: H5Aopen_by_name(objectID, objectPath, name, dflt, dflt),
                                      "open attribute \(name)", file: file, object: objectPath)
        defer { H5Aclose(a) }
        let t = H5Aget_type(a)
        defer { H5Tclose(t) }
        let space = H5Aget_space(a)
        defer { H5Sclose(space) }
        let n = Int(H5Sget_simple_extent_npoints(space))
        let isScalar = H5Sget_simple_extent_type(space) == H5S_SCALAR
        switch H5Tget_class(t) {
        case H5T_STRING:
            if H5Tis_variable_str(t) > 0 {
                let mt = H5Tcopy(calib_h5t_c_s1())
                defer { H5Tclose(mt) }
                H5Tset_size(mt, calib_h5t_variable())
                H5Tset_cset(mt, H5Tget_cset(t))
                var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: Swift.max(n, 1))
                try HDF5Library.check(H5Aread(a, mt, &ptrs), "read attribute \(name)", file: file, object: objectPath)
                let s = ptrs.first.flatMap { $0 }.map { String(cString: $0) } ?? ""
                for p in ptrs where p != nil { H5free_memory(p) }
                return .string(s)
            }
            let size = H5Tget_size(t)
            var buf = [UInt8](repeating: 0, count: size * Swift.max(n, 1) + 1)
            try HDF5Library.check(H5Aread(a, t, &buf), "read attribute \(name)", file: file, object: objectPath)
            let firstString = buf.prefix(size)
            let end = firstString.firstIndex(of: 0) ?? firstString.endIndex
            return .string(String(decoding: firstString[..<end], as: UTF8.self))
        case H5T_INTEGER:
            var v = [Int64](repeating: 0, count: Swift.max(n, 1))
            try HDF5Library.check(H5Aread(a, calib_h5t_native_int64(), &v), "read attribute \(name)", file: file,
                                  object: objectPath)
            return isScalar ? .int(v[0]) : .ints(Array(v.prefix(n)))
        case H5T_FLOAT:
            var v = [Double](repeating: 0, count: Swift.max(n, 1))
            try HDF5Library.check(H5Aread(a, calib_h5t_native_double(), &v), "read attribute \(name)", file: file,
                                  object: objectPath)
            return isScalar ? .double(v[0]) : .doubles(Array(v.prefix(n)))
        default:
            throw HDF5Error(operation: "read attribute", file: file, object: objectPath,
                            detail: "attribute '\(name)' has a type calibctl does not read")
        }
    }

    static func names(objectID: hid_t, objectPath: String, file: String) throws -> [String] {
        HDF5Library.ensure()
        let o = try HDF5Library.check(id: H5Oopen(objectID, objectPath, calib_h5p_default()), "open object",
                                      file: file, object: objectPath)
        defer { H5Oclose(o) }
        final class Box { var names: [String] = [] }
        let box = Box()
        let unmanaged = Unmanaged.passRetained(box)
        defer { unmanaged.release() }
        var idx: hsize_t = 0
        let status = H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, { _, name, _, data in
            guard let name, let data else { return 0 }
            Unmanaged<Box>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }, unmanaged.toOpaque())
        try HDF5Library.check(status, "list attributes", file: file, object: objectPath)
        return box.names
    }
}
