internal import CHDF5
import Foundation

/// An open HDF5 file. Closes itself in `deinit`; `close()` closes earlier and reports errors.
///
/// Thread safety: Debian's libhdf5 is built thread-safe (one global lock), so a handle may be used from several
/// threads, but calls are serialised by the library. Overlap I/O with computation instead of parallel reads.
public final class HDF5File: @unchecked Sendable {
    public let path: String
    private(set) var id: hid_t
    public let writable: Bool

    private init(path: String, id: hid_t, writable: Bool) {
        self.path = path
        self.id = id
        self.writable = writable
    }

    deinit { if id >= 0 { H5Fclose(id) } }

    /// Creates a new file (`H5Fcreate`). Fails if it exists unless `overwrite`.
    public static func create(_ path: String, overwrite: Bool = false) throws -> HDF5File {
        HDF5Library.ensure()
        let flags = overwrite ? calib_h5f_acc_trunc() : calib_h5f_acc_excl()
        let id = try HDF5Library.check(id: H5Fcreate(path, flags, calib_h5p_default(), calib_h5p_default()),
                                       "create", file: path)
        return HDF5File(path: path, id: id, writable: true)
    }

    /// Opens an existing file (`H5Fopen`); a missing or non-HDF5 file gives an error naming it.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        HDF5Library.ensure()
        guard FileManager.default.fileExists(atPath: path) else {
            throw HDF5Error(operation: "open", file: path, object: nil, detail: "no such file")
        }
        if H5Fis_hdf5(path) <= 0 {
            H5Eclear2(calib_h5e_default())
            throw HDF5Error(operation: "open", file: path, object: nil,
                            detail: "not an HDF5 file (truncated or another format)")
        }
        let flags = writable ? calib_h5f_acc_rdwr() : calib_h5f_acc_rdonly()
        let id = try HDF5Library.check(id: H5Fopen(path, flags, calib_h5p_default()), "open", file: path)
        return HDF5File(path: path, id: id, writable: writable)
    }

    /// Flushes and closes (`H5Fclose`). Safe to call twice.
    public func close() throws {
        HDF5Library.ensure()
        guard id >= 0 else { return }
        let status = H5Fclose(id)
        id = -1
        try HDF5Library.check(status, "close", file: path)
    }

    /// Flushes buffers to the OS (`H5Fflush`).
    public func flush() throws {
        HDF5Library.ensure()
        try HDF5Library.check(H5Fflush(id, H5F_SCOPE_GLOBAL), "flush", file: path)
    }

    /// True if a link with this path exists (every intermediate group included).
    public func exists(_ objectPath: String) -> Bool {
        HDF5Library.ensure()
        if objectPath == "/" || objectPath.isEmpty { return true }
        var prefix = ""
        for part in objectPath.split(separator: "/") {
            prefix += "/" + part
            if H5Lexists(id, prefix, calib_h5p_default()) <= 0 {
                H5Eclear2(calib_h5e_default())
                return false
            }
        }
        return true
    }

    /// Creates a group and any missing parents (`H5Gcreate2`).
    public func createGroup(_ groupPath: String) throws {
        HDF5Library.ensure()
        var prefix = ""
        for part in groupPath.split(separator: "/") {
            prefix += "/" + part
            if exists(prefix) { continue }
            let g = try HDF5Library.check(id: H5Gcreate2(id, prefix, calib_h5p_default(), calib_h5p_default(),
                                                         calib_h5p_default()), "create group", file: path, object: prefix)
            H5Gclose(g)
        }
    }

    /// Names of the links directly below a group, in name order (`H5Literate`).
    public func children(of groupPath: String = "/") throws -> [String] {
        HDF5Library.ensure()
        let g = try HDF5Library.check(id: H5Oopen(id, groupPath, calib_h5p_default()), "open group", file: path,
                                      object: groupPath)
        defer { H5Oclose(g) }
        final class Box { var names: [String] = [] }
        let box = Box()
        let unmanaged = Unmanaged.passRetained(box)
        defer { unmanaged.release() }
        var idx: hsize_t = 0
        let status = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, { _, name, _, data in
            guard let name, let data else { return 0 }
            Unmanaged<Box>.fromOpaque(data).takeUnretainedValue().names.append(String(cString: name))
            return 0
        }, unmanaged.toOpaque())
        try HDF5Library.check(status, "list group", file: path, object: groupPath)
        return box.names
    }

    /// True if the object at this path is a group.
    public func isGroup(_ objectPath: String) -> Bool {
        HDF5Library.ensure()
        guard exists(objectPath) else { return false }
        let o = H5Oopen(id, objectPath, calib_h5p_default())
        guard o >= 0 else { H5Eclear2(calib_h5e_default()); return false }
        defer { H5Oclose(o) }
        return H5Iget_type(o) == H5I_GROUP
    }

    /// Creates a dataset (`H5Dcreate2`), optionally chunked and deflate-compressed with shuffle.
    /// Parent groups are created as needed.
    public func createDataset(_ datasetPath: String, dtype: DType, shape: [Int], chunks: [Int]? = nil,
                              deflate: Int? = nil) throws -> HDF5Dataset {
        let parent = (datasetPath as NSString).deletingLastPathComponent
        if parent != "/" && !parent.isEmpty { try createGroup(parent) }
        let space: hid_t
        if shape.isEmpty {
            space = H5Screate(H5S_SCALAR)
        } else {
            let dims = shape.map { hsize_t($0) }
            space = H5Screate_simple(Int32(dims.count), dims, nil)
        }
        _ = try HDF5Library.check(id: space, "create dataspace", file: path, object: datasetPath)
        defer { H5Sclose(space) }
        let dcpl = H5Pcreate(calib_h5p_dataset_create())
        defer { H5Pclose(dcpl) }
        if let chunks, !shape.isEmpty, !shape.contains(0) {
            let c = zip(chunks, shape).map { hsize_t(Swift.max(1, Swift.min($0, $1))) }
            try HDF5Library.check(H5Pset_chunk(dcpl, Int32(c.count), c), "set chunking", file: path, object: datasetPath)
            if let level = deflate {
                H5Pset_shuffle(dcpl)
                try HDF5Library.check(H5Pset_deflate(dcpl, UInt32(level)), "set deflate", file: path,
                                      object: datasetPath)
            }
        }
        let d = try HDF5Library.check(id: H5Dcreate2(id, datasetPath, HDF5Library.fileType(dtype), space,
                                                     calib_h5p_default(), dcpl, calib_h5p_default()),
                                      "create dataset", file: path, object: datasetPath)
        return HDF5Dataset(file: self, path: datasetPath, id: d, dtype: dtype, shape: shape)
    }

    /// Opens an existing dataset (`H5Dopen2`).
    public func dataset(_ datasetPath: String) throws -> HDF5Dataset {
        HDF5Library.ensure()
        guard exists(datasetPath) else {
            throw HDF5Error(operation: "open dataset", file: path, object: datasetPath, detail: "no such dataset")
        }
        let d = try HDF5Library.check(id: H5Dopen2(id, datasetPath, calib_h5p_default()), "open dataset",
                                      file: path, object: datasetPath)
        let t = H5Dget_type(d)
        defer { H5Tclose(t) }
        guard let dtype = HDF5Library.dtype(ofType: t) else {
            H5Dclose(d)
            throw HDF5Error(operation: "open dataset", file: path, object: datasetPath,
                            detail: "element type is not a number calibctl handles (float32/64, int8..64, uint8..64)")
        }
        let s = H5Dget_space(d)
        defer { H5Sclose(s) }
        let rank = Int(H5Sget_simple_extent_ndims(s))
        var dims = [hsize_t](repeating: 0, count: rank)
        H5Sget_simple_extent_dims(s, &dims, nil)
        return HDF5Dataset(file: self, path: datasetPath, id: d, dtype: dtype, shape: dims.map { Int($0) })
    }

    /// Writes a whole array as a new dataset.
    @discardableResult
    public func write<T: HDF5Scalar>(_ datasetPath: String, _ values: [T], shape: [Int]? = nil, chunks: [Int]? = nil,
                                     deflate: Int? = nil) throws -> HDF5Dataset {
        let shape = shape ?? [values.count]
        let ds = try createDataset(datasetPath, dtype: T.dtype, shape: shape, chunks: chunks, deflate: deflate)
        try ds.write(values)
        return ds
    }

    /// Reads a whole dataset, converting to `T` if the stored type differs.
    public func read<T: HDF5Scalar>(_ datasetPath: String, as: T.Type = T.self) throws -> [T] {
        HDF5Library.ensure()
        return try dataset(datasetPath).read(as: T.self)
    }

    // MARK: attributes

    /// Sets (replaces) an attribute on the object at `objectPath`.
    public func setAttribute(_ name: String, _ value: AttributeValue, on objectPath: String = "/") throws {
        HDF5Library.ensure()
        try HDF5Attributes.set(name, value, objectID: id, objectPath: objectPath, file: path)
    }

    /// Reads an attribute of the object at `objectPath`.
    public func attribute(_ name: String, on objectPath: String = "/") throws -> AttributeValue {
        HDF5Library.ensure()
        return try HDF5Attributes.get(name, objectID: id, objectPath: objectPath, file: path)
    }

    /// Reads an attribute or returns nil if it does not exist.
    public func attributeIfPresent(_ name: String, on objectPath: String = "/") throws -> AttributeValue? {
        HDF5Library.ensure()
        guard H5Aexists_by_name(id, objectPath, name, calib_h5p_default()) > 0 else {
            H5Eclear2(calib_h5e_default())
            return nil
        }
        return try attribute(name, on: objectPath)
    }

    /// Names of the attributes of the object at `objectPath`, in name order.
    public func attributeNames(on objectPath: String = "/") throws -> [String] {
        HDF5Library.ensure()
        return try HDF5Attributes.names(objectID: id, objectPath: objectPath, file: path)
    }

    /// All attributes of an object.
    public func attributes(on objectPath: String = "/") throws -> [String: AttributeValue] {
        HDF5Library.ensure()
        var out: [String: AttributeValue] = [:]
        for n in try attributeNames(on: objectPath) { out[n] = try attribute(n, on: objectPath) }
        return out
    }
}
