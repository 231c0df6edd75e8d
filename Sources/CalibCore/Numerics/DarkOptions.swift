/// Parameters of dark processing. Defaults follow the LCLS reference (docs/numerics.md).
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
    public var dataMask: UInt16 = 0x3fff
    /// Median common-mode correction in stage 2, nil for none.
    public var commonMode: CommonModeMode? = nil
    /// Common mode is applied only if more than this many good pixels contribute and |cm| < cormax.
    public var cmMinPixels = 10
    public var cmMax: Float = 200
    /// Jungfrau banks for the bank mode.
    public var bankRows = 256
    public var bankCols = 64
    /// Frames per stage-2 block read from the file.
    public var framesPerBlock = 16
    /// Process only the frames of these gain modes (nil: every mode present). A mode listed here that the input has
    /// no frames of is an error (`NumericsError.badInput`, exit 65). The workflow's `dark-process` shards set one
    /// mode each.
    public var onlyGainModes: [Int]? = nil

    public init() {}
}

/// Groups of pixels sharing one common-mode value.
public enum CommonModeMode: String, Sendable, Codable, CaseIterable {
    case bank, row, column
}

/// pixel_status bits of the reference.
public enum DarkStatusBit: UInt16, Sendable, CaseIterable {
    case rmsHigh = 1, rmsLow = 2, saturated = 4, cold = 8, pedestalHigh = 16, pedestalLow = 32, badGain = 64
}
