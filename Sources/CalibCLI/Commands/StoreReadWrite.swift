import ArgumentParser
import CalibCore
import CalibIO
import CalibServe
import CalibStore
import Foundation

/// Options of `put` (shared by `calibctl store put` and `calibctl put`).
struct PutOptions: ParsableArguments {
    @Argument(help: "Detector name or alias.", completion: .detectorName) var detector: String
    @Argument(help: "Calibration type.", completion: .typeName) var type: String
    @Argument(help: "Input files: FILE or DATASET=FILE (.h5 top-level datasets, .npy, LCLS .txt/.data).") var inputs: [String]
    @Option(parsing: .unconditional, help: "Validity: FIRST-LAST, FIRST- (open end), -LAST (= 0-LAST; also as --runs -200), RUN, or all (every run; a bare - is refused).") var runs: String
    @Option(help: "Tag name (default: 'default', created on first use).", completion: .tagName) var tag: String?
    @Flag(name: .customLong("create-tag"), help: "Create --tag (open) if it does not exist.") var createTag = false
    @Option(name: .customLong("attr"), help: "A payload attribute KEY=VALUE (repeatable).") var attributes: [String] = []
    @Option(help: "Why these constants (kept in the provenance).") var comment: String = ""
    @Option(help: "Campaign this comes from.") var campaign: String?
    @Option(help: "Workflow step.") var step: String?
    @Option(help: "Batch job id.") var job: String?
    @Option(name: .customLong("input-runs"), help: "Runs the constants were derived from, e.g. 98 or 5001,5002.") var inputRuns: String?
    @Flag(help: "Print JSON.") var json = false

    func execute(_ ws: WorkspaceOptions) throws {
        let runRange = try StoreCLI.range(runs)
        let s = try StoreCLI.open(ws, write: true)
        let t = try s.type(type)
        _ = try s.detector(detector)
        let payload = try StoreCLI.readInputs(inputs, schema: t.schema, attributes: attributes)
        let e = try s.put(detector: detector, type: type, runs: runRange, payload: payload, tag: tag,
                          provenance: ProvenanceLinks(comment: comment, campaign: campaign, step: step, job: job, inputRuns: inputRuns),
                          createTag: createTag)
        if json { try printJSON(e) } else { print("stored " + StoreCLI.entryLine(e)) }
    }
}

struct StorePut: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put", abstract: "Store constants for a run range (also: calibctl put).",
        discussion: reflow("""
        The payload must match the type's schema. Identical content is stored once. Tags: open tags take any range
        (newer insertions win where ranges overlap); published tags only take ranges after their last run;
        validated and retired tags take nothing.

        Example: calibctl store put jf4m pedestals --runs 100-200 pedestals=peds.npy --comment "dark run 98" --input-runs 98
        """))
    @OptionGroup var ws: WorkspaceOptions
    @OptionGroup var options: PutOptions
    func run() throws { try options.execute(ws) }
}

struct TopPut: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "put", abstract: StorePut.configuration.abstract,
                                                    discussion: StorePut.configuration.discussion)
    @OptionGroup var ws: WorkspaceOptions
    @OptionGroup var options: PutOptions
    func run() throws { try options.execute(ws) }
}

/// Options of `get`.
struct GetOptions: ParsableArguments {
    @OptionGroup var lookup: LookupOptions
    @Option(name: .shortAndLong, help: "Write the payload here (.h5, .npy, .txt; - for stdout).") var output: String?
    @Option(help: "Output format when the extension does not say: h5, npy, txt.") var format: String?
    @Option(help: "The dataset to write for .npy/.txt when the payload holds several.") var dataset: String?
    @Flag(name: .customLong("no-verify"), help: "Skip the content-hash check (faster for large payloads).") var noVerify = false
    @Flag(help: "Print JSON.") var json = false
    @Flag(name: .shortAndLong, help: "Show whole provenance comments (with the run configuration); --json has everything.") var verbose = false

    @OptionGroup var remote: ServerOptions

