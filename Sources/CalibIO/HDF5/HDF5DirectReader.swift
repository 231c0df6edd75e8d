internal import CHDF5
import Foundation

/// Reads the raw data of an unfiltered dataset stored in native byte order, contiguous or chunked in whole rows (a
/// chunk spans every column, as the gain-scan files' one chunk per module), with `pread` on its own file descriptor,
/// bypassing the HDF5 library. Debian's libhdf5 serialises every call behind one global lock, so this is
/// how several threads read one file at once (the gain fit reads the three scan arrays of a module in parallel while
/// the previous module is fitted). The bytes are exactly what `H5Dread` returns for such a dataset: no conversion,
/// no filters. Anything else (compressed, chunks that split rows, unallocated chunks, big-endian, a user block) gives
/// no direct reader: use `HDF5Dataset.readRows`.
public final class HDF5DirectReader: @unchecked Sendable {
    public let path: String
    public let object: String
    let fd: Int32
    /// File offset of each run of `segmentRows` rows (one entry for a contiguous dataset, one per chunk otherwise).
    let segments: [Int]
    let segmentRows: Int
    let rowBytes: Int
    /// Bytes per row.
    public var rowSize: Int { rowBytes }
    let rows: Int

    /// A direct reader of `dataset`, or nil when its layout does not allow one.
    public init?(_ dataset: HDF5Dataset) {
        HDF5Library.ensure()
        let plist = H5Dget_create_plist(dataset.id)
        guard plist >= 0 else { return nil }
        defer { H5Pclose(plist) }
        guard H5Pget_nfilters(plist) == 0, !dataset.shape.isEmpty else { return nil }
        let fileType = H5Dget_type(dataset.id)
        guard fileType >= 0 else { return nil }
        defer { H5Tclose(fileType) }
        guard H5Tequal(fileType, HDF5Library.nativeType(dataset.dtype)) > 0 else { return nil }
        let fcpl = H5Fget_create_plist(dataset.file.id)
        guard fcpl >= 0 else { return nil }
        defer { H5Pclose(fcpl) }
        var userBlock: hsize_t = 0
        guard H5Pget_userblock(fcpl, &userBlock) >= 0, userBlock == 0 else { return nil }
        let rows = dataset.shape[0], rowBytes = dataset.rowSize * dataset.dtype.size
        func valid(_ a: haddr_t) -> Int? { a != haddr_t.max && a < haddr_t(Int.max) ? Int(a) : nil }   // HADDR_UNDEF
        switch H5Pget_layout(plist) {
        case H5D_CONTIGUOUS:
            guard let a = valid(H5Dget_offset(dataset.id)) else { return nil }
            segments = [a]; segmentRows = max(rows, 1)
        case H5D_CHUNKED:
            guard let chunk = dataset.chunkShape, chunk.count == dataset.shape.count, chunk[0] > 0,
                  Array(chunk.dropFirst()) == Array(dataset.shape.dropFirst()) else { return nil }
            var offsets: [Int] = []
            var start = 0
            while start < rows {
                var coord = [hsize_t](repeating: 0, count: chunk.count)
                coord[0] = hsize_t(start)
                var mask: UInt32 = 0, addr: haddr_t = 0, size: hsize_t = 0
                guard H5Dget_chunk_info_by_coord(dataset.id, &coord, &mask, &addr, &size) >= 0, mask == 0,
                      let a = valid(addr), Int(size) == chunk[0] * rowBytes else { return nil }
                offsets.append(a)
                start += chunk[0]
            }
            segments = offsets; segmentRows = chunk[0]
        default:
            return nil
        }
        let fd = open(dataset.file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.fd = fd
        path = dataset.file.path
        object = dataset.path
        self.rowBytes = rowBytes
        self.rows = rows
    }

    deinit { close(fd) }

    /// Reads rows `rows` into `buffer`, which must hold exactly `rows.count` rows.
    public func readRows(_ r: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard r.lowerBound >= 0, r.upperBound <= rows, buffer.count == r.count * rowBytes else {
            throw HDF5Error(operation: "read", file: path, object: object,
                            detail: "rows \(r) (\(buffer.count) bytes) outside the \(rows) rows of \(rowBytes) bytes")
        }
        var row = r.lowerBound, dst = buffer.baseAddress!
        while row < r.upperBound {
            let seg = row / segmentRows, inSeg = row - seg * segmentRows
            let n = min(r.upperBound - row, segmentRows - inSeg)
            try readFully(dst, n * rowBytes, at: segments[seg] + inSeg * rowBytes, rows: r)
            row += n; dst += n * rowBytes
        }
    }

    /// Reads bytes `bytes` of row `row` (a slice of one row: the pixels of a tile in one frame) into `dst`.
    public func read(row: Int, bytes: Range<Int>, into dst: UnsafeMutableRawPointer) throws {
        guard row >= 0, row < rows, bytes.lowerBound >= 0, bytes.upperBound <= rowBytes else {
            throw HDF5Error(operation: "read", file: path, object: object,
                            detail: "bytes \(bytes) of row \(row) outside the \(rows) rows of \(rowBytes) bytes")
        }
        let seg = row / segmentRows
        try readFully(dst, bytes.count, at: segments[seg] + (row - seg * segmentRows) * rowBytes + bytes.lowerBound,
                      rows: row..<(row + 1))
    }

    private func readFully(_ dst: UnsafeMutableRawPointer, _ count: Int, at offset: Int, rows r: Range<Int>) throws {
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = n < 0 ? String(cString: strerror(errno)) : "the file ends early (truncated?)"
                throw HDF5Error(operation: "read", file: path, object: object, detail: "rows \(r): \(why)")
            }
            done += n
        }
    }
}
