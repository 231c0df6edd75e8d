import CalibCore
import CalibIO
import CalibStore
import Foundation

/// The dark-processing report on the shared renderer (`ReportDocument`): per gain mode and panel the pedestal, rms and
/// status maps (canvas, the values embedded as 8-bit codes, block-averaged when a detector is large), the status
/// counts per bit, and the comparison with the constants in use (per panel and gain mode: the shift of the mean
/// pedestal, |shift|, status changes, a map of the shift). Previous constants of another shape are never indexed:
/// the report says so and shows both shapes. Built from the stacked arrays `[gain modes][panels][rows][cols]` the
/// `dark-constants` steps write (a `[modes][rows][cols]` array is one panel).
public struct DarkReport: Sendable {
    public var campaign: String
    public var checklist: String
    public var runs: String
    public var gainModes: [Int]
    /// The detector shape after the gain-mode axis.
    public var detectorShape: [Int]
    public var pedestal: [Float]
    public var rms: [Float]?
    public var status: [UInt16]?
    /// Where each array came from (name -> path).
    public var files: [(name: String, path: String)] = []
    public var comparison: Comparison?

    /// What compare-previous compared with (`compare.json`) and the previous arrays, when their shape matches.
    public struct Comparison: Sendable {
        public var detector: String
        public var tag: String
        public var run: Int
        public var note: String
        public var previousPedestals: String?
        public var previousShape: [Int]?
        public var newShape: [Int]
        /// Nil when there were no previous constants, or they have another shape (never indexed across shapes).
        public var pedestal: [Double]?
        public var status: [Double]?
        public init(detector: String, tag: String, run: Int, note: String, previousPedestals: String?, previousShape: [Int]?,
                    newShape: [Int], pedestal: [Double]?, status: [Double]?) {
            self.detector = detector; self.tag = tag; self.run = run; self.note = note
            self.previousPedestals = previousPedestals; self.previousShape = previousShape; self.newShape = newShape
            self.pedestal = pedestal; self.status = status
        }
        public var shapeMismatch: Bool { previousShape != nil && previousShape != newShape }
    }

    public init(campaign: String, checklist: String, runs: String, gainModes: [Int], detectorShape: [Int],
                pedestal: [Float], rms: [Float]?, status: [UInt16]?) {
        self.campaign = campaign; self.checklist = checklist; self.runs = runs
        self.gainModes = gainModes; self.detectorShape = detectorShape
        self.pedestal = pedestal; self.rms = rms; self.status = status
    }

    // MARK: geometry

    /// Panels, rows and columns of one gain mode: the last two axes are a panel's rows and columns, the axes before
    /// them count panels.
    public var panels: Int { detectorShape.count > 2 ? detectorShape.dropLast(2).reduce(1, *) : 1 }
    public var rows: Int { detectorShape.count >= 2 ? detectorShape[detectorShape.count - 2] : 1 }
    public var cols: Int { detectorShape.last ?? 0 }
    var pixelsPerPanel: Int { rows * cols }
    var pixelsPerMode: Int { panels * pixelsPerPanel }

    func base(mode m: Int, panel p: Int) -> Int { m * pixelsPerMode + p * pixelsPerPanel }

    // MARK: statistics

    /// Figures of one panel in one gain mode.
    struct PanelStats {
        var pixels = 0, bad = 0
        var pedSum = 0.0, rmsSum = 0.0
        var bits = [Int](repeating: 0, count: DarkStatusBit.allCases.count)
        // Comparison with the constants in use (pixels good in both, or all when a status is missing).
        var compared = 0, shiftSum = 0.0, absShiftSum = 0.0, maxShift = 0.0
        var newlyBad = 0, recovered = 0, statusChanged = 0
        var meanPedestal: Double { pixels > 0 ? pedSum / Double(pixels) : .nan }
        var meanRMS: Double { pixels > 0 ? rmsSum / Double(pixels) : .nan }
        var badFraction: Double { pixels > 0 ? Double(bad) / Double(pixels) : 0 }
        var meanShift: Double { compared > 0 ? shiftSum / Double(compared) : .nan }
        var meanAbsShift: Double { compared > 0 ? absShiftSum / Double(compared) : .nan }
    }

    /// A panel that needs a look: more than 5% bad pixels (lcls-dark's gate wants 95% good).
    static let badPanelFraction = 0.05

