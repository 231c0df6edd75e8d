import ArgumentParser
import CalibCore
import Foundation

struct SimulateDark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dark",
        abstract: "Write a dark run (uint16 frames with gain bits) and its truth file.",
        discussion: reflow("""
        Jungfrau-like by default (8 x 512 x 1024 panels, 14 data bits + 2 gain bits). Hot, cold, saturated, dead and
        bad-gain-bit pixels are injected; their kinds and the true pedestals and noise go to the truth file
        (default: OUTPUT with .truth.h5). With --gain-modes 3 the frames are split into g0, g1, g2 runs.

        Example:
          calibctl simulate dark -o dark.h5 --shape 2x64x128 --frames 200 --seed 3
          calibctl simulate dark -o jf4m.h5 --frames 1000          # Jungfrau 4M, 8.4 GB
        """))

    @Option(name: .shortAndLong, help: "Output HDF5 file.") var output: String
    @Option(help: "Truth file (default: OUTPUT with .truth.h5).") var truth: String?
    @Option(help: "Detector shape PANELSxROWSxCOLS (ePix10ka 2M: 16x352x384).") var shape: String = "8x512x1024"
    @Option(help: "Frames.") var frames: Int = 1000
    @Option(help: "Gain modes (1 or 3).") var gainModes: Int = 1
    @Flag(help: "No gain bits (plain 14-bit detector).") var noGainBits = false
    @Option(help: "Detector name attribute.") var detector: String = "jungfrau4m"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        let dims = shape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw UsageError("--shape '\(shape)' is not PANELSxROWSxCOLS", fix: "e.g. --shape 8x512x1024")
        }
        guard frames > 0, gainModes == 1 || gainModes == 3 else {
            throw UsageError("--frames must be positive and --gain-modes 1 or 3")
        }
        var sim = DarkRunSimulator()
        sim.panels = dims[0]; sim.rows = dims[1]; sim.cols = dims[2]; sim.frames = frames
        sim.gainModes = gainModes; sim.gainBits = !noGainBits; sim.seed = seed; sim.detector = detector
        let truthPath = truth ?? (output.hasSuffix(".h5") ? String(output.dropLast(3)) : output) + ".truth.h5"
        let t0 = Date()
        for p in [output, truthPath] {   // like `simulate gain -o DIR`: the directory is made if needed
            let dir = (Workspace.absolutePath(p) as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        try sim.write(path: output, truthPath: truthPath)
        let s = Date().timeIntervalSince(t0)
        struct Out: Encodable { var file: String; var truth: String; var frames: Int; var shape: [Int]; var seconds: Double }
        if json { try printJSON(Out(file: output, truth: truthPath, frames: frames, shape: dims, seconds: s)); return }
        print("wrote \(output) (\(frames) frames of \(dims.map(String.init).joined(separator: "x"))) and \(truthPath) in \(String(format: "%.1f", s)) s")
    }
}
