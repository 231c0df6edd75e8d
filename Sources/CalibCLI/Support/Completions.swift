import ArgumentParser
import CalibCore
import CalibIO
import Foundation

/// Shell completion of names from the workspace database and the store: campaigns, steps, detectors, types and tags.
/// Read-only (the databases are opened with SQLITE_OPEN_READONLY and never created or migrated) and silent: any
/// failure completes nothing. `--home` / `--store` on the command line being completed are honoured.
enum Completions {
    /// The workspace named by the words being completed (`--home X`, `--home=X`, `--store ...`), else the default.
    static func workspace(_ words: [String]) -> Workspace {
        func value(_ option: String) -> String? {
            for (i, w) in words.enumerated() {
                if w == option, i + 1 < words.count { return words[i + 1] }
                if w.hasPrefix(option + "=") { return String(w.dropFirst(option.count + 1)) }
            }
            return nil
        }
        return Workspace.resolve(home: value("--home"), store: value("--store"))
    }

    static func names(_ path: String, _ sql: String, _ params: [SQLBindable] = []) -> [String] {
        guard FileManager.default.fileExists(atPath: path),
              let db = try? SQLiteDatabase(path: path, readOnly: true, busyTimeout: 0.2),
              let rows = try? db.query(sql, parameters: params) else { return [] }
        var seen = Set<String>()
        return rows.compactMap { $0.text("name") }.filter { seen.insert($0).inserted }
    }

    static func matching(_ xs: [String], _ prefix: String) -> [String] { xs.filter { $0.hasPrefix(prefix) } }

    static func campaigns(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        matching(names(workspace(words).databasePath, "SELECT name FROM campaigns ORDER BY name"), prefix)
    }

    /// The steps of the campaign named just before (`step start CAMPAIGN <TAB>`), else of every campaign.
    static func steps(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        let db = workspace(words).databasePath
        let known = names(db, "SELECT name FROM campaigns")
        let campaign = (0..<min(index, words.count)).reversed().map { words[$0] }.first { known.contains($0) }
        let sql = "SELECT s.step_id AS name FROM campaign_steps s JOIN campaigns c ON c.id = s.campaign_id"
        return matching(campaign.map { names(db, sql + " WHERE c.name = ? ORDER BY s.position", [$0]) }
                        ?? names(db, sql + " ORDER BY s.step_id"), prefix)
    }

    static func index(_ words: [String]) -> String { (workspace(words).store as NSString).appendingPathComponent("index.db") }

    static func detectors(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        matching(names(Self.index(words), "SELECT name FROM detectors UNION SELECT alias AS name FROM detector_aliases ORDER BY name"), prefix)
    }

    static func types(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        matching(names(Self.index(words), "SELECT name FROM calib_types ORDER BY name"), prefix)
    }

    static func tags(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
        matching(names(Self.index(words), "SELECT name FROM tags UNION SELECT alias AS name FROM tags WHERE alias IS NOT NULL ORDER BY name"), prefix)
    }
}

extension CompletionKind {
    static var campaignName: CompletionKind { .custom(Completions.campaigns) }
    static var stepName: CompletionKind { .custom(Completions.steps) }
    static var detectorName: CompletionKind { .custom(Completions.detectors) }
    static var typeName: CompletionKind { .custom(Completions.types) }
    static var tagName: CompletionKind { .custom(Completions.tags) }
}
