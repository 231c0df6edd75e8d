import ArgumentParser
import CalibCore
import CalibIO
import CalibStore
import Foundation

/// Shared pieces of the `store` commands: opening the store, parsing, rendering.
enum StoreCLI {
    /// Opens the workspace's store. It must exist for reads and writes alike: only `store init` creates a store, so
    /// a mistyped `--store` is an error (exit 69 naming `calibctl store init`), never a new empty store.
    static func open(_ ws: WorkspaceOptions, write: Bool = false) throws -> ConstantsStore {
        try ConstantsStore(directory: ws.workspace.store, create: false)
    }

    static func range(_ text: String) throws -> RunRange { try RunRange(parsing: text) }

    static func time(_ text: String?) throws -> Int64? { try text.map(StoreTime.parse) }

    static func keyValues(_ items: [String], what: String) throws -> [(String, String)] {
        try items.map { s in
            guard let eq = s.firstIndex(of: "=") else { throw UsageError("\(what) '\(s)' has no '='", fix: "write it as KEY=VALUE") }
            return (String(s[..<eq]), String(s[s.index(after: eq)...]))
        }
    }

    static func attribute(_ text: String) -> AttributeValue {
        Int64(text).map { .int($0) } ?? Double(text).map { .double($0) } ?? .string(text)
    }

    /// One line per entry; the provenance comment in its short form unless `verbose` (`--json` has everything).
    static func entryLine(_ e: IOVEntry, verbose: Bool = false) -> String {
        var s = "#\(e.id) \(e.detector)/\(e.type) [\(e.tag)] runs \(e.runs) -> \(e.sha256.prefix(12)) inserted \(e.insertedAt) by \(e.provenance.user)@\(e.provenance.host)"
        let comment = verbose ? e.provenance.links.comment : shortComment(e.provenance.links.comment)
        if !comment.isEmpty { s += " \"\(comment)\"" }
        return s
    }

    /// The provenance comment without the run configuration (`config {...}`, written by `calibctl payload`) and cut
    /// to `limit` characters with an ellipsis.
    static func shortComment(_ comment: String, limit: Int = 100) -> String {
        var s = comment
        if s.hasPrefix("config {") { s = "" }
        else if let r = s.range(of: "; config {") { s = String(s[..<r.lowerBound]) }
        return s.count > limit ? String(s.prefix(limit - 1)) + "…" : s
    }

    /// Reads the payload inputs of `put`: `FILE` or `DATASET=FILE`; `.h5/.hdf5` contribute all their top-level
    /// datasets, `.npy` and `.txt/.data` (LCLS text) one array named DATASET or the type's first dataset.
    static func readInputs(_ inputs: [String], schema: TypeSchema, attributes: [String]) throws -> Payload {
        var arrays: [PayloadArray] = []
        var attrs: [String: AttributeValue] = [:]
        for input in inputs {
            var name: String? = nil, path = input
            if let eq = input.firstIndex(of: "="), !FileManager.default.fileExists(atPath: input) {
                name = String(input[..<eq]); path = String(input[input.index(after: eq)...])
            }
            guard FileManager.default.fileExists(atPath: path) else {
                throw StoreError(.badData, "input file \(path) does not exist", fix: "check the path")
            }
            let ext = (path as NSString).pathExtension.lowercased()
            let datasetName = name ?? schema.primaryDataset ?? "values"
            switch ext {
            case "h5", "hdf5", "hdf":
                let p = try PayloadFile.readForeign(path)
                if let empty = p.arrays.first(where: { $0.count == 0 }) {
                    throw StoreError(.badData, "input \(path): dataset '\(empty.name)' is empty (shape \(empty.shapeText))",
                                     fix: "store constants with at least one element")
                }
                for a in p.arrays {
                    arrays.append(name.map { n in (try? PayloadArray(name: p.arrays.count == 1 ? n : a.name, dtype: a.dtype, shape: a.shape, bytes: a.bytes)) ?? a } ?? a)
                }
                attrs.merge(p.attributes) { _, new in new }
            case "npy":
                let data = try ArrayFiles.readFile(path: path)
                arrays.append(try ArrayFiles.readNPY(data, name: datasetName, source: path))
            case "txt", "data", "dat":
                let text = try ArrayFiles.readText(path: path)
                let rule = schema.datasets.first { $0.name == datasetName }
                arrays.append(try ArrayFiles.readLCLSText(text, name: datasetName, defaultDType: rule?.dtypes.first ?? .float64, source: path))
            default:
                throw UsageError("input \(path) has extension '.\(ext)'", fix: "give an .h5, .npy, or LCLS .txt/.data file")
            }
        }
        for (k, v) in try keyValues(attributes, what: "--attr") { attrs[k] = attribute(v) }
        return try Payload(arrays: arrays, attributes: attrs)
    }

