import CalibIO

/// The job tables in the workspace database (component `jobs`; docs/runner.md lists every column).
enum JobSchema {
    static let component = "jobs"

    static let migrations: [String] = [
        """
        CREATE TABLE job_sets(
          id INTEGER PRIMARY KEY,
          name TEXT NOT NULL UNIQUE,
          campaign TEXT,
          step TEXT,
          scheduler TEXT NOT NULL,
          created REAL NOT NULL,
          created_by TEXT NOT NULL,
          kind TEXT NOT NULL,
          parameters TEXT NOT NULL DEFAULT '{}',
          policy TEXT NOT NULL,
          memory_mb INTEGER NOT NULL,
          time_limit_s INTEGER NOT NULL,
          directory TEXT NOT NULL,
          next_submission INTEGER NOT NULL DEFAULT 1);
        CREATE TABLE shards(
          id INTEGER PRIMARY KEY,
          job_set INTEGER NOT NULL REFERENCES job_sets(id) ON DELETE CASCADE,
          idx INTEGER NOT NULL,
          key TEXT NOT NULL,
          spec_path TEXT NOT NULL,
          outputs TEXT NOT NULL DEFAULT '{}',
          attempts INTEGER NOT NULL DEFAULT 0,
          memory_mb INTEGER,
          time_limit_s INTEGER,
          UNIQUE(job_set, idx));
        CREATE TABLE attempts(
          id INTEGER PRIMARY KEY,
          shard INTEGER NOT NULL REFERENCES shards(id) ON DELETE CASCADE,
          number INTEGER NOT NULL,
          scheduler TEXT NOT NULL,
          submission TEXT NOT NULL,
          name TEXT NOT NULL,
          batch_id TEXT,
          state TEXT NOT NULL CHECK(state IN ('created','submitted','pending','running','succeeded','failed','held','cancelled','lost')),
          exit_code INTEGER,
          signal INTEGER,
          failure_class TEXT,
          reason TEXT,
          created REAL NOT NULL,
          submitted REAL,
          started REAL,
          ended REAL,
          cpu_s REAL,
          peak_mem_mb REAL,
          memory_mb INTEGER NOT NULL,
          time_limit_s INTEGER NOT NULL,
          trigger TEXT NOT NULL,
          result TEXT,
          updated REAL,
          UNIQUE(shard, number));
        CREATE INDEX attempts_by_state ON attempts(state);
        CREATE INDEX attempts_by_submission ON attempts(submission);
        CREATE TABLE scheduler_polls(
          scheduler TEXT PRIMARY KEY,
          last_poll REAL NOT NULL,
          jobs INTEGER NOT NULL,
          ok INTEGER NOT NULL,
          detail TEXT);
        """,
    ]

    static func migrate(_ db: SQLiteDatabase) throws {
        try db.migrate(migrations, what: component)
    }
}
