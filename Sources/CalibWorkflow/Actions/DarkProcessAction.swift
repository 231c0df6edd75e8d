import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// `action: {builtin: dark-process, per: gain-mode, with: {nrecs1: "50", nrecs: "1000"}}`: one `dark-process` job
/// per gain mode, each running the two-stage gated dark statistics (`DarkFit`) over that mode's frames only.
///
/// Input: `with: {input: PATH}`, else the campaign parameter `input`: a dark-run HDF5 file, or a directory whose
/// `*.h5` dark runs are searched for the unit's gain mode (the file with the most frames of that mode; ties: the
/// first by name). Outputs per unit: `constants` (the DarkFormat result, one gain mode) and `input` (JSON: the dark
/// run used, its SHA-256, size, gain mode and frames). Metrics: fraction_good, mean_pedestal, mean_rms,
/// bad_pixels, frames, pixels, events. Gain modes: the campaign's or checklist's `gain-mode` values, else 0, 1, 2.
public struct DarkProcessAction: WorkflowAction {
    public static let actionName = "dark-process"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .jobs }
    public init() {}

    /// The `with:` keys mapped onto `DarkOptions`.
    static let optionKeys = ["nrecs1", "nrecs", "int_lo", "int_hi", "rms_lo", "rms_hi", "nsigma_lo", "nsigma_hi",
                             "fraclm", "common_mode", "frames_per_block", "min_frames", "data_mask"] + layoutKeys

    /// The input-layout keys (docs/formats-numerics.md): taken from `with:`, else from the campaign's parameters
    /// (`--param dataset=/entry/data/data --param gain_source=fixed:0`), since the layout belongs to the data.
    static let layoutKeys = ["dataset", "frame_axes", "gain_source", "gain_bits"]

    public func spec(for unit: WorkUnit, context: ActionContext) throws -> JobSpec {
        guard let modeText = unit.value("gain-mode") else {
            throw context.badParameter("dark-process runs per gain mode",
                                       fix: "write the action as {builtin: dark-process, per: gain-mode}")
        }
        guard let g = Int(modeText), (0...2).contains(g) else {
            throw context.badParameter("gain mode '\(modeText)' is not 0, 1 or 2",
                                       fix: "give gain-mode unit values among 0, 1, 2 (e.g. --units gain-mode=0,1)")
        }
        guard var input = context.with("input") ?? context.param("input"), !input.isEmpty else {
            throw context.badParameter("no dark-run input given",
                                       fix: "create the campaign with --param input=DIR (a dark-run .h5 file or a directory of them)")
        }
        if !input.hasPrefix("/") {
            input = (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(input)
        }
        let options = try Self.options(context)
        let out = context.unitDirectory(unit)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var spec = JobSpec(kind: DarkProcessJob.name, key: unit.key,
                           inputs: ["input": input],
                           outputs: ["constants": (out as NSString).appendingPathComponent("dark-g\(g).h5"),
                                     "input": (out as NSString).appendingPathComponent("input-g\(g).json")],
                           parameters: ["gain_mode": String(g),
                                        "options": String(decoding: try BuiltinFiles.json(options), as: UTF8.self)])
        if let t = context.with("threads") { spec.parameters["threads"] = t }
        return spec
    }

    /// `DarkOptions` from the action's `with:` (unknown keys other than input/threads are refused).
    static func options(_ context: ActionContext) throws -> DarkOptions {
        var o = DarkOptions()
        for key in context.action.parameters.keys.sorted() where !["input", "threads"].contains(key) {
            guard optionKeys.contains(key) else {
                throw context.badParameter("dark-process has no parameter '\(key)'",
                                           fix: "use \((optionKeys + ["input", "threads"]).joined(separator: ", "))")
            }
        }
        func value<T: LosslessStringConvertible>(_ key: String, _ apply: (T) -> Void) throws {
            guard let text = context.with(key) else { return }
            guard let v = T(text.trimmingCharacters(in: .whitespaces)) else {
                throw context.badParameter("dark-process parameter \(key) '\(text)' is not a number",
                                           fix: "write it as a number, e.g. \(key): \"50\"")
            }
            apply(v)
        }
        try value("nrecs1") { (v: Int) in o.nrecs1 = v }
        try value("nrecs") { (v: Int) in o.nrecs = v }
        try value("int_lo") { (v: Float) in o.intLo = v }
        try value("int_hi") { (v: Float) in o.intHi = v }
        try value("rms_lo") { (v: Float) in o.rmsLo = v }
        try value("rms_hi") { (v: Float) in o.rmsHi = v }
        try value("nsigma_lo") { (v: Float) in o.nSigmaLo = v }
        try value("nsigma_hi") { (v: Float) in o.nSigmaHi = v }
        try value("fraclm") { (v: Float) in o.fraclm = v }
        try value("frames_per_block") { (v: Int) in o.framesPerBlock = v }
        try value("min_frames") { (v: Int) in o.minFrames = v }
        if let m = context.with("data_mask") {
            guard let v = UInt16(m.hasPrefix("0x") ? String(m.dropFirst(2)) : m, radix: m.hasPrefix("0x") ? 16 : 10) else {
                throw context.badParameter("dark-process parameter data_mask '\(m)' is not a 16-bit mask", fix: "e.g. data_mask: \"0x3fff\"")
            }
            o.dataMask = v
        }
        func layout(_ key: String) -> String? { context.with(key) ?? context.param(key) }
        if let d = layout("dataset") { o.dataset = d }
        if let a = layout("frame_axes") {
            guard let v = Int(a), (1...2).contains(v) else {
                throw context.badParameter("dark-process parameter frame_axes '\(a)' is not 1 or 2", fix: "frame_axes: \"1\" (or 2 to pool EuXFEL memory cells)")
            }
            o.frameAxes = v
        }
        if let g = layout("gain_source") {
            guard let src = DarkGainSource(parsing: g) else {
                throw context.badParameter("dark-process parameter gain_source '\(g)' is not known", fix: "use bits, dataset:/PATH or fixed:0|1|2")
            }
            o.gainSource = src
        }
        if let b = layout("gain_bits") {
            guard let v = Bool(b) else { throw context.badParameter("dark-process parameter gain_bits '\(b)' is not true or false", fix: "gain_bits: \"false\"") }
            o.gainBits = v
        }
        if let cm = context.with("common_mode"), cm != "none" {
            guard let m = CommonModeMode(rawValue: cm) else {
                throw context.badParameter("dark-process parameter common_mode '\(cm)' is not known",
                                           fix: "use none, bank, row or column")
            }
            o.commonMode = m
        }
        guard o.nrecs1 > 0, o.nrecs >= o.nrecs1, o.framesPerBlock > 0 else {
            throw context.badParameter("dark-process needs nrecs1 > 0, nrecs >= nrecs1 and frames_per_block > 0 (got \(o.nrecs1), \(o.nrecs), \(o.framesPerBlock))",
                                       fix: "e.g. with: {nrecs1: \"50\", nrecs: \"1000\"}")
        }
        return o
    }

    /// Pixel-weighted fraction of good pixels over the gain modes (the generic mean weighs each mode equally).
    public func aggregate(_ results: [UnitResult], context: ActionContext) throws -> [String: Double] {
        let pixels = results.compactMap { $0.metrics["pixels"] }.reduce(0, +)
        let bad = results.compactMap { $0.metrics["bad_pixels"] }.reduce(0, +)
        guard pixels > 0 else { return [:] }
        return ["fraction_good": 1 - bad / pixels]
    }
}

