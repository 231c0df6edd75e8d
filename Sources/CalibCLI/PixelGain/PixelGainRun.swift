import CalibCore
import CalibIO
import Foundation

/// One pixel gain calibration run: the configuration `calibctl create` writes to the run directory
/// (`HOME/runs/<RUN>/config.json`), read by every later verb. Written atomically; never edited in place.
struct PixelGainRunConfig: Codable, Equatable {
    var formatVersion = 1
    var run: Int
    /// The VCal tag in the store and the SHA-256 of the conversion payload that was taken from it.
    var vcalTag: String
    var vcalPayload: String
    var inputDirectory: String
    var outputDirectory: String
    var feds: [Int]
    var scheduler: String
    /// The job set (one shard per FED) and the campaign (the cms-pixel-gain checklist for this run).
    var jobSet: String
    var campaign: String
    var createdAt: Date
    var createdBy: String
    var host: String
    var calibctlVersion: String
    var fitOptions: GainFitOptions
}

/// Where a run keeps its files.
struct PixelGainLayout {
    let home: String
    let run: Int

    static func runsDirectory(home: String) -> String { (home as NSString).appendingPathComponent("runs") }
    var directory: String { (Self.runsDirectory(home: home) as NSString).appendingPathComponent(String(run)) }
    var config: String { directory + "/config.json" }
    /// The VCal conversion taken from the store at create time (the job specs point at it).
    var vcal: String { directory + "/vcal.json" }
    var report: String { directory + "/summary.html" }
    func merged(_ config: PixelGainRunConfig) -> String { config.outputDirectory + "/gain_run\(run).h5" }
    static func fedOutput(_ config: PixelGainRunConfig, fed: Int) -> String {
        config.outputDirectory + "/fed_\(fed)_fit.h5"
    }
    static func fedInput(_ config: PixelGainRunConfig, fed: Int) -> String { config.inputDirectory + "/fed_\(fed).h5" }

    func load() throws -> PixelGainRunConfig {
        guard let data = FileManager.default.contents(atPath: config) else {
            throw WorkflowError.noSuchRun(run: run, directory: directory)
        }
        do {
            let dec = JSONDecoder()
            dec.dateDecodingStrategy = .iso8601
            return try dec.decode(PixelGainRunConfig.self, from: data)
        } catch {
            throw WorkflowError.corruptConfig(path: config, detail: "\(error)")
        }
    }

    func save(_ c: PixelGainRunConfig) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.dateEncodingStrategy = .iso8601
        try AtomicFile.write(try enc.encode(c), to: config)
    }
}

/// The VCal-to-electrons conversion of a run, per module (electrons = slope * vcal * highToLow + offset), as taken
/// from the store. Modules not listed fall back to `defaultSlope` / `defaultOffset`.
struct VCalTable: Codable, Equatable {
    var tag: String
    var payload: String
    var highToLow: Double
    var defaultSlope: Double
    var defaultOffset: Double
    var detIDs: [Int64]
    var slopes: [Double]
    var offsets: [Double]

    func conversion(detID: Int64) -> (slope: Double, offset: Double) {
        if let i = detIDs.firstIndex(of: detID) { return (slopes[i], offsets[i]) }
        return (defaultSlope, defaultOffset)
    }

    static func read(_ path: String) throws -> VCalTable {
        guard let d = FileManager.default.contents(atPath: path) else {
            throw WorkflowError.corruptConfig(path: path, detail: "missing")
        }
        return try JSONDecoder().decode(VCalTable.self, from: d)
    }

    func write(to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(try enc.encode(self), to: path)
    }
}

/// Errors of the pixel gain workflow verbs.
enum WorkflowError: DiagnosableError {
    case noSuchRun(run: Int, directory: String)
    case runExists(run: Int, directory: String)
    case corruptConfig(path: String, detail: String)
    case missingInputs(run: Int, directory: String, feds: [Int])
    case noInputs(run: Int, directory: String)
    case missingVCal(tag: String, run: Int, detail: String)
    case notFinished(run: Int, what: String, detail: String)
    case gatesFailed(run: Int, step: String, detail: String, campaign: String)
    case verifyFailed(path: String, detail: String)

    var exitStatus: ExitStatus {
        switch self {
        case .noSuchRun, .runExists: .usage
        case .corruptConfig, .missingInputs, .noInputs, .verifyFailed: .dataError
        case .missingVCal: .dataError
        case .notFinished: .temporaryFailure
        case .gatesFailed: .dataError
        }
    }

    var message: String {
        switch self {
        case .noSuchRun(let r, let d): "run \(r) has not been created (no \(d)/config.json)"
        case .runExists(let r, let d): "run \(r) already exists at \(d); calibctl never deletes outputs"
        case .corruptConfig(let p, let d): "\(p) cannot be read: \(d)"
        case .missingInputs(let r, let d, let f):
            "run \(r): no gain-scan file for FED\(f.count == 1 ? "" : "s") \(f.map(String.init).joined(separator: ", ")) in \(d)"
        case .noInputs(let r, let d): "run \(r): no gain-scan files (fed_<id>.h5) in \(d)"
        case .missingVCal(let t, let r, let d): "VCal tag \(t) has no conversion for run \(r) in the store: \(d)"
        case .notFinished(let r, let w, let d): "run \(r): cannot \(w) yet: \(d)"
        case .gatesFailed(let r, let s, let d, _): "run \(r): the quality gates of step \(s) failed (\(d)) and nobody signed off"
        case .verifyFailed(let p, let d): "verification of \(p) failed: \(d)"
        }
    }

    var fix: String? {
        switch self {
        case .noSuchRun(let r, _): "create it first: calibctl create \(r) -t VCALTAG -i INPUT_DIR"
        case .runExists: "pass --force to move the existing run directory and outputs aside (nothing is deleted)"
        case .corruptConfig: "restore the file, or move the run directory aside and create the run again"
        case .missingInputs: "copy the files there, or pass --fed with only the FEDs you have"
        case .noInputs: "pass -i with the directory holding fed_<id>.h5 files (calibctl simulate gain makes some)"
        case .missingVCal(let t, let r, _):
            "put the conversion into the store: calibctl put sipixel vcal --runs \(r)- --tag \(t) FILE.h5 (datasets slope, offset, detid)"
        case .notFinished(let r, _, _): "follow the jobs with calibctl status \(r) --watch (or let calibctl tick do it)"
        case .gatesFailed(_, let s, _, let c):
            "inspect the summary, then sign off explicitly: calibctl step approve \(c) \(s) --note \"why it is fine\""
        case .verifyFailed: "re-run the step; the inputs were left untouched"
        }
    }
}
