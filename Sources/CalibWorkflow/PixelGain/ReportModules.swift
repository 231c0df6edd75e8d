import CalibCore
import Foundation

/// Per-module and per-ROC figures of a merged run (one pass over the pixels): what the maps, the drill-down and the
/// comparison draw.
struct ModuleStats {
    struct ROC {
        var pixels = 0, bad = 0
        var gainSum = 0.0, pedSum = 0.0
        var meanGain: Double { pixels - bad > 0 ? gainSum / Double(pixels - bad) : .nan }
        var meanPedestal: Double { pixels - bad > 0 ? pedSum / Double(pixels - bad) : .nan }
        var badFraction: Double { pixels > 0 ? Double(bad) / Double(pixels) : 0 }
    }

    var index: Int
    var detID: Int64
    var fed: Int
    var position: PixelModulePosition?
    var pixels = 0
    var bad = 0
    var gainSum = 0.0, pedSum = 0.0, gainSq = 0.0
    var statusCounts = [Int](repeating: 0, count: GainPixelStatus.allCases.count)
    var rocs: [ROC]

    var usable: Int { pixels - bad }
    var meanGain: Double { usable > 0 ? gainSum / Double(usable) : .nan }
    var meanPedestal: Double { usable > 0 ? pedSum / Double(usable) : .nan }
    var rmsGain: Double { usable > 1 ? max(gainSq / Double(usable) - meanGain * meanGain, 0).squareRoot() : .nan }
    var badFraction: Double { pixels > 0 ? Double(bad) / Double(pixels) : 0 }
    /// A module the expert must look at: more than 2% of its pixels without a usable fit.
    var isBad: Bool { badFraction > ModuleStats.badModuleFraction }
    var badROCs: [Int] { rocs.indices.filter { rocs[$0].pixels > 0 && rocs[$0].badFraction > ModuleStats.badROCFraction } }
    var hexID: String { "0x" + String(detID, radix: 16) }
    var label: String { position?.label ?? "detid \(hexID) (not in the Phase-1 geometry)" }

    static let badModuleFraction = 0.02
    static let badROCFraction = 0.10

    /// ROC grid of a module: rows of 80, columns of 52 pixels (2 x 8 for a 160 x 416 module).
    static func rocGrid(rows: Int, cols: Int) -> (rows: Int, cols: Int) {
        ((rows + CMSPixelTopology.rowsPerROC - 1) / CMSPixelTopology.rowsPerROC,
         (cols + CMSPixelTopology.colsPerROC - 1) / CMSPixelTopology.colsPerROC)
    }

    static func compute(_ d: GainRunData) -> [ModuleStats] {
        let grid = rocGrid(rows: d.rows, cols: d.cols)
        var out: [ModuleStats] = []
        out.reserveCapacity(d.modules)
        for m in 0..<d.modules {
            var s = ModuleStats(index: m, detID: d.detIDs[m], fed: m < d.moduleFED.count ? Int(d.moduleFED[m]) : -1,
                                position: PixelModulePosition(detID: d.detIDs[m]),
                                rocs: [ROC](repeating: ROC(), count: max(grid.rows * grid.cols, 1)))
            let base = m * d.pixelsPerModule
            for r in 0..<d.rows {
                let rocRow = (r / CMSPixelTopology.rowsPerROC) * grid.cols
                for c in 0..<d.cols {
                    let p = base + r * d.cols + c
                    let st = GainPixelStatus(rawValue: d.status[p]) ?? .notANumber
                    let k = rocRow + c / CMSPixelTopology.colsPerROC
                    s.pixels += 1
                    s.rocs[k].pixels += 1
                    s.statusCounts[Int(st.rawValue)] += 1
                    if st.hasUsableFit {
                        let g = Double(d.gain[p]), q = Double(d.pedestal[p])
                        s.gainSum += g; s.pedSum += q; s.gainSq += g * g
                        s.rocs[k].gainSum += g; s.rocs[k].pedSum += q
                    } else {
                        s.bad += 1
                        s.rocs[k].bad += 1
                    }
                }
            }
            out.append(s)
        }
        return out
    }
}

/// The maps of the detector: per BPix layer a ladder x module grid, per FPix disk the two rings of blades split into
/// their panels, each module a shape coloured by a quantity (modules not in the run drawn grey); bad modules outlined
/// in red, bad ROCs (more than 10% of their pixels without a usable fit) drawn as red cells on the status map.
struct DetectorMaps {
    let modules: [ModuleStats]
    let rocGrid: (rows: Int, cols: Int)

    struct Quantity {
        var key: String
        var title: String
        var unit: String
        var scale: ColourScale
        var value: (ModuleStats) -> Double
        var digits = 1
        /// Draw the bad ROCs of bad modules on top (the status map).
        var showROCs = false
    }

