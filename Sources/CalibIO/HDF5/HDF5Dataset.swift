internal import CHDF5

/// An open dataset. Holds its file open; closes itself in `deinit`.
public final class HDF5Dataset: @unchecked Sendable {
    public let file: HDF5File
    public let path: String
    public let dtype: DType
    public let shape: [Int]
    let id: hid_t

    init(file: HDF5File, path: String, id: hid_t, dtype: DType, shape: [Int]) {
        self.file = file
        self.path = path
        self.id = id
        self.dtype = dtype
        self.shape = shape
    }

    deinit { H5Dclose(id) }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Elements in one row along the first dimension.
    public var rowSize: Int { shape.dropFirst().reduce(1, *) }

    /// The chunk shape, or nil for a contiguous dataset (`H5Pget_chunk`).
    public var chunkShape: [Int]? {
        let plist = H5Dget_create_plist(id)
        defer { H5Pclose(plist) }
        guard H5Pget_layout(plist) == H5D_CHUNKED else { return nil }
        var dims = [hsize_t](repeating: 0, count: Swift.max(shape.count, 1))
        let rank = H5Pget_chunk(plist, Int32(dims.count), &dims)
        return rank > 0 ? dims.prefix(Int(rank)).map { Int($0) } : nil
    }

    /// Reads everything into a new array, converting to `T` (`H5Dread`).
    public func read<T: HDF5Scalar>(as: T.Type = T.self) throws -> [T] {
        HDF5Library.ensure()
        let n = count
        return try [T](unsafeUninitializedCapacity: n) { buf, initialised in
            if n > 0 {
                try HDF5Library.check(H5Dread(id, HDF5Library.nativeType(T.dtype), calib_h5s_all(), calib_h5s_all(),
                                              calib_h5p_default(), buf.baseAddress),
                                      "read", file: file.path, object: path)
            }
            initialised = n
        }
    }

    /// Reads everything as raw native-order bytes of the stored dtype.
    public func readBytes() throws -> [UInt8] {
        HDF5Library.ensure()
        let n = count * dtype.size
        return try [UInt8](unsafeUninitializedCapacity: n) { buf, initialised in
            if n > 0 {
                try HDF5Library.check(H5Dread(id, HDF5Library.nativeType(dtype), calib_h5s_all(), calib_h5s_all(),
                                              calib_h5p_default(), buf.baseAddress),
                                      "read", file: file.path, object: path)
            }
            initialised = n
        }
    }

    /// Reads everything as raw native-order bytes into `buffer`, which must hold `count * dtype.size` bytes
    /// (`H5Dread` with `H5S_ALL`: one transfer, no selection overhead).
    public func readBytes(into buffer: UnsafeMutableRawBufferPointer) throws {
        guard buffer.count == count * dtype.size else {
            throw HDF5Error(operation: "read", file: file.path, object: path,
                            detail: "buffer of \(buffer.count) bytes for \(count) elements of \(dtype)")
        }
        if count > 0 {
            try HDF5Library.check(H5Dread(id, HDF5Library.nativeType(dtype), calib_h5s_all(), calib_h5s_all(),
                                          calib_h5p_default(), buffer.baseAddress),
                                  "read", file: file.path, object: path)
        }
    }

    /// Writes the whole dataset from `values` (`H5Dwrite`); the count must match the shape.
    public func write<T: HDF5Scalar>(_ values: [T]) throws {
        HDF5Library.ensure()
        guard values.count == count else {
            throw HDF5Error(operation: "write", file: file.path, object: path,
                            detail: "\(values.count) values for shape \(shape) (\(count) elements)")
        }
        try values.withUnsafeBufferPointer { buf in
            if count > 0 {
                try HDF5Library.check(H5Dwrite(id, HDF5Library.nativeType(T.dtype), calib_h5s_all(), calib_h5s_all(),
                                               calib_h5p_default(), buf.baseAddress),
                                      "write", file: file.path, object: path)
            }
        }
    }

