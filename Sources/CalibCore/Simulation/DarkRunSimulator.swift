import CalibIO
import Foundation

/// File layouts the dark simulator writes (docs/formats-numerics.md).
public enum DarkLayout: String, Sendable, CaseIterable {
    /// `/frames` [F][panels][rows][cols] uint16 with calibctl attributes and `/frame_gain_mode`.
    case calibctl
    /// European XFEL Jungfrau raw: `<source>/data/adc` [trains][memory cells][rows][cols], 14-bit values without gain
    /// bits (one gain setting per run), `data/memoryCell` [trains][cells], `data/trainId` [trains]; no calibctl
    /// attributes. The simulator's panels are the memory cells (each with its own pedestal).
    case euxfel
    /// LCLS (psana HDF5 export): `/<detector>/raw` [events][segments][rows][cols] uint16 with the gain mode in bits
    /// 14-15 (no per-frame gain dataset), `/<detector>/timestamp`; no calibctl attributes.
    case lcls

    public static let euxfelSource = "/INSTRUMENT/SPB_IRDA_JF4M/DET/JNGFR01:daqOutput"
}

/// What the dark simulator injected into a pixel (truth, uint8).
public enum SimulatedDarkPixelKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case good = 0, hot = 1, cold = 2, saturated = 3, badGain = 4, dead = 5
    public var description: String { ["good", "hot", "cold", "saturated", "bad_gain", "dead"][Int(rawValue)] }
}

/// Deterministic generator of dark runs: `frames` [F][panels][rows][cols] uint16 with 14 data bits and, for Jungfrau-like
/// detectors, the gain mode in bits 14-15 (00 g0, 01 g1, 11 g2). With `gainModes` = 3 the file holds
/// frames/3 frames per mode in order (g0, g1, g2) and `/frame_gain_mode`.
///
/// Good pixels: pedestal ~ N(2700, 150) ADU in g0 (g1 ~ N(11000, 300), g2 ~ N(13500, 300)), noise ~ N(8, 1) ADU in
/// [3, 14]. Defects (each `defectFraction`): hot (noise 60-120 ADU), cold (reads 0: below int_lo), saturated (reads
/// 16383), bad gain (wrong gain bits in every 20th frame), dead (constant pedestal, no noise).
public struct DarkRunSimulator: Sendable {
    public var panels = 8
    public var rows = 512
    public var cols = 1024
    public var frames = 1000
    public var gainModes = 1
    public var gainBits = true
    public var seed: UInt64 = 1
    public var run = 100
    public var detector = "jungfrau4m"
    public var defectFraction = 0.001
    /// File layout (docs/formats-numerics.md): calibctl's own, or the shapes and paths facilities write.
    public var layout: DarkLayout = .calibctl
    /// Stored integer type of the frames (HDF5 converts the uint16 values; out-of-range values saturate).
    public var dtype: DType = .uint16
    /// Contiguous frames dataset instead of one chunk per frame.
    public var contiguous = false

    public init() {}

    /// HDF5 path of the frames in `layout`.
    public var framesPath: String {
        switch layout {
        case .calibctl: DarkFormat.frames
        case .euxfel: DarkLayout.euxfelSource + "/data/adc"
        case .lcls: "/\(detector)/raw"
        }
    }

    public var pixels: Int { panels * rows * cols }
    static let gainCode: [UInt16] = [0, 1, 3]