    func stats() -> [[PanelStats]] {
        let prev = comparison?.shapeMismatch == false ? comparison : nil
        return gainModes.indices.map { m in
            (0..<panels).map { p in
                var s = PanelStats()
                let b = base(mode: m, panel: p)
                for i in b..<(b + pixelsPerPanel) where i < pedestal.count {
                    s.pixels += 1
                    s.pedSum += Double(pedestal[i])
                    if let rms, i < rms.count { s.rmsSum += Double(rms[i]) }
                    let st = status.flatMap { i < $0.count ? $0[i] : nil } ?? 0
                    if st != 0 { s.bad += 1 }
                    for (k, bit) in DarkStatusBit.allCases.enumerated() where st & bit.rawValue != 0 { s.bits[k] += 1 }
                    guard let prev, let old = prev.pedestal, i < old.count else { continue }
                    let oldSt = prev.status.flatMap { i < $0.count ? $0[i] : nil }
                    if let oldSt, status != nil {
                        if oldSt == 0 && st != 0 { s.newlyBad += 1 }
                        if oldSt != 0 && st == 0 { s.recovered += 1 }
                        if Double(st) != oldSt { s.statusChanged += 1 }
                        if oldSt != 0 || st != 0 { continue }
                    }
                    let d = Double(pedestal[i]) - old[i]
                    guard d.isFinite else { continue }
                    s.compared += 1
                    s.shiftSum += d
                    s.absShiftSum += abs(d)
                    s.maxShift = max(s.maxShift, abs(d))
                }
                return s
            }
        }
    }

    // MARK: the page

    public func html() -> String {
        let st = stats()
        let intro = "<p>Campaign <b>\(HTML.esc(campaign))</b> (checklist \(HTML.esc(checklist))), runs \(HTML.esc(runs)). "
            + "\(gainModes.count) gain mode(s) (\(gainModes.map(String.init).joined(separator: ", "))), \(panels) panel(s) of \(rows) x \(cols) pixels"
            + " (array \(([gainModes.count] + detectorShape).map(String.init).joined(separator: "x"))). Files: "
            + files.map { "\(HTML.esc($0.name)) <code>\(HTML.esc($0.path))</code>" }.joined(separator: ", ") + ".</p>"
        var doc = ReportDocument(title: "Dark processing, campaign \(campaign)", intro: intro)
        doc.add("overview", "Overview", overview(st))
        doc.add("pedestal", "Pedestal maps", maps(.pedestal))
        if rms != nil { doc.add("rms", "Noise (rms) maps", maps(.rms)) }
        if status != nil {
            doc.add("status", "Status maps", maps(.status))
            doc.add("counts", "Status counts per bit", counts(st))
        }
        doc.add("comparison", "Comparison with the constants in use", compare(st))
        return doc.html().replacingOccurrences(of: "</body></html>\n", with: DrillDown.script + "</body></html>\n")
    }

    func overview(_ st: [[PanelStats]]) -> String {
        var rows: [[HTML.Cell]] = [], cls: [String?] = []
        for (m, g) in gainModes.enumerated() {
            let all = st[m].reduce(into: PanelStats()) { a, s in
                a.pixels += s.pixels; a.bad += s.bad; a.pedSum += s.pedSum; a.rmsSum += s.rmsSum
            }
            rows.append([HTML.Cell("gain mode \(g)", left: true), HTML.Cell(String(all.pixels)), HTML.Cell(HTML.f(all.meanPedestal)),
                         HTML.Cell(rms == nil ? "-" : HTML.f(all.meanRMS, 3)), HTML.Cell(String(all.bad)), HTML.Cell(HTML.pct(1 - all.badFraction))])
            cls.append(all.badFraction > Self.badPanelFraction ? "bad" : nil)
        }
        var h = HTML.table(["gain mode", "pixels", "mean pedestal (ADU)", "mean rms (ADU)", "bad pixels", "good"], rows,
                           rowClass: cls, attributes: "class=\"modes\"")
        rows = []; cls = []
        for (m, g) in gainModes.enumerated() {
            for p in 0..<panels {
                let s = st[m][p]
                rows.append([HTML.Cell(String(g)), HTML.Cell(String(p)), HTML.Cell(HTML.f(s.meanPedestal)),
                             HTML.Cell(rms == nil ? "-" : HTML.f(s.meanRMS, 3)), HTML.Cell(String(s.bad)), HTML.Cell(HTML.pct(s.badFraction))])
                cls.append(s.badFraction > Self.badPanelFraction ? "bad" : nil)
            }
        }
        h += "<h3>Per panel</h3>" + HTML.table(["gain mode", "panel", "mean pedestal", "mean rms", "bad", "bad %"], rows, leftColumns: 0,
                                               rowClass: cls, attributes: "class=\"panels\"")
        h += "<p class=\"note\">Red rows: more than \(HTML.pct(Self.badPanelFraction, 0)) of the pixels have a status bit set. "
            + "Means over every pixel of the panel; a status other than 0 is bad.</p>"
        return h
    }

