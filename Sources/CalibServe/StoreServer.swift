import CalibCore
import CalibIO
import CalibStore
import Foundation
import Hummingbird
import NIOCore

/// `calibctl serve`: a read-only HTTP service over a store or node snapshot (docs/serve.md).
///
/// Lookups answer JSON; payloads are served by content hash with a strong ETag, conditional GET and Range
/// requests. Answers that cannot change (global tags, as-of times in the past, payloads) are cacheable for a year;
/// lookups in a tag by its current contents for `openMaxAge` seconds. The service never writes the store.
public struct StoreServer: Sendable {
    public var directory: String
    public var host: String
    public var port: Int
    /// Cache lifetime of answers that can still change (lookups in a tag without an as-of time).
    public var openMaxAge: Int

    public init(directory: String, host: String = "127.0.0.1", port: Int = 8765, openMaxAge: Int = 10) {
        self.directory = directory; self.host = host; self.port = port; self.openMaxAge = openMaxAge
    }

    /// Parses `ADDR:PORT`, `[IPv6]:PORT`, `:PORT` (loopback) or `PORT`.
    public static func parseListen(_ text: String) throws -> (host: String, port: Int) {
        var host = "127.0.0.1", portText = text
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = String(text[text.index(after: close)...]).trimmingCharacters(in: CharacterSet(charactersIn: ":"))
        } else if let colon = text.lastIndex(of: ":") {
            if colon != text.startIndex { host = String(text[..<colon]) }
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = Int(portText), (0...65535).contains(port), !host.isEmpty else {
            throw StoreError(.usage, "--listen '\(text)' is not ADDR:PORT", fix: "write it as 127.0.0.1:8765, [::1]:8765 or :8765 (port 0 picks a free one)")
        }
        return (host, port)
    }

    /// The cache rule for answers that never change.
    public static let immutable = "public, max-age=31536000, immutable"

    /// Runs until SIGINT or SIGTERM; `onListening` is called with the bound address once the socket listens.
    public func run(onListening: @escaping @Sendable (String, Int) -> Void = { _, _ in }) async throws {
        let pool = StorePool(directory: directory)
        // Open once now, so a missing or unreadable store fails before the socket listens.
        try pool.with { _ in }
        let router = Router()
        let handlers = Handlers(pool: pool, openMaxAge: openMaxAge)
        router.get("/") { _, _ in try handlers.index() }
        router.get("/health") { _, _ in handlers.health() }
        router.get("/v1/lookup") { req, _ in handlers.answer(req) { s, q in try handlers.lookup(s, q) } }
        router.get("/v1/explain") { req, _ in handlers.answer(req) { s, q in try handlers.explain(s, q) } }
        router.get("/v1/timeline") { req, _ in handlers.answer(req) { s, q in try handlers.timeline(s, q) } }
        router.get("/v1/global-tags/:name") { req, ctx in
            let name = ctx.parameters.get("name") ?? ""
            return handlers.answer(req) { s, _ in (try JSONBody.encode(try s.globalTag(name)), true) }
        }
        router.get("/payloads/:sha") { req, ctx in try await handlers.payload(req, ctx, sha: ctx.parameters.get("sha") ?? "", head: false) }
        router.head("/payloads/:sha") { req, ctx in try await handlers.payload(req, ctx, sha: ctx.parameters.get("sha") ?? "", head: true) }
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "calibctl/\(CalibctlVersion.string)"),
            onServerRunning: { channel in
                onListening(host, channel.localAddress?.port ?? port)
            })
        try await app.runService()
    }
}

/// One store connection per concurrent request (a `ConstantsStore` is one SQLite connection, one thread at a time).
final class StorePool: @unchecked Sendable {
    let directory: String
    private let lock = NSLock()
    private var idle: [ConstantsStore] = []

    init(directory: String) { self.directory = directory }

    func with<T>(_ body: (ConstantsStore) throws -> T) throws -> T {
        lock.lock()
        let cached = idle.popLast()
        lock.unlock()
        let s = try cached ?? ConstantsStore(directory: directory)
        defer { lock.lock(); idle.append(s); lock.unlock() }
        return try body(s)
    }
}

/// JSON bodies: sorted keys, so equal answers are equal bytes (and get equal ETags).
enum JSONBody {
    static func encode<T: Encodable>(_ v: T) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return try enc.encode(v)
    }
}

