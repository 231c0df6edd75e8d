import CalibCore
import CalibIO
import Foundation

/// `action: {builtin: dark-constants, per: campaign, with: {type: pedestals|pixel_rms|pixel_status}}`: stacks the
/// per-gain-mode results of the nearest upstream step with `constants` outputs (normally `dark-process`; or
/// `with: {from: STEP}`) into one array [gain modes][...detector shape], in gain-mode order, and writes it as
/// `<stepdir>/<type>.h5` with a single top-level dataset named like the store type (float32 for pedestals and
/// pixel_rms, uint16 for pixel_status: the built-in store schemas) and the root attribute `gain_modes`.
/// Output: `<type>` (that file). Metrics: `gain_modes`, `pixels` (per mode) and mean_pedestal / mean_rms /
/// fraction_good + bad_pixels (pixel_status: status == 0 over every mode). Idempotent: the same inputs give the
/// same file, written atomically.
public struct DarkConstantsAction: WorkflowAction {
    public static let actionName = "dark-constants"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    static let types = ["pedestals", "pixel_rms", "pixel_status"]

    /// One gain mode's arrays read from a `dark-process` output.
    struct ModeResult {
        var gainMode: Int
        var shape: [Int]
        var file: String
    }

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        guard let type = context.with("type"), Self.types.contains(type) else {
            throw context.badParameter("dark-constants needs with: {type: ...} among \(Self.types.joined(separator: ", "))"
                                       + (context.with("type").map { " (got '\($0)')" } ?? ""),
                                       fix: "write e.g. action: {builtin: dark-constants, per: campaign, with: {type: pedestals}}")
        }
        let inputs = try Self.darkOutputs(context)
        let path = (context.stepDirectory as NSString).appendingPathComponent("\(type).h5")
        let D = DarkFormat.self
        var metrics: [String: Double] = [:]
        let modes = inputs.map(\.gainMode)
        let shape = inputs[0].shape
        let P = shape.reduce(1, *)
        let tmp = AtomicFile.temporaryPath(for: path)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        do {
            let out = try HDF5File.create(tmp, overwrite: true)
            try out.setAttribute("gain_modes", .ints(modes.map(Int64.init)))
            let fullShape = [modes.count] + shape
            switch type {
            case "pixel_status":
                var all: [UInt16] = []
                all.reserveCapacity(modes.count * P)
                for m in inputs { all += try Self.read(m, D.pixelStatus, as: UInt16.self, context: context) }
                try out.write("/pixel_status", all, shape: fullShape)
                let good = all.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
                metrics["fraction_good"] = all.isEmpty ? 0 : Double(good) / Double(all.count)
                metrics["bad_pixels"] = Double(all.count - good)
            default:
                var all: [Float] = []
                all.reserveCapacity(modes.count * P)
                for m in inputs {
                    all += try Self.read(m, type == "pedestals" ? D.pedestals : D.pixelRMS, as: Float.self, context: context)
                }
                try out.write("/" + type, all, shape: fullShape)
                let mean = all.isEmpty ? 0 : all.reduce(0.0) { $0 + Double($1) } / Double(all.count)
                metrics[type == "pedestals" ? "mean_pedestal" : "mean_rms"] = mean
                for (i, g) in modes.enumerated() {
                    let slice = all[(i * P)..<((i + 1) * P)]
                    metrics[(type == "pedestals" ? "mean_pedestal" : "mean_rms") + "_g\(g)"] =
                        P == 0 ? 0 : slice.reduce(0.0) { $0 + Double($1) } / Double(P)
                }
            }
            try out.close()
            try AtomicFile.commit(temporary: tmp, to: path)
        } catch let e as HDF5Error {
            throw context.failure("cannot write \(path): \(e.detail)")
        }
        metrics["gain_modes"] = Double(modes.count)
        metrics["pixels"] = Double(P)
        return InlineResult(metrics: metrics, outputs: [type: path])
    }

    /// The per-gain-mode `constants` outputs upstream, checked (one gain mode each, no mode twice, equal shapes),
    /// in gain-mode order.
    static func darkOutputs(_ context: ActionContext) throws -> [ModeResult] {
        let outs: [UnitOutput]
        let from: String
        if let s = context.with("from") {
            guard context.checklist.step(s) != nil else {
                throw context.badParameter("with: {from: \(s)} names no step of the checklist", fix: "name the dark-process step")
            }
            from = s
            outs = context.recordedOutputs(of: s).filter { $0.name == "constants" }
        } else if let up = try context.upstreamOutputs(where: { $0.name == "constants" }) {
            from = up.step
            outs = up.outputs
        } else {
            throw context.failure("no upstream step recorded dark-process results (outputs named 'constants')",
                                  fix: "run the dark-process step first (a prerequisite of \(context.step.id)), or name it with with: {from: STEP}")
        }
        guard !outs.isEmpty else { throw context.failure("step \(from) recorded no dark-process results") }
        var list: [ModeResult] = []
        for o in outs {
            do {
                let f = try HDF5File.open(o.path)
                guard (try f.attributeIfPresent(DarkFormat.attrFormat))?.stringValue == DarkFormat.resultKind else {
                    throw context.failure("\(o.path) (unit \(o.unit) of step \(from)) is not a dark-processing result")
                }
                let modes = try f.read(DarkFormat.gainModes, as: UInt8.self).map(Int.init)
                guard modes.count == 1 else {
                    throw context.failure("\(o.path) (unit \(o.unit) of step \(from)) holds \(modes.count) gain modes; each dark-process unit has one")
                }
                let ds = try f.dataset(DarkFormat.pedestals)
                list.append(ModeResult(gainMode: modes[0], shape: Array(ds.shape.dropFirst()), file: o.path))
            } catch let e as HDF5Error {
                throw context.failure("cannot read \(o.path) (unit \(o.unit) of step \(from)): \(e.detail)")
            }
        }
        list.sort { $0.gainMode < $1.gainMode }
        for (a, b) in zip(list, list.dropFirst()) where a.gainMode == b.gainMode {
            throw context.failure("step \(from) has two results for gain mode \(a.gainMode): \(a.file), \(b.file)")
        }
        if let bad = list.first(where: { $0.shape != list[0].shape }) {
            throw context.failure("gain mode \(bad.gainMode) has shape \(bad.shape), gain mode \(list[0].gainMode) \(list[0].shape): the dark runs are from different detectors")
        }
        return list
    }

    static func read<T: HDF5Scalar>(_ m: ModeResult, _ dataset: String, as: T.Type, context: ActionContext) throws -> [T] {
        do {
            let v = try HDF5File.open(m.file).read(dataset, as: T.self)
            guard v.count == m.shape.reduce(1, *) else {
                throw context.failure("\(m.file) \(dataset) has \(v.count) values, expected \(m.shape.reduce(1, *))")
            }
            return v
        } catch let e as HDF5Error {
            throw context.failure("cannot read \(dataset) of \(m.file): \(e.detail)")
        }
    }
}
