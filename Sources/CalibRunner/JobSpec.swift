import CalibCore
import Foundation

/// The self-contained description of one shard's work, read by `calibctl job run` on the worker. Everything the worker
/// needs is in it: no database access. Written before submission, since format version 2 for a whole job set in one
/// file (`JobSetSpec`, `jobs/<set>/specs.jsonl`); version 1 was one `jobs/<set>/shard-<i>/spec.json` per shard.
public struct JobSpec: Sendable, Codable, Equatable {
    /// Version of the per-shard spec file layout (docs/runner.md); job set spec files are `JobSetSpec.formatVersion`.
    public static let formatVersion = 1

    public var formatVersion: Int
    /// The registered job kind that runs it (`command`, `pixel-gain-fit`, ...).
    public var kind: String
    /// Input files or values by name.
    public var inputs: [String: String]
    /// Output files by name; relative paths are relative to the spec's directory. The job writes each to a temporary
    /// name and renames it when complete; the result record lists their sizes and SHA-256.
    public var outputs: [String: String]
    /// Kind-specific parameters (for `command`: `argv` as a JSON-encoded array or `shell`).
    public var parameters: [String: String]
    /// The shard key, e.g. `fed=1200` (placeholder `{key}`), and index (`{index}`).
    public var key: String
    public var index: Int
    /// The environment the job runs in (captured from whoever created the job set or its campaign); nil: the
    /// worker's own. Retries and cron ticks run in the same environment as the first attempt (docs/runner.md).
    public var environment: [String: String]?
    /// The directory the job runs in (default: the shard directory).
    public var workDirectory: String?
    /// The version of the calibctl that wrote the spec with its build (`CalibctlVersion.full`, e.g.
    /// `0.1.0+8842c0b4ae97f654`); the worker's `calibctl job run` refuses a spec of a newer calibctl and notes an
    /// older one or another build of the same version (`WorkerVersionCheck`). nil in specs written before
    /// the field existed: not checked.
    public var calibctlVersion: String?

    public init(kind: String, key: String = "", index: Int = 0, inputs: [String: String] = [:],
                outputs: [String: String] = [:], parameters: [String: String] = [:]) {
        self.formatVersion = JobSpec.formatVersion
        self.kind = kind
        self.key = key
        self.index = index
        self.inputs = inputs
        self.outputs = outputs
        self.parameters = parameters
        self.calibctlVersion = CalibctlVersion.full
    }

    /// Reads shard `shard` of a job set spec file (`specs.jsonl`, version 2), or, when `shard` is nil, a per-shard
    /// spec file (version 1).
    public static func read(_ path: String, shard: Int?) throws -> JobSpec {
        guard let shard else {
            if JobSetSpec.isJobSetSpec(path) {
                throw JobError.badSpec(path: path, detail: "is the spec of a whole job set: give the shard (--shard I)")
            }
            return try read(path)
        }
        guard JobSetSpec.isJobSetSpec(path) else {
            throw JobError.badSpec(path: path, detail: "is not a job set spec (\(JobSetSpec.fileName)); run it without --shard")
        }
        return try JobSetSpec.readShard(path, index: shard)
    }

