import ArgumentParser
import CalibCore
import CalibIO
import CalibStore
import Foundation

struct StoreTag: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tag", abstract: "Create, move through states, clone or show tags.",
        discussion: reflow("""
        A tag is a named version of one detector's constants of one type. States: open -> validated -> published
        -> retired (validated -> open to rework). Only open tags take arbitrary puts; published tags only grow
        after their last run.
        """),
        subcommands: [Create.self, State.self, Clone.self, Show.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an open tag.",
            discussion: "Example: calibctl store tag create sipixel gain_offline SiPixelGainCalibration_2026_v1_offline --alias gain_2026")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var detector: String
        @Argument var type: String
        @Argument(help: "Tag name.") var name: String
        @Option(help: "A second name for the tag.") var alias: String?
        @Option(help: "A comment kept with it.") var comment: String = ""
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let t = try StoreCLI.open(ws, write: true).createTag(detector: detector, type: type, name: name, alias: alias, comment: comment)
            if json { try printJSON(t) } else { print("created tag \(t.name) of \(t.detector)/\(t.type) (open)") }
        }
    }

    struct State: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Move a tag to another state (needs publish).",
            discussion: "Example: calibctl store tag state jf4m pedestals default published")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var detector: String
        @Argument var type: String
        @Argument(help: "Tag name or alias.") var name: String
        @Argument(help: "open, validated, published or retired.") var state: String
        func run() throws {
            guard let st = TagState(rawValue: state) else { throw UsageError("unknown tag state '\(state)'", fix: "use open, validated, published or retired") }
            let t = try StoreCLI.open(ws, write: true).setTagState(detector: detector, type: type, name: name, to: st)
            print("tag \(t.name) of \(t.detector)/\(t.type) is \(t.state.rawValue)")
        }
    }

    struct Clone: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Copy a tag's entries into a new open tag.",
            discussion: "Example: calibctl store tag clone jf4m pedestals default rework-2026")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var detector: String
        @Argument var type: String
        @Argument(help: "Source tag.") var source: String
        @Argument(help: "New tag.") var destination: String
        @Option(help: "A comment kept with it.") var comment: String = ""
        func run() throws {
            let t = try StoreCLI.open(ws, write: true).cloneTag(detector: detector, type: type, source: source, destination: destination, comment: comment)
            print("created tag \(t.name) of \(t.detector)/\(t.type) with \(t.entryCount) entries")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a tag and its resolved run timeline.",
            discussion: "Example: calibctl store tag show jf4m pedestals default --json")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var detector: String
        @Argument var type: String
        @Argument(help: "Tag name or alias.") var name: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let s = try StoreCLI.open(ws)
            let t = try s.tag(detector: detector, type: type, name: name)
            let segs = try s.timeline(detector: detector, type: type, tag: t.name)
            struct Seg: Codable { var runs: String; var entry: Int64; var sha256: String }
            struct Out: Codable { var tag: Tag; var timeline: [Seg] }
            let out = Out(tag: t, timeline: segs.map { Seg(runs: $0.runs.description, entry: $0.entry.id, sha256: $0.entry.sha256) })
            if json { try printJSON(out); return }
            print("tag \(t.name)\(t.alias.map { " (alias \($0))" } ?? "") of \(t.detector)/\(t.type): \(t.state.rawValue) since \(t.stateChangedAt) (\(t.stateChangedBy)), \(t.entryCount) entries, created \(t.createdAt) by \(t.createdBy)")
            for s in out.timeline { print("  runs \(s.runs) -> #\(s.entry) \(s.sha256.prefix(12))") }
        }
    }
}

