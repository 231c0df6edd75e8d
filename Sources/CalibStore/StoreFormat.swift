/// Every on-disk name of the store's formats, in one place (docs/formats-store.md). Bump a version when a layout
/// changes; readers refuse versions newer than theirs.
public enum StoreFormat {
    // Store directory
    public static let indexFile = "index.db"
    public static let payloadDirectory = "payloads"
    public static let temporaryDirectory = "payloads/.tmp"
    public static let indexComponent = "constants store"

    // Payload file (payloads/ab/<sha256>.h5)
    public static let payloadFormat = "calibctl-payload"
    public static let payloadFormatVersion: Int64 = 1
    /// Group holding the datasets; its attributes are the payload's attributes.
    public static let dataGroup = "data"

    // Root attributes of a payload file (and of each payload group in a bundle)
    public static let attrFormat = "format"
    public static let attrFormatVersion = "format_version"
    public static let attrSHA256 = "sha256"
    public static let attrHashRule = "hash_rule"
    public static let attrByteOrder = "byte_order"
    public static let attrCalibctlVersion = "calibctl_version"
    // Attributes of each dataset
    public static let attrDType = "dtype"
    public static let attrShape = "shape"

    // Bundle file (<detname>-<detid>.h5)
    public static let bundleFormat = "calibctl-bundle"
    public static let bundleFormatVersion: Int64 = 1
    public static let bundleDetectorGroup = "/detector"
    public static let bundleTypesGroup = "/types"
    public static let bundleTagsGroup = "/tags"
    public static let bundlePayloadsGroup = "/payloads"
    public static let bundleIOVsGroup = "/iovs"
    public static let bundleGlobalTagsGroup = "/global_tags"
}