    // MARK: maps

    enum MapKind: String { case pedestal, rms, status, shift }

    static let statusColours: [String] = ["#c8e6c9", "#e53935", "#1e88e5", "#8e24aa", "#212121", "#fb8c00", "#fdd835", "#6d4c41"]
    static func bitName(_ b: DarkStatusBit) -> String {
        switch b {
        case .rmsHigh: "rms high (noisy)"
        case .rmsLow: "rms low"
        case .saturated: "saturated (often above the upper limit)"
        case .cold: "cold (often below the lower limit)"
        case .pedestalHigh: "pedestal high"
        case .pedestalLow: "pedestal low"
        case .badGain: "bad gain bits"
        }
    }

    /// The number of canvases and the block size that keeps the page below ~8 million embedded codes.
    var bin: Int {
        let canvases = gainModes.count * panels * (2 + (status == nil ? 0 : 1) + (comparisonArrays == nil ? 0 : 1))
        let budget = max(8192, 8_000_000 / max(canvases, 1))
        var b = 1
        while ((rows + b - 1) / b) * ((cols + b - 1) / b) > budget { b += 1 }
        return b
    }

    /// The previous pedestals (and status) when they can be compared pixel by pixel.
    var comparisonArrays: (pedestal: [Double], status: [Double]?)? {
        guard let c = comparison, !c.shapeMismatch, let p = c.pedestal, p.count == pedestal.count else { return nil }
        return (p, c.status.flatMap { $0.count == pedestal.count ? $0 : nil })
    }

    /// The values of a map quantity over one gain mode's pixels (NaN: no value).
    func modeValues(_ kind: MapKind, mode m: Int) -> [Double] {
        let lo = m * pixelsPerMode, n = pixelsPerMode
        guard lo + n <= pedestal.count else { return [Double](repeating: .nan, count: n) }
        switch kind {
        case .pedestal: return pedestal[lo..<(lo + n)].map(Double.init)
        case .rms:
            guard let rms, lo + n <= rms.count else { return [Double](repeating: .nan, count: n) }
            return rms[lo..<(lo + n)].map(Double.init)
        case .status:
            guard let status, lo + n <= status.count else { return [Double](repeating: .nan, count: n) }
            return status[lo..<(lo + n)].map(Double.init)
        case .shift:
            guard let c = comparisonArrays else { return [Double](repeating: .nan, count: n) }
            let st = status, os = c.status
            return (lo..<(lo + n)).map { i in
                if let st, let os, st[i] != 0 || os[i] != 0 { return .nan }
                return Double(pedestal[i]) - c.pedestal[i]
            }
        }
    }

    /// The colour range of a quantity in one gain mode, shared by its panels (2nd-98th percentile of a sample).
    func scale(_ kind: MapKind, values: [Double]) -> ColourScale {
        let step = max(1, values.count / 200_000)
        let sample = stride(from: 0, to: values.count, by: step).map { values[$0] }
        if kind == .shift {
            let a = sample.filter(\.isFinite).map(abs).sorted()
            let s = a.isEmpty ? 1 : max(a[Int(Double(a.count - 1) * 0.98)], 0.5)
            return ColourScale(.diverging, lo: -s, hi: s)
        }
        let r = DetectorMaps.range(sample, pad: 0.02)
        return ColourScale(.sequential, lo: r.0, hi: r.1)
    }

