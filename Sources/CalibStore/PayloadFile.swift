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
        var arrays: [PayloadArray] = []
        for name in try file.children(of: dataGroup) {
            let ds = try file.dataset(dataGroup + "/" + name)
            arrays.append(try PayloadArray(name: name, dtype: ds.dtype, shape: ds.shape, bytes: try ds.readBytes()))
        }
        var attrs: [String: AttributeValue] = [:]
        for k in try file.attributeNames(on: dataGroup) { attrs[k] = try file.attribute(k, on: dataGroup) }
        let payload = try Payload(arrays: arrays, attributes: attrs)
        if let expectedSHA256 {
            let recorded = try file.attributeIfPresent(StoreFormat.attrSHA256, on: root)?.stringValue
            let actual = payload.contentHash
            guard actual == expectedSHA256, recorded == expectedSHA256 else {
                throw StoreError.bad("payload \(expectedSHA256.prefix(12)) in \(file.path)\(base) is damaged: its content hashes to \(actual.prefix(12))"
                                     + (recorded == expectedSHA256 ? "" : " and it records \(recorded.map { String($0.prefix(12)) } ?? "no hash")"),
                                     fix: "the file changed behind the store's back; restore it from a bundle (store import) or put the constants again; `calibctl store verify` lists all damage")
            }
        }
        return payload
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
