import CalibIO
import Foundation

/// The raw frames of a dark run in any HDF5 layout (DarkOptions `dataset`, `frameAxes`, `gainSource`, `gainBits`,
/// docs/formats-numerics.md): frame f (flattened over the leading `frameAxes` axes) is the block of the remaining
/// axes, read as uint16 whatever integer type is stored, chunked or contiguous.
public final class DarkFrameSource: @unchecked Sendable {
    public let path: String
    public let file: HDF5File
    public let dataset: HDF5Dataset
    /// Sizes of the frame axes and the detector (constant) axes.
    public let frameShape: [Int]
    public let detectorShape: [Int]
    public let frames: Int
    public let pixels: Int
    /// Gain mode (0, 1, 2) of every frame.
    public let modeOf: [Int]
    /// Whether raw bits 14-15 carry the gain mode (checked per pixel).
    public let gainBits: Bool
    public let dataMask: UInt16
    public let detector: String
    public let run: AttributeValue?
    /// The object a frame-count problem is about (the gain-mode dataset or the frames).
    public let modeObject: String

    public init(path: String, options o: DarkOptions) throws {
        self.path = path
        let D = DarkFormat.self
        let f = try HDF5File.open(path)
        file = f
        func bad(_ object: String, _ problem: String, _ fix: String? = nil) -> NumericsError {
            .badInput(file: path, object: object, problem: problem,
                      fix: fix ?? "name the frames with --dataset/--frame-axes/--gain-source (docs/formats-numerics.md) or write dark runs with `calibctl simulate dark`")
        }
        let native = o.dataset == nil
        let dsPath = o.dataset ?? D.frames
        if native {
            guard try f.attributeIfPresent(D.attrFormat)?.stringValue == D.runKind else {
                throw bad("attribute \(D.attrFormat)", "missing or not '\(D.runKind)': not a calibctl dark run",
                          "pass --dataset PATH (and --frame-axes, --gain-source) to read another layout (docs/formats-numerics.md)")
            }
        }
        guard f.exists(dsPath) else { throw bad(dsPath, "dataset missing") }
        let ds = try f.dataset(dsPath)
        dataset = ds
        let k = o.frameAxes
        guard k >= 1, ds.shape.count > k else {
            throw bad(dsPath, "has shape \(ds.shape); \(k) frame axis/axes need at least \(k + 1) axes",
                      "set --frame-axes to the number of leading axes that index frames (e.g. 1 for [frames, modules, rows, cols])")
        }
        guard !ds.dtype.isFloatingPoint else {
            throw bad(dsPath, "is \(ds.dtype); raw frames must be integers (uint16 or another integer type)")
        }
        frameShape = Array(ds.shape.prefix(k))
        detectorShape = Array(ds.shape.dropFirst(k))
        frames = frameShape.reduce(1, *)
        pixels = detectorShape.reduce(1, *)
        detector = try f.attributeIfPresent(D.attrDetector)?.stringValue ?? (dsPath as NSString).lastPathComponent
        run = try f.attributeIfPresent(D.attrRun)
        var mask = o.dataMask
        if native, let m = try f.attributeIfPresent(D.attrDataMask)?.intValue { mask = UInt16(truncatingIfNeeded: m) }
        dataMask = mask
        let source: DarkGainSource?
        if let s = o.gainSource { source = s }
        else if native && f.exists(D.frameGainMode) { source = .dataset(D.frameGainMode) }
        else { source = nil }
        if let b = o.gainBits { gainBits = b }
        else if native { gainBits = (try f.attributeIfPresent(D.attrGainBits)?.intValue ?? 0) != 0 }
        else { gainBits = source == .bits }
        let F = frames
        switch source {
        case nil:
            modeOf = [Int](repeating: 0, count: F); modeObject = dsPath
        case .fixed(let g):
            modeOf = [Int](repeating: g, count: F); modeObject = dsPath
        case .dataset(let p):
            guard f.exists(p) else { throw bad(p, "gain-mode dataset missing") }
            let m = try f.dataset(p)
            guard m.count == F, m.shape == frameShape || m.shape == [F] else {
                throw bad(p, "has shape \(m.shape); needs one value per frame (\(frameShape) or [\(F)])")
            }
            let v = try m.read(as: Int64.self)
            if let i = v.firstIndex(where: { !(0...2).contains($0) }) {
                throw bad(p, "value \(v[i]) at frame \(i) is not a gain mode 0, 1 or 2")
            }
            modeOf = v.map { Int($0) }; modeObject = p
        case .bits:
            // The majority gain code of each frame's first detector row (the last axis).
            let rowLen = detectorShape.last!
            var codes = [UInt16](repeating: 0, count: rowLen)
            var modes = [Int](repeating: 0, count: F)
            var fs = [Int](repeating: 0, count: k)
            for fi in 0..<F {
                var r = fi
                for a in stride(from: k - 1, through: 0, by: -1) { fs[a] = r % frameShape[a]; r /= frameShape[a] }
                let start = fs + [Int](repeating: 0, count: detectorShape.count)
                let count = [Int](repeating: 1, count: k + detectorShape.count - 1) + [rowLen]
                try codes.withUnsafeMutableBufferPointer { try ds.readBlock(start: start, count: count, into: $0) }
                var votes = [0, 0, 0, 0]
                for c in codes { votes[Int(c >> 14)] += 1 }
                let best = [0, 1, 3].max { votes[$0] < votes[$1] }!
                guard votes[best] * 2 > rowLen else {
                    throw bad(dsPath, "frame \(fi): no gain mode holds the majority of the first row's gain bits (00/01/11: \(votes[0])/\(votes[1])/\(votes[3]), invalid 10: \(votes[2]))",
                              "give the gain mode with --gain-source dataset:PATH or fixed:G")
                }
                modes[fi] = best == 3 ? 2 : best
            }
            modeOf = modes; modeObject = dsPath + " (gain bits)"
        }
    }

    /// Multi-index of flattened frame `f` over the frame axes.
    func frameIndex(_ f: Int) -> [Int] {
        var r = f, out = [Int](repeating: 0, count: frameShape.count)
        for a in stride(from: frameShape.count - 1, through: 0, by: -1) { out[a] = r % frameShape[a]; r /= frameShape[a] }
        return out
    }

    /// Reads the consecutive frames `range` (flattened indices) into `buffer` (range.count x pixels values).
    public func read(frames range: Range<Int>, into buffer: UnsafeMutablePointer<UInt16>) throws {
        if range.isEmpty { return }
        if frameShape.count == 1 {
            try dataset.readRows(range, into: UnsafeMutableBufferPointer(start: buffer, count: range.count * pixels))
            return
        }
        let rest = [Int](repeating: 0, count: detectorShape.count)
        let count = [Int](repeating: 1, count: frameShape.count) + detectorShape
        for (i, fi) in range.enumerated() {
            try dataset.readBlock(start: frameIndex(fi) + rest, count: count,
                                  into: UnsafeMutableBufferPointer(start: buffer + i * pixels, count: pixels))
        }
    }
}
