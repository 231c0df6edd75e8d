import Foundation

/// A colour scale for maps: `sequential` (viridis-like, low = dark blue, high = yellow), `diverging` (blue - white -
/// red around 0) or `bad` (white - orange - red for fractions of bad pixels).
public struct ColourScale: Sendable {
    public enum Kind: Sendable { case sequential, diverging, bad }
    public var kind: Kind
    public var lo: Double
    public var hi: Double

    public init(_ kind: Kind, lo: Double, hi: Double) {
        self.kind = kind
        self.lo = lo
        self.hi = hi > lo ? hi : lo + 1
    }

    static let viridis: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
    static let divergingStops: [(Double, Double, Double)] = [(33, 102, 172), (146, 197, 222), (247, 247, 247), (244, 165, 130), (178, 24, 43)]
    static let badStops: [(Double, Double, Double)] = [(240, 248, 240), (255, 224, 130), (245, 124, 0), (198, 40, 40), (110, 0, 0)]

    /// 0...1 position of `x` on the scale (clamped).
    public func position(_ x: Double) -> Double {
        guard x.isFinite else { return 0 }
        return min(max((x - lo) / (hi - lo), 0), 1)
    }

    public func colour(_ x: Double) -> String {
        guard x.isFinite else { return "#bdbdbd" }
        let stops = kind == .sequential ? Self.viridis : kind == .diverging ? Self.divergingStops : Self.badStops
        let t = position(x) * Double(stops.count - 1)
        let i = min(Int(t), stops.count - 2), f = t - Double(i)
        let a = stops[i], b = stops[i + 1]
        func c(_ u: Double, _ v: Double) -> Int { Int((u + (v - u) * f).rounded()) }
        return String(format: "#%02x%02x%02x", c(a.0, b.0), c(a.1, b.1), c(a.2, b.2))
    }

    /// The scale as 256 RGB triples (for canvas maps drawn from 8-bit codes).
    public var palette: [UInt8] {
        (0..<256).flatMap { k -> [UInt8] in
            let hex = colour(lo + (hi - lo) * Double(k) / 255)
            let v = Int(hex.dropFirst(), radix: 16) ?? 0
            return [UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)]
        }
    }
}

/// Inline-SVG building blocks of the reports.
public enum ReportSVG {
    public static func n(_ x: Double) -> String { String(format: "%.1f", x) }

    /// A horizontal colour bar with its range and label.
    public static func colourBar(_ s: ColourScale, label: String, width: Double = 220, digits: Int = 1) -> String {
        let steps = 40
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"colourbar\" width=\"\(n(width + 60))\" height=\"34\">"
        for k in 0..<steps {
            let x = s.lo + (s.hi - s.lo) * (Double(k) + 0.5) / Double(steps)
            out += "<rect x=\"\(n(30 + width * Double(k) / Double(steps)))\" y=\"2\" width=\"\(n(width / Double(steps) + 0.3))\" height=\"10\" fill=\"\(s.colour(x))\"/>"
        }
        out += "<text x=\"30\" y=\"24\" font-size=\"9\" text-anchor=\"middle\">\(HTML.f(s.lo, digits))</text>"
        out += "<text x=\"\(n(30 + width))\" y=\"24\" font-size=\"9\" text-anchor=\"middle\">\(HTML.f(s.hi, digits))</text>"
        out += "<text x=\"\(n(30 + width / 2))\" y=\"24\" font-size=\"9\" text-anchor=\"middle\">\(HTML.esc(label))</text>"
        return out + "</svg>"
    }

    /// A response curve: points with error bars (selected points filled, the others open), the fitted line over the
    /// selected range and the plateau as a dashed line.
    public struct Curve: Sendable {
        public var title: String
        public var subtitle: String
        public var x: [Double]
        public var y: [Double]
        public var err: [Double]
        public var selected: [Bool]
        /// ADC = pedestal + charge / gain.
        public var gain: Double?
        public var pedestal: Double?
        public var plateau: Double?
        public init(title: String, subtitle: String, x: [Double], y: [Double], err: [Double], selected: [Bool],
                    gain: Double?, pedestal: Double?, plateau: Double?) {
            self.title = title; self.subtitle = subtitle; self.x = x; self.y = y; self.err = err; self.selected = selected
            self.gain = gain; self.pedestal = pedestal; self.plateau = plateau
        }
    }

