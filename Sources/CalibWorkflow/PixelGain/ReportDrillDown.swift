import CalibCore
import Foundation

/// The per-module drill-down: the gain, pedestal and status maps of one module at full resolution (canvas, the pixel
/// values embedded as 8-bit codes and drawn by a few lines of inline script), the ROC boundaries, and per-ROC figures.
enum DrillDown {
    static let statusColours: [GainPixelStatus: String] = [
        .ok: "#c8e6c9", .noPlateau: "#fff59d", .flat: "#616161", .tooFewPoints: "#ff9800", .badGain: "#e91e63",
        .notANumber: "#9c27b0", .chi2TooLarge: "#f44336", .neverPulsed: "#000000", .noisy: "#2196f3",
    ]

    /// One canvas: `codes` (rows x cols, 255 = no value) with a 256-entry palette.
    static func canvas(kind: String, detID: String, rows: Int, cols: Int, codes: [UInt8], palette: [UInt8], title: String) -> String {
        let scale = cols <= 208 ? 2 : 1
        return "<div class=\"card\"><div style=\"font-size:11px;font-weight:bold\">\(HTML.esc(title))</div>"
            + "<canvas class=\"pixmap\" data-map=\"\(kind)\" data-detid=\"\(detID)\" width=\"\(cols)\" height=\"\(rows)\" "
            + "data-roc-rows=\"\(CMSPixelTopology.rowsPerROC)\" data-roc-cols=\"\(CMSPixelTopology.colsPerROC)\" "
            + "style=\"width:\(cols * scale)px;height:\(rows * scale)px\" "
            + "data-pal=\"\(Data(palette).base64EncodedString())\" data-px=\"\(Data(codes).base64EncodedString())\"></canvas></div>"
    }

    /// Draws every `canvas.pixmap` from its embedded data (runs once, before printing).
    static let script = """
    <script>(function(){function b(s){var t=atob(s),a=new Uint8Array(t.length);for(var i=0;i<t.length;i++)a[i]=t.charCodeAt(i);return a}
    document.querySelectorAll('canvas.pixmap').forEach(function(c){var w=c.width,h=c.height,px=b(c.dataset.px),pal=b(c.dataset.pal);
    var x=c.getContext('2d'),im=x.createImageData(w,h);for(var i=0;i<w*h;i++){var k=px[i]*3;im.data[4*i]=pal[k];im.data[4*i+1]=pal[k+1];
    im.data[4*i+2]=pal[k+2];im.data[4*i+3]=255}x.putImageData(im,0,0);x.strokeStyle='rgba(0,0,0,0.55)';x.lineWidth=1;
    var rr=+c.dataset.rocRows,rc=+c.dataset.rocCols;x.beginPath();for(var r=rr;r<h;r+=rr){x.moveTo(0,r+0.5);x.lineTo(w,r+0.5)}
    for(var q=rc;q<w;q+=rc){x.moveTo(q+0.5,0);x.lineTo(q+0.5,h)}x.stroke();c.dataset.drawn='1'})})();</script>
    """

