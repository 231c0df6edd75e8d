import CalibCore
import CalibIO
import CalibStore
import Foundation

/// `action: {builtin: compare-previous, per: campaign}`: compares the campaign's new pedestals and pixel status
/// (the nearest upstream outputs named `pedestals` and `pixel_status`) with the constants in use in the store for
/// the campaign's first run (the tag's entry covering it, else the nearest earlier segment of the tag's timeline).
///
/// "In use": detector from `with: {detector: D}`, else from the `outcomes:` of the step that produced the pedestals
/// (`jungfrau/pedestals` -> `jungfrau`); tag: the campaign parameter `compare_tag`, else the publication tag
/// (`publishTag`: the campaign's tag, else `with: {tag: ...}`, else the campaign's name) if that tag exists for the
/// detector's pedestals, else the store's `default` tag.
///
/// Metrics: `previous_found` (1/0), `mean_pedestal_shift` / `max_pedestal_shift` (|new - old| in ADU over the pixels
/// good in both, every gain mode; all pixels when a status is missing), `status_changed_fraction` (pixels whose
/// status differs, over all gain modes), `compared_pixels`, `shape_mismatch` (1/0). No previous constants (a first
/// calibration): shifts 0, `previous_found = 0`, the gates pass. Previous constants of another shape (another
/// geometry or number of gain modes) are NOT compared (no traps: nothing is indexed across shapes):
/// `previous_found = 1`, `shape_mismatch = 1`, no shift metrics, so the shift gates fail as "not reported" and a
/// person signs off (lcls-dark also gates `shape_mismatch <= 0`). Output `compare.json`: what was compared with
/// what. Read-only towards the store, so idempotent.
public struct ComparePreviousAction: WorkflowAction {
    public static let actionName = "compare-previous"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    /// The record written to `compare.json`.
    public struct Report: Codable, Sendable, Equatable {
        public var detector: String
        public var tag: String
        public var run: Int
        public var newPedestals: String
        public var newStatus: String?
        public var previousPedestals: String?
        public var previousStatus: String?
        public var newShape: [Int]
        public var previousShape: [Int]?
        public var note: String
        public var metrics: [String: Double]
    }

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        guard let ped = context.upstreamOutput(named: "pedestals") else {
            throw context.failure("no upstream step recorded new pedestals (an output named 'pedestals')",
                                  fix: "make the step producing pedestals (dark-constants with type pedestals) a prerequisite of \(context.step.id)")
        }
        let status = context.upstreamOutput(named: "pixel_status")
        let detector = try Self.detector(context, producer: ped.step)
        guard let run = context.firstRun else { throw context.failure("the campaign has no runs") }
        let store = try context.openStore()
        do { _ = try store.detector(detector) } catch let e as DiagnosableError {
            throw context.failure("detector \(detector) is not in the store: \(e.message)",
                                  fix: e.fix ?? "add it: calibctl store detector add \(detector) --kind KIND")
        }
        let tag = try Self.compareTag(context, store: store, detector: detector)

        let newPed = try Self.readArray(ped.output.path, dataset: "pedestals", context: context)
        let newSt = try status.map { try Self.readArray($0.output.path, dataset: "pixel_status", context: context) }
        var report = Report(detector: detector, tag: tag, run: run, newPedestals: ped.output.path,
                            newStatus: status?.output.path, newShape: newPed.shape, note: "", metrics: [:])
        var m: [String: Double] = ["previous_found": 0, "shape_mismatch": 0]