    /// Writes raw native-order bytes of the dataset's own dtype.
    public func writeBytes(_ bytes: UnsafeRawBufferPointer) throws {
        HDF5Library.ensure()
        guard bytes.count == count * dtype.size else {
            throw HDF5Error(operation: "write", file: file.path, object: path,
                            detail: "\(bytes.count) bytes for \(count) elements of \(dtype)")
        }
        if count > 0 {
            try HDF5Library.check(H5Dwrite(id, HDF5Library.nativeType(dtype), calib_h5s_all(), calib_h5s_all(),
                                           calib_h5p_default(), bytes.baseAddress),
                                  "write", file: file.path, object: path)
        }
    }

    /// Reads rows `rows` along the first dimension into `buffer` (converted to `T`), which must hold
    /// `rows.count * rowSize` elements. This is how large inputs are streamed chunk by chunk.
    public func readRows<T: HDF5Scalar>(_ rows: Range<Int>, into buffer: UnsafeMutableBufferPointer<T>) throws {
        HDF5Library.ensure()
        try transferRows(rows, elements: buffer.count, memType: HDF5Library.nativeType(T.dtype)) { mem, fileSpace in
            H5Dread(id, HDF5Library.nativeType(T.dtype), mem, fileSpace, calib_h5p_default(), buffer.baseAddress)
        }
    }

    /// Convenience: reads rows into a new array.
    public func readRows<T: HDF5Scalar>(_ rows: Range<Int>, as: T.Type = T.self) throws -> [T] {
        HDF5Library.ensure()
        let n = rows.count * rowSize
        return try [T](unsafeUninitializedCapacity: n) { buf, initialised in
            try readRows(rows, into: buf)
            initialised = n
        }
    }

    /// Writes rows `rows` along the first dimension from `buffer`.
    public func writeRows<T: HDF5Scalar>(_ rows: Range<Int>, from buffer: UnsafeBufferPointer<T>) throws {
        HDF5Library.ensure()
        try transferRows(rows, elements: buffer.count, memType: HDF5Library.nativeType(T.dtype)) { mem, fileSpace in
            H5Dwrite(id, HDF5Library.nativeType(T.dtype), mem, fileSpace, calib_h5p_default(), buffer.baseAddress)
        }
    }

    private func transferRows(_ rows: Range<Int>, elements: Int, memType: hid_t,
                              _ body: (hid_t, hid_t) -> herr_t) throws {
        guard !shape.isEmpty, rows.lowerBound >= 0, rows.upperBound <= shape[0] else {
            throw HDF5Error(operation: "select rows", file: file.path, object: path,
                            detail: "rows \(rows) outside shape \(shape)")
        }
        guard elements == rows.count * rowSize else {
            throw HDF5Error(operation: "select rows", file: file.path, object: path,
                            detail: "buffer of \(elements) elements for \(rows.count) rows of \(rowSize)")
        }
        if rows.isEmpty || rowSize == 0 { return }
        let fileSpace = H5Dget_space(id)
        defer { H5Sclose(fileSpace) }
        var start = [hsize_t](repeating: 0, count: shape.count)
        start[0] = hsize_t(rows.lowerBound)
        var cnt = shape.map { hsize_t($0) }
        cnt[0] = hsize_t(rows.count)
        try HDF5Library.check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, start, nil, cnt, nil),
                              "select rows", file: file.path, object: path)
        let memSpace = H5Screate_simple(Int32(cnt.count), cnt, nil)
        defer { H5Sclose(memSpace) }
        try HDF5Library.check(body(memSpace, fileSpace), "transfer rows \(rows)", file: file.path, object: path)
    }

    // MARK: attributes

    public func setAttribute(_ name: String, _ value: AttributeValue) throws {
        HDF5Library.ensure()
        try file.setAttribute(name, value, on: path)
    }

    public func attribute(_ name: String) throws -> AttributeValue {
        HDF5Library.ensure()
        return try file.attribute(name, on: path)
    }

    public func attributes() throws -> [String: AttributeValue] {
        HDF5Library.ensure()
        return try file.attributes(on: path)
    }
}
