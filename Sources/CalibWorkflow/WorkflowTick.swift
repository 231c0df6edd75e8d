import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// Data-arrival triggers: directories watched for new run directories.
extension WorkflowEngine {
    /// Adds a watch: at every tick each `<inbox>/<RUN>/` that holds `marker` and has no campaign yet becomes the
    /// campaign `<name>-<RUN>` of the checklist, for run RUN, with parameter `input` set to the run's directory.
    public func addWatch(_ w: WatchDefinition) throws {
        guard !w.name.isEmpty, !w.name.contains(where: \.isWhitespace) else {
            throw CampaignError.badValue(what: "watch name", value: w.name, expected: "a word without spaces")
        }
        _ = try ChecklistLoader.load(yaml: w.checklistYAML, file: w.checklistFile)
        try database.transaction {
            if try database.first("SELECT 1 FROM workflow_watches WHERE name = ?", w.name) != nil {
                throw WorkflowEngineError.watchExists(w.name)
            }
            try database.run("INSERT INTO workflow_watches(name, definition) VALUES(?, ?)", w.name,
                             String(decoding: try Self.encoder.encode(w), as: UTF8.self))
        }
    }

    public func removeWatch(_ name: String) throws {
        let n = try database.run("DELETE FROM workflow_watches WHERE name = ?", name)
        if n == 0 { throw WorkflowEngineError.unknownWatch(name) }
    }

    public func watches() throws -> [WatchDefinition] {
        let dec = JSONDecoder()
        dec.dateDecodingStrategy = .iso8601
        return try database.query("SELECT definition FROM workflow_watches ORDER BY name").compactMap { r in
            try r.text("definition").map { try dec.decode(WatchDefinition.self, from: Data($0.utf8)) }
        }
    }

    /// Creates the campaigns of runs that arrived in watched directories; one line per new campaign or problem.
    public func scanWatches(deadline: Date? = nil) throws -> [String] {
        var lines: [String] = []
        let known = Set(try campaigns.campaigns().map(\.name))
        for w in try watches() {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: w.inbox)) ?? []
            for run in entries.compactMap(Int.init).sorted() {
                if let d = deadline, Date() > d { return lines }
                let dir = (w.inbox as NSString).appendingPathComponent(String(run))
                let name = "\(w.name)-\(run)"
                guard !known.contains(name),
                      FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(w.marker)) else { continue }
                var settings = w.settings
                settings.params["input"] = dir
                do {
                    try createCampaign(name: name, checklistYAML: w.checklistYAML, file: w.checklistFile,
                                       runs: RunSet(ranges: [run...run]), settings: settings,
                                       note: "run \(run) arrived in \(w.inbox) (watch \(w.name))")
                    lines.append("\(name): new run \(run) in \(w.inbox)")
                } catch {
                    lines.append("\(name): cannot create from \(dir): \((error as? DiagnosableError)?.message ?? "\(error)")")
                }
            }
        }
        return lines
    }
}

/// `calibctl tick`'s campaign work: new runs from watched directories become campaigns, then every campaign created
/// through the engine is moved on (`WorkflowEngine.advanceAll`). One campaign's error is reported and the others go on.
public struct WorkflowTickParticipant: TickParticipant {
    public let engine: WorkflowEngine
    /// Other sources of new campaigns (the pixel gain inbox).
    public var triggers: [any CampaignTrigger]
    public var name: String { "workflow" }

    public init(engine: WorkflowEngine, triggers: [any CampaignTrigger] = CampaignTriggers.standard) {
        self.engine = engine
        self.triggers = triggers
    }

    public func tick(_ context: TickContext) throws -> TickContribution {
        var lines = try engine.scanWatches(deadline: context.deadline)
        var triggerErrors: [String] = []
        for t in triggers {
            do { lines += try t.scan(engine: engine, deadline: context.deadline) } catch {
                triggerErrors.append("\(t.name): \((error as? DiagnosableError)?.message ?? "\(error)")")
            }
        }
        var (reports, errors) = engine.advanceAll(deadline: context.deadline)
        errors = triggerErrors + errors
        for r in reports {
            lines += r.actions.map { "\(r.campaign): \($0)" }
            lines.append(r.line)
        }
        return TickContribution(lines: lines, submitted: reports.reduce(0) { $0 + $1.submitted }, errors: errors)
    }
}
