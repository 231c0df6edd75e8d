import CalibIO
import Foundation

/// The SQLite index of a store (`index.db`): its schema as ordered migrations (component "constants store" in the
/// `schema_versions` table), checked on every open. Migration `i` takes the schema from version `i` to `i + 1`.
/// docs/formats-store.md describes every table.
enum StoreIndex {
    static var migrations: [String] {
        [
            // 1: the data model.
            """
            CREATE TABLE store_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE detectors(
              id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
              hw_index INTEGER, prev_hw_index INTEGER, next_hw_index INTEGER,
              comment TEXT NOT NULL DEFAULT '', created_at_us INTEGER NOT NULL, created_by TEXT NOT NULL);
            CREATE TABLE detector_aliases(
              alias TEXT PRIMARY KEY, detector_id INTEGER NOT NULL REFERENCES detectors(id));
            CREATE TABLE detector_tags(
              detector_id INTEGER NOT NULL REFERENCES detectors(id), key TEXT NOT NULL, value TEXT NOT NULL,
              PRIMARY KEY(detector_id, key));
            CREATE TABLE calib_types(
              id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, schema_json TEXT NOT NULL,
              builtin INTEGER NOT NULL DEFAULT 0, comment TEXT NOT NULL DEFAULT '',
              created_at_us INTEGER NOT NULL, created_by TEXT NOT NULL);
            CREATE TABLE payloads(
              sha256 TEXT PRIMARY KEY CHECK(length(sha256) = 64), relpath TEXT NOT NULL, byte_count INTEGER NOT NULL,
              hash_rule TEXT NOT NULL, attributes_json TEXT NOT NULL, created_at_us INTEGER NOT NULL);
            CREATE TABLE payload_datasets(
              sha256 TEXT NOT NULL REFERENCES payloads(sha256), name TEXT NOT NULL, dtype TEXT NOT NULL,
              shape TEXT NOT NULL, byte_order TEXT NOT NULL DEFAULT 'little', PRIMARY KEY(sha256, name));
            CREATE TABLE tags(
              id INTEGER PRIMARY KEY, name TEXT NOT NULL, detector_id INTEGER NOT NULL REFERENCES detectors(id),
              type_id INTEGER NOT NULL REFERENCES calib_types(id), alias TEXT,
              state TEXT NOT NULL CHECK(state IN ('open','validated','published','retired')),
              comment TEXT NOT NULL DEFAULT '', created_at_us INTEGER NOT NULL, created_by TEXT NOT NULL,
              state_changed_at_us INTEGER NOT NULL, state_changed_by TEXT NOT NULL,
              UNIQUE(detector_id, type_id, name));
            CREATE UNIQUE INDEX tags_alias ON tags(detector_id, type_id, alias) WHERE alias IS NOT NULL;
            CREATE TABLE provenance(
              id INTEGER PRIMARY KEY, user TEXT NOT NULL, host TEXT NOT NULL, command_line TEXT NOT NULL,
              software_version TEXT NOT NULL, at_us INTEGER NOT NULL, comment TEXT NOT NULL DEFAULT '',
              campaign TEXT, step TEXT, job TEXT, input_runs TEXT);
            CREATE TABLE iovs(
              id INTEGER PRIMARY KEY AUTOINCREMENT, tag_id INTEGER NOT NULL REFERENCES tags(id),
              first_run INTEGER NOT NULL CHECK(first_run >= 0),
              last_run INTEGER CHECK(last_run IS NULL OR last_run >= first_run),
              sha256 TEXT NOT NULL REFERENCES payloads(sha256), inserted_at_us INTEGER NOT NULL,
              provenance_id INTEGER NOT NULL REFERENCES provenance(id));
            CREATE INDEX iovs_lookup ON iovs(tag_id, first_run);
            CREATE INDEX iovs_sha ON iovs(sha256);
            CREATE TABLE global_tags(
              id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, as_of_us INTEGER NOT NULL,
              comment TEXT NOT NULL DEFAULT '', created_at_us INTEGER NOT NULL, created_by TEXT NOT NULL);
            CREATE TABLE global_tag_entries(
              global_tag_id INTEGER NOT NULL REFERENCES global_tags(id) DEFERRABLE INITIALLY DEFERRED,
              detector_id INTEGER NOT NULL REFERENCES detectors(id),
              type_id INTEGER NOT NULL REFERENCES calib_types(id), tag_id INTEGER NOT NULL REFERENCES tags(id),
              PRIMARY KEY(global_tag_id, detector_id, type_id));
            """ + builtinTypesSQL,
            // 2: append-only history and immutable global tags, enforced by the database itself.
            """
            CREATE TRIGGER iovs_no_update BEFORE UPDATE ON iovs BEGIN
              SELECT RAISE(ABORT, 'validity entries are append-only'); END;
            CREATE TRIGGER iovs_no_delete BEFORE DELETE ON iovs BEGIN
              SELECT RAISE(ABORT, 'validity entries are append-only'); END;
            CREATE TRIGGER payloads_no_delete BEFORE DELETE ON payloads BEGIN
              SELECT RAISE(ABORT, 'payload rows are never deleted'); END;
            CREATE TRIGGER global_tags_no_update BEFORE UPDATE ON global_tags BEGIN
              SELECT RAISE(ABORT, 'global tags are immutable'); END;
            CREATE TRIGGER global_tags_no_delete BEFORE DELETE ON global_tags BEGIN
              SELECT RAISE(ABORT, 'global tags are immutable'); END;
            CREATE TRIGGER gt_entries_no_update BEFORE UPDATE ON global_tag_entries BEGIN
              SELECT RAISE(ABORT, 'global tags are immutable'); END;
            CREATE TRIGGER gt_entries_no_delete BEFORE DELETE ON global_tag_entries BEGIN
              SELECT RAISE(ABORT, 'global tags are immutable'); END;
            CREATE TRIGGER gt_entries_no_late_insert BEFORE INSERT ON global_tag_entries
              WHEN EXISTS (SELECT 1 FROM global_tags WHERE id = NEW.global_tag_id)
            BEGIN SELECT RAISE(ABORT, 'global tags are immutable'); END;
            """,
            // 3: access control rules.
            """
            CREATE TABLE access_rules(
              id INTEGER PRIMARY KEY, user TEXT NOT NULL, detector TEXT NOT NULL, type TEXT NOT NULL,
              permission TEXT NOT NULL CHECK(permission IN ('write','publish','admin')),
              granted_by TEXT NOT NULL, granted_at_us INTEGER NOT NULL, UNIQUE(user, detector, type, permission));
            """,
            // 4: built-in types added after migration 1 was first written (gain_offline, gain_hlt, vcal): stores
            // created before them get them now; a no-op for newer stores. A new built-in type needs such a migration.
            builtinTypesSQL.replacingOccurrences(of: "INSERT INTO calib_types", with: "INSERT OR IGNORE INTO calib_types"),
            // 5: single lookups in tags of millions of entries without reading the tag. `iov_stats.max_span` is the
            // widest closed range of each tag (kept by a trigger on every insert, however the row got there), so the
            // closed ranges that can contain a run start within max_span before it; open-ended ranges are walked
            // newest first through a partial index. Spans are upper bounds: a snapshot that drops entries keeps them
            // (no foreign key, so a snapshot can drop tags). Idempotent, like migration 4.
            """
            CREATE TABLE IF NOT EXISTS iov_stats(tag_id INTEGER PRIMARY KEY, max_span INTEGER NOT NULL);
            INSERT OR REPLACE INTO iov_stats(tag_id, max_span)
              SELECT tag_id, MAX(last_run - first_run) FROM iovs WHERE last_run IS NOT NULL GROUP BY tag_id;
            CREATE TRIGGER IF NOT EXISTS iovs_stats AFTER INSERT ON iovs WHEN NEW.last_run IS NOT NULL BEGIN
              INSERT INTO iov_stats(tag_id, max_span) VALUES(NEW.tag_id, NEW.last_run - NEW.first_run)
              ON CONFLICT(tag_id) DO UPDATE SET max_span = MAX(max_span, excluded.max_span);
            END;
            CREATE INDEX IF NOT EXISTS iovs_open ON iovs(tag_id, inserted_at_us) WHERE last_run IS NULL;
            """,
            // 6: the built-in type `cabling` (the CMS pixel cabling map, one IOV per cabling): the same insert for
            // stores created before it; a no-op for newer stores.
            builtinTypesSQL.replacingOccurrences(of: "INSERT INTO calib_types", with: "INSERT OR IGNORE INTO calib_types"),
        ]
    }

    static var builtinTypesSQL: String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return TypeSchema.builtin.map { t in
            let json = String(decoding: try! enc.encode(t.schema), as: UTF8.self).replacingOccurrences(of: "'", with: "''")
            return "\nINSERT INTO calib_types(name, schema_json, builtin, comment, created_at_us, created_by) VALUES('\(t.name)', '\(json)', 1, '\(t.comment.replacingOccurrences(of: "'", with: "''"))', 0, 'calibctl');"
        }.joined()
    }

    /// The schema version this program writes.
    static var currentVersion: Int { migrations.count }
}