/// The lookup parameters of a request.
struct LookupQuery {
    var detector: String
    var type: String
    var run: Int64?
    var tag: String?
    var globalTag: String?
    var asOfText: String?
    var runs: String?

    static let usage = "GET /v1/lookup?detector=D&type=T&run=N[&tag=TAG|&global-tag=GT][&as-of=TIME] (docs/serve.md)"

    init(_ req: Request, needsRun: Bool) throws {
        let q = req.uri.queryParameters
        func param(_ k: String) -> String? { q[Substring(k)].map(String.init).flatMap { $0.isEmpty ? nil : $0 } }
        guard let d = param("detector"), let t = param("type") else {
            throw StoreError(.usage, "the query needs detector and type", fix: LookupQuery.usage)
        }
        detector = d; type = t
        tag = param("tag"); globalTag = param("global-tag") ?? param("global_tag")
        asOfText = param("as-of") ?? param("as_of")
        runs = param("runs")
        if let r = param("run") {
            guard let v = Int64(r), v >= 0 else { throw StoreError(.usage, "run '\(r)' is not a run number (0 to 2^63-1)", fix: LookupQuery.usage) }
            run = v
        } else if needsRun {
            throw StoreError(.usage, "the query needs run", fix: LookupQuery.usage)
        }
    }

    /// True when the answer never changes: a global tag, or an absolute as-of time (already checked to be past).
    var final: Bool { globalTag != nil || (asOfText != nil && asOfText?.lowercased() != "now") }
}

struct Handlers: Sendable {
    let pool: StorePool
    let openMaxAge: Int

    // MARK: JSON answers

