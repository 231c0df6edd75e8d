import ArgumentParser
import CalibCore
import CalibIO
import CalibStore
import Foundation

/// `calibctl store ...`: the constants store.
struct StoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "store",
        abstract: "Keep calibration constants with run-range validity, tags, global tags and provenance.",
        discussion: reflow("""
        The store is a directory (--store, $CALIBCTL_STORE, else HOME/store) holding index.db (SQLite) and
        payloads/ab/<sha256>.h5 (one HDF5 file per distinct content). Every insertion records who, when, where and
        with which command. Lookups pick the newest insertion whose run range contains the run. Read verbs take
        --json. See docs/store.md.

        Example:
          calibctl store detector add jf4m --kind jungfrau --hw-index 170 --alias CxiDs1.0:Jungfrau.0
          calibctl store put jf4m pedestals --runs 100- peds.npy --comment "dark run 98"
          calibctl store get jf4m pedestals --run 150 -o peds-150.npy
        """),
        subcommands: [StoreInit.self, StoreDetector.self, StoreType.self, StorePut.self, StoreGet.self,
                      StoreExplain.self, StoreList.self, StoreHistory.self, StoreDiff.self, StoreTag.self,
                      StoreGlobalTag.self, StoreLint.self, StoreVerify.self, StoreGC.self, StoreExport.self,
                      StoreImport.self, StoreSnapshot.self, StoreGrant.self, StoreRevoke.self]
    )
}

struct StoreInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: "Create an empty store; you become its admin.",
        discussion: "Example: calibctl store init /data/calib/store   (or: calibctl --store DIR store init)")
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "Store directory (default: --store).") var directory: String?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let dir = directory ?? ws.workspace.store
        let s = try ConstantsStore(directory: dir, create: true)
        struct Out: Codable { var store: String; var admin: String; var schemaVersion: Int; var types: [String] }
        let out = Out(store: s.directory, admin: s.creator, schemaVersion: s.schemaVersion, types: try s.types().map(\.name))
        if json { try printJSON(out); return }
        print("store \(out.store) (index schema v\(out.schemaVersion)); admin \(out.admin); built-in types: \(out.types.joined(separator: ", "))")
    }
}

struct StoreDetector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detector", abstract: "Add, annotate or show detectors.",
        subcommands: [Add.self, Annotate.self, Show.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a detector (admin).",
            discussion: "Example: calibctl store detector add jf4m --kind jungfrau --hw-index 170 --prev-hw-index 160 --alias CxiDs1.0:Jungfrau.0 --tag location=cxi")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "Unique detector name (letters, digits, _ - . + :).") var name: String
        @Option(help: "Detector kind: sipixel, jungfrau, ftof, epix10ka, ...") var kind: String
        @Option(name: .customLong("alias"), help: "An alias (repeatable), e.g. the DAQ source.") var aliases: [String] = []
        @Option(name: .customLong("hw-index"), help: "Hardware index (detid).") var hwIndex: Int64?
        @Option(name: .customLong("prev-hw-index"), help: "Hardware index of the previous version.") var prevHWIndex: Int64?
        @Option(name: .customLong("next-hw-index"), help: "Hardware index of the next version.") var nextHWIndex: Int64?
        @Option(name: .customLong("tag"), help: "A free KEY=VALUE tag (repeatable).") var tags: [String] = []
        @Option(help: "A comment.") var comment: String = ""
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let s = try StoreCLI.open(ws, write: true)
            var t: [String: String] = [:]
            for (k, v) in try StoreCLI.keyValues(tags, what: "--tag") { t[k] = v }
            let d = try s.addDetector(DetectorSpec(name: name, kind: kind, aliases: aliases, hardwareIndex: hwIndex,
                                                   previousHardwareIndex: prevHWIndex, nextHardwareIndex: nextHWIndex,
                                                   tags: t, comment: comment))
            if json { try printJSON(d) } else { print("added detector \(d.name) (\(d.kind), hardware index \(d.hardwareIndex.map(String.init) ?? "none"))") }
        }
    }

    struct Annotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add aliases, tags or a comment line to a detector (admin).",
            discussion: "Example: calibctl store detector annotate jf4m --alias MfxEndstation.0:Jungfrau.0 --comment 'moved to MFX'")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "Detector name or alias.") var name: String
        @Option(name: .customLong("alias"), help: "A new alias (repeatable).") var aliases: [String] = []
        @Option(name: .customLong("tag"), help: "KEY=VALUE (repeatable).") var tags: [String] = []
        @Option(help: "A comment line to append.") var comment: String?

        func run() throws {
            let s = try StoreCLI.open(ws, write: true)
            var t: [String: String] = [:]
            for (k, v) in try StoreCLI.keyValues(tags, what: "--tag") { t[k] = v }
            try s.annotateDetector(name, aliases: aliases, tags: t, comment: comment)
            print("annotated \(try s.detector(name).name)")
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one detector.",
                                                        discussion: "Example: calibctl store detector show CxiDs1.0:Jungfrau.0 --json")
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "Detector name or alias.") var name: String
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let d = try StoreCLI.open(ws).detector(name)
            if json { try printJSON(d); return }
            print("\(d.name): kind \(d.kind), hardware index \(d.hardwareIndex.map(String.init) ?? "none") (previous \(d.previousHardwareIndex.map(String.init) ?? "none"), next \(d.nextHardwareIndex.map(String.init) ?? "none"))")
            if !d.aliases.isEmpty { print("  aliases: \(d.aliases.joined(separator: ", "))") }
            for (k, v) in d.tags.sorted(by: { $0.key < $1.key }) { print("  \(k) = \(v)") }
            if !d.comment.isEmpty { print("  comment: \(d.comment)") }
        }
    }
}