    /// Writes the run to `path` and the truth to `truthPath` (atomically).
    public func write(path: String, truthPath: String,
                      threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws {
        guard frames > 0, pixels > 0, (1...3).contains(gainModes) else {
            throw NumericsError.badParameter("dark simulation", "needs frames > 0, a non-empty shape and 1-3 gain modes",
                                             fix: "e.g. --shape 8x512x1024 --frames 1000 --gain-modes 1")
        }
        guard layout != .euxfel || (gainModes == 1 && !gainBits) else {
            throw NumericsError.badParameter("EuXFEL layout", "holds one gain setting per run and no gain bits (data/adc is 14-bit)",
                                             fix: "use --gain-modes 1 --no-gain-bits with --layout euxfel")
        }
        let P = pixels
        var rng = SplitMix64(seed: seed)
        let t = FastGaussian.table
        var kind = [UInt8](repeating: 0, count: P)
        var ped = [Float](repeating: 0, count: gainModes * P), noise = [Float](repeating: 0, count: gainModes * P)
        let mean: [Float] = [2700, 11000, 13500]
        for p in 0..<P {
            let u = rng.nextUniform()
            var k = SimulatedDarkPixelKind.good
            let fr = defectFraction
            if u < fr { k = .hot } else if u < 2 * fr { k = .cold } else if u < 3 * fr { k = .saturated }
            else if u < 4 * fr { k = gainBits ? .badGain : .good } else if u < 5 * fr { k = .dead }
            kind[p] = k.rawValue
            for g in 0..<gainModes {
                let r = t.withUnsafeBufferPointer { FastGaussian.four(&rng, $0.baseAddress!) }
                ped[g * P + p] = (mean[g] + (g == 0 ? 150 : 300) * r[0]).rounded()
                var s = min(max(8 + r[1], 3), 14)
                if k == .hot { s = 60 + 60 * Float(rng.nextUniform()) }
                if k == .dead { s = 0 }
                noise[g * P + p] = s
            }
        }
        let tmp = AtomicFile.temporaryPath(for: path), ttmp = AtomicFile.temporaryPath(for: truthPath)
        defer { try? FileManager.default.removeItem(atPath: tmp); try? FileManager.default.removeItem(atPath: ttmp) }
        let D = DarkFormat.self
        let f = try HDF5File.create(tmp, overwrite: true)
        if layout == .calibctl {
            try f.setAttribute(D.attrFormat, .string(D.runKind))
            try f.setAttribute(D.attrFormatVersion, .int(D.version))
            try f.setAttribute(D.attrDetector, .string(detector))
            try f.setAttribute(D.attrRun, .int(Int64(run)))
            try f.setAttribute(D.attrDataMask, .int(0x3fff))
            try f.setAttribute(D.attrGainBits, .int(gainBits ? 1 : 0))
        }
        try f.setAttribute(D.attrSeed, .int(Int64(bitPattern: seed)))
        try f.setAttribute(D.attrCreator, .string(CalibctlVersion.string))
        let shape = [frames, panels, rows, cols]
        let ds = try f.createDataset(framesPath, dtype: dtype, shape: shape,
                                     chunks: contiguous ? nil : [1, panels, rows, cols])
        let perMode = (frames + gainModes - 1) / gainModes
        let modeOf = (0..<frames).map { min($0 / perMode, gainModes - 1) }
        switch layout {
        case .calibctl:
            if gainModes > 1 || gainBits { try f.write(D.frameGainMode, modeOf.map { UInt8($0) }) }
        case .euxfel:
            // Trains of `panels` memory cells: the cell ids and train ids beside the data, as EuXFEL writes them.
            try f.write(DarkLayout.euxfelSource + "/data/memoryCell",
                        (0..<(frames * panels)).map { UInt8(truncatingIfNeeded: $0 % panels) }, shape: [frames, panels])
            try f.write(DarkLayout.euxfelSource + "/data/trainId", (0..<frames).map { UInt64(10_000_000 + $0) })
        case .lcls:
            try f.write("/\(detector)/timestamp", (0..<frames).map { UInt64(1_700_000_000_000 + 8_333 * $0) })
        }
        let batch = 8
        let buf = UnsafeMutablePointer<UInt16>.allocate(capacity: batch * P)
        defer { buf.deallocate() }
        let out = SendablePointer(buf)
        var f0 = 0
        try ped.withUnsafeBufferPointer { pb in
            try noise.withUnsafeBufferPointer { nb in
                try kind.withUnsafeBufferPointer { kb in
                    let pp = SendablePointer(pb.baseAddress!), np = SendablePointer(nb.baseAddress!),
                        kp = SendablePointer(kb.baseAddress!)
                    while f0 < frames {
                        let count = min(batch, frames - f0)
                        let first = f0
                        let work = count * max(threads, 1)
                        let slice = (P + max(threads, 1) - 1) / max(threads, 1)
                        DispatchQueue.concurrentPerform(iterations: work) { w in
                            let b = w % count, part = w / count
                            let fi = first + b
                            let g = modeOf[fi]
                            let code = Self.gainCode[g] << 14
                            var r = SplitMix64(seed: seed ^ (UInt64(fi) &* 0x9E37_79B9_7F4A_7C15) ^ UInt64(part) << 48)
                            let lo = part * slice, hi = min(P, lo + slice)
                            FastGaussian.table.withUnsafeBufferPointer { tb in
                                let tp = tb.baseAddress!
                                let dst = out.base + b * P
                                var p = lo
                                while p < hi {
                                    let gv = FastGaussian.four(&r, tp)
                                    for l in 0..<min(4, hi - p) {
                                        let i = p + l
                                        var v: UInt16
                                        switch SimulatedDarkPixelKind(rawValue: kp.base[i])! {
                                        case .cold: v = 0
                                        case .saturated: v = 16383
                                        default:
                                            let x = pp.base[g * P + i] + np.base[g * P + i] * gv[l]
                                            v = UInt16(min(max(x.rounded(), 0), 16383))
                                        }
                                        var c = code
                                        if kp.base[i] == SimulatedDarkPixelKind.badGain.rawValue && fi % 20 == 7 {
                                            c = (g == 0 ? 2 : 0) << 14
                                        }
                                        dst[i] = v | (gainBits ? c : 0)
                                    }
                                    p += 4
                                }
                            }
                        }
                        try ds.writeRows(first..<(first + count), from: UnsafeBufferPointer(start: buf, count: count * P))
                        f0 += count
                    }
                }
            }
        }
        try f.close()
        let tf = try HDF5File.create(ttmp, overwrite: true)
        try tf.setAttribute(D.attrFormat, .string("calibctl.dark_truth"))
        try tf.setAttribute(D.attrFormatVersion, .int(D.version))
        try tf.write(D.truthPedestal, ped, shape: [gainModes, panels, rows, cols])
        try tf.write(D.truthNoise, noise, shape: [gainModes, panels, rows, cols])
        try tf.write(D.truthKind, kind, shape: [panels, rows, cols])
        try tf.close()
        try AtomicFile.commit(temporary: tmp, to: path)
        try AtomicFile.commit(temporary: ttmp, to: truthPath)
    }
}
