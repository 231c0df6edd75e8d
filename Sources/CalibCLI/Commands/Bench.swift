import ArgumentParser

/// `calibctl bench ...`: measured benchmarks, run from a release build (`swift build -c release`); each prints its
/// figures (JSON where it says so) with the baseline an ordinary user would pick, in the same run. Results and the
/// commands that produced them: docs/benchmarks.md.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure calibctl's speed on this machine (run from a release build).",
        subcommands: [BenchFit.self, BenchDark.self, BenchDecode.self, StoreBench.self, ChecklistBench.self, BenchJobsCommand.self])
}