/// Which dark run of an input (file or directory) holds a gain mode's frames.
public enum DarkRunInputs {
    /// One candidate file: its path and frames per gain mode.
    public struct Candidate: Sendable, Equatable {
        public var path: String
        public var framesPerMode: [Int: Int]
    }

    /// The dark runs (`format = calibctl.dark_run`) among `input`: the file itself, or the `*.h5` files directly in
    /// the directory, by name. Other HDF5 files (truth, results) are left out.
    public static func candidates(_ input: String, options: DarkOptions = DarkOptions()) throws -> [Candidate] {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw BuiltinActionError("dark-run input \(input) does not exist",
                                     fix: "give the campaign's parameter input as an existing dark-run file or directory (--param input=DIR)")
        }
        let files: [String]
        if isDir.boolValue {
            files = ((try? FileManager.default.contentsOfDirectory(atPath: input)) ?? [])
                .filter { $0.hasSuffix(".h5") && !$0.hasPrefix(".") }.sorted()
                .map { (input as NSString).appendingPathComponent($0) }
        } else {
            files = [input]
        }
        var out: [Candidate] = []
        for p in files {
            if let dataset = options.dataset {
                // Another facility's layout: any file holding the dataset; frames per mode from the gain source.
                guard let f = try? HDF5File.open(p), f.exists(dataset), let ds = try? f.dataset(dataset),
                      ds.shape.count > options.frameAxes else {
                    if !isDir.boolValue {
                        throw BuiltinActionError("\(p) has no dataset \(dataset) with \(options.frameAxes) frame axis/axes and a detector shape",
                                                 fix: "check the campaign's dataset and frame_axes parameters (h5dump -H \(p))")
                    }
                    continue
                }
                let n = ds.shape.prefix(options.frameAxes).reduce(1, *)
                var perMode: [Int: Int] = [:]
                switch options.gainSource {
                case .fixed(let g)?: perMode[g] = n
                case .dataset(let path)?:
                    for m in (try? f.read(path, as: UInt8.self)) ?? [] { perMode[Int(m), default: 0] += 1 }
                case .bits?, nil:
                    for g in 0...2 { perMode[g] = n }   // known only from the values: DarkFit picks the frames
                }
                out.append(Candidate(path: p, framesPerMode: perMode))
                continue
            }
            guard let f = try? HDF5File.open(p),
                  (try? f.attributeIfPresent(DarkFormat.attrFormat))?.stringValue == DarkFormat.runKind,
                  f.exists(DarkFormat.frames), let ds = try? f.dataset(DarkFormat.frames), let n = ds.shape.first else {
                if !isDir.boolValue {
                    throw BuiltinActionError("\(p) is not a calibctl dark run (attribute format = \(DarkFormat.runKind))",
                                             fix: "write dark runs with `calibctl simulate dark` or the layout in docs/formats-numerics.md")
                }
                continue
            }
            var perMode: [Int: Int] = [:]
            if f.exists(DarkFormat.frameGainMode), let modes = try? f.read(DarkFormat.frameGainMode, as: UInt8.self) {
                for m in modes { perMode[Int(m), default: 0] += 1 }
            } else {
                perMode[0] = n
            }
            out.append(Candidate(path: p, framesPerMode: perMode))
        }
        return out
    }

    /// The dark run holding the most frames of gain mode `mode` (ties: the first by name).
    public static func file(for mode: Int, in input: String, options: DarkOptions = DarkOptions()) throws -> (path: String, frames: Int) {
        let all = try candidates(input, options: options)
        var best: (path: String, frames: Int)? = nil
        for c in all {
            let n = c.framesPerMode[mode] ?? 0
            if n > 0 && n > (best?.frames ?? 0) { best = (c.path, n) }
        }
        guard let best else {
            let seen = all.map { c in
                "\((c.path as NSString).lastPathComponent) (modes \(c.framesPerMode.keys.sorted().map(String.init).joined(separator: ",")))"
            }
            throw BuiltinActionError(
                "no dark run in \(input) has frames of gain mode \(mode)"
                    + (seen.isEmpty ? " (it holds no calibctl dark run)" : " (found: \(seen.joined(separator: "; ")))"),
                fix: "record a dark run in gain mode \(mode) into \(input), or run only the modes present (--units gain-mode=...)")
        }
        return best
    }
}

