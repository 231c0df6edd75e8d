import CalibIO
import Foundation

/// What the simulator injected into a pixel (stored in the truth file as uint8).
public enum SimulatedPixelKind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case good = 0, dead = 1, stuck = 2, noisy = 3, fewEntries = 4
    public var description: String { ["good", "dead", "stuck", "noisy", "few_entries"][Int(rawValue)] }
}

/// Deterministic generator of CMS pixel gain scans (one HDF5 file per FED) with the truth written alongside.
///
/// Pixel model (good pixels): gain ~ N(150, 12) e/ADC in [90, 260], pedestal ~ N(35, 10) ADC in [5, 120] (options),
/// saturation plateau ~ N(245, 4) in [225, 255], noise ~ N(2.0, 0.3) ADC in [1, 3.5]. The response is linear,
/// ped + Q / gain, up to a knee at 0.85 x plateau and bends softly (tanh) into the plateau above it; every injection
/// adds Gaussian noise and is rounded and clamped to the 8-bit range 0...255. Defects: dead (never answers, n = 0),
/// stuck (one constant ADC value), noisy (noise 25-35 ADC), too few entries (n <= 1 at all points but one).
public struct GainScanSimulator: Sendable {
    public var rows = CMSPixelTopology.rowsPerModule
    public var cols = CMSPixelTopology.colsPerModule
    public var injections = 5
    public var vcal = CMSPixelTopology.standardVCal
    public var seed: UInt64 = 1
    public var run = 400_000
    public var deadFraction = 0.002
    public var stuckFraction = 0.002
    public var noisyFraction = 0.003
    public var fewEntriesFraction = 0.002
    public var radiationCorrection = 1.06
    /// Pedestal distribution of good pixels: N(mean, sigma) cut to [min, max] ADC. Irradiated modules have pedestals
    /// below the ADC floor (e.g. mean -50, sigma 20, range -80...-20): their lowest points then read 0 on every
    /// injection (clamped, censored by the fit).
    public var pedestalMean: Float = 35
    public var pedestalSigma: Float = 10
    public var pedestalMin: Float = 5
    public var pedestalMax: Float = 120
    /// Deflate level for the scan datasets, nil for none (docs/benchmarks-numerics.md: compression costs more than the fit).
    public var deflate: Int? = nil

    public init() {}

    public var pixelsPerModule: Int { rows * cols }

    /// Injected charge in electrons per point for a module.
    public func electrons(globalModule m: Int) -> [Float] {
        let c = CMSPixelTopology.vcalConversion(globalModule: m, radiationCorrection: radiationCorrection)
        return vcal.map { Float(c.slope * Double($0) * CMSPixelTopology.vcalHighToLow + c.offset) }
    }

