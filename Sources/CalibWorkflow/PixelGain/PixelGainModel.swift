import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import Foundation

/// The CMS pixel gain calibration on the workflow engine (docs/workflow.md): the `cms-pixel-gain` checklist, its four
/// builtin actions (`pixel-gain-fit`, `-merge`, `-validate`, `-payload`) and the names they share with the run.py-style
/// front end (`PixelGainRuns`).
public enum PixelGain {
    public static let checklist = "cms-pixel-gain"
    public static let detector = "sipixel"
    public static let stepVCal = "vcal-tag", stepFit = "gain-fit", stepMerge = "merge", stepValidation = "validation"
    public static let stepOffline = "payload-offline", stepHLT = "payload-hlt"
    public static var payloadSteps: [String] { [stepOffline, stepHLT] }

    /// Campaign parameters (`calibctl campaign create ... --param NAME=VALUE`; `create RUN` sets them).
    public enum Param {
        /// Directory of the scan files `fed_<id>.h5`.
        public static let input = "input"
        /// The store tag holding the VCal conversion (`sipixel/vcal`).
        public static let vcalTag = "vcal_tag"
        /// Directory of the per-FED fits and the merged file (default: the step directories).
        public static let output = "output"
        /// `bpix` or `fpix`: FEDs found in `input` are restricted to that partition.
        public static let partition = "partition"
        /// JSON of `GainFitOptions`.
        public static let fitOptions = "fit_options"
        /// The payload tags `SiPixelGainCalibration_<year>_v<version>_<offline|hlt>`.
        public static let payloadYear = "payload_year", payloadVersion = "payload_version"
        /// A comment recorded in the payloads' provenance.
        public static let payloadComment = "payload_comment"
        /// The store tag of the cabling map (`sipixel/cabling`), needed for `.dmp` inputs.
        public static let cablingTag = "cabling_tag"
        /// `dmp`, `h5` or `auto` (default): which scan files of `input` the run fits (auto: the raw dumps when the
        /// directory holds any of the run, else the HDF5 scans).
        public static let inputFormat = "input_format"
        /// For `.dmp` inputs: a FED whose anomalies exceed this fraction of its hits fails (default 0.001).
        public static let maxAnomalies = "max_anomalies"
    }

    /// The kind of scan files a run fits.
    public enum ScanFormat: String, Sendable, Codable {
        /// calibctl's gain-scan HDF5 files `fed_<id>.h5`.
        case h5
        /// CMS raw FED dumps `GainCalibration_<FED>_<RUN>.dmp` with `calib.json` (docs/formats-cms-raw.md).
        case dmp
    }

    /// The raw dump of a FED as CMS names it.
    public static func dumpName(fed: Int, run: Int) -> String { "GainCalibration_\(fed)_\(run).dmp" }

    /// The scan file of a FED in `directory`.
    public static func scanPath(_ directory: String, fed: Int, run: Int, format: ScanFormat) -> String {
        directory + "/" + (format == .dmp ? dumpName(fed: fed, run: run) : "fed_\(fed).h5")
    }

    /// The format a run fits: `requested` (dmp, h5), else (auto) dmp when `directory` holds a dump of `run`.
    public static func scanFormat(in directory: String, run: Int, requested: String?) throws -> ScanFormat {
        switch requested {
        case nil, "", "auto"?:
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            return names.contains { dumpFED($0, run: run) != nil } ? .dmp : .h5
        case let r?:
            guard let f = ScanFormat(rawValue: r) else {
                throw PixelGainError.badInputFormat(value: r)
            }
            return f
        }
    }

    /// The FED of a dump file name `GainCalibration_<FED>_<RUN>.dmp` of `run`, nil for any other name.
    static func dumpFED(_ name: String, run: Int) -> Int? {
        let suffix = "_\(run).dmp", prefix = "GainCalibration_"
        guard name.hasPrefix(prefix), name.hasSuffix(suffix) else { return nil }
        return Int(name.dropFirst(prefix.count).dropLast(suffix.count))
    }

    /// `pixelgain-RUN`, the campaign of a run created by `calibctl create RUN` (or the inbox).
    public static func campaignName(run: Int) -> String { "pixelgain-\(run)" }

    /// The FED of a unit key (`fed=1200`), -1 if it has none.
    public static func fed(of key: String) -> Int {
        WorkUnit(key: key).value("fed").flatMap(Int.init) ?? -1
    }

