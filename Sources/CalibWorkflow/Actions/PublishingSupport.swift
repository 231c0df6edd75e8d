import CalibCore
import CalibIO
import CalibStore
import Foundation

/// Errors of the dark-processing and publication builtins (docs/workflow-builtins.md).
public struct BuiltinActionError: DiagnosableError {
    public let message: String
    public let fix: String?
    public let exitStatus: ExitStatus

    public init(_ message: String, fix: String?, exitStatus: ExitStatus = .dataError) {
        self.message = message
        self.fix = fix
        self.exitStatus = exitStatus
    }
}

/// Helpers the builtins share: finding earlier steps' outputs, the campaign's runs, the store tag.
extension ActionContext {
    /// An error of this step's action (exit 65): names campaign and step.
    func failure(_ detail: String, fix: String? = nil) -> BuiltinActionError {
        BuiltinActionError("campaign \(campaign.name), step \(step.id): \(detail)",
                           fix: fix ?? "fix the cause, then run the step again: calibctl step run \(campaign.name) \(step.id)")
    }

    /// A usage error about a parameter of this step (exit 64).
    func badParameter(_ detail: String, fix: String) -> BuiltinActionError {
        BuiltinActionError("campaign \(campaign.name), step \(step.id): \(detail)", fix: fix, exitStatus: .usage)
    }

    /// The steps this step builds on (prerequisites, transitively), nearest first (breadth first).
    var upstreamSteps: [String] {
        var queue = step.prerequisites, seen = Set<String>(), out: [String] = []
        while !queue.isEmpty {
            let s = queue.removeFirst()
            guard seen.insert(s).inserted else { continue }
            out.append(s)
            queue += checklist.step(s)?.prerequisites ?? []
        }
        return out
    }

    /// The recorded outputs of an upstream step's latest finished iteration (empty when it has none, e.g. skipped).
    func recordedOutputs(of stepID: String) -> [UnitOutput] { (try? outputs(of: stepID)) ?? [] }

    /// The nearest upstream step with an output named `name`, and that output.
    func upstreamOutput(named name: String) -> (step: String, output: UnitOutput)? {
        for s in upstreamSteps {
            if let o = recordedOutputs(of: s).first(where: { $0.name == name }) { return (s, o) }
        }
        return nil
    }

    /// The campaign's first and last run.
    var firstRun: Int? { campaign.runs.ranges.first?.lowerBound }
    var lastRun: Int? { campaign.runs.ranges.last?.upperBound }

    /// The store tag the publication builtins write to: the campaign's own tag if it was given one, else the
    /// action's `with: {tag: ...}` (lcls-dark: `{param:deploy_tag}`, default `default`), else the campaign's name.
    var publishTag: String {
        if let t = settings.tag, !t.isEmpty { return t }
        if let t = with("tag"), !t.isEmpty { return t }
        return campaign.name
    }

    /// Steps upstream of this one whose current iteration was signed off, with the approver.
    var approvals: [(step: String, by: String)] {
        ([step.id] + upstreamSteps).compactMap { s in approver(of: s).map { (s, $0) } }
    }

    /// The store, as a builtin error naming the fix when there is none.
    func openStore() throws -> ConstantsStore {
        do { return try store() } catch let e as DiagnosableError {
            throw failure("the constants store cannot be opened: \(e.message)",
                          fix: e.fix ?? "create it with `calibctl store init` (path \(workspace.store))")
        }
    }
}

/// `detector/type` as the checklist's `outcomes:` write them.
struct OutcomeName: Hashable {
    var detector: String
    var type: String

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              !parts[0].contains(" "), !parts[1].contains(" ") else { return nil }
        detector = String(parts[0])
        type = String(parts[1])
    }

    var text: String { "\(detector)/\(type)" }
}

/// Small file helpers of the builtins.
enum BuiltinFiles {
    /// A dark-constants dataset (float32, float64 or uint16) as doubles; nil for any other element type.
    static func doubles(_ ds: HDF5Dataset) throws -> [Double]? {
        switch ds.dtype {
        case .float32: try ds.read(as: Float.self).map(Double.init)
        case .float64: try ds.read(as: Double.self)
        case .uint16: try ds.read(as: UInt16.self).map(Double.init)
        default: nil
        }
    }

    /// Writes `data` to `path` atomically (temporary name + rename), creating the directory.
    static func write(_ data: Data, to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try AtomicFile.write(data, to: path)
    }

    static func json<T: Encodable>(_ value: T) throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(value)
    }
}
