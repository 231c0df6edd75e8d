import CalibIO
import CalibTestSupport
import Foundation
import Testing

@Suite struct SQLiteDatabaseTests {
    @Test func migrationsBindingAndTransactions() throws {
        let tmp = TemporaryDirectory()
        let db = try SQLiteDatabase(path: tmp.file("t.db"))
        let migrations = ["CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE, x REAL, b BLOB)",
                          "ALTER TABLE t ADD COLUMN note TEXT"]
        try db.migrate(migrations, what: "test")
        try db.migrate(migrations, what: "test")  // idempotent
        #expect(try db.schemaVersion(of: "test") == 2)
        try db.migrate(["CREATE TABLE other(x)"], what: "other")  // a second component in the same file
        #expect(try db.schemaVersion(of: "other") == 1 && db.schemaVersion(of: "test") == 2)
        try db.run("INSERT INTO t(name, x, b, note) VALUES(?,?,?,?)", "a", 1.5, SQLValue.blob([1, 2, 3]),
                   String?.none)
        #expect(throws: SQLiteError.self) {
            try db.transaction {
                try db.run("INSERT INTO t(name) VALUES(?)", "b")
                try db.run("INSERT INTO t(name) VALUES(?)", "a")  // UNIQUE violation rolls back "b" too
            }
        }
        let rows = try db.query("SELECT name, x, b, note FROM t ORDER BY name")
        #expect(rows.count == 1)
        #expect(rows[0].text("name") == "a" && rows[0].double("x") == 1.5 && rows[0].blob("b") == [1, 2, 3])
        #expect(rows[0]["note"] == .null)
        // A newer schema than this program knows is refused.
        try db.run("UPDATE schema_versions SET version = 9 WHERE component = 'test'")
        #expect(throws: SQLiteError.self) { try db.migrate(migrations, what: "test") }
    }

    @Test func sha256KnownAnswers() {
        #expect(SHA256Hasher.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256Hasher.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