struct StoreGlobalTag: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "global-tag", abstract: "Immutable snapshots (detector, type) -> tag with an as-of time.",
        discussion: "A reconstruction that names a global tag gets the same constants years later: the mapping never changes and insertions after its as-of time are ignored.",
        subcommands: [Create.self, Show.self, List.self, Diff.self, DiffAtRun.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a global tag (admin).",
            discussion: "Example: calibctl store global-tag create CXI_2026_v1 --entry jf4m/pedestals=default --entry jf4m/pixel_status=default --as-of now")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var name: String
        @Option(name: .customLong("entry"), help: "DETECTOR/TYPE=TAG (repeatable).") var entries: [String] = []
        @Option(help: "Start from this global tag's entries.") var base: String?
        @Option(name: .customLong("as-of"), help: "Insertions after this UTC time are ignored (default now).") var asOf: String?
        @Option(help: "A comment kept with it.") var comment: String = ""
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let parsed = try entries.map { e -> GlobalTag.Entry in
                guard let eq = e.lastIndex(of: "="), let slash = e[..<eq].lastIndex(of: "/") else {
                    throw UsageError("--entry '\(e)' is not DETECTOR/TYPE=TAG")
                }
                return GlobalTag.Entry(detector: String(e[..<slash]), type: String(e[e.index(after: slash)..<eq]), tag: String(e[e.index(after: eq)...]))
            }
            let g = try StoreCLI.open(ws, write: true).createGlobalTag(name: name, entries: parsed, base: base, asOf: try StoreCLI.time(asOf), comment: comment)
            if json { try printJSON(g) } else { print("created global tag \(g.name) as of \(g.asOf) with \(g.entries.count) entries") }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a global tag.", discussion: "Example: calibctl store global-tag show CXI_2026_v1 --json")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var name: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let g = try StoreCLI.open(ws).globalTag(name)
            if json { try printJSON(g); return }
            print("\(g.name): as of \(g.asOf), created \(g.createdAt) by \(g.createdBy)\(g.comment.isEmpty ? "" : " -- \(g.comment)")")
            for e in g.entries { print("  \(e.detector)/\(e.type) -> \(e.tag)") }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List global tags.")
        @OptionGroup var ws: WorkspaceOptions
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let g = try StoreCLI.open(ws).globalTags()
            if json { try printJSON(g) } else { for x in g { print("\(x.name)\tas of \(x.asOf)\t\(x.entries.count) entries") } }
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Entries whose tag differs between two global tags.",
            discussion: "Example: calibctl store global-tag diff CXI_2026_v1 CXI_2026_v2")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var a: String
        @Argument var b: String
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let d = try StoreCLI.open(ws).diffGlobalTags(a, b)
            if json { try printJSON(d); return }
            if d.isEmpty { print("same mapping") }
            for x in d { print("\(x.detector)/\(x.type): \(x.a ?? "-") -> \(x.b ?? "-")") }
        }
    }

    struct DiffAtRun: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "diff-at-run",
            abstract: "Detector/types whose constants for one run differ between two global tags.",
            discussion: "Example: calibctl store global-tag diff-at-run CXI_2026_v1 CXI_2026_v2 --run 150")
        @OptionGroup var ws: WorkspaceOptions
        @Argument var a: String
        @Argument var b: String
        @Option(name: .customLong("run"), help: "The run.") var runNumber: Int64
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            let d = try StoreCLI.open(ws).diffGlobalTags(a, b, atRun: runNumber)
            if json { try printJSON(d); return }
            if d.isEmpty { print("same constants for run \(runNumber)") }
            for x in d { print("\(x.detector)/\(x.type): \(x.payloadA.map { String($0.prefix(12)) } ?? "none") (\(x.a ?? "-")) -> \(x.payloadB.map { String($0.prefix(12)) } ?? "none") (\(x.b ?? "-"))") }
        }
    }
}

struct StoreLint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lint", abstract: "Find gaps, overlaps and open ends over a required run range.",
        discussion: reflow("""
        Exit 1 when a gap is found (or any finding with --strict). Without DETECTOR TYPE every tag is checked.

        Example: calibctl store lint jf4m pedestals --runs 100-500
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Argument var detector: String?
    @Argument var type: String?
    @Option(parsing: .unconditional, help: "The runs that must be covered.") var runs: String
    @Option(help: "Only this tag.") var tag: String?
    @Flag(help: "Count overlaps and open ends as failures too.") var strict = false
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        let f = try StoreCLI.open(ws).lint(required: try StoreCLI.range(runs), detector: detector, type: type, tag: tag)
        if json { try printJSON(f) } else {
            if f.isEmpty { print("no findings over runs \(runs)") }
            for x in f { print("\(x.kind.rawValue)\t\(x.detector)/\(x.type) [\(x.tag)]\truns \(x.runs)\t\(x.detail)") }
        }
        if f.contains(where: { $0.kind == .gap || $0.kind == .empty }) || (strict && !f.isEmpty) { throw ExitCode(1) }
    }
}

struct StoreVerify: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check that every payload exists, is readable and matches its hash; list orphans.",
        discussion: "Exit 1 when damage is found. Orphans (complete files no entry names) are harmless; `store gc` removes them.\n\nExample: calibctl store verify --json")
    @OptionGroup var ws: WorkspaceOptions
    @Flag(name: .customLong("no-hash"), help: "Check existence and format only.") var noHash = false
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        let s = try StoreCLI.open(ws)
        if s.isSnapshot {
            // A snapshot: every file against its manifest first.
            let c = try ConstantsStore.verifySnapshot(s.directory)
            if !json {
                print("snapshot of global tag \(c.globalTag): \(c.filesChecked) files checked against \(StoreFormat.snapshotManifest); \(c.problems.count) problems")
                for p in c.problems { print("damaged \(p)") }
            }
            if !c.ok { if json { try printJSON(c) }; throw ExitCode(1) }
        }
        let r = try s.verify(hash: !noHash)
        if json { try printJSON(r) } else {
            print("\(r.payloadsChecked) payloads, \(r.entriesChecked) entries checked; \(r.damaged.count) damaged, \(r.orphans.count) orphan files, \(r.staleTemporaries.count) stale temporaries, \(r.activeTemporaries.count) writes in progress")
            for d in r.damaged { print("damaged \(d.sha256.prefix(12)) \(d.path): \(d.problem)") }
            for o in r.orphans + r.staleTemporaries { print("orphan \(o)") }
        }
        if !r.ok { throw ExitCode(1) }
    }
}

struct StoreGC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Remove orphan payload files and stale temporaries (dry run unless --apply).",
        discussion: "Example: calibctl store gc --apply")
    @OptionGroup var ws: WorkspaceOptions
    @Flag(help: "Really remove.") var apply = false
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        let r = try StoreCLI.open(ws, write: true).gc(dryRun: !apply)
        if json { try printJSON(r); return }
        for f in r.removed { print((apply ? "removed " : "would remove ") + f) }
        print("\(r.removed.count) files, \(r.bytes) bytes" + (apply ? " removed" : " (dry run; --apply removes)"))
    }
}

struct StoreExport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write per-detector bundles (<detname>-<detid>.h5) or an LCLS calib tree.",
        discussion: reflow("""
        Bundles hold a detector's payloads, tags, validity entries and provenance, readable with h5py alone
        (docs/formats-store.md) and importable with `store import`. --lcls writes the resolved timeline of one tag as
        calib/<group>/<source>/<type>/<first>-<last|end>.data text files.

        Example: calibctl store export jf4m --bundle out/      calibctl store export jf4m --lcls exp/calib --tag default
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "Detectors (default: all).") var detectors: [String] = []
    @Option(help: "Directory for bundle files.") var bundle: String?
    @Option(help: "An LCLS calib directory to write.") var lcls: String?
    @Option(help: "Tag to export to the LCLS tree (default 'default').") var tag: String?
    @Option(help: "LCLS group directory (default <Kind>::CalibV1).") var group: String?
    @Option(help: "LCLS source directory (default the first alias with ':' or the name).") var source: String?
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        guard (bundle == nil) != (lcls == nil) else { throw UsageError("give exactly one of --bundle DIR or --lcls DIR") }
        let s = try StoreCLI.open(ws)
        let names = detectors.isEmpty ? try s.detectors().map(\.name) : detectors
        var files: [String] = [], skipped: [String] = []
        for n in names {
            if let bundle { files.append(try s.exportBundle(detector: n, to: bundle)) }
            if let lcls {
                let r = try s.exportLCLS(detector: n, to: lcls, tag: tag, group: group, source: source)
                files += r.files; skipped += r.skipped
            }
        }
        struct Out: Codable { var files: [String]; var skipped: [String] }
        if json { try printJSON(Out(files: files, skipped: skipped)); return }
        for f in files { print("wrote \(f)") }
        for x in skipped { Diagnostics.warning("skipped \(x)") }
    }
}