    func execute(_ ws: WorkspaceOptions) throws {
        let l = lookup
        let got: StoredPayload
        if let client = try remote.client() {
            // Ask the servers in order; when none answers, a local store given by --store (or $CALIBCTL_STORE),
            // typically a node snapshot, answers instead.
            _ = try StoreCLI.time(l.asOf)
            do {
                got = try StoreClient.blocking { [verify = !noVerify] in
                    try await client.get(detector: l.detector, type: l.type, run: l.run, tag: l.tag, globalTag: l.globalTag,
                                         asOf: l.asOf, verify: verify).0
                }
            } catch let e as StoreClient.ServersUnavailable {
                guard ws.store != nil || !(ProcessInfo.processInfo.environment["CALIBCTL_STORE"] ?? "").isEmpty else { throw e }
                Diagnostics.warning(e.message + "; answering from the local store \(ws.workspace.store)")
                got = try localGet(ws)
            }
        } else {
            got = try localGet(ws)
        }
        if let output { try StoreCLI.write(got, to: output, format: format, dataset: dataset) }
        if output == "-" { return }
        struct DS: Codable { var name: String; var dtype: String; var shape: [Int] }
        struct Out: Codable { var entry: IOVEntry; var path: String; var verified: Bool; var datasets: [DS]; var attributes: [String: String]; var output: String? }
        let out = Out(entry: got.entry, path: got.path, verified: !noVerify,
                      datasets: got.payload.arrays.map { DS(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape) },
                      attributes: got.payload.attributes.mapValues(\.description), output: output)
        if json { try printJSON(out); return }
        print(StoreCLI.entryLine(got.entry, verbose: verbose))
        for a in got.payload.arrays { print("  \(a.name): \(a.dtype) \(a.shapeText)") }
        for (k, v) in out.attributes.sorted(by: { $0.key < $1.key }) { print("  @\(k) = \(v)") }
        if let output { print("wrote \(output)") }
    }
    func localGet(_ ws: WorkspaceOptions) throws -> StoredPayload {
        let s = try StoreCLI.open(ws)
        let l = lookup
        let got = try s.get(detector: l.detector, type: l.type, run: l.run, tag: l.tag, globalTag: l.globalTag,
                            asOf: try StoreCLI.time(l.asOf), verify: !noVerify)
        // The state alone (not `tag(...)`, which counts the tag's entries: O(tag size) in a one-shot process).
        if (try? s.tagState(detector: l.detector, type: l.type, name: got.entry.tag)) == .retired {
            Diagnostics.warning("tag \(got.entry.tag) of \(got.entry.detector)/\(got.entry.type) is retired")
        }
        return got
    }
}

/// `--server URL[,URL...]` and its timeouts (docs/serve.md, "Client").
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Ask these `calibctl serve` servers in order (http://HOST:PORT, comma-separated; default $CALIBCTL_SERVER); when none answers, --store (a node snapshot) answers.", valueName: "urls"))
    var server: String?
    @Option(name: .customLong("connect-timeout"), help: "Seconds to wait for a connection to a server.") var connectTimeout: Double = 5
    @Option(name: .customLong("read-timeout"), help: "Seconds of silence allowed while a server answers.") var readTimeout: Double = 30
    @Option(help: "Retries of a server that answers with a server error (5xx), with jittered back-off.") var retries: Int = 2

    func client() throws -> StoreClient? {
        guard let list = server ?? ProcessInfo.processInfo.environment["CALIBCTL_SERVER"].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        let urls = try list.split(separator: ",").map { try ServerURL(parsing: String($0)) }
        guard !urls.isEmpty else { throw UsageError("--server names no server", fix: "give http://HOST:PORT[,http://HOST2:PORT]") }
        guard connectTimeout > 0, readTimeout > 0, (0...10).contains(retries) else {
            throw UsageError("--connect-timeout and --read-timeout must be positive, --retries 0 to 10")
        }
        return StoreClient(servers: urls, connectTimeout: connectTimeout, readTimeout: readTimeout, retries: retries,
                           log: { Diagnostics.note($0) })
    }
}