    func maps(_ kind: MapKind) -> String {
        let b = bin
        let h = (rows + b - 1) / b, w = (cols + b - 1) / b
        var out = ""
        if b > 1 { out += "<p class=\"note\">Each map pixel is a block of \(b) x \(b) pixels: \(kind == .status ? "the lowest status bit set in the block" : "the mean of the block").</p>" }
        if kind == .status {
            out += "<p class=\"note\">" + (["good (0)"] + DarkStatusBit.allCases.map { "\(Self.bitName($0)) (\($0.rawValue))" }).enumerated().map { k, t in
                "<span style=\"display:inline-block;width:10px;height:10px;background:\(Self.statusColours[k]);border:1px solid #999\"></span> \(HTML.esc(t))"
            }.joined(separator: " &nbsp; ") + ". A pixel with several bits shows its lowest.</p>"
        }
        if kind == .shift { out += "<p class=\"note\">New minus previous pedestal (ADU); grey: bad in either.</p>" }
        let unit = kind == .status ? "" : " (ADU)"
        for (m, g) in gainModes.enumerated() {
            let values = modeValues(kind, mode: m)
            let s = kind == .status ? nil : scale(kind, values: values)
            var palette: [UInt8]
            if let s {
                palette = ColourScale(s.kind, lo: 0, hi: 254).palette
                palette[765] = 189; palette[766] = 189; palette[767] = 189   // 255: no value, grey
            } else {
                palette = [UInt8](repeating: 0, count: 768)
                for (k, c) in Self.statusColours.enumerated() {
                    let v = Int(c.dropFirst(), radix: 16) ?? 0
                    palette[3 * k] = UInt8(v >> 16 & 0xFF); palette[3 * k + 1] = UInt8(v >> 8 & 0xFF); palette[3 * k + 2] = UInt8(v & 0xFF)
                }
            }
            out += "<div class=\"mode-maps\" data-map=\"\(kind.rawValue)\" data-gain-mode=\"\(g)\"><h3>Gain mode \(g)</h3><div class=\"flex\">"
            for p in 0..<panels {
                let codes = self.codes(kind, values, panel: p, bin: b, h: h, w: w, scale: s)
                let asic = rows % 256 == 0 && cols % 256 == 0 ? max(256 / b, 1) : max(h, w) + 1
                let width = 300.0, height = width * Double(h) / Double(max(w, 1))
                out += "<div class=\"card\"><div style=\"font-size:11px;font-weight:bold\">panel \(p), gain mode \(g): \(kind == .shift ? "pedestal shift" : kind.rawValue)</div>"
                    + "<canvas class=\"pixmap dark\" data-map=\"\(kind.rawValue)\" data-gain-mode=\"\(g)\" data-panel=\"\(p)\" width=\"\(w)\" height=\"\(h)\" "
                    + "data-roc-rows=\"\(asic)\" data-roc-cols=\"\(asic)\" style=\"width:\(ReportSVG.n(width))px;height:\(ReportSVG.n(height))px\" "
                    + "data-pal=\"\(Data(palette).base64EncodedString())\" data-px=\"\(Data(codes).base64EncodedString())\"></canvas></div>"
            }
            if let s { out += ReportSVG.colourBar(s, label: (kind == .shift ? "pedestal shift" : kind.rawValue) + unit, digits: kind == .rms ? 2 : 1) }
            out += "</div></div>"
        }
        return out
    }

    /// 8-bit codes of one panel's map in `bin` x `bin` blocks: values 0...254 on the scale (255: no value); status
    /// the index of the lowest bit set in the block (0: good). `values`: the gain mode's values (`modeValues`).
    func codes(_ kind: MapKind, _ values: [Double], panel p: Int, bin b: Int, h: Int, w: Int, scale: ColourScale?) -> [UInt8] {
        let start = p * pixelsPerPanel
        var out = [UInt8](repeating: kind == .status ? 0 : 255, count: h * w)
        for br in 0..<h {
            for bc in 0..<w {
                var sum = 0.0, n = 0, bits = 0
                for r in (br * b)..<min((br + 1) * b, rows) {
                    for c in (bc * b)..<min((bc + 1) * b, cols) {
                        let v = values[start + r * cols + c]
                        guard v.isFinite else { continue }
                        if kind == .status { bits |= Int(v) } else { sum += v; n += 1 }
                    }
                }
                if kind == .status {
                    out[br * w + bc] = bits == 0 ? 0 : UInt8(min(bits.trailingZeroBitCount + 1, 7))
                } else if n > 0, let scale {
                    out[br * w + bc] = UInt8(min(254, Int(scale.position(sum / Double(n)) * 254)))
                }
            }
        }
        return out
    }

    // MARK: counts and comparison

