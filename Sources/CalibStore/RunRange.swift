/// An inclusive run range `first-last`, or open-ended `first-` (valid for every later run).
///
/// Text forms: `100-200`, `100-` (open end), `-200` (from run 0), `all` (0-), and a single run `150` (150-150).
public struct RunRange: Sendable, Hashable, Codable, CustomStringConvertible {
    public let first: Int64
    /// The last run, or nil when the range is open-ended.
    public let last: Int64?

    /// Creates a range; refuses negative runs and a last run before the first.
    public init(first: Int64, last: Int64?) throws {
        guard first >= 0 else {
            throw StoreError.usage("run range starts at negative run \(first)", fix: "runs are numbered from 0")
        }
        if let last {
            guard last >= 0 else { throw StoreError.usage("run range ends at negative run \(last)") }
            guard last >= first else {
                throw StoreError.usage("run range \(first)-\(last) is reversed (last run before first run)",
                                       fix: "write it as \(last)-\(first)")
            }
        }
        self.first = first
        self.last = last
    }

    /// Every run: `0-`.
    public static let all = try! RunRange(first: 0, last: nil)

    /// Parses `100-200`, `100-`, `-200`, `all`, `150`.
    ///
    /// Every run must be asked for as `all`: a range with neither a first nor a last run (`-`, `-end`, what
    /// `"$FIRST-$LAST"` becomes when both variables are empty) is refused, so an empty variable never stores
    /// constants for every run.
    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        let fix = "write a run range as FIRST-LAST (100-200), FIRST- (open end), -LAST, or all"
        if t == "all" { self = .all; return }
        if let dash = t.firstIndex(of: "-") {
            let a = String(t[..<dash]), b = String(t[t.index(after: dash)...])
            if b.hasPrefix("-") { throw StoreError.usage("run range '\(text)' has a negative run", fix: fix) }
            if a.isEmpty && (b.isEmpty || b == "end" || b == "inf") {
                throw StoreError.usage("run range '\(text)' has neither a first nor a last run",
                                       fix: "write `all` for every run; if the range came from variables (\"$FIRST-$LAST\"), they are empty")
            }
            let first: Int64
            if a.isEmpty { first = 0 } else {
                guard let v = Int64(a) else { throw StoreError.usage("run range '\(text)' is not a range", fix: fix) }
                first = v
            }
            var last: Int64? = nil
            if !b.isEmpty && b != "end" && b != "inf" {
                guard let v = Int64(b) else { throw StoreError.usage("run range '\(text)' is not a range", fix: fix) }
                last = v
            }
            try self.init(first: first, last: last)
            return
        }
        guard let v = Int64(t) else { throw StoreError.usage("run range '\(text)' is not a range", fix: fix) }
        try self.init(first: v, last: v)
    }

    public func contains(_ run: Int64) -> Bool { run >= first && (last.map { run <= $0 } ?? true) }

    public func overlaps(_ other: RunRange) -> Bool {
        let aEnd = last ?? .max, bEnd = other.last ?? .max
        return first <= bEnd && other.first <= aEnd
    }

    public var isOpenEnded: Bool { last == nil }

    public var description: String { "\(first)-" + (last.map(String.init) ?? "") }

    enum CodingKeys: String, CodingKey { case first, last, text }

    /// JSON: `{"first": 100, "last": null, "text": "100-"}` (null last = open end).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(first, forKey: .first)
        try c.encode(last, forKey: .last)
        try c.encode(description, forKey: .text)
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        try self.init(first: try c.decode(Int64.self, forKey: .first), last: try c.decodeIfPresent(Int64.self, forKey: .last))
    }
}

import Foundation