    /// Reads and validates a per-shard spec file (version 1).
    public static func read(_ path: String) throws -> JobSpec {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw JobError.badSpec(path: path, detail: "cannot read it: \(error.localizedDescription)")
        }
        let spec: JobSpec
        do { spec = try JSONDecoder().decode(JobSpec.self, from: data) } catch {
            throw JobError.badSpec(path: path, detail: "not a job spec: \(error)")
        }
        guard spec.formatVersion <= JobSpec.formatVersion else {
            throw JobError.badSpec(path: path, detail: "format version \(spec.formatVersion) is newer than this "
                                   + "calibctl understands (\(JobSpec.formatVersion)); install the same calibctl on the workers")
        }
        return spec
    }

    /// Writes the spec with a temporary name and a rename (no fsync: a lost spec makes the job fail and be retried).
    public func write(to path: String, encoder: JSONEncoder? = nil) throws {
        let enc = encoder ?? JobSpec.encoder()
        try JobFiles.writeReplacing(try enc.encode(self), to: path)
    }

    /// The encoder specs are written with (pretty, sorted keys).
    public static func encoder() -> JSONEncoder {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return enc
    }

    /// Absolute path of output `name` for a spec stored at `specPath` (a per-shard spec: its directory).
    public func outputPath(_ name: String, specPath: String) -> String? {
        outputPath(name, directory: (specPath as NSString).deletingLastPathComponent)
    }

    /// Absolute path of output `name` of the shard whose directory is `directory`.
    public func outputPath(_ name: String, directory: String) -> String? {
        guard let p = outputs[name] else { return nil }
        return JobFiles.resolve(p, relativeTo: directory)
    }

    /// `expand(_:attempt:directory:)` for a per-shard spec stored at `specPath`.
    public func expand(_ text: String, attempt: Int, specPath: String) -> String {
        expand(text, attempt: attempt, directory: (specPath as NSString).deletingLastPathComponent)
    }

    /// Replaces `{key}`, `{index}`, `{attempt}`, `{dir}` (the shard directory), `{input:NAME}`, `{output:NAME}` and
    /// `{param:NAME}` in `text`.
    public func expand(_ text: String, attempt: Int, directory dir: String) -> String {
        var s = text.replacingOccurrences(of: "{key}", with: key)
            .replacingOccurrences(of: "{index}", with: String(index))
            .replacingOccurrences(of: "{attempt}", with: String(attempt))
            .replacingOccurrences(of: "{dir}", with: dir)
        if s.contains("{") {
            for (k, v) in inputs { s = s.replacingOccurrences(of: "{input:\(k)}", with: v) }
            for (k, _) in outputs {
                s = s.replacingOccurrences(of: "{output:\(k)}", with: outputPath(k, directory: dir) ?? "")
            }
            for (k, v) in parameters { s = s.replacingOccurrences(of: "{param:\(k)}", with: v) }
        }
        return s
    }
}

/// One output file as recorded in the result: where, how big, its SHA-256.
public struct OutputRecord: Sendable, Codable, Equatable {
    public var name: String
    public var path: String
    public var size: Int64
    public var sha256: String

    public init(name: String, path: String, size: Int64, sha256: String) {
        self.name = name
        self.path = path
        self.size = size
        self.sha256 = sha256
    }
}

/// The result record a job writes last (atomically): how it ended, its metrics and its outputs with checksums.
public struct JobResult: Sendable, Codable, Equatable {
    public var formatVersion: Int
    public var kind: String
    public var exitCode: Int32
    public var signal: Int32?
    public var message: String?
    public var metrics: [String: Double]
    public var outputs: [OutputRecord]
    public var startTime: Date
    public var endTime: Date
    public var host: String
    /// The calibctl that ran the job and wrote the record (`CalibctlVersion.full`, with its build); nil in records
    /// written before the field existed or by a direct command wrapper. With the spec's `calibctlVersion` it shows
    /// which build submitted and which ran each attempt.
    public var calibctlVersion: String?

    public init(kind: String, exitCode: Int32, signal: Int32? = nil, message: String? = nil,
                metrics: [String: Double] = [:], outputs: [OutputRecord] = [], startTime: Date, endTime: Date,
                host: String = ProcessInfo.processInfo.hostName) {
        self.formatVersion = JobSpec.formatVersion
        self.kind = kind
        self.exitCode = exitCode
        self.signal = signal
        self.message = message
        self.metrics = metrics
        self.outputs = outputs
        self.startTime = startTime
        self.endTime = endTime
        self.host = host
    }

    public static func read(_ path: String) throws -> JobResult {
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .secondsSince1970
        return try dec.decode(JobResult.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes the record atomically and durably (it is the job's commit point).
    public func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.dateEncodingStrategy = .secondsSince1970
        try JobFiles.writeDurably(try enc.encode(self), to: path)
    }

    /// Checks that every listed output still exists with its recorded size and SHA-256; returns what is wrong.
    public func verifyOutputs(checksums: Bool = true) -> String? {
        for o in outputs {
            guard let attrs = try? FileManager.default.attributesOfItem(atPath: o.path),
                  let size = (attrs[.size] as? NSNumber)?.int64Value else {
                return "output \(o.name) (\(o.path)) is missing"
            }
            if size != o.size { return "output \(o.name) (\(o.path)) has \(size) bytes, the result says \(o.size)" }
            if checksums, let sha = try? JobFiles.sha256(ofFile: o.path), sha != o.sha256 {
                return "output \(o.name) (\(o.path)) fails its SHA-256 check"
            }
        }
        return nil
    }
}