    public static func tagName(year: Int, version: Int, flavour: String) -> String {
        "SiPixelGainCalibration_\(year)_v\(version)_\(flavour)"
    }

    /// True when `fed` belongs to `partition` (`bpix`, `fpix`; anything else: every FED).
    public static func inPartition(_ fed: Int, _ partition: String?) -> Bool {
        switch partition {
        case "bpix"?: CMSPixelTopology.isBPix(fed: fed)
        case "fpix"?: !CMSPixelTopology.isBPix(fed: fed)
        default: true
        }
    }

    /// The FEDs with a scan file in `directory` (`fed_<id>.h5`, or `GainCalibration_<FED>_<RUN>.dmp` of `run`),
    /// within `partition`, sorted.
    public static func scanFEDs(in directory: String, partition: String?, run: Int, format: ScanFormat = .h5) throws -> [Int] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            throw PixelGainError.noInputs(run: run, directory: directory)
        }
        let found = names.compactMap { name -> Int? in
            if format == .dmp { return dumpFED(name, run: run) }
            guard name.hasPrefix("fed_"), name.hasSuffix(".h5") else { return nil }
            return Int(name.dropFirst(4).dropLast(3))
        }.filter { inPartition($0, partition) }.sorted()
        if found.isEmpty { throw PixelGainError.noInputs(run: run, directory: directory) }
        return found
    }

    /// The run of a pixel gain campaign (its first run).
    static func run(_ context: ActionContext) -> Int {
        Int(context.campaign.runs.ranges.first?.lowerBound ?? 0)
    }

    /// Where a campaign's fit outputs and merged file go: the `output` parameter, else `fallback` (a step directory).
    static func outputDirectory(_ context: ActionContext, fallback: String) throws -> String {
        let dir = context.param(Param.output).map(Workspace.absolutePath) ?? fallback
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A step's recorded output by name (of its latest finished iteration).
    static func output(_ context: ActionContext, step: String, named name: String) throws -> UnitOutput {
        guard let o = try context.outputs(of: step).first(where: { $0.name == name }) else {
            throw WorkflowEngineError.actionFailed(campaign: context.campaign.name, step: context.step.id,
                                                   detail: "step \(step) recorded no output \(name)")
        }
        return o
    }

    static func requiredParam(_ context: ActionContext, _ name: String, fix: String) throws -> String {
        guard let v = context.param(name), !v.isEmpty else {
            throw PixelGainError.missingParam(campaign: context.campaign.name, step: context.step.id, param: name, fix: fix)
        }
        return v
    }
}

/// The VCal-to-electrons conversion of a run, per module (electrons = slope * vcal * highToLow + offset), as taken
/// from the store. Modules not listed fall back to `defaultSlope` / `defaultOffset`.
public struct VCalTable: Codable, Equatable, Sendable {
    public var tag: String
    public var payload: String
    public var highToLow: Double
    public var defaultSlope: Double
    public var defaultOffset: Double
    public var detIDs: [Int64]
    public var slopes: [Double]
    public var offsets: [Double]

    public func conversion(detID: Int64) -> (slope: Double, offset: Double) {
        if let i = detIDs.firstIndex(of: detID) { return (slopes[i], offsets[i]) }
        return (defaultSlope, defaultOffset)
    }

    public static func read(_ path: String) throws -> VCalTable {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw PixelGainError.corruptFile(path: path, detail: "missing")
        }
        do { return try JSONDecoder().decode(VCalTable.self, from: d) } catch {
            throw PixelGainError.corruptFile(path: path, detail: "\(error)")
        }
    }

    public func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self), to: path)
    }

    /// Reads the VCal conversion of `run` from the store's `sipixel/vcal` in tag `tag`.
    public static func fromStore(_ store: ConstantsStore, tag: String, run: Int) throws -> VCalTable {
        let stored: StoredPayload
        do {
            stored = try store.get(detector: PixelGain.detector, type: "vcal", run: Int64(run), tag: tag)
        } catch let e as DiagnosableError {
            throw PixelGainError.missingVCal(tag: tag, run: run, detail: e.message)
        }
        let p = stored.payload
        guard let slope = p["slope"]?.doubles(), let offset = p["offset"]?.doubles(), slope.count == offset.count,
              !slope.isEmpty else {
            throw PixelGainError.missingVCal(tag: tag, run: run, detail: "payload \(stored.entry.sha256.prefix(12)) has no slope/offset of equal size")
        }
        let detids: [Int64] = (try? p["detid"]?.values(as: Int64.self)) ?? []
        let h2l = p.attributes["vcal_high_to_low"]?.doubleValue ?? CMSPixelTopology.vcalHighToLow
        if detids.count != slope.count && slope.count != 1 {
            throw PixelGainError.missingVCal(tag: tag, run: run, detail: "payload has \(slope.count) slopes but \(detids.count) detids")
        }
        return VCalTable(tag: tag, payload: stored.entry.sha256, highToLow: h2l, defaultSlope: slope[0],
                         defaultOffset: offset[0], detIDs: detids, slopes: slope, offsets: offset)
    }
}

