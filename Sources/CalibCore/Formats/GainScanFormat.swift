/// Every HDF5 path and attribute name of the gain-scan input, the gain-fit output and the simulator's truth files
/// (docs/formats-numerics.md). Bump `version` when a name or meaning changes.
public enum GainScanFormat {
    public static let version: Int64 = 1
    public static let scanKind = "calibctl.gain_scan"
    public static let fitKind = "calibctl.gain_fit"
    public static let truthKind = "calibctl.gain_truth"

    // Root attributes.
    public static let attrFormat = "format"
    public static let attrFormatVersion = "format_version"
    public static let attrRun = "run"
    public static let attrFED = "fed_id"
    public static let attrInjections = "injections"
    public static let attrRows = "rows_per_module"
    public static let attrCols = "cols_per_module"
    public static let attrModules = "modules"
    /// Name of the VCal-to-electrons constant in the store the per-module slope/offset were taken from.
    public static let attrVCalTag = "vcal_tag"
    /// electrons = slope * vcal * vcalHighToLow + offset.
    public static let attrVCalHighToLow = "vcal_high_to_low"
    public static let attrSeed = "simulator_seed"
    public static let attrInput = "input_file"
    public static let attrCreator = "calibctl_version"

    // Input datasets: pixel p of module m is row-major index m * rows * cols + row * cols + col.
    public static let vcal = "/vcal"                     // [N] float32 VCal-high values
    public static let n = "/n"                           // [P][N] float32 entries
    public static let sum = "/sum"                       // [P][N] float32 sum of ADC
    public static let sumsq = "/sumsq"                   // [P][N] float32 sum of ADC^2
    public static let moduleDetID = "/modules/detid"     // [M] int64
    public static let moduleVCalSlope = "/modules/vcal_slope"   // [M] float64
    public static let moduleVCalOffset = "/modules/vcal_offset" // [M] float64

    // Fit output datasets ([P] each, chunked per module) and summary attributes on the root.
    public static let gain = "/gain"                     // float32 electrons per ADC count
    public static let pedestal = "/pedestal"             // float32 ADC at zero charge
    public static let chi2ndf = "/chi2ndf"               // float32
    public static let npoints = "/npoints"               // uint8
    public static let status = "/status"                 // uint8 GainPixelStatus raw value
    public static let referenceStatus = "/reference_status" // int8 reference analysis code
    public static let summaryPrefix = "summary_"         // summary_<key> attributes (see GainFitSummary)

    // Truth datasets ([P] each).
    public static let truthGain = "/truth/gain"
    public static let truthPedestal = "/truth/pedestal"
    public static let truthPlateau = "/truth/plateau"
    public static let truthNoise = "/truth/noise"
    public static let truthCategory = "/truth/category"  // uint8 SimulatedPixelKind
}
