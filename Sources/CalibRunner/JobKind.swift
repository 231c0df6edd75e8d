import Foundation

/// What a job kind's `run` reports: how the work ended and what it measured. The runner adds the outputs (with
/// sizes and SHA-256), the times and the host, and writes the result record.
public struct JobOutcome: Sendable, Equatable {
    public var exitCode: Int32
    public var signal: Int32?
    public var message: String?
    public var metrics: [String: Double]

    public init(exitCode: Int32, signal: Int32? = nil, message: String? = nil, metrics: [String: Double] = [:]) {
        self.exitCode = exitCode
        self.signal = signal
        self.message = message
        self.metrics = metrics
    }
}

/// Where a job runs and where it writes.
public struct JobContext: Sendable {
    /// The spec file: the job set's `specs.jsonl` (with `shard`) or a per-shard `spec.json`.
    public let specPath: String
    /// The shard's index when `specPath` is a job set spec.
    public let shard: Int?
    /// The shard directory (`shard-<i>` beside a job set spec, else the spec's directory); relative paths in the spec
    /// are relative to it.
    public let directory: String
    /// Attempt number (1-based), also `{attempt}` in command templates.
    public let attempt: Int

    public init(specPath: String, attempt: Int, shard: Int? = nil) {
        self.specPath = specPath
        self.shard = shard
        self.directory = shard.map { JobSetSpec.shardDirectory(specPath: specPath, index: $0) }
            ?? (specPath as NSString).deletingLastPathComponent
        self.attempt = attempt
    }

    /// How messages name the spec: `specs.jsonl shard 7` or the per-shard file.
    public var specName: String { shard.map { "\(specPath) shard \($0)" } ?? specPath }

    /// Final path of output `name`.
    public func outputPath(_ name: String, in spec: JobSpec) -> String? { spec.outputPath(name, directory: directory) }

    /// The temporary path a job writes output `name` to; the runner renames it to the final path after success.
    public func temporaryOutputPath(_ name: String, in spec: JobSpec) -> String? {
        guard let p = outputPath(name, in: spec) else { return nil }
        let dir = (p as NSString).deletingLastPathComponent
        return (dir as NSString).appendingPathComponent("." + (p as NSString).lastPathComponent + ".partial")
    }
}

/// A kind of job a worker knows how to run (`calibctl job run SPEC` dispatches on `spec.kind`).
/// Kinds that need the store or the numerics live in CalibCLI and are registered there.
public protocol JobKind: Sendable {
    /// The name used in specs, e.g. `command`.
    static var name: String { get }
    init()
    /// Does the work. Writes each output to `context.temporaryOutputPath(name, in: spec)` (or directly to its final
    /// path); throws only for failures of the job machinery itself (they become exit 70 in the result).
    func run(spec: JobSpec, context: JobContext) throws -> JobOutcome
}

/// The job kinds a worker can run, by name.
public struct JobKindRegistry: Sendable {
    public private(set) var kinds: [String: any JobKind.Type] = [:]

    public init(_ kinds: [any JobKind.Type] = []) {
        for k in kinds { register(k) }
    }

    /// The kinds built into CalibRunner (`command`).
    public static var builtIn: JobKindRegistry { JobKindRegistry([CommandJobKind.self]) }

    public mutating func register(_ kind: any JobKind.Type) { kinds[kind.name] = kind }

    public func kind(named name: String) throws -> any JobKind {
        guard let k = kinds[name] else { throw JobError.unknownKind(name, known: kinds.keys.sorted()) }
        return k.init()
    }
}
