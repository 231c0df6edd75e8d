internal import CHDF5

extension HDF5Dataset {
    /// Reads the block `start ..< start + count` (one entry per axis) into `buffer` in row-major order, converting to
    /// `T` (HDF5 converts any stored integer or float type; out-of-range integers saturate). Works on chunked and
    /// contiguous datasets; `buffer` must hold the product of `count` elements.
    public func readBlock<T: HDF5Scalar>(start: [Int], count: [Int], into buffer: UnsafeMutableBufferPointer<T>) throws {
        HDF5Library.ensure()
        guard start.count == shape.count, count.count == shape.count,
              zip(zip(start, count), shape).allSatisfy({ $0.0 >= 0 && $0.1 >= 0 && $0.0 + $0.1 <= $1 }) else {
            throw HDF5Error(operation: "select block", file: file.path, object: path,
                            detail: "block at \(start) of \(count) outside shape \(shape)")
        }
        let n = count.reduce(1, *)
        guard buffer.count == n else {
            throw HDF5Error(operation: "select block", file: file.path, object: path,
                            detail: "buffer of \(buffer.count) elements for a block of \(n)")
        }
        if n == 0 { return }
        let fileSpace = H5Dget_space(id)
        defer { H5Sclose(fileSpace) }
        let st = start.map { hsize_t($0) }, cnt = count.map { hsize_t($0) }
        try HDF5Library.check(H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, st, nil, cnt, nil),
                              "select block", file: file.path, object: path)
        var flat = hsize_t(n)
        let memSpace = H5Screate_simple(1, &flat, nil)
        defer { H5Sclose(memSpace) }
        try HDF5Library.check(H5Dread(id, HDF5Library.nativeType(T.dtype), memSpace, fileSpace, calib_h5p_default(),
                                      buffer.baseAddress),
                              "read block at \(start)", file: file.path, object: path)
    }
}