    /// A colour range from the 2nd to the 98th percentile of the finite values (never empty).
    static func range(_ values: [Double], pad: Double = 0.05) -> (Double, Double) {
        let v = values.filter(\.isFinite).sorted()
        guard let first = v.first, let last = v.last else { return (0, 1) }
        var lo = v[Int(Double(v.count - 1) * 0.02)], hi = v[Int(Double(v.count - 1) * 0.98)]
        if hi - lo < 1e-6 { lo = first - 1; hi = last + 1 }
        let w = hi - lo
        return (lo - pad * w, hi + pad * w)
    }

    /// The map names (BPix L1 ... FPix D6) holding at least one module of the run.
    var usedMaps: [String] {
        let used = Set(modules.compactMap { $0.position?.mapName })
        return PixelModulePosition.mapNames.filter(used.contains)
    }

    func svg(map: String, _ q: Quantity) -> String {
        let here = modules.filter { $0.position?.mapName == map }
        var byPlace: [String: ModuleStats] = [:]
        for m in here { byPlace[Self.key(m.position!.part)] = m }
        var s = ""
        let head = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"map\" data-map=\"\(q.key)\" data-part=\"\(map)\" data-modules=\"\(here.count)\""
        func title(_ m: ModuleStats) -> String {
            let v = q.value(m)
            return "<title>\(HTML.esc(m.label)), detid \(m.hexID), FED \(m.fed): \(q.title) \(HTML.f(v, q.digits)) \(HTML.esc(q.unit)); \(m.bad) bad pixel(s) (\(HTML.pct(m.badFraction)))\(m.badROCs.isEmpty ? "" : ", bad ROC(s) \(m.badROCs.map(String.init).joined(separator: ","))")</title>"
        }
        if map.hasPrefix("BPix"), let layer = Int(map.dropFirst(6)) {
            let ladders = PixelModulePosition.ladders[layer - 1], mods = PixelModulePosition.modulesPerLadder
            let left = 26.0, top = 18.0, width = 200.0, cellH = 13.0
            let cw = width / Double(ladders), height = top + Double(mods) * cellH + 22
            s = head + " width=\"\(ReportSVG.n(left + width + 4))\" height=\"\(ReportSVG.n(height))\">"
            s += "<text x=\"\(ReportSVG.n(left))\" y=\"12\" font-size=\"10\" font-weight=\"bold\">\(map): \(HTML.esc(q.title))</text>"
            for lad in 1...ladders {
                for mod in 1...mods {
                    let x = left + Double(lad - 1) * cw, y = top + Double(mods - mod) * cellH
                    let rect = "x=\"\(ReportSVG.n(x))\" y=\"\(ReportSVG.n(y))\" width=\"\(ReportSVG.n(cw))\" height=\"\(ReportSVG.n(cellH))\""
                    guard let m = byPlace[Self.key(.bpix(layer: layer, ladder: lad, module: mod))] else {
                        s += "<rect class=\"empty\" \(rect) fill=\"#eeeeee\" stroke=\"#fff\" stroke-width=\"0.4\"/>"
                        continue
                    }
                    s += cell(m, q, rect: rect, title: title(m))
                    if q.showROCs { s += rocCells(m, x: x, y: y, w: cw, h: cellH) }
                }
            }
            for m in here where m.isBad {
                if case .bpix(_, let lad, let mod) = m.position!.part {
                    s += "<rect class=\"badmod\" x=\"\(ReportSVG.n(left + Double(lad - 1) * cw))\" y=\"\(ReportSVG.n(top + Double(mods - mod) * cellH))\" width=\"\(ReportSVG.n(cw))\" height=\"\(ReportSVG.n(cellH))\" fill=\"none\" stroke=\"#d50000\" stroke-width=\"1.6\"/>"
                }
            }
            for mod in 1...mods {
                s += "<text x=\"\(ReportSVG.n(left - 3))\" y=\"\(ReportSVG.n(top + Double(mods - mod) * cellH + 9))\" font-size=\"8\" text-anchor=\"end\">\(mod <= 4 ? "\u{2212}\(5 - mod)" : "+\(mod - 4)")</text>"
            }
            for lad in stride(from: 1, through: ladders, by: ladders > 30 ? 8 : 4) {
                s += "<text x=\"\(ReportSVG.n(left + (Double(lad) - 0.5) * cw))\" y=\"\(ReportSVG.n(top + Double(mods) * cellH + 10))\" font-size=\"8\" text-anchor=\"middle\">\(lad)</text>"
            }
            s += "<text x=\"\(ReportSVG.n(left + width / 2))\" y=\"\(ReportSVG.n(height - 2))\" font-size=\"9\" text-anchor=\"middle\">ladder (\u{03c6}); rows: module along z</text>"
            return s + "</svg>"
        }
        guard map.hasPrefix("FPix"), let disk = Int(map.dropFirst(6)) else { return "" }
        let size = 232.0, cx = size / 2, cy = size / 2 + 8
        let rings: [(blades: Int, first: Int, r0: Double, r1: Double)] = [
            (PixelModulePosition.innerBlades, 1, 26, 60), (PixelModulePosition.outerBlades, PixelModulePosition.innerBlades + 1, 64, 106)]
        s = head + " width=\"\(ReportSVG.n(size))\" height=\"\(ReportSVG.n(size + 14))\">"
        s += "<text x=\"2\" y=\"12\" font-size=\"10\" font-weight=\"bold\">\(map) (\(PixelModulePosition.diskSide(disk))): \(HTML.esc(q.title))</text>"
        var outlines = ""
        for ring in rings {
            let span = 2 * Double.pi / Double(ring.blades)
            for b in 0..<ring.blades {
                for panel in 1...2 {
                    let a0 = span * (Double(b) + Double(panel - 1) * 0.5) - .pi / 2, a1 = a0 + span * 0.5
                    let d = Self.sector(cx: cx, cy: cy, r0: ring.r0, r1: ring.r1, a0: a0, a1: a1)
                    guard let m = byPlace[Self.key(.fpix(disk: disk, blade: ring.first + b, panel: panel))] else {
                        s += "<path class=\"empty\" d=\"\(d)\" fill=\"#eeeeee\" stroke=\"#fff\" stroke-width=\"0.4\"/>"
                        continue
                    }
                    s += cell(m, q, path: d, title: title(m))
                    if q.showROCs, !m.badROCs.isEmpty {
                        // The bad ROCs as red sectors of the panel (ROC k at its share of the angle).
                        let n = Double(m.rocs.count)
                        for k in m.badROCs {
                            let b0 = a0 + (a1 - a0) * Double(k) / n, b1 = b0 + (a1 - a0) / n
                            s += "<path class=\"roc bad\" d=\"\(Self.sector(cx: cx, cy: cy, r0: ring.r0, r1: ring.r1, a0: b0, a1: b1))\" fill=\"#d50000\"/>"
                        }
                    }
                    if m.isBad { outlines += "<path class=\"badmod\" d=\"\(d)\" fill=\"none\" stroke=\"#d50000\" stroke-width=\"1.6\"/>" }
                }
            }
        }
        s += outlines
        s += "<text x=\"\(ReportSVG.n(cx))\" y=\"\(ReportSVG.n(cy + 3))\" font-size=\"8\" text-anchor=\"middle\">inner 1-22</text>"
        s += "<text x=\"\(ReportSVG.n(cx))\" y=\"\(ReportSVG.n(size + 12))\" font-size=\"8\" text-anchor=\"middle\">outer ring: blades 23-56; each blade: panel 1 | panel 2</text>"
        return s + "</svg>"
    }

