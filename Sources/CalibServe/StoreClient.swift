import CalibCore
import CalibIO
import CalibStore
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// One `http://HOST:PORT[/PREFIX]` server of `calibctl get --server`.
public struct ServerURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// Path prefix without a trailing slash ("" for the root).
    public var prefix: String

    public init(parsing text: String) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        let fix = "write a server as http://HOST:PORT, e.g. http://127.0.0.1:8765 (several: comma-separated, tried in order)"
        guard t.lowercased().hasPrefix("http://") else {
            throw StoreError(.usage, "server '\(text)' is not an http:// URL", fix: fix)
        }
        var rest = Substring(t.dropFirst(7))
        var hostPort = rest
        prefix = ""
        if let slash = rest.firstIndex(of: "/") {
            hostPort = rest[..<slash]
            rest = rest[slash...]
            prefix = String(rest).hasSuffix("/") ? String(rest.dropLast()) : String(rest)
        }
        host = String(hostPort); port = 80
        if hostPort.hasPrefix("["), let close = hostPort.firstIndex(of: "]") {
            host = String(hostPort[hostPort.index(after: hostPort.startIndex)..<close])
            let after = hostPort[hostPort.index(after: close)...]
            if after.hasPrefix(":") { guard let p = Int(after.dropFirst()) else { throw StoreError(.usage, "server '\(text)' has a bad port", fix: fix) }; port = p }
        } else if let colon = hostPort.lastIndex(of: ":") {
            host = String(hostPort[..<colon])
            guard let p = Int(hostPort[hostPort.index(after: colon)...]) else { throw StoreError(.usage, "server '\(text)' has a bad port", fix: fix) }
            port = p
        }
        guard !host.isEmpty, (1...65535).contains(port) else { throw StoreError(.usage, "server '\(text)' has no host or port", fix: fix) }
    }

    public var description: String { "http://\(host.contains(":") ? "[\(host)]" : host):\(port)\(prefix)" }
}

/// A bare HTTP/1.1 GET over SwiftNIO (its HTTP codec parses the response) with a connect and a read timeout.
public enum HTTPGet {
    public struct Result: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
        public func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    }

    /// Why a request got no HTTP answer (connection refused, timeout, closed early).
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// - Parameters:
    ///   - readTimeout: the longest silence allowed between bytes of the answer.
    public static func get(_ server: ServerURL, path: String, headers: [(String, String)] = [],
                           connectTimeout: Double, readTimeout: Double) async throws -> Result {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: Result.self)
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: server.prefix + path)
        head.headers.add(name: "Host", value: server.port == 80 ? server.host : "\(server.host):\(server.port)")
        head.headers.add(name: "User-Agent", value: "calibctl/\(CalibctlVersion.string)")
        head.headers.add(name: "Connection", value: "close")
        for (k, v) in headers { head.headers.add(name: k, value: v) }
        let request = head
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.milliseconds(Int64(connectTimeout * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: .milliseconds(Int64(readTimeout * 1000))))
                    try channel.pipeline.syncOperations.addHandler(Collector(request: request, promise: promise))
                }
            }
        let channel: Channel
        do {
            channel = try await bootstrap.connect(host: server.host, port: server.port).get()
        } catch {
            promise.fail(error)
            let text = "\(error)"
            let why = text.contains("Connection refused") ? "connection refused"
                : text.contains("connectTimeout") ? "no connection within \(connectTimeout) s (--connect-timeout)" : text
            throw Failure(description: "cannot connect to \(server): \(why)")
        }
        do {
            return try await promise.futureResult.get()
        } catch let f as Failure {
            channel.close(promise: nil)
            throw Failure(description: "\(server)\(path): \(f.description)")
        } catch {
            channel.close(promise: nil)
            throw Failure(description: "\(server)\(path): \(error)")
        }
    }

    final class Collector: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPClientResponsePart
        typealias OutboundOut = HTTPClientRequestPart
        let request: HTTPRequestHead
        let promise: EventLoopPromise<Result>
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var done = false

        init(request: HTTPRequestHead, promise: EventLoopPromise<Result>) { self.request = request; self.promise = promise }

        func channelActive(context: ChannelHandlerContext) {
            context.write(wrapOutboundOut(.head(request)), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let h): head = h
            case .body(let b): body.append(contentsOf: b.readableBytesView)
            case .end:
                if let head {
                    finish(.success(Result(status: Int(head.status.code), headers: head.headers.map { ($0.name, $0.value) }, body: body)))
                }
                context.close(promise: nil)
            }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let e = event as? IdleStateHandler.IdleStateEvent, e == .read {
                finish(.failure(Failure(description: "no answer within the read timeout (--read-timeout)")))
                context.close(promise: nil)
            } else {
                context.fireUserInboundEventTriggered(event)
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            finish(.failure(Failure(description: "\(error)")))
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            finish(.failure(Failure(description: "the connection closed before a complete answer")))
        }

        func finish(_ r: Swift.Result<Result, Error>) {
            guard !done else { return }
            done = true
            promise.completeWith(r)
        }
    }
}

/// `calibctl get --server URL[,URL...]`: asks each server in order, with bounded retries and jitter on server
/// errors (5xx) only, fails over to the next server on connection failures, timeouts, 5xx after the retries or a
/// payload that fails its hash check; a 4xx answer is final (the store's own error, with its message, fix and exit
/// status). When no server answers it throws ``ServersUnavailable`` (the caller may then read a local snapshot).
public struct StoreClient: Sendable {
    public var servers: [ServerURL]
    public var connectTimeout: Double
    public var readTimeout: Double
    /// Retries of one server after a 5xx answer (so at most `retries + 1` requests per server and question).
    public var retries: Int
    /// Base delay of the jittered exponential back-off, in seconds.
    public var backoff: Double
    /// Called with a line for each failed attempt (the CLI prints it on stderr as a note).
    public var log: @Sendable (String) -> Void

