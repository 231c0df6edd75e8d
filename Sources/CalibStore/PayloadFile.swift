import CalibCore
import CalibIO
import Foundation

/// Reads and writes a payload as HDF5: root attributes `format`, `format_version`, `sha256`, `hash_rule`,
/// `byte_order`, `calibctl_version`; datasets under `data/` (little-endian, contiguous, attributes `dtype`, `shape`);
/// the payload's own attributes on the `data` group. A bundle holds the same layout below `/payloads/<sha256>`.
public enum PayloadFile {
    /// Writes `payload` below `group` ("/" for a payload file) of an open, writable file.
    public static func write(_ payload: Payload, sha256: String, to file: HDF5File, group: String = "/") throws {
        let base = group == "/" ? "" : group
        if !base.isEmpty { try file.createGroup(base) }
        let root = base.isEmpty ? "/" : base
        try file.setAttribute(StoreFormat.attrFormat, .string(StoreFormat.payloadFormat), on: root)
        try file.setAttribute(StoreFormat.attrFormatVersion, .int(StoreFormat.payloadFormatVersion), on: root)
        try file.setAttribute(StoreFormat.attrSHA256, .string(sha256), on: root)
        try file.setAttribute(StoreFormat.attrHashRule, .string(Payload.hashRule), on: root)
        try file.setAttribute(StoreFormat.attrByteOrder, .string("little"), on: root)
        try file.setAttribute(StoreFormat.attrCalibctlVersion, .string(CalibctlVersion.string), on: root)
        let dataGroup = base + "/" + StoreFormat.dataGroup
        try file.createGroup(dataGroup)
        for a in payload.arrays {
            let path = dataGroup + "/" + a.name
            let ds = try file.createDataset(path, dtype: a.dtype, shape: a.shape)
            try a.bytes.withUnsafeBytes { try ds.writeBytes($0) }
            try ds.setAttribute(StoreFormat.attrDType, .string(a.dtype.rawValue))
            try ds.setAttribute(StoreFormat.attrShape, .ints(a.shape.map(Int64.init)))
        }
        for (k, v) in payload.attributes.sorted(by: { $0.key < $1.key }) {
            try file.setAttribute(k, v, on: dataGroup)
        }
    }

    /// Reads the payload below `group`; with `expectedSHA256`, recomputes the content hash and refuses a mismatch.
    public static func read(from file: HDF5File, group: String = "/", expectedSHA256: String?) throws -> Payload {
        let base = group == "/" ? "" : group
        let root = base.isEmpty ? "/" : base
        let format = try file.attributeIfPresent(StoreFormat.attrFormat, on: root)?.stringValue
        guard format == StoreFormat.payloadFormat else {
            throw StoreError.bad("\(file.path)\(base) is not a calibctl payload (format attribute is \(format.map { "'\($0)'" } ?? "missing"))")
        }
        let version = try file.attributeIfPresent(StoreFormat.attrFormatVersion, on: root)?.intValue ?? 0
        guard version <= StoreFormat.payloadFormatVersion else {
            throw StoreError.bad("\(file.path)\(base) has payload format version \(version), newer than this calibctl reads",
                                 fix: "upgrade calibctl")
        }
        let dataGroup = base + "/" + StoreFormat.dataGroup
        let names = try file.children(of: dataGroup)
        // With verification, element bytes are hashed on a background queue while the next rows are read.
        let hasher = expectedSHA256 == nil ? nil : ContentHasher(background: true)
        hasher?.begin(datasets: names.count)
        var arrays: [PayloadArray] = []
        for name in names {
            arrays.append(try readArray(try file.dataset(dataGroup + "/" + name), name: name, hasher: hasher))
        }
        var attrs: [String: AttributeValue] = [:]
        for k in try file.attributeNames(on: dataGroup) { attrs[k] = try file.attribute(k, on: dataGroup) }
        let payload = try Payload(arrays: arrays, attributes: attrs)
        if let expectedSHA256, let hasher {
            hasher.attributes(payload.attributes)
            let actual = hasher.finish()
            let recorded = try file.attributeIfPresent(StoreFormat.attrSHA256, on: root)?.stringValue
            guard actual == expectedSHA256, recorded == expectedSHA256 else {
                throw StoreError.bad("payload \(expectedSHA256.prefix(12)) in \(file.path)\(base) is damaged: its content hashes to \(actual.prefix(12))"
                                     + (recorded == expectedSHA256 ? "" : " and it records \(recorded.map { String($0.prefix(12)) } ?? "no hash")"),
                                     fix: "the file changed behind the store's back; restore it from a bundle (store import) or put the constants again; `calibctl store verify` lists all damage")
            }
        }
        return payload
    }

    /// Rows per read call: about 8 MB, so hashing one block overlaps reading the next.
    static let blockBytes = 8 << 20