    /// Writes one payload as HDF5 (all datasets), .npy or LCLS text (one dataset) to `output` ("-" = stdout).
    static func write(_ stored: StoredPayload, to output: String, format: String?, dataset: String?) throws {
        let ext = format ?? (output == "-" ? "txt" : (output as NSString).pathExtension.lowercased())
        func one() throws -> PayloadArray {
            if let dataset {
                guard let a = stored.payload[dataset] else {
                    throw UsageError("the payload has no dataset '\(dataset)'", fix: "it holds \(stored.payload.arrays.map(\.name).joined(separator: ", "))")
                }
                return a
            }
            guard stored.payload.arrays.count == 1 else {
                throw UsageError("the payload holds \(stored.payload.arrays.count) datasets; .\(ext) holds one",
                                 fix: "pick one with --dataset (\(stored.payload.arrays.map(\.name).joined(separator: ", "))) or write .h5")
            }
            return stored.payload.arrays[0]
        }
        let data: Data
        switch ext {
        case "h5", "hdf5":
            guard output != "-" else { throw UsageError("HDF5 cannot be written to stdout", fix: "give -o FILE.h5") }
            let tmp = AtomicFile.temporaryPath(for: output)
            defer { unlink(tmp) }
            let f = try HDF5File.create(tmp, overwrite: true)
            try PayloadFile.write(stored.payload, sha256: stored.entry.sha256, to: f)
            try f.close()
            try AtomicFile.commit(temporary: tmp, to: output)
            return
        case "npy": data = ArrayFiles.npy(try one())
        case "txt", "data", "text":
            let e = stored.entry
            data = Data(ArrayFiles.lclsText(try one(), comments: [
                "DETECTOR   \(e.detector)", "CALIB_TYPE \(e.type)", "TAG        \(e.tag)", "RUNS       \(e.runs)",
                "PAYLOAD    \(e.sha256)", "DATE_TIME  \(e.insertedAt)", "AUTHOR     \(e.provenance.user)"]).utf8)
        default: throw UsageError("unknown output format '\(ext)'", fix: "use --format h5, npy or txt")
        }
        if output == "-" { FileHandle.standardOutput.write(data) } else { try AtomicFile.write(data, to: output) }
    }
}

/// Options every lookup verb shares.
struct LookupOptions: ParsableArguments {
    @Argument(help: "Detector name or alias.", completion: .detectorName) var detector: String
    @Argument(help: "Calibration type (pedestals, pixel_status, /calibration/ftof/attenuation, ...).", completion: .typeName) var type: String
    @Option(help: "The run to look up.") var run: Int64
    @Option(help: "Tag name or alias (default: the tag 'default').", completion: .tagName) var tag: String?
    @Option(name: .customLong("global-tag"), help: "Resolve the tag through this global tag (and its as-of time).") var globalTag: String?
    @Option(name: .customLong("as-of"), help: "Ignore insertions after this UTC time (2026-11-21T20:00:00Z).") var asOf: String?
}
