import ArgumentParser
import CalibCore
import CalibIO
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

        Facility layouts (--layout, docs/formats-numerics.md): euxfel writes
        /INSTRUMENT/SPB_IRDA_JF4M/DET/JNGFR01:daqOutput/data/adc [trains, memory cells, rows, cols] (PANELS are the
        cells; one gain setting, no gain bits: add --no-gain-bits); lcls writes /<detector>/raw [events, segments,
        rows, cols] with the gain mode in bits 14-15 only. --dtype stores another integer type, --contiguous an
        unchunked dataset.
          calibctl simulate dark -o xfel.h5 --layout euxfel --shape 16x64x128 --frames 100 --no-gain-bits
          calibctl simulate dark -o lcls.h5 --layout lcls --shape 2x64x128 --frames 150 --gain-modes 3 --contiguous
        """))

    @Option(name: .shortAndLong, help: "Output HDF5 file.") var output: String
    @Option(help: "Truth file (default: OUTPUT with .truth.h5).") var truth: String?
    @Option(help: "Detector shape PANELSxROWSxCOLS (ePix10ka 2M: 16x352x384).") var shape: String = "8x512x1024"
    @Option(help: "Frames.") var frames: Int = 1000
    @Option(help: "Gain modes (1 or 3).") var gainModes: Int = 1
    @Flag(help: "No gain bits (plain 14-bit detector).") var noGainBits = false
    @Option(help: "Detector name attribute.") var detector: String = "jungfrau4m"
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "File layout: calibctl, euxfel or lcls.") var layout: String = "calibctl"
    @Option(help: "Stored integer type of the frames (uint16, int16, int32, uint32, ...).") var dtype: String = "uint16"
    @Flag(help: "Write the frames contiguous (default: one chunk per frame).") var contiguous = false
    @Flag(help: "Print a JSON summary.") var json = false

    func run() throws {
        let dims = shape.lowercased().split(separator: "x").compactMap { Int($0) }
        guard dims.count == 3, dims.allSatisfy({ $0 > 0 }) else {
            throw UsageError("--shape '\(shape)' is not PANELSxROWSxCOLS", fix: "e.g. --shape 8x512x1024")
        }
        guard frames > 0, gainModes == 1 || gainModes == 3 else {
            throw UsageError("--frames must be positive and --gain-modes 1 or 3")
        }
        guard let lay = DarkLayout(rawValue: layout) else {
            throw UsageError("--layout '\(layout)' is unknown", fix: "use calibctl, euxfel or lcls")
        }
        guard let dt = DType(parsing: dtype), !dt.isFloatingPoint else {
            throw UsageError("--dtype '\(dtype)' is not an integer type", fix: "e.g. --dtype uint16 or --dtype int32")
        }
        var sim = DarkRunSimulator()
        sim.layout = lay; sim.dtype = dt; sim.contiguous = contiguous
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