/// Errors of the pixel gain workflow (its actions and its verbs).
public enum PixelGainError: DiagnosableError {
    case noSuchRun(run: Int)
    case runExists(run: Int, campaign: String)
    case corruptFile(path: String, detail: String)
    case missingInputs(run: Int, directory: String, feds: [Int])
    case noInputs(run: Int, directory: String)
    case missingVCal(tag: String, run: Int, detail: String)
    case notFinished(run: Int, what: String, detail: String)
    case gatesFailed(run: Int, step: String, detail: String, campaign: String)
    case verifyFailed(path: String, detail: String)
    case missingParam(campaign: String, step: String, param: String, fix: String)
    /// A verb would redo a step whose results are already published.
    case published(campaign: String, step: String, published: [String])
    /// A payload tag already holds another campaign's (or another iteration's) payload.
    case tagTaken(tag: String, holder: String, run: Int)
    case stepFailed(campaign: String, step: String, reason: String)
    case badSettings(path: String, detail: String)
    case badInputFormat(value: String)
    case badCabling(source: String, detail: String)
    case missingCabling(tag: String, run: Int, detail: String)
    case missingCablingTag(run: Int)
    case noCablingForFEDs(tag: String, run: Int, feds: [Int])

    public var exitStatus: ExitStatus {
        switch self {
        case .noSuchRun, .runExists, .missingParam: .usage
        case .corruptFile, .missingInputs, .noInputs, .verifyFailed, .missingVCal, .published, .tagTaken, .stepFailed: .dataError
        case .notFinished: .temporaryFailure
        case .gatesFailed: .dataError   // refused by the step's state (docs/exit-codes.md)
        case .badSettings: .configError
        case .badInputFormat, .missingCablingTag: .usage
        case .badCabling, .missingCabling, .noCablingForFEDs: .dataError
        }
    }

    public var message: String {
        switch self {
        case .noSuchRun(let r): "run \(r) has not been created (no campaign \(PixelGain.campaignName(run: r)))"
        case .runExists(let r, let c): "run \(r) already exists (campaign \(c)); calibctl never deletes outputs"
        case .corruptFile(let p, let d): "\(p) cannot be read: \(d)"
        case .missingInputs(let r, let d, let f):
            "run \(r): no gain-scan file for FED\(f.count == 1 ? "" : "s") \(f.map(String.init).joined(separator: ", ")) in \(d)"
        case .noInputs(let r, let d): "run \(r): no gain-scan files (fed_<id>.h5 or GainCalibration_<FED>_\(r).dmp) in \(d)"
        case .missingVCal(let t, let r, let d): "VCal tag \(t) has no conversion for run \(r) in the store: \(d)"
        case .notFinished(let r, let w, let d): "run \(r): cannot \(w) yet: \(d)"
        case .gatesFailed(let r, let s, let d, _): "run \(r): the quality gates of step \(s) failed (\(d)) and nobody signed off"
        case .verifyFailed(let p, let d): "verification of \(p) failed: \(d)"
        case .missingParam(let c, let s, let p, _): "campaign \(c), step \(s): parameter \(p) is not set"
        case .published(let c, let s, let p):
            "campaign \(c): step \(s) is done and its results are published (\(p.joined(separator: ", ")) done); it is not redone silently"
        case .tagTaken(let t, let h, _): "tag \(t) already holds \(h); published constants are never replaced in the same tag"
        case .stepFailed(let c, let s, let r): "campaign \(c), step \(s) failed: \(r)"
        case .badSettings(let p, let d): "\(p) is not valid pixel gain automation settings: \(d)"
        case .badInputFormat(let v): "input format '\(v)' is not dmp, h5 or auto"
        case .badCabling(let s, let d): "\(s) is not a valid cabling map: \(d)"
        case .missingCabling(let t, let r, let d): "cabling tag \(t) has no cabling for run \(r) in the store: \(d)"
        case .missingCablingTag(let r): "run \(r): the scan is raw dumps (.dmp), which need the cabling map, and no cabling tag is given"
        case .noCablingForFEDs(let t, let r, let f):
            "cabling tag \(t) (valid for run \(r)) has no map of FED\(f.count == 1 ? "" : "s") \(f.map(String.init).joined(separator: ", "))"
        }
    }

