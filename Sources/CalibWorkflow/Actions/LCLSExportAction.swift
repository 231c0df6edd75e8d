import CalibCore
import CalibIO
import CalibStore
import Foundation

/// `action: {builtin: lcls-export, per: campaign}`: exports what the upstream `store-deploy` step deployed (its
/// `deployed.json`: detectors, types, tag) as an LCLS calib tree (`ConstantsStore.exportLCLS`: the tag's resolved
/// timeline, `<dir>/<Kind>::CalibV1/<source>/<type>/<first>-<last|end>.data`).
///
/// Directory: `with: {to: DIR}`, else the campaign parameter `lcls_tree`, else `<stepdir>/calib`. Optional
/// `with: {group: G, source: S}` as for `calibctl store export --lcls`. Outputs: every file written (named by its
/// path relative to the directory). Metrics: `files`, `skipped`. Idempotent: the files are rewritten atomically
/// with the same content.
public struct LCLSExportAction: WorkflowAction {
    public static let actionName = "lcls-export"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        guard let rec = context.upstreamOutput(named: "deployed.json") else {
            throw context.failure("no upstream store-deploy step recorded what it deployed (deployed.json)",
                                  fix: "make the store-deploy step a prerequisite of \(context.step.id)")
        }
        let deployed: [StoreDeployAction.Deployed]
        do {
            deployed = try JSONDecoder().decode([StoreDeployAction.Deployed].self,
                                                from: Data(contentsOf: URL(fileURLWithPath: rec.output.path)))
        } catch {
            throw context.failure("\(rec.output.path) (step \(rec.step)) cannot be read: \(error.localizedDescription)")
        }
        var dir = context.with("to") ?? context.param("lcls_tree") ?? (context.stepDirectory as NSString).appendingPathComponent("calib")
        if !dir.hasPrefix("/") { dir = (context.stepDirectory as NSString).appendingPathComponent(dir) }
        let store = try context.openStore()
        var groups: [String: (tag: String, types: Set<String>)] = [:]
        for d in deployed {
            if let g = groups[d.detector], g.tag != d.tag {
                throw context.failure("\(d.detector) was deployed into two tags (\(g.tag), \(d.tag)); an LCLS tree shows one")
            }
            groups[d.detector, default: (d.tag, [])].types.insert(d.type)
        }
        var outputs: [String: String] = [:], skipped = 0
        for (det, g) in groups.sorted(by: { $0.key < $1.key }) {
            do {
                let r = try store.exportLCLS(detector: det, to: dir, tag: g.tag, types: g.types.sorted(),
                                             group: context.with("group"), source: context.with("source"))
                for f in r.files {
                    let rel = f.hasPrefix(dir + "/") ? String(f.dropFirst(dir.count + 1)) : f
                    outputs[rel] = f
                }
                skipped += r.skipped.count
            } catch let e as DiagnosableError {
                throw context.failure("exporting \(det) (tag \(g.tag)) as an LCLS tree into \(dir) failed: \(e.message)", fix: e.fix)
            }
        }
        return InlineResult(metrics: ["files": Double(outputs.count), "skipped": Double(skipped)], outputs: outputs,
                            message: "LCLS calib tree in \(dir)")
    }
}
