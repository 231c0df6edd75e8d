import ArgumentParser
import CalibCore
import CalibIO
import CalibKernelsAVX512
import Foundation

/// The root command: lists the subcommands. Each subcommand lives in its own file under Commands/.
public struct Calibctl: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "calibctl",
        abstract: "Calibration workflow orchestrator for detector physics.",
        discussion: reflow("""
        calibctl turns a calibration checklist into a dependency graph of steps, runs the per-run / per-FED jobs on a
        local executor, Slurm or HTCondor, fits per-pixel gains, pedestals and dark-run statistics, and keeps the
        resulting constants in a versioned store with run-range validity and provenance.

        Read commands accept --json; data goes to stdout, diagnostics to stderr. Exit codes: docs/exit-codes.md
        (0 ok, 1 failures found, 64 usage, 65 bad input data, 69 unavailable, 70 internal, 75 lock held / retry,
        77 permission denied, 78 configuration error).
        """),
        version: CalibctlVersion.full,   // 0.1.0+BUILD: the build is what workers compare (docs/runner.md)
        subcommands: CommandRegistry.all
    )

    public init() {}
}

/// Every subcommand, in the order `--help` lists them. Commands register here.
enum CommandRegistry {
    static let all: [ParsableCommand.Type] = [
        CreateRun.self,
        SubmitRun.self,
        StatusRun.self,
        ResubmitRun.self,
        MergeRun.self,
        SummaryRun.self,
        PayloadRun.self,
        VCalCommand.self,
        CablingCommand.self,
        SimulateCommand.self,
        FitCommand.self,
        ChecklistCommand.self,
        CampaignCommand.self,
        StepGroupCommand.self,
        ReportCommand.self,
        BenchCommand.self,
        JobsCommand.self,
        JobCommand.self,
        TickCommand.self,
        StoreCommand.self,
        TopGet.self,
        TopPut.self,
        ServeCommand.self,
        ArrayCommand.self,
    ]
}

/// The process entry point: parses, runs, renders errors on stderr with the documented exit codes.
public enum CalibctlMain {
    public static func run(_ arguments: [String]? = nil) -> Never {
        let missing = CPUFeatures.missingOnThisMachine()
        if !missing.isEmpty {
            Diagnostics.error("this calibctl was built for x86-64-v3 CPUs and this CPU lacks \(missing.joined(separator: ", "))")
            Diagnostics.note("fix: build calibctl on this machine without -march=x86-64-v3 (Package.swift, numericFlags)")
            exit(ExitStatus.unavailable.rawValue)
        }
        AVX512Kernels.install()
        let args = arguments ?? Array(CommandLine.arguments.dropFirst())
        do {
            try CommandTree.check(args)
            if CommandTree.isHelpRequest(args) {
                // Help is laid out here so that no example is wrapped in the middle of a command.
                print(CommandTree.help(for: CommandTree.helpTopic(args), columns: Terminal.width() ?? 80))
                exit(0)
            }
            var command = try Calibctl.parseAsRoot(args)
            try command.run()
            exit(0)
        } catch let e as CleanExit where e.description == "--help" {
            // Help is laid out here so that no example is wrapped in the middle of a command.
            print(CommandTree.help(for: CommandTree.helpTopic(args), columns: Terminal.width() ?? 80))
            exit(0)
        } catch let e as DiagnosableError {
            Diagnostics.error(e.message)
            if let fix = e.fix { Diagnostics.note("fix: \(fix)") }
            exit(e.exitStatus.rawValue)
        } catch let e as ExitCode {
            exit(e.rawValue)
        } catch {
            Calibctl.exit(withError: error)
        }
    }
}

/// Diagnostics on stderr; data never goes here.
public enum Diagnostics {
    public static func error(_ text: String) { write("calibctl: error: \(text)\n") }
    public static func warning(_ text: String) { write("calibctl: warning: \(text)\n") }
    public static func note(_ text: String) { write("  \(text)\n") }
    public static func info(_ text: String) { write("\(text)\n") }

    /// True when stderr is a terminal (progress lines are shown only then).
    public static var isTerminal: Bool { isatty(2) != 0 }

    public static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}

/// A usage error raised by a command's own checks (exit 64).
public struct UsageError: DiagnosableError {
    public let message: String
    public let fix: String?
    public var exitStatus: ExitStatus { .usage }
    public init(_ message: String, fix: String? = nil) { self.message = message; self.fix = fix }
}

/// Prints a value as pretty JSON on stdout.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    enc.dateEncodingStrategy = .iso8601
    let data = try enc.encode(value)
    FileHandle.standardOutput.write(data)
    FileHandle.standardOutput.write(Data("\n".utf8))
}
