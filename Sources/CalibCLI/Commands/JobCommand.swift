import ArgumentParser
import CalibCore
import CalibIO
import CalibRunner
import CalibWorkflow
import Foundation

/// The job kinds this calibctl can run on a worker. Kinds that need the store or numerics register here.
enum JobKinds {
    static var registry: JobKindRegistry {
        var r = JobKindRegistry.builtIn
        for k in WorkflowJobKinds.all { r.register(k) }
        return r
    }
}

/// `calibctl job run SPEC`: what a batch worker runs for one shard.
struct JobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job",
        abstract: "Run one shard of a job set on a worker (used by the schedulers).",
        subcommands: [Run.self, LocalExecutorCommand.self]
    )

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a job spec: dispatch on its kind, write outputs, then the result record.",
            discussion: reflow("""
            The job set's spec file (written by `calibctl jobs create`: jobs/SET/specs.jsonl, one line per shard) is
            self-contained: kind, inputs, outputs, parameters. Outputs are written under a temporary name and renamed
            when complete; the result record (exit status, metrics, outputs with sizes and SHA-256) is written last,
            atomically, as attempt-N.result.json in the shard directory (jobs/SET/shard-I, made when missing). The
            database is never touched, so workers may run anywhere the job directory is visible. A per-shard spec of
            an older job set (shard-I/spec.json) runs without --shard.

            The exit status is the job's: 0 on success, the command's own status on failure; a command killed by a
            signal makes this process die by the same signal.

            The spec records the version of the calibctl that submitted it. A worker running an older calibctl
            refuses the job (exit 78, the message names both versions: deploy the same calibctl build to the worker
            nodes); a newer one runs it with a warning.

            Example: calibctl job run ~/.calibctl/jobs/gain-5000/specs.jsonl --shard 3 --attempt 2
            """))

        @Argument(help: "The job set's specs.jsonl (with --shard), or an older per-shard spec.json.") var spec: String
        @Option(help: "The shard to run (its index in the job set).") var shard: Int?
        @Option(help: "Attempt number (1-based); names the result and log files and fills {attempt}.") var attempt = 1
        @Option(help: "Where to write the result record (default attempt-N.result.json in the shard directory).")
        var result: String?

        func run() throws {
            let r = try JobRunner(registry: JobKinds.registry).run(specPath: spec, shard: shard, attempt: attempt,
                                                                    resultPath: result)
            let context = JobContext(specPath: spec, attempt: attempt, shard: shard)
            if let m = r.message {
                if r.exitCode != 0 {
                    Diagnostics.error("job \(context.specName): \(m)")
                } else {
                    Diagnostics.warning("job \(context.specName): \(m)")
                }
            }
            // The shard's logs (the scheduler opened them as this process's stdout and stderr) are not kept when
            // empty: 100,000 shards would otherwise leave 200,000 empty files (`calibctl jobs log` prints nothing).
            let dir = context.directory as NSString
            JobFiles.removeIfEmpty(dir.appendingPathComponent("attempt-\(attempt).out"), fd: 1)
            JobFiles.removeIfEmpty(dir.appendingPathComponent("attempt-\(attempt).err"), fd: 2)
            if let sig = r.signal {
                signal(sig, SIG_DFL)
                kill(getpid(), sig)
            }
            throw ExitCode(r.exitCode)
        }
    }

    struct LocalExecutorCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "local-executor",
            abstract: "Run one local-scheduler submission to the end (started detached by calibctl).",
            shouldDisplay: false)

        @Argument(help: "The submission directory.") var directory: String

        func run() throws {
            try LocalExecutor(directory: directory).run()
        }
    }
}
