import ArgumentParser

/// `calibctl bench ...`: measured benchmarks (release builds; results go to docs/benchmarks-*.md).
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Run benchmarks (build with -c release first).",
        subcommands: [StoreBench.self])
}