    /// Fills one module's pixel-major n/sum/sumsq (pixels x points) and truth arrays (pixels each). With `readings`
    /// (pixels x points x injections bytes) every single ADC reading is kept too (the first n of each point are
    /// valid): the raw-dump writer emits them as hits, from the same random numbers.
    public func generateModule(globalModule m: Int, n: UnsafeMutablePointer<Float>, sum: UnsafeMutablePointer<Float>,
                               sumsq: UnsafeMutablePointer<Float>, truthGain: UnsafeMutablePointer<Float>,
                               truthPedestal: UnsafeMutablePointer<Float>, truthPlateau: UnsafeMutablePointer<Float>,
                               truthNoise: UnsafeMutablePointer<Float>, truthKind: UnsafeMutablePointer<UInt8>,
                               readings: UnsafeMutablePointer<UInt8>? = nil) {
        var rng = SplitMix64(seed: seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(m) &* 0xD1B5_4A32_D192_ED03)
        let x = electrons(globalModule: m)
        let np = vcal.count
        FastGaussian.table.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            func gauss() -> Float { FastGaussian.four(&rng, t)[0] }
            for p in 0..<pixelsPerModule {
                let u = rng.nextUniform()
                var kind = SimulatedPixelKind.good
                if u < deadFraction { kind = .dead }
                else if u < deadFraction + stuckFraction { kind = .stuck }
                else if u < deadFraction + stuckFraction + noisyFraction { kind = .noisy }
                else if u < deadFraction + stuckFraction + noisyFraction + fewEntriesFraction { kind = .fewEntries }
                let g4 = FastGaussian.four(&rng, t)
                let gain = min(max(150 + 12 * g4[0], 90), 260)
                let ped = min(max(pedestalMean + pedestalSigma * g4[1], pedestalMin), pedestalMax)
                let plateau = min(max(245 + 4 * g4[2], 225), 255)
                var noise = min(max(2.0 + 0.3 * g4[3], 1), 3.5)
                if kind == .noisy { noise = 25 + 10 * Float(rng.nextUniform()) }
                truthGain[p] = gain; truthPedestal[p] = ped; truthPlateau[p] = plateau; truthNoise[p] = noise
                truthKind[p] = kind.rawValue
                let stuckValue = Float(Int(rng.next() % 256))
                let goodPoint = Int(rng.next() % UInt64(np))
                let knee = 0.85 * plateau, span = plateau - knee
                let o = p * np
                for k in 0..<np {
                    var entries = injections
                    switch kind {
                    case .dead: entries = 0
                    case .fewEntries: entries = k == goodPoint ? injections : Int(rng.next() & 1)
                    default: break
                    }
                    let lin = ped + x[k] / gain
                    let y = lin <= knee ? lin : knee + span * Float(tanh(Double((lin - knee) / span)))
                    var s: Float = 0, q: Float = 0
                    var i = 0
                    while i < entries {
                        let g = FastGaussian.four(&rng, t)
                        for l in 0..<min(4, entries - i) {
                            let adc = kind == .stuck ? stuckValue : min(max((y + noise * g[l]).rounded(), 0), 255)
                            s += adc; q += adc * adc
                            if let readings { readings[(o + k) * injections + i + l] = UInt8(adc) }
                        }
                        i += 4
                    }
                    n[o + k] = Float(entries); sum[o + k] = s; sumsq[o + k] = q
                }
            }
        }
    }

    /// Writes `fed_<id>.h5` for each FED into `directory` and `truth/fed_<id>.h5` beside them. `modulesPerFED` nil
    /// takes the CMS count of each FED. Returns the scan file paths. Files appear atomically (temporary name, rename).
    @discardableResult
    public func write(directory: String, feds: [Int], modulesPerFED: Int? = nil,
                      threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> [String] {
        let fm = FileManager.default
        try fm.createDirectory(atPath: directory + "/truth", withIntermediateDirectories: true)
        var paths: [String] = []
        for fed in feds {
            let modules = modulesPerFED ?? CMSPixelTopology.modules(fed: fed)
            guard modules > 0 else {
                throw NumericsError.badParameter("FED \(fed)", "is not a CMS pixel FED and no --modules-per-fed was given",
                                                 fix: "use an id from CMSPixelTopology.feds (1200-1338) or pass --modules-per-fed")
            }
            let path = "\(directory)/fed_\(fed).h5"
            try writeFED(fed: fed, modules: modules, path: path, truthPath: "\(directory)/truth/fed_\(fed).h5",
                         threads: threads)
            paths.append(path)
        }
        return paths
    }

    func writeFED(fed: Int, modules: Int, path: String, truthPath: String, threads: Int) throws {
        let first = CMSPixelTopology.modules(fed: fed) > 0 ? CMSPixelTopology.firstModule(fed: fed) : 0
        let ppm = pixelsPerModule, np = vcal.count, P = modules * ppm
        let tmp = AtomicFile.temporaryPath(for: path), ttmp = AtomicFile.temporaryPath(for: truthPath)
        defer { try? FileManager.default.removeItem(atPath: tmp); try? FileManager.default.removeItem(atPath: ttmp) }
        let f = try HDF5File.create(tmp, overwrite: true)
        let tf = try HDF5File.create(ttmp, overwrite: true)
        let F = GainScanFormat.self
        for (file, kind) in [(f, F.scanKind), (tf, F.truthKind)] {
            try file.setAttribute(F.attrFormat, .string(kind))
            try file.setAttribute(F.attrFormatVersion, .int(F.version))
            try file.setAttribute(F.attrRun, .int(Int64(run)))
            try file.setAttribute(F.attrFED, .int(Int64(fed)))
            try file.setAttribute(F.attrRows, .int(Int64(rows)))
            try file.setAttribute(F.attrCols, .int(Int64(cols)))
            try file.setAttribute(F.attrModules, .int(Int64(modules)))
            try file.setAttribute(F.attrSeed, .int(Int64(bitPattern: seed)))
            try file.setAttribute(F.attrCreator, .string(CalibctlVersion.string))
        }
        try f.setAttribute(F.attrInjections, .int(Int64(injections)))
        try f.setAttribute(F.attrVCalTag, .string(String(format: "VCal_simulated_corr%.3f", radiationCorrection)))
        try f.setAttribute(F.attrVCalHighToLow, .double(CMSPixelTopology.vcalHighToLow))
        try f.write(F.vcal, vcal)
        let mods = (0..<modules).map { first + $0 }
        try f.write(F.moduleDetID, mods.map { CMSPixelTopology.detID(globalModule: $0) })
        let conv = mods.map { CMSPixelTopology.vcalConversion(globalModule: $0, radiationCorrection: radiationCorrection) }
        try f.write(F.moduleVCalSlope, conv.map(\.slope))
        try f.write(F.moduleVCalOffset, conv.map(\.offset))
        let dn = try f.createDataset(F.n, dtype: .float32, shape: [P, np], chunks: [ppm, np], deflate: deflate)
        let ds = try f.createDataset(F.sum, dtype: .float32, shape: [P, np], chunks: [ppm, np], deflate: deflate)
        let dq = try f.createDataset(F.sumsq, dtype: .float32, shape: [P, np], chunks: [ppm, np], deflate: deflate)
        let tds = try [F.truthGain, F.truthPedestal, F.truthPlateau, F.truthNoise].map {
            try tf.createDataset($0, dtype: .float32, shape: [P], chunks: [ppm])
        }
        let tk = try tf.createDataset(F.truthCategory, dtype: .uint8, shape: [P], chunks: [ppm])
        let batch = max(1, threads)
        let bufN = UnsafeMutablePointer<Float>.allocate(capacity: batch * ppm * np * 3 + batch * ppm * 4)
        let bufK = UnsafeMutablePointer<UInt8>.allocate(capacity: batch * ppm)
        defer { bufN.deallocate(); bufK.deallocate() }
        let base = SendablePointer(bufN), kbase = SendablePointer(bufK)
        let stride = ppm * np
        var m0 = 0
        while m0 < modules {
            let count = min(batch, modules - m0)
            let start = m0
            DispatchQueue.concurrentPerform(iterations: count) { b in
                let nb = base.base + 3 * stride * b
                let tb = base.base + 3 * stride * batch + 4 * ppm * b
                generateModule(globalModule: first + start + b, n: nb, sum: nb + stride, sumsq: nb + 2 * stride,
                               truthGain: tb, truthPedestal: tb + ppm, truthPlateau: tb + 2 * ppm,
                               truthNoise: tb + 3 * ppm, truthKind: kbase.base + ppm * b)
            }
            for b in 0..<count {
                let rowsRange = (m0 + b) * ppm..<(m0 + b + 1) * ppm
                let nb = UnsafePointer(bufN + 3 * stride * b)
                try dn.writeRows(rowsRange, from: UnsafeBufferPointer(start: nb, count: stride))
                try ds.writeRows(rowsRange, from: UnsafeBufferPointer(start: nb + stride, count: stride))
                try dq.writeRows(rowsRange, from: UnsafeBufferPointer(start: nb + 2 * stride, count: stride))
                let tb = UnsafePointer(bufN + 3 * stride * batch + 4 * ppm * b)
                for (i, d) in tds.enumerated() {
                    try d.writeRows(rowsRange, from: UnsafeBufferPointer(start: tb + i * ppm, count: ppm))
                }
                try tk.writeRows(rowsRange, from: UnsafeBufferPointer(start: UnsafePointer(bufK + ppm * b), count: ppm))
            }
            m0 += count
        }
        try f.close(); try tf.close()
        try AtomicFile.commit(temporary: tmp, to: path)
        try AtomicFile.commit(temporary: ttmp, to: truthPath)
    }
}
