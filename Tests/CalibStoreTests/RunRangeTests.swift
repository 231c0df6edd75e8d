@testable import CalibStore
import Testing

@Suite struct RunRangeTests {
    @Test func parsesEveryForm() throws {
        #expect(try RunRange(parsing: "100-200") == RunRange(first: 100, last: 200))
        #expect(try RunRange(parsing: "100-") == RunRange(first: 100, last: nil))
        #expect(try RunRange(parsing: "100-end") == RunRange(first: 100, last: nil))
        #expect(try RunRange(parsing: "-200") == RunRange(first: 0, last: 200))
        #expect(try RunRange(parsing: "all") == RunRange.all)
        #expect(try RunRange(parsing: "150") == RunRange(first: 150, last: 150))
        #expect(try RunRange(parsing: "7-7").contains(7))
    }

    @Test func refusesReversedNegativeAndJunk() {
        for bad in ["200-100", "--5", "5--", "x-3", "1-y", "", "-", "-end", "1.5-2"] {
            #expect(throws: StoreError.self, "\(bad)") { try RunRange(parsing: bad) }
        }
        #expect(throws: StoreError.self) { try RunRange(first: -1, last: 5) }
        do { _ = try RunRange(parsing: "200-100"); Issue.record("accepted reversed") } catch let e as StoreError {
            #expect(e.exitStatus == .usage && e.message.contains("reversed") && e.fix?.contains("100-200") == true)
        } catch { Issue.record("\(error)") }
    }

    @Test func containsAndOverlaps() {
        let a = runs("100-200"), open = runs("150-")
        #expect(a.contains(100) && a.contains(200) && !a.contains(99) && !a.contains(201))
        #expect(open.contains(Int64.max) && !open.contains(149))
        #expect(a.overlaps(open) && !a.overlaps(runs("201-300")) && runs("0-0").overlaps(.all))
    }

    @Test func timesParseAndFormatExactly() throws {
        let t = try StoreTime.parse("2026-11-21T20:16:44.123456Z")
        #expect(StoreTime.format(t) == "2026-11-21T20:16:44.123456Z")
        #expect(try StoreTime.parse("2026-11-21T21:16:44.123456+01:00") == t)
        #expect(try StoreTime.parse("2026-11-21") == StoreTime.parse("2026-11-21T00:00:00Z"))
        #expect(throws: StoreError.self) { try StoreTime.parse("21/11/2026") }
        #expect(throws: StoreError.self) { try StoreTime.parse("2026-13-01") }
    }
}