    /// Runs `body` with a store connection and turns its result or error into a response with cache headers and
    /// an ETag; a conditional GET whose ETag matches gets 304.
    func answer(_ req: Request, _ body: (ConstantsStore, Request) throws -> (Data, Bool)) -> Response {
        do {
            let (data, final) = try pool.with { s in try body(s, req) }
            let etag = "\"" + sha256Hex(data) + "\""
            var headers: HTTPFields = [.contentType: "application/json", .eTag: etag,
                                       .cacheControl: final ? StoreServer.immutable : "public, max-age=\(openMaxAge)"]
            headers[.vary] = "Accept-Encoding"
            if StoreHTTP.matches(req.headers[.ifNoneMatch], etag: etag) {
                return Response(status: .notModified, headers: headers)
            }
            headers[.contentLength] = String(data.count)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch {
            return StoreHTTP.errorResponse(error)
        }
    }

    func lookup(_ s: ConstantsStore, _ req: Request) throws -> (Data, Bool) {
        let q = try LookupQuery(req, needsRun: true)
        let asOf = try q.asOfText.map(StoreTime.parse)
        let e = try s.lookup(detector: q.detector, type: q.type, run: q.run!, tag: q.tag, globalTag: q.globalTag, asOf: asOf)
        let a = LookupAnswer(query: .init(detector: q.detector, type: q.type, run: q.run!, tag: q.tag, globalTag: q.globalTag,
                                          asOf: asOf.map(StoreTime.format)),
                             entry: e, payload: try s.payloadSummary(sha256: e.sha256), payloadURL: "/payloads/\(e.sha256)",
                             final: q.final)
        return (try JSONBody.encode(a), q.final)
    }

    func explain(_ s: ConstantsStore, _ req: Request) throws -> (Data, Bool) {
        let q = try LookupQuery(req, needsRun: true)
        let x = try s.explain(detector: q.detector, type: q.type, run: q.run!, tag: q.tag, globalTag: q.globalTag,
                              asOf: try q.asOfText.map(StoreTime.parse))
        return (try JSONBody.encode(x), q.final)
    }

    /// The resolved timeline (maximal run segments and their entries), optionally only segments overlapping `runs`.
    func timeline(_ s: ConstantsStore, _ req: Request) throws -> (Data, Bool) {
        let q = try LookupQuery(req, needsRun: false)
        let filter = try q.runs.map { try RunRange(parsing: $0) }
        struct Segment: Codable { var runs: RunRange; var entry: IOVEntry }
        let segs = try s.timeline(detector: q.detector, type: q.type, tag: q.tag, globalTag: q.globalTag,
                                  asOf: try q.asOfText.map(StoreTime.parse))
            .filter { seg in
                guard let f = filter else { return true }
                let segLast = seg.runs.last ?? .max, fLast = f.last ?? .max
                return seg.runs.first <= fLast && f.first <= segLast
            }
            .map { Segment(runs: $0.runs, entry: $0.entry) }
        return (try JSONBody.encode(segs), q.final)
    }

    func health() -> Response {
        do {
            let h = try pool.with { s in
                HealthAnswer(status: "ok", store: s.directory, readOnly: s.readOnly,
                             snapshotOf: try s.snapshotManifest()?.globalTag, schemaVersion: s.schemaVersion,
                             calibctlVersion: CalibctlVersion.string)
            }
            let data = try JSONBody.encode(h)
            return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(bytes: data)))
        } catch { return StoreHTTP.errorResponse(error) }
    }

    func index() throws -> Response {
        let (store, gts, dets, snap) = try pool.with { s in
            (s.directory, try s.globalTags(), try s.detectors(), try s.snapshotManifest())
        }
        func esc(_ t: String) -> String {
            t.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        func q(_ t: String) -> String { t.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? t }
        var html = """
            <!doctype html><html><head><meta charset="utf-8"><title>calibctl serve</title>
            <style>body{font-family:sans-serif;max-width:60em;margin:2em auto}code{background:#eee;padding:0 .2em}</style></head><body>
            <h1>calibctl constants service</h1>
            <p>Store <code>\(esc(store))</code>\(snap.map { " (node snapshot of global tag <code>\(esc($0.globalTag))</code>)" } ?? ""), read-only. calibctl \(CalibctlVersion.string). <a href="/health">health</a></p>
            <h2>API</h2><ul>
            <li><code>GET /v1/lookup?detector=D&amp;type=T&amp;run=N[&amp;tag=TAG|&amp;global-tag=GT][&amp;as-of=TIME]</code>: the winning entry, its payload's hash, validity and provenance</li>
            <li><code>GET /v1/explain?...</code> (same parameters): every candidate and its verdict</li>
            <li><code>GET /v1/timeline?detector=D&amp;type=T[&amp;tag=|&amp;global-tag=][&amp;as-of=][&amp;runs=A-B]</code>: the resolved run segments</li>
            <li><code>GET /v1/global-tags/NAME</code>; <code>GET /payloads/&lt;sha256&gt;</code>: the HDF5 payload file (ETag, Range, immutable)</li>
            </ul><p>Documentation: docs/serve.md.</p><h2>Global tags</h2><ul>
            """
        for g in gts {
            html += "<li><a href=\"/v1/global-tags/\(q(g.name))\">\(esc(g.name))</a> as of \(esc(g.asOf)), \(g.entries.count) entries</li>"
        }
        html += "</ul><h2>Detectors</h2><ul>"
        for d in dets { html += "<li>\(esc(d.name)) (\(esc(d.kind)))\(d.aliases.isEmpty ? "" : ", aliases " + esc(d.aliases.joined(separator: ", ")))</li>" }
        html += "</ul></body></html>\n"
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "public, max-age=\(openMaxAge)"],
                        body: .init(byteBuffer: ByteBuffer(string: html)))
    }

    // MARK: payloads

    /// `/payloads/<sha256>`: the payload file, strong ETag = the hash, immutable, conditional GET and one byte range.
    func payload(_ req: Request, _ ctx: some RequestContext, sha: String, head: Bool) async throws -> Response {
        guard sha.count == 64, sha.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            return StoreHTTP.errorResponse(StoreError(.usage, "'\(sha)' is not a payload hash (64 lowercase hex digits)",
                                                      fix: "take the payload URL from a lookup answer (payloadURL)"))
        }
        let summary: PayloadSummary, path: String
        do {
            (summary, path) = try pool.with { s in (try s.payloadSummary(sha256: sha), s.payloadPath(sha)) }
        } catch { return StoreHTTP.errorResponse(error) }
        let size = summary.fileBytes
        guard size >= 0 else {
            return StoreHTTP.errorResponse(StoreError(.badData, "payload \(sha.prefix(12)) is missing: \(path) does not exist",
                                                      fix: "restore it from a bundle (`calibctl store import`) or put the constants again; `calibctl store verify` lists all damage"))
        }
        let etag = "\"\(sha)\""
        var headers: HTTPFields = [.eTag: etag, .cacheControl: StoreServer.immutable, .acceptRanges: "bytes",
                                   .contentType: "application/x-hdf5"]
        if StoreHTTP.matches(req.headers[.ifNoneMatch], etag: etag) {
            return Response(status: .notModified, headers: headers)
        }
        var range: ClosedRange<Int64>? = nil
        if let r = req.headers[.range], req.headers[.ifRange].map({ $0 == etag }) ?? true {
            switch StoreHTTP.parseRange(r, size: size) {
            case .whole: break
            case .range(let rr): range = rr
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(size)"
                headers[.contentType] = "application/json"
                let body = try JSONBody.encode(ErrorAnswer(error: .init(
                    message: "range '\(r)' is outside payload \(sha.prefix(12)) (\(size) bytes)", fix: "ask for bytes 0-\(size - 1)",
                    exitStatus: ExitStatus.usage.rawValue, kind: "usage")))
                return Response(status: .rangeNotSatisfiable, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
            }
        }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        let r = range ?? 0...(size - 1)
        if range != nil { headers[.contentRange] = "bytes \(r.lowerBound)-\(r.upperBound)/\(size)" }
        headers[.contentLength] = String(size == 0 ? 0 : r.upperBound - r.lowerBound + 1)
        if head || size == 0 { return Response(status: status, headers: headers) }
        let body = try await FileIO().loadFile(path: path, range: Int(r.lowerBound)...Int(r.upperBound), context: ctx)
        return Response(status: status, headers: headers, body: body)
    }
}

