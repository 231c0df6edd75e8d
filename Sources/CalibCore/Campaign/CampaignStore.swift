import CalibIO
import Foundation

/// Campaign state in the calibctl SQLite database: campaigns, step states, the transitions log, metrics, gate results
/// and effort records. Every change runs in one `BEGIN IMMEDIATE` transaction that re-reads the state it checks, so
/// concurrent commands serialise and a killed process leaves the previous or the next state, never a mix.
///
/// Not `Sendable` (it holds one connection): open one per process or task.
public final class CampaignStore {
    public let database: SQLiteDatabase
    private var checklistCache: [Int64: (sha: String, checklist: Checklist, graph: ChecklistGraph)] = [:]

    /// Uses an open database (e.g. the job engine's), creating or upgrading the campaign tables.
    public init(database: SQLiteDatabase) throws {
        self.database = database
        try CampaignSchema.migrate(database)
    }

    /// Opens the database at `path` (usually `Workspace.databasePath`).
    public convenience init(path: String) throws {
        try self.init(database: SQLiteDatabase(path: path))
    }

    // MARK: Creating and finding campaigns

    /// Creates a campaign from a checklist file, every step pending (blocked or ready), iteration 0.
    @discardableResult
    public func create(name: String, checklistPath: String, runs: RunSet, note: String? = nil,
                       by who: Identity = .current) throws -> Campaign {
        let text: String
        do { text = try String(contentsOfFile: checklistPath, encoding: .utf8) } catch {
            _ = try ChecklistLoader.load(path: checklistPath)   // throws the readable error
            throw error
        }
        return try create(name: name, checklistYAML: text, file: checklistPath, runs: runs, note: note, by: who)
    }

    /// Creates a campaign from checklist text (validated first; nothing is written if it has errors).
    @discardableResult
    public func create(name: String, checklistYAML: String, file: String, runs: RunSet, note: String? = nil,
                       by who: Identity = .current) throws -> Campaign {
        guard !name.isEmpty, !name.contains(where: \.isWhitespace) else {
            throw CampaignError.badValue(what: "campaign name", value: name, expected: "a word without spaces")
        }
        let checklist = try ChecklistLoader.load(yaml: checklistYAML, file: file)
        let sha = SHA256Hasher.hex(Array(checklistYAML.utf8))
        let now = Date()
        return try database.transaction {
            if try database.first("SELECT id FROM campaigns WHERE name = ?", name) != nil {
                throw CampaignError.campaignExists(name: name)
            }
            try database.run("""
                INSERT INTO campaigns(name, checklist_name, checklist_file, checklist_sha256, checklist_yaml, runs,
                                      run_count, created_at, created_by, note) VALUES(?,?,?,?,?,?,?,?,?,?)
                """, name, checklist.name, file, sha, checklistYAML, runs.description, runs.count,
                Timestamp.string(now), who.user, note)
            let id = database.lastInsertRowID
            for (i, s) in checklist.steps.enumerated() {
                try database.run("""
                    INSERT INTO campaign_steps(campaign_id, step_id, position, state, iteration, updated_at, updated_by)
                    VALUES(?,?,?,'pending',0,?,?)
                    """, id, s.id, i, Timestamp.string(now), who.user)
                try database.run("""
                    INSERT INTO step_transitions(campaign_id, step_id, command, from_state, to_state, iteration,
                                                 actor, host, at, note) VALUES(?,?,'create','pending','pending',0,?,?,?,?)
                    """, id, s.id, who.user, who.host, Timestamp.string(now), note)
            }
            return Campaign(id: id, name: name, checklistName: checklist.name, checklistFile: file,
                            checklistSHA256: sha, runs: runs, createdAt: now, createdBy: who.user, note: note)
        }
    }

    /// Every campaign, oldest first.
    public func campaigns() throws -> [Campaign] {
        try database.query("SELECT * FROM campaigns ORDER BY id").map(Self.campaign(from:))
    }

    /// The campaign with this name; throws `CampaignError.unknownCampaign` (with a suggestion) otherwise.
    public func campaign(named name: String) throws -> Campaign {
        if let row = try database.first("SELECT * FROM campaigns WHERE name = ?", name) {
            return try Self.campaign(from: row)
        }
        throw CampaignError.unknownCampaign(name: name, known: try campaigns().map(\.name))
    }

    static func campaign(from row: SQLRow) throws -> Campaign {
        let runsText = row.text("runs") ?? ""
        return Campaign(id: row.int("id") ?? 0, name: row.text("name") ?? "", checklistName: row.text("checklist_name") ?? "",
                        checklistFile: row.text("checklist_file") ?? "", checklistSHA256: row.text("checklist_sha256") ?? "",
                        runs: (try? RunSet(parsing: runsText)) ?? RunSet(ranges: []),
                        createdAt: Timestamp.date(row.text("created_at")) ?? Date(timeIntervalSince1970: 0),
                        createdBy: row.text("created_by") ?? "", note: row.text("note"))
    }

    /// The checklist a campaign was created from (parsed from the copy kept in the database) and its graph.
    public func checklist(of campaign: Campaign) throws -> (checklist: Checklist, graph: ChecklistGraph) {
        if let c = checklistCache[campaign.id], c.sha == campaign.checklistSHA256 { return (c.checklist, c.graph) }
        guard let row = try database.first("SELECT checklist_yaml FROM campaigns WHERE id = ?", campaign.id),
              let yaml = row.text("checklist_yaml") else {
            throw CampaignError.corruptCampaign(name: campaign.name, detail: "its checklist text is missing")
        }
        let checklist: Checklist
        do { checklist = try ChecklistLoader.load(yaml: yaml, file: campaign.checklistFile) } catch let e as ChecklistError {
            throw CampaignError.corruptCampaign(name: campaign.name, detail: "its stored checklist no longer validates: "
                                                + (e.issues.first?.description ?? ""))
        }
        let graph = ChecklistGraph(checklist)
        checklistCache[campaign.id] = (campaign.checklistSHA256, checklist, graph)
        return (checklist, graph)
    }
}

/// ISO 8601 timestamps with milliseconds, UTC (sortable as text).
enum Timestamp {
    static func string(_ d: Date) -> String {
        d.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
    static func date(_ s: String?) -> Date? {
        guard let s else { return nil }
        return try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(s)
    }
}