struct StoreGet: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "Look up the constants for a run and print or write them (also: calibctl get).",
        discussion: reflow("""
        Picks the newest insertion whose run range contains the run, in the tag (default 'default') or the global
        tag's tag, ignoring insertions after --as-of (and after the global tag's own as-of time). The payload's
        content hash is verified unless --no-verify.

        Example: calibctl store get jf4m pedestals --run 150 --global-tag CXI_2026_v1 -o peds.npy
        """))
    @OptionGroup var ws: WorkspaceOptions
    @OptionGroup var options: GetOptions
    func run() throws { try options.execute(ws) }
}

struct TopGet: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "get", abstract: StoreGet.configuration.abstract,
                                                    discussion: StoreGet.configuration.discussion)
    @OptionGroup var ws: WorkspaceOptions
    @OptionGroup var options: GetOptions
    func run() throws { try options.execute(ws) }
}

struct StoreExplain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "explain", abstract: "Show every candidate for a run and why the winner wins.",
        discussion: "Example: calibctl store explain jf4m pedestals --run 150 --as-of 2026-11-01")
    @OptionGroup var ws: WorkspaceOptions
    @OptionGroup var lookup: LookupOptions
    @Flag(help: "Print JSON.") var json = false
    @Flag(name: .shortAndLong, help: "Show whole provenance comments (with the run configuration); --json has everything.") var verbose = false

    func run() throws {
        let l = lookup
        let x = try StoreCLI.open(ws).explain(detector: l.detector, type: l.type, run: l.run, tag: l.tag,
                                              globalTag: l.globalTag, asOf: try StoreCLI.time(l.asOf))
        if json { try printJSON(x); return }
        print("\(x.detector)/\(x.type) run \(x.run), tag \(x.tag)" + (x.globalTag.map { " (global tag \($0))" } ?? ""))
        print("rule: \(x.rule)")
        if x.candidates.isEmpty { print("no entry contains run \(x.run)") }
        for c in x.candidates { print("  \(StoreCLI.entryLine(c.entry, verbose: verbose))\n      \(c.verdict)") }
    }
}

struct StoreList: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List detectors, types, tags, iovs, global-tags or rules.",
        discussion: "Example: calibctl store list iovs --detector jf4m --type pedestals --json")
    enum What: String, ExpressibleByArgument, CaseIterable { case detectors, types, tags, iovs, globalTags = "global-tags", rules }
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "detectors, types, tags, iovs, global-tags or rules.") var what: What
    @Option(help: "Only this detector.", completion: .detectorName) var detector: String?
    @Option(help: "Only this type.", completion: .typeName) var type: String?
    @Option(help: "Only this tag (iovs).", completion: .tagName) var tag: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(name: .shortAndLong, help: "Show whole provenance comments (with the run configuration); --json has everything.") var verbose = false

    func run() throws {
        let s = try StoreCLI.open(ws)
        switch what {
        case .detectors:
            let d = try s.detectors()
            if json { try printJSON(d) } else { for x in d { print("\(x.name)\t\(x.kind)\thw \(x.hardwareIndex.map(String.init) ?? "-")\t\(x.aliases.joined(separator: ","))") } }
        case .types:
            let t = try s.types()
            if json { try printJSON(t) } else { for x in t { print("\(x.name)\t\(x.schema.datasets.map(\.text).joined(separator: "  "))\t\(x.comment)") } }
        case .tags:
            let t = try s.tags(detector: detector, type: type)
            if json { try printJSON(t) } else { for x in t { print("\(x.detector)/\(x.type)\t\(x.name)\(x.alias.map { " (\($0))" } ?? "")\t\(x.state.rawValue)\t\(x.entryCount) entries") } }
        case .iovs:
            let e = try s.entries(detector: detector, type: type, tag: tag)
            if json { try printJSON(e) } else { for x in e { print(StoreCLI.entryLine(x, verbose: verbose)) } }
        case .globalTags:
            let g = try s.globalTags()
            if json { try printJSON(g) } else { for x in g { print("\(x.name)\tas of \(x.asOf)\t\(x.entries.count) entries\t\(x.comment)") } }
        case .rules:
            let r = try s.accessRules()
            if json { try printJSON(r) } else {
                print("admin: \(s.creator)" + (r.isEmpty ? " (no rules: every user may write and publish)" : ""))
                for x in r { print(x.text + " (granted by \(x.grantedBy) \(x.grantedAt))") }
            }
        }
    }
}