/// The `dark-process` job kind (`calibctl job run`): one gain mode of a dark run -> DarkFormat constants.
///
/// Spec: inputs `input` (file or directory), parameters `gain_mode`, `options` (DarkOptions JSON), optional
/// `threads`; outputs `constants` and `input` (JSON record of the dark run used). Exit 65 when the input has no frames
/// of the mode or is not a dark run, 64 for a malformed spec.
public struct DarkProcessJob: JobKind {
    public static let name = "dark-process"
    public init() {}

    /// What the `input` output records.
    public struct InputRecord: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var size: Int64
        public var gainMode: Int
        public var frames: Int
    }

    public func run(spec: JobSpec, context: JobContext) throws -> JobOutcome {
        guard let input = spec.inputs["input"], let g = spec.parameters["gain_mode"].flatMap(Int.init) else {
            return JobOutcome(exitCode: ExitStatus.usage.rawValue,
                              message: "dark-process spec \(context.specName) needs input 'input' and parameter 'gain_mode'")
        }
        var options = DarkOptions()
        if let text = spec.parameters["options"] {
            do { options = try JSONDecoder().decode(DarkOptions.self, from: Data(text.utf8)) } catch {
                return JobOutcome(exitCode: ExitStatus.usage.rawValue,
                                  message: "dark-process spec \(context.specName): parameter options is not DarkOptions JSON: \(error)")
            }
        }
        options.onlyGainModes = [g]
        guard let out = context.temporaryOutputPath("constants", in: spec) else {
            return JobOutcome(exitCode: ExitStatus.usage.rawValue,
                              message: "dark-process spec \(context.specName) has no output 'constants'")
        }
        func failed(_ e: DiagnosableError) -> JobOutcome {
            JobOutcome(exitCode: e.exitStatus.rawValue, message: e.message + (e.fix.map { "; fix: \($0)" } ?? ""))
        }
        let file: String
        do { file = try DarkRunInputs.file(for: g, in: input, options: options).path } catch let e as DiagnosableError { return failed(e) }
        let threads = spec.parameters["threads"].flatMap(Int.init) ?? ProcessInfo.processInfo.activeProcessorCount
        let summary: DarkFitSummary
        do {
            summary = try DarkFit.run(inputPath: file, outputPath: out, options: options, threads: max(1, threads))
        } catch let e as DiagnosableError { return failed(e) }
        guard let m = summary.modes.first(where: { $0.gainMode == g }) else {
            return JobOutcome(exitCode: ExitStatus.dataError.rawValue, message: "\(file) gave no result for gain mode \(g)")
        }
        if let rec = context.temporaryOutputPath("input", in: spec) {
            let r = InputRecord(path: file, sha256: try JobFiles.sha256(ofFile: file), size: JobFiles.size(file) ?? 0,
                                gainMode: g, frames: m.frames)
            try BuiltinFiles.write(try BuiltinFiles.json(r), to: rec)
        }
        let bad = Double(m.statusCounts["bad"] ?? 0), pixels = Double(summary.pixels)
        return JobOutcome(exitCode: 0, metrics: [
            "fraction_good": pixels > 0 ? 1 - bad / pixels : 0, "mean_pedestal": m.meanPedestal, "mean_rms": m.meanRMS,
            "bad_pixels": bad, "frames": Double(m.frames), "pixels": pixels, "events": Double(m.frames),
            "bytes_read": Double(summary.bytesRead),
        ])
    }
}
