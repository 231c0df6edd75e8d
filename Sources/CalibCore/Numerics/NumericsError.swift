import CalibIO

/// Errors of the numerics layer: bad input files and parameters, with the object and the fix.
public enum NumericsError: DiagnosableError, Equatable {
    /// A parameter is out of range (exit 64).
    case badParameter(String, String, fix: String)
    /// An input file does not have the expected layout (exit 65).
    case badInput(file: String, object: String, problem: String, fix: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .badParameter: .usage
        case .badInput: .dataError
        }
    }
    public var message: String {
        switch self {
        case .badParameter(let what, let problem, _): "\(what) \(problem)"
        case .badInput(let file, let object, let problem, _): "\(file): \(object): \(problem)"
        }
    }
    public var fix: String? {
        switch self {
        case .badParameter(_, _, let fix), .badInput(_, _, _, let fix): fix
        }
    }
}