    /// Reads one dataset into a fresh byte array (transparent huge pages requested for large arrays, as numpy
    /// does), feeding each block to `hasher`.
    static func readArray(_ ds: HDF5Dataset, name: String, hasher: ContentHasher?) throws -> PayloadArray {
        let n = ds.count * ds.dtype.size
        hasher?.dataset(name: name, dtype: ds.dtype, shape: ds.shape, byteCount: n)
        if ds.shape.isEmpty || n < blockBytes {
            let b = try ds.readBytes()
            if let hasher { b.withUnsafeBytes { if let p = $0.baseAddress { hasher.bytes(p, count: $0.count) } }; _ = b }
            let a = try PayloadArray(name: name, dtype: ds.dtype, shape: ds.shape, bytes: b)
            if let hasher { hasher.keepAlive(a.bytes) }
            return a
        }
        let rows = ds.shape[0], rowBytes = n / rows
        // Without verification one read call (below); with it, blocks let hashing overlap reading.
        let chunk = Swift.max(1, blockBytes / Swift.max(rowBytes, 1))
        let bytes = try [UInt8](unsafeUninitializedCapacity: n) { buf, count in
            adviseHugePages(UnsafeMutableRawBufferPointer(buf))
            if hasher == nil {
                try ds.readBytes(into: UnsafeMutableRawBufferPointer(buf))
                count = n
                return
            }
            var r = 0
            do {
                while r < rows {
                    let e = Swift.min(rows, r + chunk)
                    let part = UnsafeMutableBufferPointer(rebasing: buf[(r * rowBytes)..<(e * rowBytes)])
                    try readRows(ds, r..<e, into: part)
                    hasher?.bytes(UnsafeRawPointer(part.baseAddress!), count: part.count)
                    r = e
                }
            } catch {
                _ = hasher?.finish()  // the queue must not touch the buffer after it is freed
                throw error
            }
            count = n
        }
        return try PayloadArray(name: name, dtype: ds.dtype, shape: ds.shape, bytes: bytes)
    }

    static func readRows(_ ds: HDF5Dataset, _ rows: Range<Int>, into part: UnsafeMutableBufferPointer<UInt8>) throws {
        func go<T: HDF5Scalar>(_: T.Type) throws {
            try UnsafeMutableRawBufferPointer(part).withMemoryRebound(to: T.self) { try ds.readRows(rows, into: $0) }
        }
        switch ds.dtype {
        case .float32: try go(Float.self)
        case .float64: try go(Double.self)
        case .int8: try go(Int8.self)
        case .int16: try go(Int16.self)
        case .int32: try go(Int32.self)
        case .int64: try go(Int64.self)
        case .uint8: try go(UInt8.self)
        case .uint16: try go(UInt16.self)
        case .uint32: try go(UInt32.self)
        case .uint64: try go(UInt64.self)
        }
    }

    /// `madvise(MADV_HUGEPAGE)` on the 2 MB-aligned interior of a large buffer: fewer page faults on first touch.
    static func adviseHugePages(_ buf: UnsafeMutableRawBufferPointer) {
        #if os(Linux)
        guard let base = buf.baseAddress, buf.count >= 4 << 20 else { return }
        let huge = UInt(2 << 20)
        let start = (UInt(bitPattern: base) + huge - 1) & ~(huge - 1)
        let end = (UInt(bitPattern: base) + UInt(buf.count)) & ~(huge - 1)
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), Int(end - start), MADV_HUGEPAGE) }
        #endif
    }

    /// Reads the datasets of a foreign HDF5 file for `put`: every dataset directly below `/` (or below `/data` when
    /// the file is itself a calibctl payload), with the root group's (or `/data`'s) attributes.
    public static func readForeign(_ path: String) throws -> Payload {
        let file: HDF5File
        do { file = try HDF5File.open(path) } catch let e as HDF5Error {
            throw StoreError.bad("\(path) cannot be read as HDF5: \(e.detail)", fix: "give a complete HDF5, .npy or LCLS .txt file")
        }
        if try file.attributeIfPresent(StoreFormat.attrFormat)?.stringValue == StoreFormat.payloadFormat {
            return try read(from: file, expectedSHA256: nil)
        }
        var arrays: [PayloadArray] = []
        for name in try file.children(of: "/") where !file.isGroup("/" + name) {
            let ds = try file.dataset("/" + name)
            arrays.append(try PayloadArray(name: name, dtype: ds.dtype, shape: ds.shape, bytes: try ds.readBytes()))
        }
        guard !arrays.isEmpty else {
            throw StoreError.bad("\(path) has no numeric dataset directly below '/'",
                                 fix: "put each array as a top-level dataset (h5py: f['pedestals'] = a)")
        }
        var attrs: [String: AttributeValue] = [:]
        for k in try file.attributeNames(on: "/") { attrs[k] = try file.attribute(k, on: "/") }
        return try Payload(arrays: arrays, attributes: attrs)
    }
}