    public static func responseCurve(_ c: Curve, width: Double = 330, height: Double = 210, cls: String = "fit") -> String {
        let left = 42.0, right = 8.0, top = 30.0, bottom = 30.0
        let w = width - left - right, h = height - top - bottom
        let xmax = max((c.x.max() ?? 1) * 1.03, 1), xmin = min(c.x.min() ?? 0, 0)
        let ys = zip(c.y, c.err).map { $0 + $1 } + [c.plateau ?? 0]
        let ymax = max(min((ys.filter(\.isFinite).max() ?? 255) * 1.08, 300), 10), ymin = 0.0
        func X(_ v: Double) -> Double { left + (v - xmin) / (xmax - xmin) * w }
        func Y(_ v: Double) -> Double { top + h * (1 - (min(max(v, ymin), ymax) - ymin) / (ymax - ymin)) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"\(cls)\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"\(HTML.esc(c.title))\">"
        s += "<text x=\"4\" y=\"12\" font-size=\"11\" font-weight=\"bold\">\(HTML.esc(c.title))</text>"
        s += "<text x=\"4\" y=\"24\" font-size=\"9\" fill=\"#444\">\(HTML.esc(c.subtitle))</text>"
        s += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(w))\" height=\"\(n(h))\" fill=\"#fbfbfb\" stroke=\"#999\"/>"
        for k in 0...4 {
            let xv = xmin + Double(k) / 4 * (xmax - xmin), yv = ymin + Double(k) / 4 * (ymax - ymin)
            s += "<text x=\"\(n(X(xv)))\" y=\"\(n(top + h + 11))\" font-size=\"8\" text-anchor=\"middle\">\(Int(xv))</text>"
            s += "<text x=\"\(n(left - 3))\" y=\"\(n(Y(yv) + 3))\" font-size=\"8\" text-anchor=\"end\">\(Int(yv))</text>"
        }
        s += "<text x=\"\(n(left + w / 2))\" y=\"\(n(height - 3))\" font-size=\"9\" text-anchor=\"middle\">injected charge (electrons)</text>"
        s += "<text x=\"9\" y=\"\(n(top + h / 2))\" font-size=\"9\" text-anchor=\"middle\" transform=\"rotate(-90 9 \(n(top + h / 2)))\">ADC</text>"
        if let p = c.plateau, p.isFinite {
            s += "<line class=\"plateau\" x1=\"\(n(left))\" x2=\"\(n(left + w))\" y1=\"\(n(Y(p)))\" y2=\"\(n(Y(p)))\" stroke=\"#8e24aa\" stroke-dasharray=\"4 3\"/>"
        }
        if let g = c.gain, let p = c.pedestal, g.isFinite, p.isFinite, g != 0 {
            let sel = zip(c.x, c.selected).filter(\.1).map(\.0)
            let x0 = min(sel.min() ?? xmin, xmin), x1 = max(sel.max() ?? xmax, 0)
            let xa = max(x0, xmin), xb = min(x1 * 1.15, xmax)
            s += "<line class=\"fitline\" x1=\"\(n(X(xa)))\" y1=\"\(n(Y(p + xa / g)))\" x2=\"\(n(X(xb)))\" y2=\"\(n(Y(p + xb / g)))\" stroke=\"#d32f2f\" stroke-width=\"1.6\"/>"
        }
        for i in c.x.indices where c.y[i].isFinite {
            let px = X(c.x[i]), py = Y(c.y[i]), e = c.err[i].isFinite ? c.err[i] : 0
            if e > 0 { s += "<line x1=\"\(n(px))\" x2=\"\(n(px))\" y1=\"\(n(Y(c.y[i] - e)))\" y2=\"\(n(Y(c.y[i] + e)))\" stroke=\"#333\" stroke-width=\"0.8\"/>" }
            s += c.selected[i]
                ? "<circle class=\"pt sel\" cx=\"\(n(px))\" cy=\"\(n(py))\" r=\"2.6\" fill=\"#1565c0\"/>"
                : "<circle class=\"pt\" cx=\"\(n(px))\" cy=\"\(n(py))\" r=\"2.6\" fill=\"#fff\" stroke=\"#1565c0\"/>"
        }
        return s + "</svg>"
    }
}
