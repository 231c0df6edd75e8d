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
            throw WorkflowError.verifyFailed(path: path, detail: "not a merged gain run file (format \(GainRunFormat.kind))")
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

extension PixelGainWorkflow {
    static let compactEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    static func tagName(year: Int, version: Int, flavour: String) -> String {
        "SiPixelGainCalibration_\(year)_v\(version)_\(flavour)"
    }

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

    struct PayloadReport: Codable {
        var run: Int
        var offlineTag: String
        var hltTag: String
        var offlineSHA256: String
        var hltSHA256: String
        var modules: Int
        var replacedPixels: Int
        var noisyPixels: Int
        var deadPixels: Int
        var validity: String
    }

    /// Writes the offline and HLT payloads into the store with validity RUN- and full provenance. Refuses unless the
    /// validation step is done: its gates passed, or a named person signed off (`calibctl step approve`).
    func payload(run: Int, year: Int, version: Int, comment: String = "") throws -> PayloadReport {
        let lay = layout(run)
        let c = try lay.load()
        let v = try campaigns.step(Self.stepValidation, of: c.campaign)
        guard v.state == .done else {
            let detail: String
            switch v.state {
            case .awaitingSignOff: detail = v.gates?.failingSummary ?? "gates failed"
            case .awaitingValidation: detail = "manual checks not yet signed off (summary plots reviewed)"
            default: detail = "validation is \(v.state.rawValue); run calibctl summary \(run) first"
            }
            throw WorkflowError.gatesFailed(run: run, step: Self.stepValidation, detail: detail, campaign: c.campaign)
        }
        let d = try GainRunData(path: lay.merged(c))
        let enc = GainPayloadEncoder()
        let e = try Self.encode(d, encoder: enc)
        let store = try store()
        let attrs: [String: AttributeValue] = [
            "run": .int(Int64(run)), "rows_per_module": .int(Int64(d.rows)), "cols_per_module": .int(Int64(d.cols)),
            "pedestal_min": .double(Double(enc.pedestalMin)), "pedestal_max": .double(Double(enc.pedestalMax)),
            "gain_min": .double(Double(enc.gainMin)), "gain_max": .double(Double(enc.gainMax)),
            "rows_per_group": .int(Int64(enc.rowsPerGroup)), "noisy_code": .int(254), "dead_code": .int(255),
        ]
        let fitSHAs = try jobs.engine.results(jobSet: c.jobSet).flatMap(\.outputs).map { "\($0.name)=\($0.sha256)" }
        let provenanceComment = [
            comment, "run \(run)", "feds \(c.feds.map(String.init).joined(separator: ","))",
            "vcal tag \(c.vcalTag) (\(c.vcalPayload.prefix(16)))", "merged \(try JobFiles.sha256(ofFile: d.path))",
            "fit outputs " + fitSHAs.joined(separator: " "), "calibctl \(CalibctlVersion.string)",
            "config " + String(decoding: (try? Self.compactEncoder.encode(c)) ?? Data(), as: UTF8.self),
        ].filter { !$0.isEmpty }.joined(separator: "; ")
        func put(_ flavour: String, _ blob: [UInt8], _ size: Int, step: String) throws -> (String, String) {
            let tag = Self.tagName(year: year, version: version, flavour: flavour)
            try startStepIfReady(c, step, note: "payload \(tag)")
            let p = try Payload(arrays: [
                try PayloadArray(name: flavour, values: blob, shape: [d.modules, size]),
                try PayloadArray(name: "detid", values: d.detIDs),
            ], attributes: attrs)
            let entry = try store.put(detector: Self.detector, type: "gain_\(flavour)", runs: try RunRange(parsing: "\(run)-"),
                                      payload: p, tag: tag,
                                      provenance: ProvenanceLinks(comment: provenanceComment, campaign: c.campaign,
                                                                  step: step, job: c.jobSet, inputRuns: String(run)),
                                      createTag: true)
            try finishStep(c, step, metrics: ["modules": Double(d.modules)])
            return (tag, entry.sha256)
        }
        let off = try put("offline", e.offline, e.offlineSize, step: Self.stepOffline)
        let hlt = try put("hlt", e.hlt, e.hltSize, step: Self.stepHLT)
        return PayloadReport(run: run, offlineTag: off.0, hltTag: hlt.0, offlineSHA256: off.1, hltSHA256: hlt.1,
                             modules: d.modules, replacedPixels: e.replaced, noisyPixels: e.noisy, deadPixels: e.dead,
                             validity: "\(run)-")
    }

    /// The newest offline gain payload in the store from an earlier run (for comparisons), decoded per pixel.
    func previousOffline(before run: Int, rows: Int, cols: Int) -> (tag: String, run: String, pedestal: [Float], gain: [Float], detIDs: [Int64])? {
        guard let store = try? store(),
              let entries = try? store.entries(detector: Self.detector, type: "gain_offline") else { return nil }
        let candidates = entries.filter { $0.runs.first < Int64(run) }.sorted { $0.insertedAtMicroseconds > $1.insertedAtMicroseconds }
        guard let e = candidates.first, let p = try? store.readPayload(sha256: e.sha256),
              let blobArray = p["offline"], let blob: [UInt8] = try? blobArray.values(as: UInt8.self),
              let det: [Int64] = try? p["detid"]?.values(as: Int64.self), blobArray.shape.count == 2 else { return nil }
        let enc = GainPayloadEncoder()
        let size = blobArray.shape[1]
        var ped: [Float] = [], gainPerPixel: [Float] = []
        for m in 0..<blobArray.shape[0] {
            let b = Array(blob[(m * size)..<((m + 1) * size)])
            let dec = enc.decodeOffline(b, rows: rows, cols: cols)
            ped += dec.pedestal
            let groups = rows / enc.rowsPerGroup
            var g = [Float](repeating: .nan, count: rows * cols)
            for r in 0..<rows { for c in 0..<cols { g[r * cols + c] = dec.gain[c * groups + r / enc.rowsPerGroup] } }
            gainPerPixel += g
        }
        return (e.tag, e.runs.description, ped, gainPerPixel, det)
    }
}
