/// The thresholds of the per-pixel gain fit. Defaults are the reference analysis' values (docs/numerics.md).
public struct GainFitOptions: Sendable, Codable, Equatable {
    /// A plateau point may deviate from the plateau mean by at most this many ADC counts.
    public var plateauTolerance: Float = 5
    /// Points within this many ADC counts of the plateau (or at 0) count as "flat".
    public var flatTolerance: Float = 10
    /// Points with y <= fitFraction * plateau are fitted.
    public var fitFraction: Float = 0.8
    /// Selection stops at a step smaller than `stopStep` ADC above fitFraction^2 * plateau.
    public var stopStep: Float = 5
    /// Fallback selection: points with 0 < y < fallbackFraction * plateau.
    public var fallbackFraction: Float = 0.97
    /// chi2/ndf above this is `chi2TooLarge`.
    public var maxChi2PerNDF: Float = 500
    /// Gains above this (electrons/ADC) are `badGain`.
    public var maxGain: Float = 1250
    /// Mean per-point ADC variance above noisyRMS^2 marks the pixel `noisy`.
    public var noisyRMS: Float = 6
    /// Variance floor (ADC^2) for points whose readings are identical: the variance of 8-bit rounding, 1/12. Such points
    /// get sigma = sqrt(1/12 / n) instead of being dropped as in the reference.
    public var varianceFloor: Float = 1.0 / 12.0

    public init() {}
}
