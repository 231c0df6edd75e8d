import Foundation

/// Small inline-SVG charts for self-contained HTML reports (no scripts, no external files).
enum SVG {
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func fmt(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }

    /// A histogram as bars, with axis labels, the entry count and the out-of-range counts; an optional second
    /// histogram (e.g. the previous payload) is drawn as an outline on top.
    static func histogram(_ h: Histogram, title: String, xLabel: String, reference: Histogram? = nil,
                          width: Int = 460, height: Int = 240, logY: Bool = false) -> String {
        let left = 50.0, right = 10.0, top = 28.0, bottom = 36.0
        let w = Double(width) - left - right, hgt = Double(height) - top - bottom
        let maxCount = max(1, (h.counts + (reference?.counts ?? [])).max() ?? 1)
        func y(_ c: Int) -> Double {
            let frac = logY ? (c > 0 ? log10(Double(c) + 1) / log10(Double(maxCount) + 1) : 0) : Double(c) / Double(maxCount)
            return top + hgt * (1 - frac)
        }
        let bw = w / Double(h.counts.count)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" role=\"img\" "
            + "aria-label=\"\(escape(title))\">"
        s += "<text x=\"\(width / 2)\" y=\"16\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"bold\">\(escape(title))</text>"
        s += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w)\" height=\"\(hgt)\" fill=\"#fafafa\" stroke=\"#999\"/>"
        for (i, c) in h.counts.enumerated() where c > 0 {
            let yy = y(c)
            s += "<rect x=\(q(left + Double(i) * bw)) y=\(q(yy)) width=\(q(max(bw - 0.5, 0.5))) height=\(q(top + hgt - yy)) fill=\"#3b7dd8\"/>"
        }
        if let r = reference {
            var path = "M\(fmt(left)),\(fmt(top + hgt))"
            for (i, c) in r.counts.enumerated() {
                path += " L\(fmt(left + Double(i) * bw)),\(fmt(y(c))) L\(fmt(left + Double(i + 1) * bw)),\(fmt(y(c)))"
            }
            s += "<path d=\"\(path)\" fill=\"none\" stroke=\"#d8643b\" stroke-width=\"1.5\"/>"
        }
        for k in 0...4 {
            let xv = h.lo + Double(k) / 4 * (h.hi - h.lo)
            let xx = left + Double(k) / 4 * w
            s += "<text x=\(q(xx)) y=\(q(top + hgt + 14)) text-anchor=\"middle\" font-size=\"10\">\(fmt(xv, xv.magnitude < 10 ? 1 : 0))</text>"
        }
        s += "<text x=\(q(left + w / 2)) y=\(q(Double(height) - 4)) text-anchor=\"middle\" font-size=\"11\">\(escape(xLabel))</text>"
        s += "<text x=\"12\" y=\(q(top + hgt / 2)) font-size=\"10\" transform=\"rotate(-90 12 \(fmt(top + hgt / 2)))\" text-anchor=\"middle\">pixels\(logY ? " (log)" : "")</text>"
        s += "<text x=\(q(left + w - 4)) y=\(q(top + 12)) text-anchor=\"end\" font-size=\"10\">entries \(h.total - h.nan), under \(h.underflow), over \(h.overflow)</text>"
        if reference != nil {
            s += "<text x=\(q(left + 4)) y=\(q(top + 12)) font-size=\"10\" fill=\"#d8643b\">outline: previous payload</text>"
        }
        return s + "</svg>"
    }

    /// A map of flagged pixels of one module: cells of `cell` x `cell` pixels, coloured by the fraction flagged.
    static func pixelMap(title: String, rows: Int, cols: Int, flagged: (Int, Int) -> Bool, cell: Int = 4) -> String {
        let gr = (rows + cell - 1) / cell, gc = (cols + cell - 1) / cell
        let scale = 2.0
        let width = Double(gc) * scale, height = Double(gr) * scale
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\(q(width + 2)) height=\(q(height + 18)) role=\"img\" aria-label=\"\(escape(title))\">"
        s += "<text x=\"1\" y=\"11\" font-size=\"10\">\(escape(title))</text>"
        s += "<rect x=\"1\" y=\"15\" width=\(q(width)) height=\(q(height)) fill=\"#eef5ee\" stroke=\"#999\" stroke-width=\"0.5\"/>"
        for br in 0..<gr {
            for bc in 0..<gc {
                var n = 0, bad = 0
                for r in (br * cell)..<min(rows, (br + 1) * cell) {
                    for c in (bc * cell)..<min(cols, (bc + 1) * cell) {
                        n += 1
                        if flagged(r, c) { bad += 1 }
                    }
                }
                guard bad > 0 else { continue }
                let f = Double(bad) / Double(n)
                let shade = Int(200 - 170 * f)
                s += "<rect x=\(q(1 + Double(bc) * scale)) y=\(q(15 + Double(br) * scale)) width=\"\(scale)\" height=\"\(scale)\" fill=\"rgb(230,\(shade),\(shade / 2))\"/>"
            }
        }
        return s + "</svg>"
    }

    private static func q(_ x: Double) -> String { "\"\(fmt(x, 1))\"" }
}
