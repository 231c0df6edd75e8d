import CalibIO
import CalibStore
import Foundation

/// The JSON answer of `GET /v1/lookup`: the winning validity entry, what the index says about its payload and
/// where to fetch it, and whether the answer can ever change (docs/serve.md).
public struct LookupAnswer: Sendable, Codable, Equatable {
    public struct Query: Sendable, Codable, Equatable {
        public var detector: String
        public var type: String
        public var run: Int64
        public var tag: String?
        public var globalTag: String?
        public var asOf: String?
    }
    public var query: Query
    public var entry: IOVEntry
    public var payload: PayloadSummary
    /// `/payloads/<sha256>`, relative to the server.
    public var payloadURL: String
    /// True when the answer never changes (a global tag, or an as-of time in the past): cached for a year.
    public var final: Bool
}

/// The JSON body of every error answer: the same message, fix and exit status as the command line.
public struct ErrorAnswer: Sendable, Codable, Equatable {
    public struct Body: Sendable, Codable, Equatable {
        public var message: String
        public var fix: String?
        public var exitStatus: Int32
        public var kind: String
    }
    public var error: Body
}

/// An error answered by a server (or met on the way), carrying the command line's message, fix and exit status.
public struct RemoteError: DiagnosableError, Sendable, Equatable {
    public let message: String
    public let fix: String?
    public let exitStatus: ExitStatus

    public init(_ message: String, fix: String? = nil, exitStatus: ExitStatus) {
        self.message = message; self.fix = fix; self.exitStatus = exitStatus
    }
}

/// `GET /health`.
public struct HealthAnswer: Sendable, Codable, Equatable {
    public var status: String
    public var store: String
    public var readOnly: Bool
    /// The global tag of a node snapshot.
    public var snapshotOf: String?
    public var schemaVersion: Int
    public var calibctlVersion: String
}