    private func cell(_ m: ModuleStats, _ q: Quantity, rect: String? = nil, path: String? = nil, title: String) -> String {
        let v = q.value(m)
        let attrs = "class=\"mod\" data-detid=\"\(m.hexID)\" data-v=\"\(HTML.f(v, 3))\" fill=\"\(q.scale.colour(v))\" stroke=\"#ffffff\" stroke-width=\"0.4\""
        if let rect { return "<rect \(attrs) \(rect)>\(title)</rect>" }
        return "<path \(attrs) d=\"\(path ?? "")\">\(title)</path>"
    }

    private func rocCells(_ m: ModuleStats, x: Double, y: Double, w: Double, h: Double) -> String {
        let bad = m.badROCs
        guard !bad.isEmpty else { return "" }
        let rw = w / Double(rocGrid.cols), rh = h / Double(rocGrid.rows)
        return bad.map { k in
            let r = k / rocGrid.cols, c = k % rocGrid.cols
            return "<rect class=\"roc bad\" x=\"\(ReportSVG.n(x + Double(c) * rw))\" y=\"\(ReportSVG.n(y + Double(r) * rh))\" width=\"\(ReportSVG.n(rw))\" height=\"\(ReportSVG.n(rh))\" fill=\"#d50000\"><title>ROC \(k): \(HTML.pct(m.rocs[k].badFraction)) bad</title></rect>"
        }.joined()
    }

    static func key(_ p: PixelModulePosition.Part) -> String {
        switch p {
        case .bpix(let l, let lad, let m): "b\(l).\(lad).\(m)"
        case .fpix(let d, let b, let p): "f\(d).\(b).\(p)"
        }
    }

    /// An annular sector path.
    static func sector(cx: Double, cy: Double, r0: Double, r1: Double, a0: Double, a1: Double) -> String {
        func pt(_ r: Double, _ a: Double) -> String { "\(ReportSVG.n(cx + r * cos(a))),\(ReportSVG.n(cy + r * sin(a)))" }
        return "M\(pt(r0, a0)) L\(pt(r1, a0)) A\(ReportSVG.n(r1)),\(ReportSVG.n(r1)) 0 0 1 \(pt(r1, a1)) L\(pt(r0, a1)) A\(ReportSVG.n(r0)),\(ReportSVG.n(r0)) 0 0 0 \(pt(r0, a0)) Z"
    }
}
