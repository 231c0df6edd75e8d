/// The outcome of one pixel's gain fit. calibctl's own codes (stored as uint8 in fit outputs) with the mapping onto the
/// status codes of the CMS reference analysis (`SiPixelGainCalibrationAnalysis`), see docs/numerics.md.
public enum GainPixelStatus: UInt8, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Fit converged, plateau found, gain in range, chi2/ndf acceptable. Reference 1.
    case ok = 0
    /// Fit done but the last four points do not form a plateau (plateau taken as 255). Reference 3. Usable.
    case noPlateau = 1
    /// All but at most two points sit on the plateau or at 0: dead or stuck pixel, no fit. Reference -2.
    case flat = 2
    /// Fewer than two usable points after selection. Reference -7.
    case tooFewPoints = 3
    /// gain <= 0 or > 1250 electrons/ADC. Reference -8.
    case badGain = 4
    /// The fit produced NaN or infinity (degenerate points). Reference -6.
    case notANumber = 5
    /// chi2/ndf above the limit (500). Reference 5.
    case chi2TooLarge = 6
    /// No point with more than one entry: the pixel never answered. Reference 0.
    case neverPulsed = 7
    /// Mean per-point ADC spread above the noisy limit. Not a reference fit category (the reference takes noisy pixels
    /// from a separate list); calibctl adds it so the payload can mark them 254. Reference 0.
    case noisy = 8

    /// The status code the CMS reference analysis would give this category.
    public var referenceCode: Int8 {
        switch self {
        case .ok: 1
        case .noPlateau: 3
        case .flat: -2
        case .tooFewPoints: -7
        case .badGain: -8
        case .notANumber: -6
        case .chi2TooLarge: 5
        case .neverPulsed, .noisy: 0
        }
    }

    /// True if the fitted gain and pedestal can be used (ok or no plateau).
    public var hasUsableFit: Bool { self == .ok || self == .noPlateau }

    public var description: String {
        switch self {
        case .ok: "ok"
        case .noPlateau: "no_plateau"
        case .flat: "flat"
        case .tooFewPoints: "too_few_points"
        case .badGain: "bad_gain"
        case .notANumber: "nan"
        case .chi2TooLarge: "chi2_too_large"
        case .neverPulsed: "never_pulsed"
        case .noisy: "noisy"
        }
    }
}
