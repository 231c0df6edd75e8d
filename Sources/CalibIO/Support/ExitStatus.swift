/// The published exit codes (docs/exit-codes.md). sysexits.h values where one fits.
public enum ExitStatus: Int32, Sendable, Codable, CaseIterable {
    case ok = 0
    /// The command worked and found failures (e.g. jobs failed, lint found gaps, verify found damage).
    case failuresFound = 1
    case usage = 64
    case dataError = 65
    case unavailable = 69
    case internalError = 70
    case temporaryFailure = 75
    case permissionDenied = 77
    case configError = 78
}

/// An error that knows how the CLI should report it: what went wrong with which object, how to fix it, and the exit code.
/// Libraries throw these and never print; the CLI renders `message` and `fix` on stderr.
public protocol DiagnosableError: Error, CustomStringConvertible {
    var exitStatus: ExitStatus { get }
    /// One line naming the object and what is wrong with it.
    var message: String { get }
    /// What the user can do about it, if anything.
    var fix: String? { get }
}

extension DiagnosableError {
    public var description: String { fix.map { "\(message)\n  fix: \($0)" } ?? message }
}

extension HDF5Error: DiagnosableError {
    public var exitStatus: ExitStatus { .dataError }
    public var message: String { description }
    public var fix: String? { "check that \(file) is a complete HDF5 file of the expected layout (docs/formats.md); `h5dump -H \(file)` shows it" }
}

extension SQLiteError: DiagnosableError {
    public var exitStatus: ExitStatus { isBusy ? .temporaryFailure : (code & 0xff == 20 ? .configError : .internalError) }
    public var fix: String? {
        isBusy ? "another calibctl process holds \(path); retry in a moment" : nil
    }
}
