import ArgumentParser
import CalibCore
import CalibIO
import Foundation

/// `calibctl bench checklist`: validate + topological sort + ready set (+ critical path) on a synthetic checklist.
struct ChecklistBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checklist",
        abstract: "Time validation, topological sort, ready set and critical path on a synthetic N-step checklist.",
        discussion: reflow("""
        Reports the median and minimum of --repeat runs for the in-memory checklist (the engine's work) and,
        separately, the YAML parse of the same checklist.

        Example: swift build -c release && .build/release/calibctl bench checklist --steps 10000 --repeat 20
        """))

    @Option(help: "Number of steps.") var steps = 10_000
    @Option(help: "Repetitions.") var `repeat` = 20
    @Option(help: "Seed of the synthetic checklist.") var seed: UInt64 = 1
    @Flag(name: .customLong("skip-yaml"), help: "Do not time the YAML load.") var skipYAML = false
    @Flag(help: "Print JSON.") var json = false

    struct Result: Codable {
        var schema = "calibctl.bench-checklist/1"
        var steps: Int, edges: Int, repeats: Int, ready: Int, criticalPathSteps: Int
        var validateSortReadyMs: Stats, criticalPathMs: Stats, yamlParseMs: Stats, yamlBytes: Int
    }
    struct Stats: Codable { var median: Double, min: Double, max: Double }

    static func stats(_ xs: [Double]) -> Stats {
        let s = xs.isEmpty ? [0] : xs.sorted()
        return Stats(median: s[s.count / 2], min: s.first!, max: s.last!)
    }

    static func ms(_ body: () throws -> Void) rethrows -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
    }

    func run() throws {
        guard steps > 0, self.repeat > 0 else { throw UsageError("--steps and --repeat must be positive") }
        let checklist = SyntheticChecklist.make(steps: steps, seed: seed)
        let yaml = SyntheticChecklist.yaml(checklist)
        var core: [Double] = [], cp: [Double] = [], parse: [Double] = []
        var ready = 0, cpLen = 0, edges = 0
        let satisfied = (0..<steps).map { $0 < steps / 2 }      // the first half is done
        let eligible = [Bool](repeating: true, count: steps)
        for _ in 0..<self.repeat {
            var order: [Int] = []
            var graph: ChecklistGraph?
            core.append(try Self.ms {
                let (issues, g) = ChecklistValidator.check(checklist)
                guard issues.isEmpty else { throw ChecklistError(file: "<synthetic>", issues: issues) }
                order = g.topologicalOrder() ?? []
                ready = g.readySet(satisfied: satisfied, eligible: eligible).count
                graph = g
            })
            edges = graph!.prerequisites.reduce(0) { $0 + $1.count }
            cp.append(Self.ms {
                cpLen = graph!.criticalPath(to: steps - 1, order: order, weight: checklist.steps.map(\.estimateDays),
                                            finished: satisfied).path.count
            })
            if !skipYAML { parse.append(try Self.ms { _ = try ChecklistLoader.load(yaml: yaml, file: "<synthetic>") }) }
        }
        let r = Result(steps: steps, edges: edges, repeats: self.repeat, ready: ready, criticalPathSteps: cpLen,
                       validateSortReadyMs: Self.stats(core), criticalPathMs: Self.stats(cp),
                       yamlParseMs: Self.stats(parse), yamlBytes: yaml.utf8.count)
        if json { try printJSON(r); return }
        print(String(format: "synthetic checklist: %d steps, %d prerequisite edges, %d ready, critical path %d steps",
                     steps, edges, ready, cpLen))
        print(String(format: "validate + sort + ready set: median %.2f ms (min %.2f, max %.2f) over %d runs",
                     r.validateSortReadyMs.median, r.validateSortReadyMs.min, r.validateSortReadyMs.max, self.repeat))
        print(String(format: "critical path:               median %.2f ms (min %.2f)", r.criticalPathMs.median, r.criticalPathMs.min))
        if !skipYAML { print(String(format: "YAML load (%d bytes, incl. validation): median %.1f ms (min %.1f)",
                     r.yamlBytes, r.yamlParseMs.median, r.yamlParseMs.min)) }
    }
}
