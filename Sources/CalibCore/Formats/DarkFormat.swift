/// Every HDF5 path and attribute name of dark-run inputs, dark-processing outputs and the simulator's dark truth
/// (docs/formats-numerics.md). Bump `version` when a name or meaning changes.
public enum DarkFormat {
    public static let version: Int64 = 1
    public static let runKind = "calibctl.dark_run"
    public static let resultKind = "calibctl.dark_constants"

    public static let attrFormat = "format"
    public static let attrFormatVersion = "format_version"
    public static let attrDetector = "detector"          // e.g. "jungfrau4m", "epix10ka2m"
    public static let attrRun = "run"
    public static let attrDataMask = "datamask"          // ADC bits, 0x3fff for 14-bit detectors
    public static let attrGainBits = "gain_bits"         // 1: bits 14-15 carry the Jungfrau gain mode
    public static let attrSeed = "simulator_seed"
    public static let attrInput = "input_file"
    public static let attrCreator = "calibctl_version"

    // Input.
    public static let frames = "/frames"                 // [F][...shape] uint16 raw, chunked one frame per chunk
    public static let frameGainMode = "/frame_gain_mode" // optional [F] uint8: the gain mode each frame was taken in

    // Output: [G][...shape] per gain mode present (G = 1 without gain bits).
    public static let gainModes = "/gain_modes"          // [G] uint8
    public static let pedestals = "/pedestals"           // float32 ADU
    public static let pixelRMS = "/pixel_rms"            // float32 ADU
    public static let pixelMin = "/pixel_min"            // uint16 (data bits)
    public static let pixelMax = "/pixel_max"            // uint16
    public static let pixelStatus = "/pixel_status"      // uint16 bits 1,2,4,8,16,32,64 (DarkStatusBit)
    public static let entries = "/entries"               // int32 frames inside the gate
    // Output attributes: [G] arrays.
    public static let attrRMSLimits = "rms_limits"             // lo0, hi0, lo1, hi1, ...
    public static let attrPedestalLimits = "pedestal_limits"   // lo0, hi0, ...
    public static let attrFramesPerMode = "frames_per_mode"
    public static let attrStatusCounts = "status_bit_counts"   // per mode 7 counts (bits 1..64)
    public static let attrOptions = "options_json"

    // Truth.
    public static let truthPedestal = "/truth/pedestal"  // [G][...shape] float32
    public static let truthNoise = "/truth/noise"        // [G][...shape] float32
    public static let truthKind = "/truth/kind"          // [...shape] uint8 SimulatedDarkPixelKind
}
