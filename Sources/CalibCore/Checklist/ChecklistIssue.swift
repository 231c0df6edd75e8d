import CalibIO

/// One problem found in a checklist file, with its location.
public struct ChecklistIssue: Sendable, Equatable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    public var fix: String?

    public init(file: String, line: Int, column: Int = 1, message: String, fix: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.fix = fix
    }

    /// `file:line:column: error: message (fix)`, the form compilers use so editors can jump to it.
    public var description: String {
        var s = "\(file):\(line):\(column): error: \(message)"
        if let fix { s += "; \(fix)" }
        return s
    }
}

/// A checklist that cannot be used: every issue found, each with file and line (exit 65).
public struct ChecklistError: DiagnosableError, Sendable {
    public var file: String
    public var issues: [ChecklistIssue]

    public init(file: String, issues: [ChecklistIssue]) {
        self.file = file
        self.issues = issues
    }

    public var exitStatus: ExitStatus { .dataError }
    public var message: String {
        let n = issues.count
        return "checklist \(file) has \(n) error\(n == 1 ? "" : "s"):\n"
            + issues.map { "  " + $0.description }.joined(separator: "\n")
    }
    public var fix: String? { "correct the lines named above (format: docs/checklists.md)" }
}
