/// calibctl's version, recorded in every provenance record and payload.
public enum CalibctlVersion {
    public static let string = "0.1.0"
}
