import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import Foundation

/// The merged run file read back into memory (a run of a few FEDs is tens of MB).
struct GainRunData {
    let path: String
    let run: Int
    let rows: Int
    let cols: Int
    let feds: [Int]
    let detIDs: [Int64]
    let moduleFED: [Int64]
    let gain: [Float]
    let pedestal: [Float]
    let chi2ndf: [Float]
    let status: [UInt8]

    var modules: Int { detIDs.count }
    var pixelsPerModule: Int { rows * cols }

    init(path: String) throws {
        let F = GainScanFormat.self
        let f = try HDF5File.open(path)
        guard try f.attributeIfPresent(F.attrFormat)?.stringValue == GainRunFormat.kind else {
            throw PixelGainError.verifyFailed(path: path, detail: "not a merged gain run file (format \(GainRunFormat.kind))")
        }
        self.path = path
        run = Int(try f.attribute(F.attrRun).intValue ?? 0)
        rows = Int(try f.attribute(F.attrRows).intValue ?? 0)
        cols = Int(try f.attribute(F.attrCols).intValue ?? 0)
        feds = try f.read(GainRunFormat.fedIDs, as: Int64.self).map { Int($0) }
        detIDs = try f.read(F.moduleDetID, as: Int64.self)
        moduleFED = try f.read(GainRunFormat.moduleFED, as: Int64.self)
        gain = try f.read(F.gain, as: Float.self)
        pedestal = try f.read(F.pedestal, as: Float.self)
        chi2ndf = try f.read(F.chi2ndf, as: Float.self)
        status = try f.read(F.status, as: UInt8.self)
    }

    func module(_ m: Int) -> Range<Int> { (m * pixelsPerModule)..<((m + 1) * pixelsPerModule) }
}

extension PixelGainPayloadAction {
    /// Encodes the merged run into the 8-bit offline and HLT payloads (one blob per module).
    static func encode(_ d: GainRunData, encoder: GainPayloadEncoder = GainPayloadEncoder()) throws
        -> (offline: [UInt8], hlt: [UInt8], offlineSize: Int, hltSize: Int, replaced: Int, noisy: Int, dead: Int) {
        var sg = 0.0, sp = 0.0, n = 0
        for p in d.gain.indices {
            let s = GainPixelStatus(rawValue: d.status[p]) ?? .notANumber
            if encoder.isGood(gain: d.gain[p], pedestal: d.pedestal[p], status: s) { sg += Double(d.gain[p]); sp += Double(d.pedestal[p]); n += 1 }
        }
        let global = (gain: Float(n > 0 ? sg / Double(n) : 0), pedestal: Float(n > 0 ? sp / Double(n) : 0))
        var offline: [UInt8] = [], hlt: [UInt8] = []
        var offSize = 0, hltSize = 0, replaced = 0, noisy = 0, dead = 0
        for m in 0..<d.modules {
            let r = d.module(m)
            let mp = try encoder.encodeModule(gain: Array(d.gain[r]), pedestal: Array(d.pedestal[r]),
                                              status: d.status[r].map { GainPixelStatus(rawValue: $0) ?? .notANumber },
                                              rows: d.rows, cols: d.cols, globalMean: global)
            offSize = mp.offline.count
            hltSize = mp.hlt.count
            offline += mp.offline
            hlt += mp.hlt
            replaced += mp.replaced; noisy += mp.noisy; dead += mp.dead
        }
        return (offline, hlt, offSize, hltSize, replaced, noisy, dead)
    }
}

/// What a payload step wrote (`payload.json` in its step directory, and the `payload` verb's answer).
public struct PixelGainPayloadRecord: Codable, Sendable, Equatable {
    public var flavour: String
    public var tag: String
    public var sha256: String
    public var validity: String
    public var modules: Int
    public var replacedPixels: Int
    public var noisyPixels: Int
    public var deadPixels: Int
    public var approvedBy: String?
}

/// `action: {builtin: pixel-gain-payload, per: campaign, with: {flavour: offline|hlt}}` (inline): encodes the merged
/// file of the `merge` step into the 8-bit offline or HLT payload and puts it into the store: tag
/// `SiPixelGainCalibration_<payload_year>_v<payload_version>_<flavour>` (campaign parameters), validity `RUN-`,
/// provenance linking the campaign, step and iteration, the VCal tag, the merged file's and every FED fit's SHA-256,
/// and the approver of the validation sign-off. Idempotent: an entry this step iteration already put (a tick killed
/// after the put) is not put again; a tag holding another campaign's or iteration's payload is refused.
public struct PixelGainPayloadAction: WorkflowAction {
    public static let actionName = "pixel-gain-payload"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        let run = PixelGain.run(context), c = context.campaign
        guard let flavour = context.with("flavour"), ["offline", "hlt"].contains(flavour) else {
            throw WorkflowEngineError.actionFailed(campaign: c.name, step: context.step.id,
                                                   detail: "pixel-gain-payload needs with: {flavour: offline} or {flavour: hlt}")
        }
        let fix = "choose the tag's year and version: calibctl payload \(run) YEAR VERSION (or payloadYear in pixelgain.json)"
        guard let year = Int(try PixelGain.requiredParam(context, PixelGain.Param.payloadYear, fix: fix)),
              let version = Int(try PixelGain.requiredParam(context, PixelGain.Param.payloadVersion, fix: fix)) else {
            throw PixelGainError.missingParam(campaign: c.name, step: context.step.id, param: "payload_year/payload_version (numbers)", fix: fix)
        }
        let tag = PixelGain.tagName(year: year, version: version, flavour: flavour)
        let type = "gain_\(flavour)"
        let runName = WorkflowEngine.jobSetName(campaign: c.name, step: context.step.id, iteration: context.iteration)
        let store = try context.store()
        let approver = context.approver(of: PixelGain.stepValidation)

