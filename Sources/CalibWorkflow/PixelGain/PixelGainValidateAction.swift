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

struct SummaryReport {
    let info: SummaryInfo
    let data: GainRunData
    let validation: GainRunValidation
    let previous: PreviousPayload?
    let steps: [CampaignStep]

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

    func html() -> String {
        let d = data, v = validation
        var gainH = Histogram(lo: 0, hi: 400, bins: 80), pedH = Histogram(lo: -100, hi: 250, bins: 70)
        var chiH = Histogram(lo: 0, hi: 10, bins: 50)
        for p in d.gain.indices where (GainPixelStatus(rawValue: d.status[p]) ?? .notANumber).hasUsableFit {
            gainH.fill(Double(d.gain[p])); pedH.fill(Double(d.pedestal[p])); chiH.fill(Double(d.chi2ndf[p]))
        }
        var prevGain: Histogram?, prevPed: Histogram?
        if let prev = previous {
            var g = Histogram(lo: 0, hi: 400, bins: 80), q = Histogram(lo: -100, hi: 250, bins: 70)
            for x in prev.gain where x.isFinite { g.fill(Double(x)) }
            for x in prev.pedestal where x.isFinite { q.fill(Double(x)) }
            prevGain = g; prevPed = q
        }
        func esc(_ s: String) -> String { SVG.escape(s) }
        func pct(_ x: Double) -> String { String(format: "%.3f%%", 100 * x) }
        func f(_ x: Double, _ n: Int = 2) -> String { String(format: "%.\(n)f", x) }
        var h = """
        <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Pixel gain calibration run \(d.run)</title>
        <style>body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}table{border-collapse:collapse;margin:8px 0 18px}
        td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;font-size:13px}th{background:#eef}td.l,th.l{text-align:left}
        .ok{color:#17702a;font-weight:bold}.bad{color:#b3261e;font-weight:bold}.maps svg{margin:4px}h2{margin-top:28px}
        .charts svg{margin-right:12px}</style></head><body>
        <h1>Pixel gain calibration, run \(d.run)</h1>
        <p>\(d.feds.count) FED(s), \(d.modules) modules, \(d.gain.count) pixels. VCal tag <b>\(esc(info.vcalTag))</b>
        (payload \(info.vcalPayload.prefix(12))). Created by \(esc(info.createdBy)),
        \(ISO8601DateFormatter().string(from: info.createdAt)); calibctl \(CalibctlVersion.string).
        Merged file: <code>\(esc(d.path))</code>.</p>
        <h2>Campaign \(esc(info.campaign))</h2><table><tr><th class="l">step</th><th class="l">state</th><th>iteration</th><th class="l">gates</th></tr>
        """
        for s in steps {
            let cls = s.state == .done ? "ok" : (s.state == .failed || s.state == .awaitingSignOff ? "bad" : "")
            let gates = s.gates.map { g in g.results.map { "\($0.name): \($0.passed ? "pass" : "FAIL")" }.joined(separator: ", ") } ?? ""
            h += "<tr><td class=\"l\">\(esc(s.id))</td><td class=\"l \(cls)\">\(s.state.rawValue)</td><td>\(s.iteration)</td><td class=\"l\">\(esc(gates))</td></tr>"
        }
        h += "</table><h2>Quality</h2><table><tr><th class=\"l\">metric</th><th>value</th></tr>"
        h += "<tr><td class=\"l\">fraction of good pixels</td><td>\(pct(v.fractionGood))</td></tr>"
        h += "<tr><td class=\"l\">mean gain (e/ADC)</td><td>\(f(v.meanGain))</td></tr>"
        h += "<tr><td class=\"l\">mean pedestal (ADC)</td><td>\(f(v.meanPedestal))</td></tr>"
        h += "<tr><td class=\"l\">median chi2/ndf</td><td>\(f(v.medianChi2ndf, 3))</td></tr></table>"
        h += "<h2>Distributions (usable fits)</h2><div class=\"charts\">"
        h += SVG.histogram(gainH, title: "Gain", xLabel: "electrons per ADC count", reference: prevGain)
        h += SVG.histogram(pedH, title: "Pedestal", xLabel: "ADC counts at zero charge", reference: prevPed)
        h += SVG.histogram(chiH, title: "chi2 / ndf", xLabel: "chi2/ndf", logY: true)
        h += "</div><h2>Pixel status</h2><table><tr><th class=\"l\">status</th><th>reference code</th><th>pixels</th><th>fraction</th></tr>"
        for s in GainPixelStatus.allCases {
            let n = v.statusCounts[s.description] ?? 0
            h += "<tr><td class=\"l\">\(s.description)</td><td>\(s.referenceCode)</td><td>\(n)</td><td>\(pct(Double(n) / Double(max(d.gain.count, 1))))</td></tr>"
        }
        h += "</table>"
        // Per FED and per layer.
        struct Acc { var modules = Set<Int64>(), pixels = 0, good = 0, g = 0.0, p = 0.0 }
        var perFED: [Int: Acc] = [:], perLayer: [String: Acc] = [:]
        var badPerModule = [Int](repeating: 0, count: d.modules)
        for m in 0..<d.modules {
            let fed = Int(d.moduleFED[m]), layer = PixelLayer.name(detID: d.detIDs[m])
            var a = perFED[fed] ?? Acc(), b = perLayer[layer] ?? Acc()
            a.modules.insert(d.detIDs[m]); b.modules.insert(d.detIDs[m])
            for p in d.module(m) {
                a.pixels += 1; b.pixels += 1
                if (GainPixelStatus(rawValue: d.status[p]) ?? .notANumber).hasUsableFit {
                    a.good += 1; b.good += 1; a.g += Double(d.gain[p]); b.g += Double(d.gain[p])
                    a.p += Double(d.pedestal[p]); b.p += Double(d.pedestal[p])
                } else { badPerModule[m] += 1 }
            }
            perFED[fed] = a; perLayer[layer] = b
        }
        func table(_ title: String, _ key: String, _ rows: [(String, Acc)]) -> String {
            var t = "<h2>\(title)</h2><table><tr><th class=\"l\">\(key)</th><th>modules</th><th>pixels</th><th>good</th><th>mean gain</th><th>mean pedestal</th></tr>"
            for (k, a) in rows {
                let ok = a.pixels > 0 ? Double(a.good) / Double(a.pixels) : 0
                t += "<tr><td class=\"l\">\(esc(k))</td><td>\(a.modules.count)</td><td>\(a.pixels)</td><td class=\"\(ok >= 0.98 ? "ok" : "bad")\">\(pct(ok))</td><td>\(f(a.good > 0 ? a.g / Double(a.good) : 0))</td><td>\(f(a.good > 0 ? a.p / Double(a.good) : 0))</td></tr>"
            }
            return t + "</table>"
        }
        h += table("Per FED", "FED", perFED.keys.sorted().map { ("\($0) (\(CMSPixelTopology.isBPix(fed: $0) ? "BPix" : "FPix"))", perFED[$0]!) })
        h += table("Per layer / disk", "layer", perLayer.keys.sorted().map { ($0, perLayer[$0]!) })
        // Maps of bad pixels of the worst modules.
        let worst = (0..<d.modules).sorted { badPerModule[$0] > badPerModule[$1] }.prefix(12).filter { badPerModule[$0] > 0 }
        h += "<h2>Bad pixels per module</h2><p>The \(worst.count) module(s) with most pixels without a usable fit; darker = more flagged pixels per 4x4 cell.</p><div class=\"maps\">"
        for m in worst {
            let base = m * d.pixelsPerModule
            h += SVG.pixelMap(title: "detid 0x\(String(d.detIDs[m], radix: 16)) FED \(d.moduleFED[m]): \(badPerModule[m]) bad",
                              rows: d.rows, cols: d.cols,
                              flagged: { r, c in !(GainPixelStatus(rawValue: d.status[base + r * d.cols + c]) ?? .notANumber).hasUsableFit })
        }
        h += "</div><h2>Comparison with the previous payload</h2>"
        if let t = v.previousTag {
            h += "<p>Previous offline payload: tag <b>\(esc(t))</b>, validity \(esc(v.previousRuns ?? "?")); outlines in the distributions above.</p>"
            h += "<table><tr><th class=\"l\">quantity</th><th>value</th></tr>"
            h += "<tr><td class=\"l\">pixels compared</td><td>\(v.comparedPixels)</td></tr>"
            h += "<tr><td class=\"l\">relative shift of the mean gain</td><td>\(pct(v.meanGainShift))</td></tr>"
            h += "<tr><td class=\"l\">mean pedestal shift (ADC)</td><td>\(f(v.meanPedestalShift, 3))</td></tr>"
            h += "<tr><td class=\"l\">pixels changed by more than one 8-bit bin</td><td>\(v.changedPixels)</td></tr></table>"
        } else if let note = v.comparisonNote {
            h += "<p class=\"bad\">\(esc(note)).</p>"
        } else {
            h += "<p>No earlier offline gain payload for this detector in the store: nothing to compare with.</p>"
        }
        h += "<p style=\"color:#777;font-size:12px\">Generated by calibctl \(CalibctlVersion.string) at \(ISO8601DateFormatter().string(from: Date())).</p></body></html>\n"
        return h
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
        let run = PixelGain.run(context)
        let merged = try PixelGain.output(context, step: PixelGain.stepMerge, named: "merged")
        let d = try GainRunData(path: merged.path)
        let (prev, note) = PreviousPayload.find(store: try? context.store(), before: run, rows: d.rows, cols: d.cols)
        var v = SummaryReport.validate(d, previous: prev)
        v.comparisonNote = note
        let fitIteration = (try? context.campaigns.step(PixelGain.stepFit, of: context.campaign.name).iteration) ?? 1
        let vcal = try? VCalTable.read(context.engine.stepDirectory(campaign: context.campaign.name, step: PixelGain.stepFit,
                                                                    iteration: max(fitIteration, 1)) + "/vcal.json")
        let info = SummaryInfo(campaign: context.campaign.name, vcalTag: context.param(PixelGain.Param.vcalTag) ?? vcal?.tag ?? "?",
                               vcalPayload: vcal?.payload ?? "?", createdBy: context.campaign.createdBy,
                               createdAt: context.campaign.createdAt)
        let steps = try context.campaigns.steps(of: context.campaign)
        let html = SummaryReport(info: info, data: d, validation: v, previous: prev, steps: steps).html()
        try FileManager.default.createDirectory(atPath: context.stepDirectory, withIntermediateDirectories: true)
        let report = context.stepDirectory + "/summary.html", json = context.stepDirectory + "/validation.json"
        try AtomicFile.write(Data(html.utf8), to: report)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(v), to: json)
        return InlineResult(metrics: v.metrics, outputs: ["summary.html": report, "validation.json": json], message: note)
    }
}