/// HTTP pieces shared by the server and the client.
public enum StoreHTTP {
    /// The HTTP status for an error's exit status: 64 -> 400, 65 -> 404, 77 -> 403, 69/75 -> 503, else 500.
    public static func status(for exit: ExitStatus) -> Int {
        switch exit {
        case .usage: 400
        case .dataError: 404
        case .permissionDenied: 403
        case .unavailable, .temporaryFailure: 503
        default: 500
        }
    }

    static func errorResponse(_ error: Error) -> Response {
        let body: ErrorAnswer.Body
        if let e = error as? StoreError {
            body = .init(message: e.message, fix: e.fix, exitStatus: e.exitStatus.rawValue, kind: e.kind.rawValue)
        } else if let e = error as? DiagnosableError {
            body = .init(message: e.message, fix: e.fix, exitStatus: e.exitStatus.rawValue, kind: "error")
        } else {
            body = .init(message: "\(error)", fix: "please report this", exitStatus: ExitStatus.internalError.rawValue, kind: "internalError")
        }
        let data = (try? JSONBody.encode(ErrorAnswer(error: body))) ?? Data()
        var headers: HTTPFields = [.contentType: "application/json", .cacheControl: "no-store",
                                   .contentLength: String(data.count)]
        let code = status(for: ExitStatus(rawValue: body.exitStatus) ?? .internalError)
        if code == 503 { headers[.retryAfter] = "1" }
        return Response(status: .init(code: code), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Whether an `If-None-Match` value names `etag` (or is `*`); weak validators compare by their opaque tag.
    public static func matches(_ ifNoneMatch: String?, etag: String) -> Bool {
        guard let v = ifNoneMatch else { return false }
        for part in v.split(separator: ",") {
            var t = part.trimmingCharacters(in: .whitespaces)
            if t == "*" { return true }
            if t.hasPrefix("W/") { t.removeFirst(2) }
            if t == etag { return true }
        }
        return false
    }

    public enum RangeAnswer: Equatable { case whole, range(ClosedRange<Int64>), unsatisfiable }

    /// One `bytes=` range of RFC 9110 (`a-b`, `a-`, `-n`); several ranges, or a syntax error, mean the whole file.
    public static func parseRange(_ header: String, size: Int64) -> RangeAnswer {
        let h = header.trimmingCharacters(in: .whitespaces)
        guard h.lowercased().hasPrefix("bytes="), !h.contains(",") else { return .whole }
        let spec = h.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let a = spec[..<dash].trimmingCharacters(in: .whitespaces), b = spec[spec.index(after: dash)...].trimmingCharacters(in: .whitespaces)
        if a.isEmpty {
            guard let n = Int64(b), n >= 0 else { return .whole }
            if n == 0 || size == 0 { return .unsatisfiable }
            return .range(Swift.max(0, size - n)...(size - 1))
        }
        guard let first = Int64(a), first >= 0 else { return .whole }
        var last = size - 1
        if !b.isEmpty {
            guard let l = Int64(b), l >= first else { return .whole }
            last = Swift.min(l, size - 1)
        }
        if first >= size { return .unsatisfiable }
        return .range(first...last)
    }
}

func sha256Hex(_ data: Data) -> String {
    var h = SHA256Hasher()
    data.withUnsafeBytes { h.update($0) }
    return h.finalizeHex()
}