    public var fix: String? {
        switch self {
        case .noSuchRun(let r): "create it first: calibctl create \(r) -t VCALTAG -i INPUT_DIR"
        case .runExists: "pass --force to move the existing outputs aside and create the run again as a new campaign (nothing is deleted)"
        case .corruptFile: "restore the file, or create the run again with --force"
        case .missingInputs: "copy the files there, or pass --fed with only the FEDs you have"
        case .noInputs: "pass -i with the directory holding fed_<id>.h5 or .dmp files (calibctl simulate gain [--dmp] makes some)"
        case .missingVCal(let t, let r, _):
            "put the conversion into the store: calibctl vcal put \(t) --runs \(r)- (or calibctl put sipixel vcal --runs \(r)- --tag \(t) FILE.h5 with datasets slope, offset, detid)"
        case .notFinished(let r, _, _): "follow the jobs with calibctl status \(r) --watch (or let calibctl tick do it)"
        case .gatesFailed(_, let s, _, let c):
            "inspect the summary, then sign off explicitly: calibctl step approve \(c) \(s) --note \"why it is fine\""
        case .verifyFailed: "re-run the step; the inputs were left untouched"
        case .missingParam(_, _, _, let f): f
        case .published(let c, let s, _):
            "to redo it on purpose, reopen it with a reason: calibctl step reopen \(c) \(s) --note \"why\"; the new payloads then need a new version (calibctl payload RUN YEAR NEWVERSION)"
        case .tagTaken(_, _, let r): "publish under a new version: calibctl payload \(r) YEAR NEWVERSION"
        case .stepFailed(let c, let s, _): "fix the cause, then run the step again: calibctl step run \(c) \(s)"
        case .badSettings: "see docs/workflow.md (inbox, vcalTag, cablingTag, scheduler, payloadYear, payloadVersion)"
        case .badInputFormat: "pass --input-format dmp, h5 or auto"
        case .badCabling: "write it as calibctl simulate gain --dmp does (cabling_<FED>.json, docs/formats-cms-raw.md)"
        case .missingCabling(let t, let r, _):
            "put the cabling into the store: calibctl cabling put \(t) --runs \(r)- DIR_WITH_cabling_<FED>.json"
        case .missingCablingTag: "pass --cabling-tag TAG (the store tag of sipixel/cabling; calibctl cabling put stores one)"
        case .noCablingForFEDs(let t, let r, _):
            "put a cabling covering those FEDs as a new IOV: calibctl cabling put \(t) --runs \(r)- FILES"
        }
    }
}

/// Aggregates per-FED fit metrics into run-level ones, weighting by pixel count.
struct FitAggregate {
    var pixels = 0.0, good = 0.0, gainSum = 0.0, pedSum = 0.0, chi2Means: [Double] = []
    var counts: [String: Double] = [:]

    mutating func add(_ m: [String: Double]) {
        let p = m["pixels"] ?? 0, g = (m["fraction_good"] ?? 0) * p
        pixels += p
        good += g
        gainSum += (m["mean_gain"] ?? 0) * g
        pedSum += (m["mean_pedestal"] ?? 0) * g
        if let c = m["mean_chi2ndf"] { chi2Means.append(c) }
        for (k, v) in m where k.hasPrefix("count_") || k == "anomalies" || (k.hasPrefix("anomaly_") && k != "anomaly_fraction") {
            counts[k, default: 0] += v
        }
    }

    /// The median over FEDs of the mean chi2/ndf (the merged file's per-pixel median is computed by `validate`).
    var medianChi2: Double {
        let s = chi2Means.sorted()
        return s.isEmpty ? 0 : s[s.count / 2]
    }

    var metrics: [String: Double] {
        var m = counts
        m["pixels"] = pixels
        m["fraction_good"] = pixels > 0 ? good / pixels : 0
        m["mean_gain"] = good > 0 ? gainSum / good : 0
        m["mean_pedestal"] = good > 0 ? pedSum / good : 0
        m["median_chi2ndf"] = medianChi2
        return m
    }
}