    func counts(_ st: [[PanelStats]]) -> String {
        let header = ["status bit", "value"] + gainModes.map { "gain mode \($0)" } + ["all modes"]
        var rows: [[HTML.Cell]] = []
        func cell(_ n: Int, _ of: Int) -> HTML.Cell { HTML.Cell("\(n) (\(HTML.pct(of > 0 ? Double(n) / Double(of) : 0)))") }
        let perMode = gainModes.indices.map { m in st[m].reduce(0) { $0 + $1.pixels } }
        let total = perMode.reduce(0, +)
        for (k, bit) in DarkStatusBit.allCases.enumerated() {
            let n = gainModes.indices.map { m in st[m].reduce(0) { $0 + $1.bits[k] } }
            rows.append([HTML.Cell(Self.bitName(bit), left: true), HTML.Cell(String(bit.rawValue))]
                        + n.enumerated().map { cell($1, perMode[$0]) } + [cell(n.reduce(0, +), total)])
        }
        let bad = gainModes.indices.map { m in st[m].reduce(0) { $0 + $1.bad } }
        rows.append([HTML.Cell("any bit (bad pixels)", left: true), HTML.Cell("")] + bad.enumerated().map { cell($1, perMode[$0]) }
                    + [cell(bad.reduce(0, +), total)])
        return HTML.table(header, rows, leftColumns: 1, rowClass: Array(repeating: nil, count: rows.count - 1) + ["warn"],
                          attributes: "class=\"bits\"")
            + "<p class=\"note\">A pixel can have several bits; the last row counts pixels with any.</p>"
    }

    func compare(_ st: [[PanelStats]]) -> String {
        guard let c = comparison else {
            return "<p class=\"note\">No comparison was recorded (the campaign has no compare-previous step with a <code>compare.json</code>).</p>"
        }
        var h = "<p>Detector <b>\(HTML.esc(c.detector))</b>, tag <b>\(HTML.esc(c.tag))</b>, run \(c.run): \(HTML.esc(c.note)).</p>"
        if c.shapeMismatch {
            let a = (c.previousShape ?? []).map(String.init).joined(separator: "x"), b = c.newShape.map(String.init).joined(separator: "x")
            return h + "<p class=\"bad shape-mismatch\">The constants in use have shape \(a), the new ones \(b): another geometry or number of gain modes. "
                + "Nothing is compared pixel by pixel; a person signs off whether the change is intended.</p>"
        }
        guard comparisonArrays != nil else {
            return h + "<p class=\"ok\">No previous constants: a first calibration, nothing to compare.</p>"
        }
        var rows: [[HTML.Cell]] = [], cls: [String?] = []
        let all = st.flatMap { $0 }
        let worst = Set(all.indices.sorted { abs(all[$0].meanShift.isFinite ? all[$0].meanShift : 0) + Double(all[$0].statusChanged)
                                             > abs(all[$1].meanShift.isFinite ? all[$1].meanShift : 0) + Double(all[$1].statusChanged) }.prefix(3))
        for (m, g) in gainModes.enumerated() {
            for p in 0..<panels {
                let s = st[m][p], k = m * panels + p
                rows.append([HTML.Cell(String(g)), HTML.Cell(String(p)), HTML.Cell(String(s.compared)), HTML.Cell(HTML.f(s.meanShift, 3)),
                             HTML.Cell(HTML.f(s.meanAbsShift, 3)), HTML.Cell(HTML.f(s.maxShift, 2)), HTML.Cell(String(s.newlyBad)),
                             HTML.Cell(String(s.recovered)), HTML.Cell(String(s.statusChanged))])
                cls.append(worst.contains(k) && (s.statusChanged > 0 || abs(s.meanShift) > 0.5) ? "warn" : nil)
            }
        }
        h += HTML.table(["gain mode", "panel", "pixels compared", "mean shift (ADU)", "mean |shift|", "max |shift|", "newly bad", "recovered",
                         "status changed"], rows, leftColumns: 0, rowClass: cls, attributes: "class=\"shifts\"")
        h += "<p class=\"note\">Shift: new minus previous pedestal over the pixels good in both (all pixels when a status is missing); "
            + "highlighted: the panels with the largest shift or most status changes. compare-previous's gates use the mean |shift| over every gain mode.</p>"
        return h + maps(.shift)
    }
}

// MARK: - gathering

/// Errors of the dark report.
public enum DarkReportError: DiagnosableError {
    case noDarkConstants(campaign: String, checklist: String)
    case unreadable(path: String, detail: String)

    public var exitStatus: ExitStatus { .dataError }
    public var message: String {
        switch self {
        case .noDarkConstants(let c, let l): "campaign \(c) (checklist \(l)) has no dark-processing results: no step recorded an output named pedestals"
        case .unreadable(let p, let d): "the dark constants \(p) cannot be read: \(d)"
        }
    }
    public var fix: String? {
        switch self {
        case .noDarkConstants: "name a campaign of the lcls-dark checklist whose pedestals step is done (calibctl checklist show --campaign NAME)"
        case .unreadable: "run the step that wrote it again (calibctl step reopen CAMPAIGN STEP --note why), then tick"
        }
    }
}

