import ArgumentParser
import CalibCore
import CalibIO
import Foundation

/// `calibctl simulate gain|dark`: deterministic (seeded) realistic inputs with the truth written alongside.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Generate seeded, realistic gain scans and dark runs (with truth) for tests, demos and benchmarks.",
        subcommands: [SimulateGain.self, SimulateDark.self]
    )
}

struct SimulateGain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gain",
        abstract: "Write CMS pixel gain scans, one HDF5 file per FED (fed_<id>.h5), with truth in truth/fed_<id>.h5.",
        discussion: reflow("""
        Each pixel gets a gain, pedestal, plateau and noise from realistic distributions; 29 VCal points x 5 injections
        are digitised by an 8-bit ADC with a soft plateau. Dead, stuck, noisy and too-few-entries pixels are injected
        (their kind is in the truth file). The same seed gives the same files.

        Example (two tiny FEDs for a test, then the whole detector):
          calibctl simulate gain -o scan/ --feds 1200,1201 --modules-per-fed 1 --rows 16 --cols 32 --seed 7
          calibctl simulate gain -o cms/ --all
        """))

    @Option(name: .shortAndLong, help: "Output directory.") var output: String
    @Option(help: "Comma-separated FED ids (default: 1200).") var feds: String = "1200"
    @Flag(help: "All 108 CMS pixel FEDs with their real module counts.") var all = false
    @Option(help: "Modules per FED (default: the CMS count of each FED).") var modulesPerFed: Int?
    @Option(help: "Rows per module.") var rows: Int = CMSPixelTopology.rowsPerModule
    @Option(help: "Columns per module.") var cols: Int = CMSPixelTopology.colsPerModule
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(name: .customLong("run"), help: "Run number written into the files.") var runNumber: Int = 400_000
    @Option(help: "Deflate level 1-9 for the scan datasets (default: none; see docs/benchmarks-numerics.md).")
    var deflate: Int?
    @Option(help: ArgumentHelp("Pedestal distribution of good pixels MEAN,SIGMA,MIN,MAX in ADC (default 35,10,5,120).",
                               discussion: "Irradiated modules: --pedestal=-50,20,-80,-20 (the lowest points read 0, clamped)."))
    var pedestal: String?
    @Flag(help: "Also write the CMS raw dump GainCalibration_<FED>_<RUN>.dmp of each FED (with calib.json and cabling_<FED>.json) from the same readings (docs/formats-cms-raw.md).")
    var dmp = false
    @Flag(help: "With --dmp: corrupt the dumps (error words, a stuck channel, a truncated last block).") var corrupt = false
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        guard rows > 0, cols > 0, (modulesPerFed ?? 1) > 0 else {
            throw UsageError("--rows, --cols and --modules-per-fed must be positive")
        }
        let ids: [Int]
        if all { ids = CMSPixelTopology.feds } else {
            let parsed = feds.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !parsed.isEmpty, parsed.allSatisfy({ $0 != nil }) else {
                throw UsageError("--feds '\(feds)' is not a comma-separated list of FED ids", fix: "e.g. --feds 1200,1201")
            }
            ids = parsed.compactMap { $0 }
        }
        var sim = GainScanSimulator()
        sim.rows = rows; sim.cols = cols; sim.seed = seed; sim.run = runNumber; sim.deflate = deflate
        if let pedestal {
            let v = pedestal.split(separator: ",").compactMap { Float($0.trimmingCharacters(in: .whitespaces)) }
            guard v.count == 4, v[1] >= 0, v[2] <= v[3] else {
                throw UsageError("--pedestal '\(pedestal)' is not MEAN,SIGMA,MIN,MAX with SIGMA >= 0 and MIN <= MAX",
                                 fix: "e.g. --pedestal=-50,20,-80,-20")
            }
            sim.pedestalMean = v[0]; sim.pedestalSigma = v[1]; sim.pedestalMin = v[2]; sim.pedestalMax = v[3]
        }
        let t0 = Date()
        var paths: [String] = []
        for id in ids {
            paths += try sim.write(directory: output, feds: [id], modulesPerFED: modulesPerFed)
            if dmp {
                paths.append(try sim.writeDump(directory: output, fed: id,
                                               modules: modulesPerFed ?? CMSPixelTopology.modules(fed: id),
                                               corruptions: corrupt ? .init() : nil))
            }
            if Diagnostics.isTerminal && !json { Diagnostics.info("wrote \(paths.last!)") }
        }
        let seconds = Date().timeIntervalSince(t0)
        struct Out: Encodable { var files: [String]; var seconds: Double; var seed: UInt64 }
        if json { try printJSON(Out(files: paths, seconds: seconds, seed: seed)); return }
        print("wrote \(paths.count) gain scan file(s) to \(output) in \(String(format: "%.1f", seconds)) s (seed \(seed))")
    }
}
