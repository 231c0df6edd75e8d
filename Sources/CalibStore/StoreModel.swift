import CalibIO

/// A detector: its kind (sipixel, jungfrau, ftof, ...), unique name, aliases (e.g. the DAQ source
/// `CxiDs1.0:Jungfrau.0`), hardware index and its predecessor/successor, free key=value tags and a comment.
public struct Detector: Sendable, Codable, Equatable {
    public var id: Int64
    public var name: String
    public var kind: String
    public var aliases: [String]
    public var hardwareIndex: Int64?
    public var previousHardwareIndex: Int64?
    public var nextHardwareIndex: Int64?
    public var tags: [String: String]
    public var comment: String
    public var createdAt: String

    /// `<name>-<hardware index>`, the bundle file stem (`-0` when no index is recorded).
    public var bundleStem: String { "\(name)-\(hardwareIndex ?? 0)" }
}

/// What a new detector is created with.
public struct DetectorSpec: Sendable, Equatable {
    public var name: String
    public var kind: String
    public var aliases: [String] = []
    public var hardwareIndex: Int64?
    public var previousHardwareIndex: Int64?
    public var nextHardwareIndex: Int64?
    public var tags: [String: String] = [:]
    public var comment: String = ""

    public init(name: String, kind: String, aliases: [String] = [], hardwareIndex: Int64? = nil,
                previousHardwareIndex: Int64? = nil, nextHardwareIndex: Int64? = nil, tags: [String: String] = [:],
                comment: String = "") {
        self.name = name; self.kind = kind; self.aliases = aliases; self.hardwareIndex = hardwareIndex
        self.previousHardwareIndex = previousHardwareIndex; self.nextHardwareIndex = nextHardwareIndex
        self.tags = tags; self.comment = comment
    }
}

/// A calibration type and its declared schema.
public struct CalibType: Sendable, Codable, Equatable {
    public var id: Int64
    public var name: String
    public var schema: TypeSchema
    public var builtin: Bool
    public var comment: String
}

/// The life of a tag: open -> validated -> published -> retired (validated may go back to open).
public enum TagState: String, Sendable, Codable, CaseIterable {
    /// Any put is accepted (a newer insertion overrides an older one where they overlap).
    case open
    /// Frozen for review: no puts.
    case validated
    /// Append-only: a put must start after every run the tag already covers (an open end is cut there).
    case published
    /// No puts; lookups still work, so old reconstructions stay reproducible.
    case retired

    /// Whether moving from `self` to `next` is allowed.
    public func canMove(to next: TagState) -> Bool {
        switch (self, next) {
        case (.open, .validated), (.validated, .open), (.validated, .published), (.published, .retired): true
        default: false
        }
    }
}

/// A named version of one detector's constants of one type.
public struct Tag: Sendable, Codable, Equatable {
    public var id: Int64
    public var name: String
    public var detector: String
    public var type: String
    public var alias: String?
    public var state: TagState
    public var comment: String
    public var createdAt: String
    public var createdBy: String
    public var stateChangedAt: String
    public var stateChangedBy: String
    public var entryCount: Int
}

/// Optional links and a comment recorded with an insertion (the rest of the provenance is taken from the process).
public struct ProvenanceLinks: Sendable, Codable, Equatable {
    public var comment: String
    public var campaign: String?
    public var step: String?
    public var job: String?
    /// The runs the constants were derived from, e.g. "5001,5002" or "5000-5010".
    public var inputRuns: String?

    public init(comment: String = "", campaign: String? = nil, step: String? = nil, job: String? = nil,
                inputRuns: String? = nil) {
        self.comment = comment; self.campaign = campaign; self.step = step; self.job = job; self.inputRuns = inputRuns
    }
}

/// Who inserted a validity entry, when, where, with which command and software.
public struct Provenance: Sendable, Codable, Equatable {
    public var user: String
    public var host: String
    public var commandLine: String
    public var softwareVersion: String
    public var at: String
    public var atMicroseconds: Int64
    public var links: ProvenanceLinks
}

/// One validity entry: in tag `tag` of (detector, type), runs `runs` use payload `sha256`.
public struct IOVEntry: Sendable, Codable, Equatable {
    public var id: Int64
    public var detector: String
    public var type: String
    public var tag: String
    public var runs: RunRange
    public var sha256: String
    public var insertedAt: String
    public var insertedAtMicroseconds: Int64
    public var provenance: Provenance
}

/// The result of a lookup: the winning entry and its payload (verified unless asked not to).
public struct StoredPayload: Sendable {
    public var entry: IOVEntry
    public var payload: Payload
    /// The payload file.
    public var path: String
}

/// A named, immutable snapshot: (detector, type) -> tag, plus an as-of time capping which insertions count.
public struct GlobalTag: Sendable, Codable, Equatable {
    public struct Entry: Sendable, Codable, Equatable {
        public var detector: String
        public var type: String
        public var tag: String
        public init(detector: String, type: String, tag: String) { self.detector = detector; self.type = type; self.tag = tag }
    }
    public var id: Int64
    public var name: String
    public var asOf: String
    public var asOfMicroseconds: Int64
    public var comment: String
    public var createdAt: String
    public var createdBy: String
    public var entries: [Entry]
}

/// Why a lookup picked what it picked: every candidate and the rule.
public struct LookupExplanation: Sendable, Codable {
    public struct Candidate: Sendable, Codable {
        public var entry: IOVEntry
        /// "winner", "superseded by #N (newer insertion)", "after as-of time", ...
        public var verdict: String
    }
    public var detector: String
    public var type: String
    public var run: Int64
    public var tag: String
    public var globalTag: String?
    public var asOf: String?
    public var rule: String
    public var candidates: [Candidate]
    public var winner: IOVEntry?
}