        let merged = try PixelGain.output(context, step: PixelGain.stepMerge, named: "merged")
        let d = try GainRunData(path: merged.path)
        let enc = GainPayloadEncoder()
        let e = try Self.encode(d, encoder: enc)
        var record = PixelGainPayloadRecord(flavour: flavour, tag: tag, sha256: "", validity: "\(run)-", modules: d.modules,
                                            replacedPixels: e.replaced, noisyPixels: e.noisy, deadPixels: e.dead,
                                            approvedBy: approver)
        let existing = (try? store.entries(detector: PixelGain.detector, type: type, tag: tag)) ?? []
        if let mine = existing.first(where: { $0.provenance.links.campaign == c.name && $0.provenance.links.job == runName }) {
            record.sha256 = mine.sha256   // put by this iteration before a kill: not again
        } else if let other = existing.first {
            let l = other.provenance.links
            throw PixelGainError.tagTaken(tag: tag, holder: "the payload of campaign \(l.campaign ?? "?") (\(l.job ?? l.step ?? "?"), runs \(other.runs.description))", run: run)
        } else {
            let attrs: [String: AttributeValue] = [
                "run": .int(Int64(run)), "rows_per_module": .int(Int64(d.rows)), "cols_per_module": .int(Int64(d.cols)),
                "pedestal_min": .double(Double(enc.pedestalMin)), "pedestal_max": .double(Double(enc.pedestalMax)),
                "gain_min": .double(Double(enc.gainMin)), "gain_max": .double(Double(enc.gainMax)),
                "rows_per_group": .int(Int64(enc.rowsPerGroup)), "noisy_code": .int(254), "dead_code": .int(255),
            ]
            let fits = ((try? context.outputs(of: PixelGain.stepFit)) ?? []).filter { $0.name == "fit" }
            let fitJobSet = (try? context.engine.stepRuns(campaign: c.name, step: PixelGain.stepFit))?.last?.jobSet
            let vcalTag = context.param(PixelGain.Param.vcalTag) ?? "?"
            let params = String(decoding: (try? Self.compactEncoder.encode(context.settings.params)) ?? Data(), as: UTF8.self)
            let comment = [
                context.param(PixelGain.Param.payloadComment) ?? "", "run \(run)",
                "feds \(fits.map { String(PixelGain.fed(of: $0.unit)) }.joined(separator: ","))",
                "vcal tag \(vcalTag)", "merged \(merged.sha256)",
                "fit job set \(fitJobSet ?? "?"), outputs " + fits.map { "\($0.unit):\($0.sha256)" }.joined(separator: " "),
                "validation approved by \(approver ?? "nobody (gates passed)")", "calibctl \(CalibctlVersion.string)",
                "params \(params)",
            ].filter { !$0.isEmpty }.joined(separator: "; ")
            let blob = flavour == "offline" ? e.offline : e.hlt
            let size = flavour == "offline" ? e.offlineSize : e.hltSize
            let p = try Payload(arrays: [
                try PayloadArray(name: flavour, values: blob, shape: [d.modules, size]),
                try PayloadArray(name: "detid", values: d.detIDs),
            ], attributes: attrs)
            let entry = try store.put(detector: PixelGain.detector, type: type, runs: try RunRange(parsing: "\(run)-"),
                                      payload: p, tag: tag,
                                      provenance: ProvenanceLinks(comment: comment, campaign: c.name, step: context.step.id,
                                                                  job: runName, inputRuns: String(run)),
                                      createTag: true)
            record.sha256 = entry.sha256
        }
        try FileManager.default.createDirectory(atPath: context.stepDirectory, withIntermediateDirectories: true)
        let path = context.stepDirectory + "/payload.json"
        try AtomicFile.write(try Self.compactEncoder.encode(record), to: path)
        return InlineResult(metrics: ["modules": Double(d.modules), "replaced_pixels": Double(e.replaced),
                                      "noisy_pixels": Double(e.noisy), "dead_pixels": Double(e.dead)],
                            outputs: ["payload.json": path], message: "\(tag) runs \(run)- \(record.sha256.prefix(16))")
    }

    static let compactEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }()
}
