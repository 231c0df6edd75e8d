import ArgumentParser
import CalibCore
import CalibIO
import Foundation

/// `calibctl array write|read`: the smallest round trip through HDF5 and SQLite. Useful as an installation check on
/// a new farm node: if this works, the HDF5 and SQLite libraries calibctl links against are sound.
struct ArrayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "array",
        abstract: "Write a float32 2-D array to HDF5 and index it in SQLite, or read it back (installation check).",
        subcommands: [Write.self, Read.self]
    )

    /// The SQLite index of written arrays: one row per (file, dataset) with its shape and SHA-256.
    static func openIndex(_ path: String) throws -> SQLiteDatabase {
        let db = try SQLiteDatabase(path: path)
        try db.migrate(["""
            CREATE TABLE arrays(
              file TEXT NOT NULL, dataset TEXT NOT NULL, dtype TEXT NOT NULL, shape TEXT NOT NULL,
              sha256 TEXT NOT NULL, written_at TEXT NOT NULL, PRIMARY KEY(file, dataset));
            """], what: "array index")
        return db
    }

    struct Write: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a seeded float32 array with attributes to FILE and record it in the index.",
            discussion: "Example: calibctl array write out/a.h5 --shape 160x416 --attr run=5000 --index out/index.db")

        @Argument(help: "The HDF5 file to create.") var file: String
        @Option(help: "Rows x columns, e.g. 160x416.") var shape: String = "160x416"
        @Option(help: "Seed of the deterministic values.") var seed: UInt64 = 1
        @Option(help: "Dataset path inside the file.") var dataset: String = "/data"
        @Option(name: .customLong("attr"), help: "An attribute KEY=VALUE (repeatable); numbers are stored as numbers.")
        var attributes: [String] = []
        @Option(help: "SQLite index file.") var index: String = "calibctl-arrays.db"
        @Flag(help: "Replace FILE if it exists.") var overwrite = false

        func run() throws {
            let dims = shape.lowercased().split(separator: "x").compactMap { Int($0) }
            guard dims.count == 2, dims.allSatisfy({ $0 > 0 }) else {
                throw UsageError("--shape '\(shape)' is not ROWSxCOLS", fix: "write it as e.g. --shape 160x416")
            }
            var rng = SplitMix64(seed: seed)
            let values = (0..<(dims[0] * dims[1])).map { _ in Float(rng.nextGaussian() * 10 + 100) }
            let tmp = AtomicFile.temporaryPath(for: file)
            do {
                let h5 = try HDF5File.create(tmp, overwrite: true)
                let ds = try h5.write(dataset, values, shape: dims)
                for a in attributes {
                    guard let eq = a.firstIndex(of: "=") else {
                        throw UsageError("--attr '\(a)' has no '='", fix: "write it as KEY=VALUE")
                    }
                    let key = String(a[..<eq]), text = String(a[a.index(after: eq)...])
                    let value: AttributeValue = Int64(text).map { .int($0) } ?? Double(text).map { .double($0) }
                        ?? .string(text)
                    try ds.setAttribute(key, value)
                }
                try h5.setAttribute("calibctl_version", .string(CalibctlVersion.string))
                try h5.close()
                if !overwrite && FileManager.default.fileExists(atPath: file) {
                    throw UsageError("\(file) exists", fix: "pass --overwrite or choose another name")
                }
                try AtomicFile.commit(temporary: tmp, to: file)
            } catch {
                try? FileManager.default.removeItem(atPath: tmp)
                throw error
            }
            let sha = values.withUnsafeBytes { SHA256Hasher.hex($0) }
            let db = try ArrayCommand.openIndex(index)
            try db.run("INSERT OR REPLACE INTO arrays VALUES(?,?,?,?,?,?)",
                       URL(fileURLWithPath: file).standardizedFileURL.path, dataset, "float32",
                       "\(dims[0])x\(dims[1])", sha, ISO8601DateFormatter().string(from: Date()))
            print("wrote \(file):\(dataset) float32 \(dims[0])x\(dims[1]) sha256 \(sha)")
        }
    }

    struct Read: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read an array back, verify it against the index, and print a summary (or raw bytes).")

        @Argument(help: "The HDF5 file.") var file: String
        @Option(help: "Dataset path inside the file.") var dataset: String = "/data"
        @Option(help: "SQLite index file.") var index: String = "calibctl-arrays.db"
        @Flag(help: "Print JSON.") var json = false
        @Flag(help: "Write the raw little-endian float32 values to stdout instead of a summary.") var raw = false

        struct Summary: Codable {
            var file: String, dataset: String, dtype: String, shape: [Int], sha256: String, verified: Bool
            var attributes: [String: String], min: Float, max: Float, mean: Double
        }

        func run() throws {
            let h5 = try HDF5File.open(file)
            let ds = try h5.dataset(dataset)
            let values = try ds.read(as: Float.self)
            let sha = values.withUnsafeBytes { SHA256Hasher.hex($0) }
            let db = try ArrayCommand.openIndex(index)
            let row = try db.first("SELECT sha256 FROM arrays WHERE file = ? AND dataset = ?",
                                   URL(fileURLWithPath: file).standardizedFileURL.path, dataset)
            guard let recorded = row?.text("sha256") else {
                throw UsageError("\(file):\(dataset) is not in the index \(index)",
                                 fix: "write it with `calibctl array write` or pass the right --index")
            }
            guard recorded == sha else {
                throw HDF5Error(operation: "verify", file: file, object: dataset,
                                detail: "content SHA-256 \(sha) differs from the indexed \(recorded): file changed")
            }
            if raw {
                values.withUnsafeBytes { FileHandle.standardOutput.write(Data($0)) }
                return
            }
            let attrs = try ds.attributes().mapValues(\.description)
            let s = Summary(file: file, dataset: dataset, dtype: ds.dtype.rawValue, shape: ds.shape, sha256: sha,
                            verified: true, attributes: attrs, min: values.min() ?? .nan, max: values.max() ?? .nan,
                            mean: values.reduce(0.0) { $0 + Double($1) } / Double(max(values.count, 1)))
            if json { try printJSON(s); return }
            print("\(file):\(dataset) \(s.dtype) \(s.shape.map(String.init).joined(separator: "x")) sha256 \(sha) (verified)")
            for (k, v) in attrs.sorted(by: { $0.key < $1.key }) { print("  \(k) = \(v)") }
            print(String(format: "  min %.4f  max %.4f  mean %.4f", s.min, s.max, s.mean))
        }
    }
}