struct StoreHistory: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Every insertion for a detector/type, oldest first, with provenance.",
        discussion: "Example: calibctl store history jf4m pedestals --tag default")
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "Detector name or alias.", completion: .detectorName) var detector: String
    @Argument(help: "Calibration type.", completion: .typeName) var type: String
    @Option(help: "Only this tag.", completion: .tagName) var tag: String?
    @Flag(help: "Print JSON.") var json = false
    @Flag(name: .shortAndLong, help: "Show whole provenance comments (with the run configuration); --json has everything.") var verbose = false

    func run() throws {
        let h = try StoreCLI.open(ws).history(detector: detector, type: type, tag: tag)
        if json { try printJSON(h); return }
        for e in h {
            print(StoreCLI.entryLine(e, verbose: verbose))
            let p = e.provenance
            print("    \(verbose ? p.commandLine : StoreCLI.shortComment(p.commandLine)) (calibctl \(p.softwareVersion))" + [p.links.campaign.map { " campaign \($0)" }, p.links.step.map { " step \($0)" },
                                                                            p.links.job.map { " job \($0)" }, p.links.inputRuns.map { " input runs \($0)" }].compactMap { $0 }.joined())
        }
    }
}

struct StoreDiff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Compare two payloads dataset by dataset.",
        discussion: reflow("""
        A payload is a hash (8+ hex digits) or DETECTOR/TYPE@RUN[:TAG]. Prints per dataset the count of changed
        elements, the largest absolute and relative change, and mask changes (elements that became zero/non-zero).

        Example: calibctl store diff jf4m/pixel_status@100 jf4m/pixel_status@300
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "First payload.") var a: String
    @Argument(help: "Second payload.") var b: String
    @Flag(help: "Print JSON.") var json = false

    func resolve(_ s: ConstantsStore, _ ref: String) throws -> (String, Payload) {
        if let at = ref.firstIndex(of: "@") {
            let dt = ref[..<at], rest = ref[ref.index(after: at)...]
            guard let slash = dt.lastIndex(of: "/") else { throw UsageError("'\(ref)' is not DETECTOR/TYPE@RUN[:TAG]") }
            let det = String(dt[..<slash]), typ = String(dt[dt.index(after: slash)...])
            let parts = rest.split(separator: ":", maxSplits: 1)
            guard let run = parts.first.flatMap({ Int64($0) }) else { throw UsageError("'\(ref)' has no run number after @") }
            let g = try s.get(detector: det, type: typ, run: run, tag: parts.count > 1 ? String(parts[1]) : nil)
            return (g.entry.sha256, g.payload)
        }
        let sha = try s.resolvePayload(ref)
        return (sha, try s.readPayload(sha256: sha))
    }

    func run() throws {
        let s = try StoreCLI.open(ws)
        let (ha, pa) = try resolve(s, a), (hb, pb) = try resolve(s, b)
        let d = PayloadDiff(a: pa, b: pb, nameA: ha, nameB: hb)
        if json { try printJSON(d); return }
        print("a \(ha.prefix(12))  b \(hb.prefix(12))" + (ha == hb ? "  (identical)" : ""))
        for x in d.datasets {
            print("  \(x.name): \(x.status); \(x.changed) of \(x.elements) changed, max |abs| \(x.maxAbsChange), max rel \(x.maxRelChange), became non-zero \(x.becameNonZero), became zero \(x.becameZero)")
        }
        if !d.attributesChanged.isEmpty { print("  attributes changed: \(d.attributesChanged.joined(separator: ", "))") }
    }
}
