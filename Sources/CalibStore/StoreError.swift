import CalibIO

/// Every failure the constants store reports: what went wrong with which object, how to fix it, and the exit code
/// (docs/exit-codes.md). The store is unchanged whenever one of these is thrown.
public struct StoreError: DiagnosableError, Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// A malformed argument: run range, name, time (exit 64).
        case usage
        /// Unknown detector/type/tag/payload, schema violation, damaged or foreign file (exit 65).
        case badData
        /// The store directory does not exist or cannot be opened (exit 69).
        case unavailable
        /// The access rules refuse this user (exit 77).
        case permission
        /// The tag's state forbids the operation (exit 65).
        case state
        /// A bug or an unexpected system failure (exit 70).
        case internalError
    }

    public let kind: Kind
    public let message: String
    public let fix: String?

    public init(_ kind: Kind, _ message: String, fix: String? = nil) {
        self.kind = kind
        self.message = message
        self.fix = fix
    }

    public var exitStatus: ExitStatus {
        switch kind {
        case .usage: .usage
        case .badData, .state: .dataError
        case .unavailable: .unavailable
        case .permission: .permissionDenied
        case .internalError: .internalError
        }
    }

    static func usage(_ m: String, fix: String? = nil) -> StoreError { StoreError(.usage, m, fix: fix) }
    static func bad(_ m: String, fix: String? = nil) -> StoreError { StoreError(.badData, m, fix: fix) }
}

/// "did you mean" suggestions: the known names closest to `name` by edit distance (at most 3 edits).
func suggestion(for name: String, among known: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var prev = Array(0...b.count)
        for i in 1...a.count {
            var cur = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                cur[j] = Swift.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let n = Array(name.lowercased())
    let best = known.map { ($0, distance(n, Array($0.lowercased()))) }.min { $0.1 < $1.1 }
    guard let best, best.1 <= Swift.max(1, Swift.min(3, name.count / 3)) else { return nil }
    return best.0
}