struct StoreType: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "type", abstract: "Declare calibration types and their schemas.", subcommands: [Add.self])

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Declare a calibration type with the datasets its payloads must hold (admin).",
            discussion: reflow("""
            Each --dataset is NAME:DTYPES:SHAPE, with a trailing ? for an optional dataset. DTYPES: a comma list of
            float32, float64, int8..int64, uint8..uint64, or float, int, any. SHAPE: any, rankN, rankN-M, an exact
            shape with * wildcards (e.g. *x13), scalar, or like(OTHER).

            Example: calibctl store type add /calibration/ftof/attenuation --dataset length:float32:rank1 --dataset error:float32:like(length)
            """))
        @OptionGroup var ws: WorkspaceOptions
        @Argument(help: "Type name, or a CCDB-style path such as /calibration/ftof/attenuation.") var name: String
        @Option(name: .customLong("dataset"), help: "A dataset rule NAME:DTYPES:SHAPE[?] (repeatable).") var datasets: [String] = []
        @Flag(name: .customLong("allow-extra"), help: "Accept datasets the schema does not name.") var allowExtra = false
        @Option(help: "A comment.") var comment: String = ""
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let rules = try datasets.map(TypeSchema.DatasetRule.init(parsing:))
            let t = try StoreCLI.open(ws, write: true).addType(name, schema: TypeSchema(datasets: rules, allowExtra: allowExtra), comment: comment)
            if json { try printJSON(t) } else { print("added type \(t.name): \(t.schema.datasets.map(\.text).joined(separator: "  "))") }
        }
    }
}

struct StoreGrant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grant", abstract: "Let a user write, publish or administer a detector/type (admin).",
        discussion: reflow("""
        While a store has no rule, every user may write and publish; only its creator is admin. After the first
        grant, writes need a matching rule (exit 77 otherwise). Levels: write < publish < admin.

        Example: calibctl store grant alice write --detector jf4m --type pedestals
        """))
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "OS user name (or * for everyone).") var user: String
    @Argument(help: "write, publish or admin.") var permission: String
    @Option(help: "Detector name (default *: all).") var detector: String = "*"
    @Option(help: "Calibration type (default *: all).") var type: String = "*"

    func run() throws {
        guard let p = StorePermission(rawValue: permission) else {
            throw UsageError("unknown permission '\(permission)'", fix: "use write, publish or admin")
        }
        let r = try StoreCLI.open(ws, write: true).grant(user: user, permission: p, detector: detector, type: type)
        print("rule \(r.text)")
    }
}

struct StoreRevoke: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke", abstract: "Remove access rules (admin).",
        discussion: "Example: calibctl store revoke alice write --detector jf4m --type pedestals")
    @OptionGroup var ws: WorkspaceOptions
    @Argument(help: "OS user name.") var user: String
    @Argument(help: "write, publish or admin (default: every level).") var permission: String?
    @Option(help: "Detector name (default *).") var detector: String = "*"
    @Option(help: "Calibration type (default *).") var type: String = "*"

    func run() throws {
        let p = try permission.map { s -> StorePermission in
            guard let p = StorePermission(rawValue: s) else { throw UsageError("unknown permission '\(s)'", fix: "use write, publish or admin") }
            return p
        }
        let n = try StoreCLI.open(ws, write: true).revoke(user: user, permission: p, detector: detector, type: type)
        print("removed \(n) rule(s)")
    }
}
