import CalibIO

/// The workflow engine's tables in the shared calibctl database (component "workflow" in `schema_versions`).
/// Migration `i` brings the schema from version `i` to `i + 1`. docs/workflow.md ("Database tables").
public enum WorkflowSchema {
    public static let component = "workflow"

    public static let migrations: [String] = [
        """
        CREATE TABLE workflow_campaigns(
          campaign_id INTEGER PRIMARY KEY REFERENCES campaigns(id) ON DELETE CASCADE,
          settings TEXT NOT NULL);
        CREATE TABLE step_runs(
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          iteration INTEGER NOT NULL,
          mode TEXT NOT NULL CHECK(mode IN ('jobs','inline')),
          job_set TEXT,
          units INTEGER NOT NULL,
          started_at TEXT NOT NULL,
          finished_at TEXT,
          outcome TEXT,
          failed_units TEXT,
          PRIMARY KEY(campaign_id, step_id, iteration));
        CREATE UNIQUE INDEX step_runs_job_set ON step_runs(job_set) WHERE job_set IS NOT NULL;
        CREATE TABLE unit_metrics(
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          iteration INTEGER NOT NULL,
          unit TEXT NOT NULL,
          name TEXT NOT NULL,
          value REAL NOT NULL,
          PRIMARY KEY(campaign_id, step_id, iteration, unit, name));
        CREATE TABLE step_outputs(
          campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
          step_id TEXT NOT NULL,
          iteration INTEGER NOT NULL,
          unit TEXT NOT NULL,
          name TEXT NOT NULL,
          path TEXT NOT NULL,
          size INTEGER NOT NULL,
          sha256 TEXT NOT NULL,
          PRIMARY KEY(campaign_id, step_id, iteration, unit, name));
        CREATE TABLE workflow_watches(
          name TEXT PRIMARY KEY,
          definition TEXT NOT NULL);
        """,
    ]

    public static func migrate(_ db: SQLiteDatabase) throws {
        try db.migrate(migrations, what: component)
    }
}
