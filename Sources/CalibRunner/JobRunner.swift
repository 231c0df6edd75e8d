import CalibCore
import CalibIO
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one shard on a worker (`calibctl job run SPEC`): reads the spec, dispatches on its kind, renames finished
/// outputs into place, checksums them and writes the result record last. Never touches the database.
public struct JobRunner: Sendable {
    public let registry: JobKindRegistry

    public init(registry: JobKindRegistry) { self.registry = registry }

    /// The default result path of an attempt of a per-shard spec: `attempt-N.result.json` beside the spec.
    public static func resultPath(specPath: String, attempt: Int) -> String {
        resultPath(directory: (specPath as NSString).deletingLastPathComponent, attempt: attempt)
    }

    /// The result path of an attempt in shard directory `directory`: `attempt-N.result.json`.
    public static func resultPath(directory: String, attempt: Int) -> String {
        (directory.hasSuffix("/") ? directory : directory + "/") + "attempt-\(attempt).result.json"
    }

    /// Runs the spec (shard `shard` of a job set spec, or a per-shard spec when nil) and writes the result record;
    /// returns it. The caller exits with `result.exitCode` (or re-raises `result.signal`) so the scheduler sees the
    /// same status as the record. A spec written by a newer calibctl is not run (exit 78; `WorkerVersionCheck`); one
    /// written by an older calibctl runs with a note in the message.
    public func run(specPath: String, shard: Int? = nil, attempt: Int, resultPath: String? = nil) throws -> JobResult {
        let p = try JobRunner.prepare(specPath: specPath, shard: shard, attempt: attempt, resultPath: resultPath)
        let version = WorkerVersionCheck.check(submitter: p.spec.calibctlVersion)
        var outcome: JobOutcome
        if case .refuse(let why) = version {
            outcome = JobOutcome(exitCode: WorkerVersionCheck.refusalExitCode, message: why)
        } else {
            let kind = try registry.kind(named: p.spec.kind)
            do { outcome = try kind.run(spec: p.spec, context: p.context) } catch {
                outcome = JobOutcome(exitCode: 70, message: "\(error)")
            }
        }
        if case .warn(let note) = version { outcome.message = outcome.message.map { note + "; " + $0 } ?? note }
        return try JobRunner.finish(p, outcome: outcome)
    }

    /// A shard ready to run: its spec read, its old result record and leftover temporary outputs removed.
    public struct Prepared: Sendable {
        public let spec: JobSpec
        public let context: JobContext
        public let resultPath: String
        public let start: Date
    }

    /// The first half of `run`: reads the spec and clears what an earlier attempt left (shared with the local
    /// executor, which runs `command` specs itself without starting `calibctl job run`).
    /// The shard directory is created here when it does not exist yet (a job set spec's shards get their directory
    /// when they first run: it holds their result records and non-empty logs).
    public static func prepare(specPath: String, shard: Int? = nil, attempt: Int, resultPath: String? = nil) throws -> Prepared {
        let context = JobContext(specPath: specPath, attempt: attempt, shard: shard)
        try JobFiles.mkdirs(context.directory)
        let resultPath = resultPath ?? JobRunner.resultPath(directory: context.directory, attempt: attempt)
        unlink(resultPath)
        let spec = try JobSpec.read(specPath, shard: shard)
        // Leftovers of an earlier attempt must not pass as this attempt's outputs.
        for name in spec.outputs.keys {
            if let tmp = context.temporaryOutputPath(name, in: spec) { unlink(tmp) }
        }
        return Prepared(spec: spec, context: context, resultPath: resultPath, start: Date())
    }

    /// The second half of `run`: renames finished outputs into place, checksums them and writes the result record
    /// last (durably: it is the shard's commit point); returns it.
    public static func finish(_ p: Prepared, outcome: JobOutcome) throws -> JobResult {
        let spec = p.spec, context = p.context
        var outcome = outcome
        var outputs: [OutputRecord] = []
        if outcome.exitCode == 0 && outcome.signal == nil {
            for name in spec.outputs.keys.sorted() {
                guard let final = context.outputPath(name, in: spec),
                      let tmp = context.temporaryOutputPath(name, in: spec) else { continue }
                if JobFiles.size(tmp) != nil {
                    try? AtomicFile.fsync(path: tmp)
                    guard rename(tmp, final) == 0 else {
                        outcome = JobOutcome(exitCode: 74, message: "cannot rename \(tmp) to \(final)",
                                             metrics: outcome.metrics)
                        break
                    }
                }
                guard let size = JobFiles.size(final) else {
                    outcome = JobOutcome(exitCode: 66, message: "output \(name) was not written (\(final))",
                                         metrics: outcome.metrics)
                    break
                }
                outputs.append(OutputRecord(name: name, path: final, size: size, sha256: try JobFiles.sha256(ofFile: final)))
            }
        }
        // A metric that is not a finite number (a command printed `x=nan`) cannot be a gate's evidence: it is left
        // out and named in the message, so a gate on it fails as "not reported" instead of the record being lost.
        let nonFinite = outcome.metrics.filter { !$0.value.isFinite }.keys.sorted()
        if !nonFinite.isEmpty {
            outcome.metrics = outcome.metrics.filter { $0.value.isFinite }
            let note = "metric(s) \(nonFinite.joined(separator: ", ")) not finite, left out"
            outcome.message = outcome.message.map { $0 + "; " + note } ?? note
        }
        var result = JobResult(kind: spec.kind, exitCode: outcome.exitCode, signal: outcome.signal,
                               message: outcome.message, metrics: outcome.metrics,
                               outputs: outcome.exitCode == 0 ? outputs : [], startTime: p.start, endTime: Date())
        result.calibctlVersion = CalibctlVersion.full   // the worker's build, next to the spec's submitter build
        try result.write(to: p.resultPath)
        return result
    }
}
