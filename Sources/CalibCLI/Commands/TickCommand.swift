import ArgumentParser
import CalibCore
import CalibIO
import CalibRunner
import CalibWorkflow
import Foundation

/// Campaign work added to every tick: the workflow engine (every campaign, its watched directories and triggers such
/// as the pixel gain inbox; docs/workflow.md).
enum TickParticipants {
    static func all(_ context: JobsContext) throws -> [any TickParticipant] {
        [WorkflowTickParticipant(engine: try context.workflowEngine())]
    }
}

/// `calibctl tick`: one round of following jobs, for cron.
struct TickCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tick",
        abstract: "Follow every job once: poll schedulers, record states, retry, start ready steps (for cron).",
        discussion: reflow("""
        Takes a non-blocking lock (HOME/tick.lock): if another tick holds it, prints one line and exits 75. A lock
        left by a dead tick (pid and host recorded in the file) is taken over. Each scheduler is queried once, at most
        every minimum poll interval; job states are recorded, the retry policy applied (node failures and lost jobs
        retried, out-of-memory with more memory, time limits with more time; user errors never). Then every
        campaign moves on: new runs in watched directories become campaigns (`calibctl campaign watch`), ready
        steps with an action become job sets (or run inline), finished job sets are completed (metrics, effort,
        quorum, gates, repeat), and one line per campaign says where it stands and what it waits for (a sign-off
        names the command). Stops after --budget seconds. Running it twice in a row changes nothing the second
        time; killing it at any point loses and duplicates nothing.

        Exit codes: 0 done, 1 a campaign could not be moved on (its error is on stderr; the others were), 65 a
        scheduler refused a submission (permanent: its shards are recorded as failed with the scheduler's message and
        are not resubmitted), 69 a scheduler could not be reached (transient: the next tick repeats it; the rest was
        done), 75 another tick holds the lock.

        Example (crontab): */5 * * * * calibctl tick --home /group/calib --budget 240 >> /group/calib/tick.log 2>&1
        """))

    @OptionGroup(title: "Workspace") var ws: WorkspaceOptions
    @Option(help: "Seconds this tick may take.") var budget: Double = 50
    @Flag(help: "Poll even if a scheduler's minimum poll interval has not passed.") var force = false
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        let ctx = try JobsContext(ws.workspace)
        let ticker = Ticker(workspace: ctx.workspace, engine: ctx.engine, participants: try TickParticipants.all(ctx),
                            budget: budget)
        let report: TickReport
        do { report = try ticker.run(force: force) } catch let held as TickLock.Held {
            Diagnostics.write("calibctl tick: " + held.message + "\n")
            throw ExitCode(held.exitStatus.rawValue)
        }
        if json { try printJSON(report) } else {
            if let s = report.tookOverStaleLockFrom { print("took over a stale tick lock (\(s))") }
            for l in report.lines { print(l) }
            let u = report.update
            print(String(format: "tick: polled %@%@; %d change(s), %d submitted, %d retried, %d recovered in %.2f s%@",
                         u.polled.isEmpty ? "nothing" : u.polled.joined(separator: ", "),
                         u.skipped.isEmpty ? "" : " (skipped " + u.skipped.joined(separator: ", ") + ": poll interval)",
                         u.transitions, report.totalSubmitted, u.retried, u.recovered, report.seconds,
                         report.budgetExhausted ? "; time budget used up, the rest next tick" : ""))
        }
        for e in report.errors + report.update.refused + report.campaignErrors { Diagnostics.error(e) }
        if !report.errors.isEmpty { throw ExitCode(ExitStatus.unavailable.rawValue) }
        if !report.update.refused.isEmpty { throw ExitCode(ExitStatus.dataError.rawValue) }
        if !report.campaignErrors.isEmpty { throw ExitCode(ExitStatus.failuresFound.rawValue) }
    }
}
