internal import CHDF5
import Foundation

/// Reads the raw data of a contiguous, unfiltered dataset stored in native byte order with `pread` on its own file
/// descriptor, bypassing the HDF5 library. Debian's libhdf5 serialises every call behind one global lock, so this is
/// how several threads read one file at once (the gain fit reads the three scan arrays of a module in parallel while
/// the previous module is fitted). The bytes are exactly what `H5Dread` returns for such a dataset: no conversion,
/// no filters. Anything else (chunked, compressed, big-endian, a user block) gives no direct reader: use `readRows`.
public final class HDF5DirectReader: @unchecked Sendable {
    public let path: String
    public let object: String
    let fd: Int32
    let offset: Int
    let rowBytes: Int
    let rows: Int

    /// A direct reader of `dataset`, or nil when its layout does not allow one.
    public init?(_ dataset: HDF5Dataset) {
        HDF5Library.ensure()
        let plist = H5Dget_create_plist(dataset.id)
        guard plist >= 0 else { return nil }
        defer { H5Pclose(plist) }
        guard H5Pget_layout(plist) == H5D_CONTIGUOUS, H5Pget_nfilters(plist) == 0 else { return nil }
        let fileType = H5Dget_type(dataset.id)
        guard fileType >= 0 else { return nil }
        defer { H5Tclose(fileType) }
        guard H5Tequal(fileType, HDF5Library.nativeType(dataset.dtype)) > 0 else { return nil }
        let fcpl = H5Fget_create_plist(dataset.file.id)
        guard fcpl >= 0 else { return nil }
        defer { H5Pclose(fcpl) }
        var userBlock: hsize_t = 0
        guard H5Pget_userblock(fcpl, &userBlock) >= 0, userBlock == 0 else { return nil }
        let address = H5Dget_offset(dataset.id)
        guard address != haddr_t.max, address < haddr_t(Int.max) else { return nil }   // HADDR_UNDEF: not allocated
        let fd = open(dataset.file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.fd = fd
        path = dataset.file.path
        object = dataset.path
        offset = Int(address)
        rowBytes = dataset.rowSize * dataset.dtype.size
        rows = dataset.shape.first ?? 1
    }

    deinit { close(fd) }

    /// Reads rows `rows` into `buffer`, which must hold exactly `rows.count` rows.
    public func readRows(_ r: Range<Int>, into buffer: UnsafeMutableRawBufferPointer) throws {
        guard r.lowerBound >= 0, r.upperBound <= rows, buffer.count == r.count * rowBytes else {
            throw HDF5Error(operation: "read", file: path, object: object,
                            detail: "rows \(r) (\(buffer.count) bytes) outside the \(rows) rows of \(rowBytes) bytes")
        }
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset + r.lowerBound * rowBytes + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let why = n < 0 ? String(cString: strerror(errno)) : "the file ends early (truncated?)"
                throw HDF5Error(operation: "read", file: path, object: object, detail: "rows \(r): \(why)")
            }
            done += n
        }
    }
}
