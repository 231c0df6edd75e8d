import CalibCore
import CalibIO
import CalibStore
import Foundation

/// `action: {builtin: store-deploy, per: campaign}`: puts earlier steps' outputs into the constants store, one
/// validity entry per `detector/type` in the step's `outcomes:`.
///
/// - **Payload**: the output of the nearest upstream step whose `outcomes:` name the same `detector/type`: its output
///   named like the type (`pedestals`), else its only output; read as HDF5 (every top-level dataset; root
///   attributes become payload attributes) and checked against the type's schema by the store.
/// - **Validity**: the campaign parameter `validity` (`100-`, `100-200`), else the campaign's first-last run.
/// - **Tag**: `publishTag`: the campaign's tag, else `with: {tag: ...}`, else the campaign's name; created if
///   missing.
/// - **Provenance**: campaign, step, job `<campaign>/<step>/i<iteration>`, input runs (the campaign's runs), and a
///   comment naming the source step and file with its SHA-256, the dark runs used (when the dark-process `input`
///   records are upstream) and the approvers of the steps that were signed off.
/// - **Idempotent**: an entry already in the tag with the same payload hash, runs and provenance job is not put
///   again (a killed tick runs the action again).
///
/// Metrics: `entries_put` (new entries), `entries_present` (already there), `payloads`. Output `deployed.json`: the
/// entries (detector, type, tag, runs, sha256, id), read by `lcls-export`.
public struct StoreDeployAction: WorkflowAction {
    public static let actionName = "store-deploy"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    /// One deployed entry, as `deployed.json` lists it.
    public struct Deployed: Codable, Sendable, Equatable {
        public var detector: String
        public var type: String
        public var tag: String
        public var runs: String
        public var sha256: String
        public var entry: Int64
        public var source: String
    }

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        let outcomes = context.step.outcomes
        guard !outcomes.isEmpty else {
            throw context.badParameter("store-deploy has nothing to deploy: the step lists no outcomes",
                                       fix: "list them as outcomes: [DETECTOR/TYPE, ...]")
        }
        var targets: [OutcomeName] = []
        for o in outcomes {
            guard let t = OutcomeName(o) else {
                throw context.badParameter("outcome '\(o)' is not DETECTOR/TYPE", fix: "write outcomes as e.g. jungfrau/pedestals")
            }
            targets.append(t)
        }
        let runs = try Self.validity(context)
        let tag = context.publishTag
        let jobID = "\(context.campaign.name)/\(context.step.id)/i\(context.iteration)"
        let store = try context.openStore()
        let darkInputs = Self.darkInputNotes(context)
        let approvals = context.approvals.map { "\($0.step) by \($0.by)" }
        var deployed: [Deployed] = []
        var put = 0, present = 0
        for t in targets {
            let src = try Self.source(for: t, context: context)
            let payload: Payload
            do { payload = try PayloadFile.readForeign(src.output.path) } catch let e as DiagnosableError {
                throw context.failure("the \(t.text) output of step \(src.step) (\(src.output.path)) cannot be read: \(e.message)")
            }
            let sha = payload.contentHash
            let links = ProvenanceLinks(
                comment: (["\(t.text) from step \(src.step): \((src.output.path as NSString).lastPathComponent) sha256=\(src.output.sha256)"]
                          + (darkInputs.isEmpty ? [] : ["dark runs: " + darkInputs.joined(separator: ", ")])
                          + (approvals.isEmpty ? [] : ["approved: " + approvals.joined(separator: ", ")]))
                    .joined(separator: "; "),
                campaign: context.campaign.name, step: context.step.id, job: jobID,
                inputRuns: context.campaign.runs.description)
            do {
                let existing = try store.entries(detector: t.detector, type: t.type, tag: tag).first {
                    $0.sha256 == sha && $0.runs == runs && $0.provenance.links.job == jobID
                }
                let entry: IOVEntry
                if let existing {
                    entry = existing
                    present += 1
                } else {
                    entry = try store.put(detector: t.detector, type: t.type, runs: runs, payload: payload, tag: tag,
                                          provenance: links, createTag: true)
                    put += 1
                }
                deployed.append(Deployed(detector: t.detector, type: t.type, tag: tag, runs: runs.description,
                                         sha256: sha, entry: entry.id, source: src.output.path))
            } catch let e as DiagnosableError {
                throw context.failure("putting \(t.text) into tag \(tag) failed: \(e.message)", fix: e.fix)
            }
        }
        let path = (context.stepDirectory as NSString).appendingPathComponent("deployed.json")
        try BuiltinFiles.write(try BuiltinFiles.json(deployed), to: path)
        return InlineResult(metrics: ["entries_put": Double(put), "entries_present": Double(present),
                                      "payloads": Double(deployed.count)],
                            outputs: ["deployed.json": path])
    }

    /// The validity of the entries: parameter `validity`, else the campaign's first-last run.
    static func validity(_ context: ActionContext) throws -> RunRange {
        if let v = context.with("validity") ?? context.param("validity"), !v.isEmpty {
            do { return try RunRange(parsing: v) } catch let e as DiagnosableError {
                throw context.badParameter("validity '\(v)' is not a run range: \(e.message)", fix: "write e.g. 100-, 100-200 or 150")
            }
        }
        guard let first = context.firstRun, let last = context.lastRun else { throw context.failure("the campaign has no runs") }
        return try RunRange(first: Int64(first), last: Int64(last))
    }

    /// The output that holds `target`: from the nearest upstream step whose outcomes name it.
    static func source(for target: OutcomeName, context: ActionContext) throws -> (step: String, output: UnitOutput) {
        for s in context.upstreamSteps {
            guard let st = context.checklist.step(s), st.outcomes.compactMap(OutcomeName.init).contains(target) else { continue }
            let outs = context.recordedOutputs(of: s)
            if let o = outs.first(where: { $0.name == target.type || ($0.name as NSString).deletingPathExtension == target.type })
                ?? (outs.count == 1 ? outs.first : nil) {
                return (s, o)
            }
            if !outs.isEmpty {
                throw context.failure("step \(s) lists outcome \(target.text) but none of its outputs is named \(target.type) (it has \(outs.map(\.name).joined(separator: ", ")))",
                                      fix: "name the output after the type (\(target.type).h5)")
            }
        }
        throw context.failure("no upstream step produced \(target.text) (a finished step with outcomes: [\(target.text)] and an output)",
                              fix: "make the step that produces it a prerequisite of \(context.step.id) and let it finish")
    }

    /// `dark-g0.h5 sha256=...` for every dark run the upstream dark-process units recorded.
    static func darkInputNotes(_ context: ActionContext) -> [String] {
        var notes: [String] = [], seen = Set<String>()
        for s in context.upstreamSteps {
            for o in context.recordedOutputs(of: s) where o.name == "input" {
                guard let data = FileManager.default.contents(atPath: o.path),
                      let r = try? JSONDecoder().decode(DarkProcessJob.InputRecord.self, from: data) else { continue }
                let text = "g\(r.gainMode): \((r.path as NSString).lastPathComponent) sha256=\(r.sha256)"
                if seen.insert(text).inserted { notes.append(text) }
            }
        }
        return notes
    }
}
