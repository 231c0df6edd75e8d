@testable import CalibServe
import Testing

/// The HTTP pieces of `calibctl serve` and its client: byte ranges, ETag matching, addresses.
@Suite struct HTTPPiecesTests {
    @Test func byteRangesFollowRFC9110() {
        #expect(StoreHTTP.parseRange("bytes=0-9", size: 100) == .range(0...9))
        #expect(StoreHTTP.parseRange("bytes=90-", size: 100) == .range(90...99))
        #expect(StoreHTTP.parseRange("bytes=-10", size: 100) == .range(90...99))
        #expect(StoreHTTP.parseRange("bytes=-1000", size: 100) == .range(0...99))
        #expect(StoreHTTP.parseRange("bytes=50-1000", size: 100) == .range(50...99))
        #expect(StoreHTTP.parseRange("bytes=100-", size: 100) == .unsatisfiable)
        #expect(StoreHTTP.parseRange("bytes=-0", size: 100) == .unsatisfiable)
        #expect(StoreHTTP.parseRange("bytes=0-1,5-6", size: 100) == .whole)
        #expect(StoreHTTP.parseRange("bytes=9-2", size: 100) == .whole)
        #expect(StoreHTTP.parseRange("items=0-1", size: 100) == .whole)
    }

    @Test func ifNoneMatch() {
        #expect(StoreHTTP.matches("\"abc\"", etag: "\"abc\""))
        #expect(StoreHTTP.matches("\"x\", W/\"abc\"", etag: "\"abc\""))
        #expect(StoreHTTP.matches("*", etag: "\"abc\""))
        #expect(!StoreHTTP.matches("\"abd\"", etag: "\"abc\""))
        #expect(!StoreHTTP.matches(nil, etag: "\"abc\""))
    }

    @Test func addresses() throws {
        #expect(try StoreServer.parseListen("127.0.0.1:8765") == ("127.0.0.1", 8765))
        #expect(try StoreServer.parseListen(":0") == ("127.0.0.1", 0))
        #expect(try StoreServer.parseListen("[::1]:9000") == ("::1", 9000))
        #expect(throws: (any Error).self) { try StoreServer.parseListen("localhost:http") }
        let u = try ServerURL(parsing: "http://127.0.0.1:8080/calib/")
        #expect(u.host == "127.0.0.1" && u.port == 8080 && u.prefix == "/calib" && u.description == "http://127.0.0.1:8080/calib")
        #expect(try ServerURL(parsing: "http://[::1]:81").host == "::1")
        #expect(throws: (any Error).self) { try ServerURL(parsing: "https://example:443") }
        #expect(throws: (any Error).self) { try ServerURL(parsing: "http://host:notaport") }
    }
}
