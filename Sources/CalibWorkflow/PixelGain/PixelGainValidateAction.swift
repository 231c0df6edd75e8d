import CalibCore
import CalibIO
import CalibStore
import Foundation

/// Validation of a merged run and its self-contained HTML summary (inline SVG, no scripts, no external files).
public struct GainRunValidation: Codable, Sendable {
    public var run: Int
    public var pixels: Int
    public var fractionGood: Double
    public var meanGain: Double
    public var meanPedestal: Double
    public var medianChi2ndf: Double
    public var statusCounts: [String: Int]
    public var previousTag: String?
    public var previousRuns: String?
    public var meanGainShift: Double
    public var meanPedestalShift: Double
    public var changedPixels: Int
    public var comparedPixels: Int
    /// Why the comparison with the previous payload was skipped (e.g. another module geometry), if it was.
    public var comparisonNote: String?

    var metrics: [String: Double] {
        ["fraction_good": fractionGood, "mean_gain": meanGain, "mean_pedestal": meanPedestal,
         "median_chi2ndf": medianChi2ndf, "mean_gain_shift": meanGainShift, "mean_pedestal_shift": meanPedestalShift,
         "changed_pixels": Double(changedPixels), "pixels": Double(pixels)]
    }
}

/// Where a module sits: BPix layers 1-4 (96/224/352/512 modules), FPix disks 1-6 (112 each), from the global module
/// index in the low bits of the detid (CMSPixelTopology.detID).
enum PixelLayer {
    static func name(detID: Int64) -> String {
        let m = Int(detID & 0xFF_FFFF)
        let bounds = [96, 320, 672, 1184]
        if let l = bounds.firstIndex(where: { m < $0 }) { return "BPix L\(l + 1)" }
        return "FPix D\(min((m - 1184) / 112 + 1, 6))"
    }
}

/// The newest offline gain payload of an earlier run, decoded per pixel (for the comparison).
struct PreviousPayload {
    var tag: String
    var run: String
    var pedestal: [Float]
    var gain: [Float]
    var detIDs: [Int64]

    /// The newest offline gain payload in the store from an earlier run, decoded per pixel with this run's module
    /// geometry; nil and a note when there is none or it cannot be compared (another module geometry, a payload that
    /// does not match its own shape). Never traps on what the store holds.
    static func find(store: ConstantsStore?, before run: Int, rows: Int, cols: Int) -> (PreviousPayload?, note: String?) {
        guard let store, let entries = try? store.entries(detector: PixelGain.detector, type: "gain_offline") else { return (nil, nil) }
        let candidates = entries.filter { $0.runs.first < Int64(run) }.sorted { $0.insertedAtMicroseconds > $1.insertedAtMicroseconds }
        guard let e = candidates.first else { return (nil, nil) }
        let what = "previous payload \(e.tag) (runs \(e.runs.description), \(e.sha256.prefix(12)))"
        func skip(_ why: String) -> (PreviousPayload?, note: String?) { (nil, "\(what): \(why); comparison skipped") }
        guard let p = try? store.readPayload(sha256: e.sha256), let blobArray = p["offline"],
              let blob: [UInt8] = try? blobArray.values(as: UInt8.self),
              let det: [Int64] = try? p["detid"]?.values(as: Int64.self) else { return skip("cannot be read") }
        let enc = GainPayloadEncoder()
        guard rows > 0, cols > 0, rows % enc.rowsPerGroup == 0 else { return skip("this run's modules are \(rows) x \(cols) pixels") }
        let size = cols * (rows + rows / enc.rowsPerGroup)
        let shape = blobArray.shape
        let prevRows = p.attributes["rows_per_module"]?.intValue, prevCols = p.attributes["cols_per_module"]?.intValue
        if let r = prevRows, let c = prevCols, r != Int64(rows) || c != Int64(cols) {
            return skip("its modules are \(r) x \(c) pixels, this run's \(rows) x \(cols)")
        }
        guard shape.count == 2, shape[1] == size, shape[0] * shape[1] == blob.count, det.count == shape[0] else {
            return skip("another module geometry (\(shape.map(String.init).joined(separator: " x ")) bytes for \(det.count) modules; this run needs \(size) bytes per module of \(rows) x \(cols) pixels)")
        }
        var ped: [Float] = [], gainPerPixel: [Float] = []
        ped.reserveCapacity(shape[0] * rows * cols)
        gainPerPixel.reserveCapacity(shape[0] * rows * cols)
        let groups = rows / enc.rowsPerGroup
        for m in 0..<shape[0] {
            let dec = enc.decodeOffline(Array(blob[(m * size)..<((m + 1) * size)]), rows: rows, cols: cols)
            ped += dec.pedestal
            var g = [Float](repeating: .nan, count: rows * cols)
            for r in 0..<rows { for c in 0..<cols { g[r * cols + c] = dec.gain[c * groups + r / enc.rowsPerGroup] } }
            gainPerPixel += g
        }
        return (PreviousPayload(tag: e.tag, run: e.runs.description, pedestal: ped, gain: gainPerPixel, detIDs: det), nil)
    }
}

