import ArgumentParser
import CalibCore
import CalibIO
import CalibStore
import Foundation

/// `calibctl store snapshot --global-tag GT -o DIR`: a read-only node snapshot of one global tag.
struct StoreSnapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot", abstract: "Write a read-only, self-contained store holding exactly what a global tag resolves.",
        discussion: reflow("""
        The snapshot holds the global tag, its tags' validity entries up to its as-of time, their payloads
        (verified before they are copied) and provenance, the detectors and types it names, and snapshot.json with
        a SHA-256 of every file. It is always opened read-only: `calibctl get --store DIR --global-tag GT` and
        `calibctl serve --store DIR` work on it from a read-only file system (CVMFS, a read-only mount, a node
        without network). `calibctl store verify --store DIR` checks it against its manifest. See docs/store.md.

        Example: calibctl store snapshot --global-tag CXI_2026_v1 -o /cvmfs/calib/CXI_2026_v1
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Option(name: .customLong("global-tag"), help: "The global tag to take.") var globalTag: String
    @Option(name: .shortAndLong, help: "The new snapshot directory (must not exist).") var output: String
    @Flag(help: "Print JSON (the manifest).") var json = false

    func run() throws {
        let m = try StoreCLI.open(ws).snapshot(globalTag: globalTag, to: output)
        if json { try printJSON(m); return }
        let bytes = m.files.reduce(Int64(0)) { $0 + $1.bytes }
        print("snapshot of global tag \(m.globalTag) (as of \(m.asOf)) in \(output): \(m.entries) entries, \(m.payloads) payloads, \(bytes) bytes; manifest \(StoreFormat.snapshotManifest)")
    }
}