extension DarkReport {
    /// Reads a stacked dark-constants file (`[modes][...]`, one dataset named like the type) and its gain modes.
    static func read(_ path: String, dataset: String) throws -> (values: [Double], shape: [Int], modes: [Int]?) {
        do {
            let f = try HDF5File.open(path)
            let ds = try f.dataset("/" + dataset)
            guard let v = try BuiltinFiles.doubles(ds) else {
                throw DarkReportError.unreadable(path: path, detail: "\(dataset) is \(ds.dtype), expected float32, float64 or uint16")
            }
            var modes: [Int]?
            if case .ints(let m)? = try f.attributeIfPresent("gain_modes") { modes = m.map(Int.init) }
            return (v, ds.shape, modes)
        } catch let e as HDF5Error {
            throw DarkReportError.unreadable(path: path, detail: e.detail)
        }
    }

    /// The report from the files of a campaign: the new pedestals (required), rms and status, and compare-previous's
    /// record; the previous arrays are read from the store by the checksums `compare.json` names (so the report
    /// compares with what was in use at the comparison, also after the new constants were deployed to the same tag).
    public static func build(campaign: Campaign, checklist: String, pedestals: String, rms: String?, status: String?,
                             compare: ComparePreviousAction.Report?, store: ConstantsStore?) throws -> DarkReport {
        let ped = try read(pedestals, dataset: "pedestals")
        let modes = ped.modes ?? Array(0..<(ped.shape.first ?? 1))
        let det = Array(ped.shape.dropFirst())
        var r = DarkReport(campaign: campaign.name, checklist: checklist, runs: campaign.runs.description, gainModes: modes,
                           detectorShape: det, pedestal: ped.values.map(Float.init), rms: nil, status: nil)
        r.files = [("pedestals", pedestals)]
        if let rms {
            let a = try read(rms, dataset: "pixel_rms")
            if a.shape == ped.shape { r.rms = a.values.map(Float.init); r.files.append(("pixel_rms", rms)) }
        }
        if let status {
            let a = try read(status, dataset: "pixel_status")
            if a.shape == ped.shape { r.status = a.values.map { UInt16(clamping: Int($0)) }; r.files.append(("pixel_status", status)) }
        }
        if let c = compare {
            var cmp = Comparison(detector: c.detector, tag: c.tag, run: c.run, note: c.note, previousPedestals: c.previousPedestals,
                                 previousShape: c.previousShape, newShape: c.newShape, pedestal: nil, status: nil)
            if !cmp.shapeMismatch, let store, let sha = c.previousPedestals,
               let p = try? store.readPayload(sha256: sha, verify: true, context: "\(c.detector)/pedestals"),
               let a = p["pedestals"] ?? p.arrays.first, a.shape == ped.shape {
                cmp.pedestal = a.doubles()
                if let ss = c.previousStatus, let ps = try? store.readPayload(sha256: ss, verify: true, context: "\(c.detector)/pixel_status"),
                   let b = ps["pixel_status"] ?? ps.arrays.first, b.shape == ped.shape {
                    cmp.status = b.doubles()
                }
            }
            r.comparison = cmp
        }
        return r
    }

    /// The report of a campaign from its records: the latest outputs named pedestals, pixel_rms, pixel_status and
    /// compare.json of its steps (checklist order).
    public static func gather(engine: WorkflowEngine, campaign name: String) throws -> DarkReport {
        let c = try engine.campaigns.campaign(named: name)
        let steps = try engine.campaigns.steps(of: c).map(\.id)
        func find(_ output: String) -> String? {
            for s in steps { if let o = try? engine.latestOutput(campaign: name, step: s, named: output) { return o.path } }
            return nil
        }
        guard let ped = find("pedestals") else { throw DarkReportError.noDarkConstants(campaign: name, checklist: c.checklistName) }
        let compare = find("compare.json").flatMap { try? JSONDecoder().decode(ComparePreviousAction.Report.self, from: Data(contentsOf: URL(fileURLWithPath: $0))) }
        return try build(campaign: c, checklist: c.checklistName, pedestals: ped, rms: find("pixel_rms"), status: find("pixel_status"),
                         compare: compare, store: try? engine.store())
    }
}
