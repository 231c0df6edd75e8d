import ArgumentParser
import CalibCore
import CalibIO
import CalibServe
import CalibStore
import Foundation

/// `calibctl serve --store DIR [--listen ADDR:PORT]`: the read-only HTTP service (docs/serve.md).
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a store or node snapshot read-only over HTTP (lookups, explain, payloads).",
        discussion: reflow("""
        JSON lookups (GET /v1/lookup?detector=D&type=T&run=N[&tag=TAG|&global-tag=GT][&as-of=TIME]), explain,
        timelines, global tags, and payload files by content hash at /payloads/<sha256> (strong ETag = the hash,
        Cache-Control immutable, conditional GET, Range). Answers that cannot change (global tags, as-of times in the
        past) are cacheable for a year, lookups by a tag's current contents for --open-max-age seconds, so a caching
        proxy (nginx, squid) in front carries a farm's load. Errors are JSON with the command line's message, fix
        and exit status. /health and an index page at /. Stops on SIGINT or SIGTERM. See docs/serve.md.

        Example: calibctl serve --store /cvmfs/calib/CXI_2026_v1 --listen 127.0.0.1:8765
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Option(help: "Address and port to listen on (port 0 picks a free one).") var listen: String = "127.0.0.1:8765"
    @Option(name: .customLong("open-max-age"), help: "Cache lifetime in seconds of answers that can still change (lookups in a tag without --as-of).") var openMaxAge: Int = 10
    @Option(name: .customLong("port-file"), help: "Write the bound port to this file once listening.") var portFile: String?

    func run() throws {
        let (host, port) = try StoreServer.parseListen(listen)
        guard openMaxAge >= 0 else { throw UsageError("--open-max-age must be 0 or more seconds") }
        let store = ws.workspace.store
        _ = try ConstantsStore(directory: store)
        let server = StoreServer(directory: store, host: host, port: port, openMaxAge: openMaxAge)
        let portFile = self.portFile
        do {
            try StoreClient.blocking {
                try await server.run { h, p in
                    FileHandle.standardOutput.write(Data("calibctl serve: listening on http://\(h.contains(":") ? "[\(h)]" : h):\(p) (store \(store))\n".utf8))
                    if let portFile { try? AtomicFile.write(Data("\(p)\n".utf8), to: portFile) }
                }
            }
        } catch let e as DiagnosableError {
            throw e
        } catch {
            throw StoreError(.unavailable, "cannot serve on \(listen): \(error)",
                             fix: "choose another --listen address or port (is another server using it?)")
        }
    }
}