        let oldPed = Self.previous(store, detector: detector, type: "pedestals", run: run, tag: tag)
        let oldSt = Self.previous(store, detector: detector, type: "pixel_status", run: run, tag: tag)
        if let oldPed, let oldArray = oldPed.payload["pedestals"] ?? oldPed.payload.arrays.first {
            m["previous_found"] = 1
            report.previousPedestals = oldPed.entry.sha256
            report.previousShape = oldArray.shape
            let oldStArray = oldSt.flatMap { $0.payload["pixel_status"] ?? $0.payload.arrays.first }
            report.previousStatus = oldSt?.entry.sha256
            if oldArray.shape != newPed.shape || oldArray.count != newPed.values.count {
                m["shape_mismatch"] = 1
                report.note = "previous pedestals \(oldPed.entry.sha256.prefix(12)) (tag \(tag)) have shape \(oldArray.shapeText), the new ones \(newPed.shape.map(String.init).joined(separator: "x")): not compared; a person must sign off"
            } else {
                let old = oldArray.doubles()
                // Status arrays are used only when both exist with the pedestals' shape.
                let sNew = newSt.flatMap { $0.shape == newPed.shape ? $0.values : nil }
                let sOld = oldStArray.flatMap { $0.shape == newPed.shape ? $0.doubles() : nil }
                var sum = 0.0, maxShift = 0.0, n = 0
                for i in 0..<min(old.count, newPed.values.count) {
                    if let sNew, let sOld, sNew[i] != 0 || sOld[i] != 0 { continue }
                    let d = abs(newPed.values[i] - old[i])
                    guard d.isFinite else { continue }
                    sum += d
                    maxShift = max(maxShift, d)
                    n += 1
                }
                m["mean_pedestal_shift"] = n > 0 ? sum / Double(n) : 0
                m["max_pedestal_shift"] = maxShift
                m["compared_pixels"] = Double(n)
                if let sNew, let sOld {
                    let changed = zip(sNew, sOld).reduce(0) { $0 + ($1.0 != $1.1 ? 1 : 0) }
                    m["status_changed_fraction"] = sNew.isEmpty ? 0 : Double(changed) / Double(sNew.count)
                } else {
                    m["status_changed_fraction"] = 0
                    m["previous_status_found"] = sOld == nil ? 0 : 1
                }
                report.note = "compared with \(oldPed.entry.sha256.prefix(12)) (tag \(tag), entry \(oldPed.entry.id), runs \(oldPed.runs))"
            }
        } else {
            m["mean_pedestal_shift"] = 0
            m["max_pedestal_shift"] = 0
            m["status_changed_fraction"] = 0
            m["compared_pixels"] = 0
            report.note = "no previous pedestals of \(detector) for run \(run) in tag \(tag): first calibration, nothing to compare"
        }
        report.metrics = m
        let path = (context.stepDirectory as NSString).appendingPathComponent("compare.json")
        try BuiltinFiles.write(try BuiltinFiles.json(report), to: path)
        var outputs = ["compare.json": path], message = report.note
        // The dark-processing report (maps, status counts, this comparison per panel) beside it; a report that cannot
        // be written is a note, never a failed comparison.
        do {
            let dark = try DarkReport.build(campaign: context.campaign, checklist: context.campaign.checklistName, pedestals: ped.output.path,
                                            rms: context.upstreamOutput(named: "pixel_rms")?.output.path, status: status?.output.path,
                                            compare: report, store: store)
            let html = (context.stepDirectory as NSString).appendingPathComponent("report.html")
            try BuiltinFiles.write(Data(dark.html().utf8), to: html)
            outputs["report.html"] = html
            if ReportPrinter.wanted(context.with("report_pdf") ?? context.param("report_pdf")) {
                let printed = ReportPrinter.printIfAvailable(html: html, to: String(html.dropLast(5)) + ".pdf")
                if let pdf = printed.pdf { outputs["report.pdf"] = pdf } else { message += "; " + printed.note }
            }
        } catch let e as DiagnosableError {
            message += "; no report.html: \(e.message)"
        }
        return InlineResult(metrics: m, outputs: outputs, message: message)
    }

    /// The constants in use for `run`: the tag's entry covering it, else the nearest earlier segment of the tag's
    /// timeline (a campaign after a closed validity range compares with the constants before it). Nil: none.
    static func previous(_ store: ConstantsStore, detector: String, type: String, run: Int,
                         tag: String) -> (entry: IOVEntry, payload: Payload, runs: RunRange)? {
        if let g = try? store.get(detector: detector, type: type, run: Int64(run), tag: tag) {
            return (g.entry, g.payload, g.entry.runs)
        }
        guard let segments = try? store.timeline(detector: detector, type: type, tag: tag) else { return nil }
        let earlier = segments.filter { s in s.runs.last.map { $0 < Int64(run) } ?? false }
        guard let seg = earlier.max(by: { ($0.runs.last ?? 0) < ($1.runs.last ?? 0) }),
              let p = try? store.readPayload(sha256: seg.entry.sha256, verify: true, context: "\(detector)/\(type)") else { return nil }
        return (seg.entry, p, seg.runs)
    }

    /// The detector whose constants are compared.
    static func detector(_ context: ActionContext, producer: String) throws -> String {
        if let d = context.with("detector") ?? context.param("detector"), !d.isEmpty { return d }
        let outcomes = (context.checklist.step(producer)?.outcomes ?? []).compactMap(OutcomeName.init)
        if let d = outcomes.first(where: { $0.type == "pedestals" })?.detector ?? outcomes.first?.detector { return d }
        throw context.badParameter("cannot tell which detector's constants to compare with",
                                   fix: "give the step producing pedestals outcomes: [DETECTOR/pedestals], or with: {detector: NAME}")
    }

    /// The tag holding the constants in use (see the type's documentation).
    static func compareTag(_ context: ActionContext, store: ConstantsStore, detector: String) throws -> String {
        if let t = context.param("compare_tag"), !t.isEmpty { return t }
        let t = context.publishTag
        let exists = ((try? store.tags(detector: detector, type: "pedestals")) ?? []).contains { $0.name == t || $0.alias == t }
        return exists ? t : ConstantsStore.defaultTag
    }

    /// A new array as doubles with its shape (the single dataset `dataset`, or the file's only one).
    static func readArray(_ path: String, dataset: String, context: ActionContext) throws -> (values: [Double], shape: [Int]) {
        do {
            let f = try HDF5File.open(path)
            let ds = try f.dataset("/" + dataset)
            guard let v = try BuiltinFiles.doubles(ds) else {
                throw context.failure("\(path) \(dataset) is \(ds.dtype); expected float32, float64 or uint16")
            }
            return (v, ds.shape)
        } catch let e as HDF5Error {
            throw context.failure("cannot read \(dataset) of \(path): \(e.detail)")
        }
    }
}