struct StoreImport: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import bundles, or an LCLS calib tree (admin for bundles).",
        discussion: reflow("""
        A bundle is checked completely (format, every payload's hash) before anything changes; a refused import
        leaves the store unchanged. Importing the same bundle twice adds nothing.

        Example: calibctl store import jf4m-170.h5      calibctl store import --lcls /sdf/data/lcls/ds/cxi/cxi12315/calib --tag lcls
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "Bundle files.") var bundles: [String] = []
    @Option(help: "An LCLS calib directory to read.") var lcls: String?
    @Option(help: "Tag for LCLS files (default 'default').") var tag: String?
    @Option(help: "Comment recorded with every LCLS insertion.") var comment: String = ""
    @Flag(help: "Print JSON.") var json = false
    func run() throws {
        guard !bundles.isEmpty || lcls != nil else { throw UsageError("nothing to import", fix: "give bundle files or --lcls DIR") }
        let s = try StoreCLI.open(ws, write: true)
        var reports: [ImportReport] = []
        for b in bundles { reports.append(try s.importBundle(b)) }
        var tree: LCLSTreeReport? = nil
        if let lcls { tree = try s.importLCLS(from: lcls, tag: tag, provenance: ProvenanceLinks(comment: comment)) }
        if let lcls, let t = tree, t.files.isEmpty { throw StoreError(.badData, "no LCLS calibration file was imported from \(lcls)" + (t.skipped.isEmpty ? "" : " (\(t.skipped.count) skipped: \(t.skipped.prefix(3).joined(separator: "; ")))"), fix: "give the calib directory of an experiment: calib/<group>/<source>/<type>/<first>-<last|end>.data") }
        struct Out: Codable { var bundles: [ImportReport]; var lcls: LCLSTreeReport? }
        if json { try printJSON(Out(bundles: reports, lcls: tree)); return }
        for r in reports {
            print("imported \(r.source): detector \(r.detector)\(r.detectorCreated ? " (new)" : ""), \(r.entriesAdded) entries added, \(r.entriesAlreadyPresent) already present, \(r.payloadsAdded) payload files written")
            for g in r.globalTagsCreated { print("  created global tag \(g)") }
            for g in r.globalTagsDeferred { Diagnostics.note("global tag \(g) is deferred until its other detectors are imported") }
        }
        if let tree {
            print("imported \(tree.files.count) LCLS files")
            for x in tree.skipped { Diagnostics.warning("skipped \(x)") }
        }
    }
}