    static func section(_ d: GainRunData, _ m: ModuleStats, why: String, comparison: ModuleComparison?) -> String {
        let r = d.module(m.index)
        var gainCodes = [UInt8](repeating: 255, count: d.pixelsPerModule), pedCodes = gainCodes, statusCodes = gainCodes
        var gains: [Double] = [], peds: [Double] = []
        for p in r where (GainPixelStatus(rawValue: d.status[p]) ?? .notANumber).hasUsableFit {
            gains.append(Double(d.gain[p])); peds.append(Double(d.pedestal[p]))
        }
        let gr = DetectorMaps.range(gains), pr = DetectorMaps.range(peds)
        let gs = ColourScale(.sequential, lo: gr.0, hi: gr.1), ps = ColourScale(.sequential, lo: pr.0, hi: pr.1)
        for (k, p) in r.enumerated() {
            let st = GainPixelStatus(rawValue: d.status[p]) ?? .notANumber
            statusCodes[k] = st.rawValue
            guard st.hasUsableFit else { continue }
            gainCodes[k] = UInt8(min(254, Int(gs.position(Double(d.gain[p])) * 254)))
            pedCodes[k] = UInt8(min(254, Int(ps.position(Double(d.pedestal[p])) * 254)))
        }
        func valuePalette(_ s: ColourScale) -> [UInt8] {
            var pal = ColourScale(s.kind, lo: 0, hi: 254).palette
            // 255: no usable fit, drawn red so bad pixels stand out.
            pal[765] = 230; pal[766] = 30; pal[767] = 30
            return pal
        }
        var statusPalette = [UInt8](repeating: 0, count: 768)
        for s in GainPixelStatus.allCases {
            let v = Int((statusColours[s] ?? "#000000").dropFirst(), radix: 16) ?? 0
            let i = Int(s.rawValue) * 3
            statusPalette[i] = UInt8(v >> 16 & 0xFF); statusPalette[i + 1] = UInt8(v >> 8 & 0xFF); statusPalette[i + 2] = UInt8(v & 0xFF)
        }
        var h = "<h3 id=\"module-\(m.hexID)\" class=\"drill\" data-detid=\"\(m.hexID)\">\(HTML.esc(m.label)), detid \(m.hexID), FED \(m.fed)</h3>"
        h += "<p class=\"note\">\(HTML.esc(why)). \(m.bad) of \(m.pixels) pixels without a usable fit (\(HTML.pct(m.badFraction))); mean gain \(HTML.f(m.meanGain)) e/ADC (rms \(HTML.f(m.rmsGain))), mean pedestal \(HTML.f(m.meanPedestal)) ADC"
        if let c = comparison, c.compared > 0 {
            h += "; against the payload in use: gain \(HTML.pct(c.gainShift)), pedestal \(HTML.f(c.pedestalShift)) ADC, \(c.newlyBad) newly bad, \(c.recovered) recovered"
        }
        h += ". Rows vertical (\(d.rows)), columns horizontal (\(d.cols)); lines mark the ROCs (80 x 52).</p><div class=\"flex\">"
        h += canvas(kind: "gain", detID: m.hexID, rows: d.rows, cols: d.cols, codes: gainCodes, palette: valuePalette(gs),
                    title: "gain (e/ADC); red: no usable fit") + ReportSVG.colourBar(gs, label: "gain (e/ADC)")
        h += "</div><div class=\"flex\">"
        h += canvas(kind: "pedestal", detID: m.hexID, rows: d.rows, cols: d.cols, codes: pedCodes, palette: valuePalette(ps),
                    title: "pedestal (ADC); red: no usable fit") + ReportSVG.colourBar(ps, label: "pedestal (ADC)")
        h += "</div><div class=\"flex\">"
        h += canvas(kind: "status", detID: m.hexID, rows: d.rows, cols: d.cols, codes: statusCodes, palette: statusPalette, title: "status")
        h += "<div class=\"card\" style=\"font-size:11px\">" + GainPixelStatus.allCases.map { s in
            "<span style=\"display:inline-block;width:10px;height:10px;background:\(statusColours[s] ?? "#000");border:1px solid #999\"></span> \(s.description) (\(m.statusCounts[Int(s.rawValue)]))"
        }.joined(separator: "<br>") + "</div></div>"
        let rows = m.rocs.enumerated().map { k, roc -> [HTML.Cell] in
            [HTML.Cell(String(k)), HTML.Cell(String(roc.pixels)), HTML.Cell(String(roc.bad)), HTML.Cell(HTML.pct(roc.badFraction)),
             HTML.Cell(HTML.f(roc.meanGain)), HTML.Cell(HTML.f(roc.meanPedestal))]
        }
        h += HTML.table(["ROC", "pixels", "bad", "bad %", "mean gain", "mean pedestal"], rows,
                        rowClass: m.rocs.map { $0.pixels > 0 && $0.badFraction > ModuleStats.badROCFraction ? "bad" : nil },
                        attributes: "class=\"rocs\"")
        return h
    }
}
