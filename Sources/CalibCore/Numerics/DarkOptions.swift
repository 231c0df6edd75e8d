import Foundation

/// Parameters of dark processing. Defaults follow the LCLS reference (docs/numerics.md). Decoding takes every key as
/// optional (missing keys keep their defaults), so options JSON written by older versions still decodes.
public struct DarkOptions: Sendable, Codable, Equatable {
    /// Frames of stage 1 (quantile gates).
    public var nrecs1 = 50
    /// Frames of stage 2 at most (per gain mode).
    public var nrecs = 1000
    public var intLo: Float = 1
    public var intHi: Float = 16000
    public var rmsLo: Float = 0.001
    public var rmsHi: Float = 16000
    /// n-sigma of the rms and pedestal limits (low / high side).
    public var nSigmaLo: Float = 6
    public var nSigmaHi: Float = 6
    /// Fraction of frames above intHi / below intLo that marks a pixel saturated / cold.
    public var fraclm: Float = 0.1
    /// ADC bits of a raw value. A calibctl dark run's `datamask` attribute overrides it.
    public var dataMask: UInt16 = 0x3fff
    /// Median common-mode correction in stage 2, nil for none.
    public var commonMode: CommonModeMode? = nil
    /// Common mode is applied only if more than this many good pixels contribute and |cm| < cormax.
    public var cmMinPixels = 10
    public var cmMax: Float = 200
    /// Jungfrau banks for the bank mode.
    public var bankRows = 256
    public var bankCols = 64
    /// Frames per stage-2 block of the block-buffered path (two blocks are held: 2 x 64 x 8.4 MB for a Jungfrau 4M;
    /// the streamed path takes max(this, 128)). Longer blocks mean fewer passes over the per-pixel accumulators
    /// (docs/numerics.md): `bench dark`'s in-memory kernel 27 GB/s at 64 against 22.5 at 32 and 23.5 at 128.
    public var framesPerBlock = 64
    /// Process only the frames of these gain modes (nil: every mode present). A mode listed here that the input has
    /// no frames of is an error (`NumericsError.badInput`, exit 65). The workflow's `dark-process` shards set one
    /// mode each.
    public var onlyGainModes: [Int]? = nil
    /// A gain mode with fewer frames than this is refused (exit 65): q05/q95 gates of fewer frames are the extreme
    /// values themselves. Between `minFrames` and `nrecs1` frames the run is processed with a warning.
    public var minFrames = 20

    // Input layout (docs/formats-numerics.md, "Dark frames from other layouts").
    /// HDF5 path of the raw frames; nil: a calibctl dark run (`/frames`, `format` attribute checked).
    public var dataset: String? = nil
    /// How many leading axes of `dataset` index frames (the rest is the detector shape of the constants): 1 for
    /// [frames, modules, rows, cols] or EuXFEL [trains, cells, rows, cols] with per-cell constants, 2 for
    /// [trains, cells, rows, cols] with the cells pooled.
    public var frameAxes = 1
    /// Where each frame's gain mode comes from; nil: a calibctl dark run's `/frame_gain_mode`, else mode 0.
    public var gainSource: DarkGainSource? = nil
    /// Whether bits 14-15 of the raw values carry the Jungfrau gain mode (checked per pixel, status bit 64); nil: the
    /// calibctl `gain_bits` attribute, else true for `gainSource` bits and false otherwise.
    public var gainBits: Bool? = nil

    public init() {}

    enum CodingKeys: String, CodingKey {
        case nrecs1, nrecs, intLo, intHi, rmsLo, rmsHi, nSigmaLo, nSigmaHi, fraclm, dataMask, commonMode, cmMinPixels,
             cmMax, bankRows, bankCols, framesPerBlock, onlyGainModes, minFrames, dataset, frameAxes, gainSource, gainBits
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func v<T: Decodable>(_ k: CodingKeys, _ d: T) throws -> T { try c.decodeIfPresent(T.self, forKey: k) ?? d }
        let d = DarkOptions()
        nrecs1 = try v(.nrecs1, d.nrecs1); nrecs = try v(.nrecs, d.nrecs)
        intLo = try v(.intLo, d.intLo); intHi = try v(.intHi, d.intHi)
        rmsLo = try v(.rmsLo, d.rmsLo); rmsHi = try v(.rmsHi, d.rmsHi)
        nSigmaLo = try v(.nSigmaLo, d.nSigmaLo); nSigmaHi = try v(.nSigmaHi, d.nSigmaHi)
        fraclm = try v(.fraclm, d.fraclm); dataMask = try v(.dataMask, d.dataMask)
        commonMode = try c.decodeIfPresent(CommonModeMode.self, forKey: .commonMode)
        cmMinPixels = try v(.cmMinPixels, d.cmMinPixels); cmMax = try v(.cmMax, d.cmMax)
        bankRows = try v(.bankRows, d.bankRows); bankCols = try v(.bankCols, d.bankCols)
        framesPerBlock = try v(.framesPerBlock, d.framesPerBlock)
        onlyGainModes = try c.decodeIfPresent([Int].self, forKey: .onlyGainModes)
        minFrames = try v(.minFrames, d.minFrames)
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        frameAxes = try v(.frameAxes, d.frameAxes)
        gainSource = try c.decodeIfPresent(DarkGainSource.self, forKey: .gainSource)
        gainBits = try c.decodeIfPresent(Bool.self, forKey: .gainBits)
    }
}

/// Where the gain mode of each frame comes from. Written as text: `bits`, `dataset:/path`, `fixed:1`.
public enum DarkGainSource: Sendable, Equatable, Codable, CustomStringConvertible {
    /// Bits 14-15 of the raw values (Jungfrau 00 g0, 01 g1, 11 g2): each frame takes the majority code of its first
    /// detector row.
    case bits
    /// A per-frame integer dataset (shape = the frame axes, or [frames]) holding 0, 1, 2.
    case dataset(String)
    /// Every frame is in this gain mode (e.g. EuXFEL dark runs, one run per gain setting).
    case fixed(Int)

    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t == "bits" { self = .bits; return }
        if t.hasPrefix("dataset:"), t.count > 8 { self = .dataset(String(t.dropFirst(8))); return }
        if t.hasPrefix("fixed:"), let g = Int(t.dropFirst(6)), (0...2).contains(g) { self = .fixed(g); return }
        return nil
    }

    public var description: String {
        switch self {
        case .bits: "bits"
        case .dataset(let p): "dataset:" + p
        case .fixed(let g): "fixed:\(g)"
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let s = DarkGainSource(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "gain source '\(text)' is not bits, dataset:PATH or fixed:0|1|2"))
        }
        self = s
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Groups of pixels sharing one common-mode value.
public enum CommonModeMode: String, Sendable, Codable, CaseIterable {
    case bank, row, column
}

/// pixel_status bits of the reference.
public enum DarkStatusBit: UInt16, Sendable, CaseIterable {
    case rmsHigh = 1, rmsLow = 2, saturated = 4, cold = 8, pedestalHigh = 16, pedestalLow = 32, badGain = 64
}