    public init(servers: [ServerURL], connectTimeout: Double = 5, readTimeout: Double = 30, retries: Int = 2,
                backoff: Double = 0.2, log: @escaping @Sendable (String) -> Void = { _ in }) {
        self.servers = servers; self.connectTimeout = connectTimeout; self.readTimeout = readTimeout
        self.retries = retries; self.backoff = backoff; self.log = log
    }

    /// No server gave an answer.
    public struct ServersUnavailable: DiagnosableError, Sendable {
        public var failures: [String]
        public var message: String { "no constants server answered: " + failures.joined(separator: "; ") }
        public var fix: String? { "check that `calibctl serve` runs at those URLs, or pass --store DIR (a node snapshot from `calibctl store snapshot`) as the fallback" }
        public var exitStatus: ExitStatus { .unavailable }
    }

    /// Looks up and fetches the payload for `run`, verified against its content hash.
    public func get(detector: String, type: String, run: Int64, tag: String?, globalTag: String?, asOf: String?,
                    verify: Bool = true) async throws -> (StoredPayload, server: ServerURL) {
        var query = [("detector", detector), ("type", type), ("run", String(run))]
        if let tag { query.append(("tag", tag)) }
        if let globalTag { query.append(("global-tag", globalTag)) }
        if let asOf { query.append(("as-of", asOf)) }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let path = "/v1/lookup?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
        var failures: [String] = []
        for server in servers {
            do {
                let r = try await ask(server, path)
                let answer = try JSONDecoder().decode(LookupAnswer.self, from: Data(r.body))
                let p = try await ask(server, answer.payloadURL)
                let payload = try StoreClient.decodePayload(p.body, sha256: answer.entry.sha256, verify: verify)
                return (StoredPayload(entry: answer.entry, payload: payload, location: "\(server)\(answer.payloadURL)"), server)
            } catch let e as RemoteError {
                throw e
            } catch let e as AttemptFailed {
                failures.append("\(server): \(e.reason)")
            } catch let e as DiagnosableError {
                // A payload that fails its hash check on this server: another may hold it intact.
                failures.append("\(server): \(e.message)")
                log("\(server): \(e.message); trying the next server")
            } catch {
                failures.append("\(server): \(error)")
            }
        }
        throw ServersUnavailable(failures: failures)
    }

    struct AttemptFailed: Error { var reason: String }

    /// One question to one server: retries 5xx answers (jittered exponential back-off), throws `AttemptFailed` to
    /// move on to the next server, `RemoteError` for a final 4xx answer.
    func ask(_ server: ServerURL, _ path: String) async throws -> HTTPGet.Result {
        var attempt = 0
        while true {
            let r: HTTPGet.Result
            do {
                r = try await HTTPGet.get(server, path: path, connectTimeout: connectTimeout, readTimeout: readTimeout)
            } catch let f as HTTPGet.Failure {
                log("\(f.description); trying the next server")
                throw AttemptFailed(reason: f.description)
            }
            if r.status == 200 { return r }
            if (400..<500).contains(r.status) {
                if let e = try? JSONDecoder().decode(ErrorAnswer.self, from: Data(r.body)) {
                    throw RemoteError(e.error.message, fix: e.error.fix, exitStatus: ExitStatus(rawValue: e.error.exitStatus) ?? .dataError)
                }
                throw RemoteError("\(server)\(path) answered HTTP \(r.status)", fix: "check the URL (docs/serve.md)", exitStatus: .dataError)
            }
            let reason = "HTTP \(r.status)" + ((try? JSONDecoder().decode(ErrorAnswer.self, from: Data(r.body))).map { ": \($0.error.message)" } ?? "")
            guard r.status >= 500, attempt < retries else {
                log("\(server)\(path): \(reason); trying the next server")
                throw AttemptFailed(reason: reason)
            }
            attempt += 1
            let delay = backoff * pow(2, Double(attempt - 1)) * Double.random(in: 0.5...1.5)
            log("\(server)\(path): \(reason); retry \(attempt) of \(retries) in \(String(format: "%.2f", delay)) s")
            try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
        }
    }

    /// Reads payload file bytes (HDF5) and checks them against the content hash.
    public static func decodePayload(_ bytes: [UInt8], sha256: String, verify: Bool) throws -> Payload {
        let dir = NSTemporaryDirectory()
        let path = (dir as NSString).appendingPathComponent("calibctl-payload-\(getpid())-\(UUID().uuidString.prefix(8)).h5")
        defer { unlink(path) }
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
            throw StoreError(.temporary, "cannot write a temporary file in \(dir)", fix: "free space there or set TMPDIR")
        }
        let f: HDF5File
        do { f = try HDF5File.open(path) } catch let e as HDF5Error {
            throw StoreError(.badData, "payload \(sha256.prefix(12)) from the server is not an HDF5 payload file: \(e.detail)")
        }
        return try PayloadFile.read(from: f, expectedSHA256: verify ? sha256 : nil)
    }

    /// Runs an async body from synchronous code (the command line) and waits for it.
    public static func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
        let box = ResultBox<T>()
        let sem = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
            sem.signal()
        }
        sem.wait()
        return try box.result!.get()
    }
}

/// The result of an async body, handed to the thread that waits for it.
final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, Error>?
}