/// What the report says about where the run came from.
struct SummaryInfo {
    var campaign: String
    var vcalTag: String
    var vcalPayload: String
    var createdBy: String
    var createdAt: Date
}

/// The validation metrics of a merged run (the report itself: `PixelGainReport`).
enum SummaryReport {
    /// Computes the validation metrics (and the comparison with the previous payload, if any).
    static func validate(_ d: GainRunData, previous: PreviousPayload?) -> GainRunValidation {
        var counts: [String: Int] = [:]
        for s in GainPixelStatus.allCases { counts[s.description] = 0 }
        var good = 0, sg = 0.0, sp = 0.0
        var chi: [Float] = []
        chi.reserveCapacity(d.gain.count)
        for p in d.gain.indices {
            let s = GainPixelStatus(rawValue: d.status[p]) ?? .notANumber
            counts[s.description, default: 0] += 1
            if s.hasUsableFit { good += 1; sg += Double(d.gain[p]); sp += Double(d.pedestal[p]); chi.append(d.chi2ndf[p]) }
        }
        chi.sort()
        let meanGain = good > 0 ? sg / Double(good) : 0, meanPed = good > 0 ? sp / Double(good) : 0
        var v = GainRunValidation(run: d.run, pixels: d.gain.count, fractionGood: d.gain.isEmpty ? 0 : Double(good) / Double(d.gain.count),
                                  meanGain: meanGain, meanPedestal: meanPed,
                                  medianChi2ndf: chi.isEmpty ? 0 : Double(chi[chi.count / 2]), statusCounts: counts,
                                  previousTag: previous?.tag, previousRuns: previous?.run, meanGainShift: 0,
                                  meanPedestalShift: 0, changedPixels: 0, comparedPixels: 0, comparisonNote: nil)
        if let prev = previous {
            let index = Dictionary(prev.detIDs.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            var pg = 0.0, cg = 0.0, pp = 0.0, cp = 0.0, n = 0, changed = 0
            let pedBin = 350.0 / 253, gainBin = 500.5 / 253
            for m in 0..<d.modules {
                guard let pm = index[d.detIDs[m]] else { continue }
                let base = pm * d.pixelsPerModule
                guard base + d.pixelsPerModule <= min(prev.gain.count, prev.pedestal.count) else { continue }
                for (k, p) in d.module(m).enumerated() {
                    let s = GainPixelStatus(rawValue: d.status[p]) ?? .notANumber
                    let og = prev.gain[base + k], op = prev.pedestal[base + k]
                    guard s.hasUsableFit, og.isFinite, op.isFinite else { continue }
                    n += 1
                    pg += Double(og); cg += Double(d.gain[p]); pp += Double(op); cp += Double(d.pedestal[p])
                    if abs(Double(d.gain[p] - og)) > gainBin || abs(Double(d.pedestal[p] - op)) > pedBin { changed += 1 }
                }
            }
            if n > 0 {
                v.meanGainShift = pg > 0 ? abs(cg - pg) / pg : 0
                v.meanPedestalShift = (cp - pp) / Double(n)
                v.changedPixels = changed
                v.comparedPixels = n
            }
        }
        return v
    }
}

/// `action: {builtin: pixel-gain-validate, per: campaign}` (inline): validates the merged file of the `merge` step
/// (fraction of good pixels, mean gain and pedestal, median chi2/ndf, shifts against the previous offline payload in
/// the store) and writes the self-contained HTML report `summary.html` and `validation.json` into the step
/// directory (its outputs). A previous payload that cannot be compared (another module geometry) is skipped with a
/// note in the report, never a crash.
public struct PixelGainValidateAction: WorkflowAction {
    public static let actionName = "pixel-gain-validate"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        let report = try PixelGainReport.gather(engine: context.engine, campaign: context.campaign)
        let v = report.validation, note = v.comparisonNote
        let html = report.html()
        try FileManager.default.createDirectory(atPath: context.stepDirectory, withIntermediateDirectories: true)
        let path = context.stepDirectory + "/summary.html", json = context.stepDirectory + "/validation.json"
        try AtomicFile.write(Data(html.utf8), to: path)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(v), to: json)
        var outputs = ["summary.html": path, "validation.json": json], message = note
        // The PDF too when `tick` runs the step (not only `calibctl summary`): when Chromium is installed, unless the
        // parameter report_pdf is false; a missing or broken browser is a note, never a failed step.
        if ReportPrinter.wanted(context.with("report_pdf") ?? context.param("report_pdf")) {
            let printed = ReportPrinter.printIfAvailable(html: path, to: context.stepDirectory + "/summary.pdf")
            if let pdf = printed.pdf { outputs["summary.pdf"] = pdf } else { message = [note, printed.note].compactMap { $0 }.joined(separator: "; ") }
        }
        return InlineResult(metrics: v.metrics, outputs: outputs, message: message)
    }
}
