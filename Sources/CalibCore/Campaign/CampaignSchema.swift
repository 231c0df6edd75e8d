import CalibIO

/// The campaign tables in the shared calibctl database (component "campaigns" in `schema_versions`).
/// Documented in docs/checklists.md ("Database tables"). Migration `i` brings the schema from version `i` to `i + 1`.
public enum CampaignSchema {
    public static let component = "campaigns"

    public static let migrations: [String] = [
        """
        CREATE TABLE campaigns(
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          checklist_name TEXT NOT NULL,
          checklist_file TEXT NOT NULL,
          checklist_sha256 TEXT NOT NULL,
          checklist_yaml TEXT NOT NULL,
          runs TEXT NOT NULL,
          run_count INTEGER NOT NULL,
          created_at TEXT NOT NULL,
          created_by TEXT NOT NULL,
          note TEXT);
        CREATE TABLE campaign_steps(
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          position INTEGER NOT NULL,
          state TEXT NOT NULL CHECK(state IN ('pending','running','awaiting-validation','awaiting-sign-off',
                                              'done','failed','skipped','stale')),
          iteration INTEGER NOT NULL DEFAULT 0 CHECK(iteration >= 0),
          updated_at TEXT NOT NULL,
          updated_by TEXT NOT NULL,
          reason TEXT,
          approved_by TEXT,
          approved_at TEXT,
          gate_report TEXT,
          PRIMARY KEY(campaign_id, step_id));
        CREATE TABLE step_transitions(
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          command TEXT NOT NULL,
          from_state TEXT NOT NULL,
          to_state TEXT NOT NULL,
          iteration INTEGER NOT NULL,
          actor TEXT NOT NULL,
          host TEXT NOT NULL,
          at TEXT NOT NULL,
          note TEXT,
          caused_by TEXT);
        CREATE INDEX step_transitions_by_step ON step_transitions(campaign_id, step_id, id);
        CREATE TABLE step_metrics(
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          iteration INTEGER NOT NULL,
          name TEXT NOT NULL,
          value REAL NOT NULL,
          recorded_at TEXT NOT NULL,
          recorded_by TEXT NOT NULL,
          PRIMARY KEY(campaign_id, step_id, iteration, name));
        CREATE TABLE step_effort(
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          iteration INTEGER NOT NULL,
          runs INTEGER NOT NULL, events INTEGER NOT NULL, jobs INTEGER NOT NULL,
          cpu_seconds REAL NOT NULL, wall_seconds REAL NOT NULL,
          disk_bytes_written INTEGER NOT NULL, disk_bytes_held INTEGER NOT NULL,
          recorded_at TEXT NOT NULL,
          source TEXT);
        CREATE INDEX step_effort_by_step ON step_effort(campaign_id, step_id);
        """,
    ]

    /// Creates or upgrades the campaign tables.
    public static func migrate(_ db: SQLiteDatabase) throws {
        try db.migrate(migrations, what: component)
    }
}
