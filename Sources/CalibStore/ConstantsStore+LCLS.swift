import CalibIO
import Foundation

/// What an LCLS calib-tree import or export did.
public struct LCLSTreeReport: Sendable, Codable {
    public var files: [String]
    public var skipped: [String]
}

/// The LCLS-I calibration directory, both directions:
/// `calib/<group>/<source>/<type>/<first>-<last|end>.data`, one text n-d array per file.
///
/// psana's finder (PSCalib `CalibFileFinder.py`, which the Python `Detector` interface uses) reads run numbers up
/// to ``lclsMaxRun`` (9999): `end` means 9999, a run above 9999 is looked up as 9999, and it refuses to name a file
/// with a larger run. It sorts the files by first run ascending, then by last run *descending*, and picks the last
/// file in that order whose range covers the run: the latest first run wins, and among files starting at the same
/// run the one with the smallest last run that still covers it.
extension ConstantsStore {
    /// The largest run number psana's calib-file finder handles (`CalibFile.rnum_max`).
    public static let lclsMaxRun: Int64 = 9999

    /// Writes the resolved timeline of `tag` for every single-dataset type of `detector` as `.data` files under
    /// `calibDirectory/group/source/type/`. Segments do not overlap, so psana's rule picks exactly what `get` does.
    /// - Parameters:
    ///   - group: e.g. `Jungfrau::CalibV1`; default `<Kind>::CalibV1`.
    ///   - source: the DAQ source directory; default the detector's first alias containing ':' or its name.
    public func exportLCLS(detector name: String, to calibDirectory: String, tag: String? = nil, types: [String]? = nil,
                           group: String? = nil, source: String? = nil) throws -> LCLSTreeReport {
        let d = try detector(name)
        let grp = group ?? (d.kind.prefix(1).uppercased() + d.kind.dropFirst() + "::CalibV1")
        let src = source ?? d.aliases.first { $0.contains(":") } ?? d.name
        try StoreNames.check(grp, what: "LCLS group directory")
        try StoreNames.check(src, what: "LCLS source directory")
        var report = LCLSTreeReport(files: [], skipped: [])
        let tagName = tag ?? ConstantsStore.defaultTag
        let allTags = try tags(detector: d.name)
        let typeNames = types ?? Array(Set(allTags.filter { $0.name == tagName || $0.alias == tagName }.map(\.type))).sorted()
        var payloads: [String: Payload] = [:]
        var createdDirectories = Set<String>()
        var written: [String] = []
        defer { ConstantsStore.syncFiles(written) }
        for tn in typeNames {
            let t = try type(tn)
            if t.name.hasPrefix("/") { report.skipped.append("\(tn): CCDB-style types have no LCLS directory"); continue }
            let segments = try timeline(detector: d.name, type: t.name, tag: tagName)
            // psana cannot name or find a file beyond run 9999: refuse before writing anything of this type.
            if let bad = segments.first(where: { $0.runs.first > Self.lclsMaxRun || ($0.runs.last ?? 0) > Self.lclsMaxRun }) {
                throw StoreError.bad("\(d.name)/\(t.name) tag \(tagName) has constants for runs \(bad.runs); an LCLS calib tree only holds runs 0-\(Self.lclsMaxRun) (psana's finder ignores larger run numbers)",
                                     fix: "export a tag whose ranges stay within 0-\(Self.lclsMaxRun) (an open end is fine: it becomes `end`), or read the constants from the store (`calibctl get`)")
            }
            for seg in segments {
                // Many segments share a payload: read and verify each one once.
                let p: Payload
                if let cached = payloads[seg.entry.sha256] { p = cached } else {
                    p = try readPayload(sha256: seg.entry.sha256, verify: true, context: "\(d.name)/\(t.name)")
                    payloads[seg.entry.sha256] = p
                }
                guard p.arrays.count == 1, let a = p.arrays.first else {
                    report.skipped.append("\(tn) \(seg.runs): \(p.arrays.count) datasets; an LCLS .data file holds one array")
                    continue
                }
                let dir = [calibDirectory, grp, src, t.name].joined(separator: "/")
                if !createdDirectories.contains(dir) {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    createdDirectories.insert(dir)
                }
                let file = "\(dir)/\(seg.runs.first)-\(seg.runs.last.map(String.init) ?? "end").data"
                let text = ArrayFiles.lclsText(a, comments: [
                    "TITLE      \(t.name) of \(d.name) exported by calibctl", "DETECTOR   \(src)", "CALIB_TYPE \(t.name)",
                    "PAYLOAD    \(seg.entry.sha256)", "TAG        \(tagName)", "DATE_TIME  \(seg.entry.insertedAt)",
                    "AUTHOR     \(seg.entry.provenance.user)",
                ])
                // Written to a temporary name and renamed (a reader never sees a partial file); made durable all at
                // once at the end (`syncfs`) rather than with two fsyncs per file.
                let tmp = AtomicFile.temporaryPath(for: file)
                guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)) else {
                    throw StoreError.bad("cannot write \(tmp)", fix: "check free space and write permission in \(dir)")
                }
                guard rename(tmp, file) == 0 else {
                    let e = errno
                    unlink(tmp)
                    throw StoreError.bad("cannot rename \(tmp) to \(file): \(String(cString: strerror(e)))",
                                         fix: "check write permission in \(dir)")
                }
                written.append(file)
                report.files.append(file)
            }
        }
        return report
    }

    /// Reads every `<group>/<source>/<type>/<first>-<last|end>.data` under `calibDirectory` and puts it into `tag`
    /// (created if needed), in psana's order (first run ascending, then last run descending) so that the file
    /// psana would pick for a run is the newest insertion covering it. A file whose range and content the tag
    /// already holds is skipped, so importing the same tree again adds nothing. Files psana would not read (run
    /// numbers above 9999, names that are not `FIRST-LAST.data`) are skipped and reported.
    /// The source directory must be a detector name or alias (add the DAQ source as an alias), the type directory a
    /// known type; the array becomes the type's first dataset, with the file's DTYPE or else the schema's first dtype.
    /// - Throws: ``StoreError`` (exit 65) when no file matches.
    public func importLCLS(from calibDirectory: String, tag: String? = nil, provenance: ProvenanceLinks = ProvenanceLinks(),
                           detectorFilter: String? = nil) throws -> LCLSTreeReport {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: calibDirectory, isDirectory: &isDir), isDir.boolValue else {
            throw StoreError.bad("\(calibDirectory) is not a directory", fix: "give the experiment's calib directory")
        }
        struct Item { var detector, type, path: String; var runs: RunRange }
        var items: [Item] = []
        var report = LCLSTreeReport(files: [], skipped: [])
        var unknownSources: [String] = []
        func dirs(_ p: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: p)) ?? []).filter { var d: ObjCBool = false; return fm.fileExists(atPath: p + "/" + $0, isDirectory: &d) && d.boolValue }.sorted()
        }
        for g in dirs(calibDirectory) {
            for src in dirs(calibDirectory + "/" + g) {
                guard let detID = try detectorID(src, orNil: true) else {
                    unknownSources.append(src)
                    report.skipped.append("\(g)/\(src): no detector has this name or alias (add it: `calibctl store detector annotate DET --alias '\(src)'`)")
                    continue
                }
                let det = try db.first("SELECT name FROM detectors WHERE id=?", detID)!.text("name")!
                if let detectorFilter, try detector(detectorFilter).name != det { continue }
                for tn in dirs("\(calibDirectory)/\(g)/\(src)") {
                    guard try typeID(tn, orNil: true) != nil else {
                        report.skipped.append("\(g)/\(src)/\(tn): unknown calibration type"); continue
                    }
                    let dir = "\(calibDirectory)/\(g)/\(src)/\(tn)"
                    for f in ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).sorted() where f.hasSuffix(".data") {
                        let stem = String(f.dropLast(5))
                        let parts = stem.split(separator: "-", omittingEmptySubsequences: false)
                        guard parts.count == 2, !parts[0].isEmpty, parts[0].allSatisfy({ $0.isASCII && $0.isNumber }),
                              parts[1] == "end" || (!parts[1].isEmpty && parts[1].allSatisfy({ $0.isASCII && $0.isNumber })),
                              let first = Int64(parts[0]) else {
                            report.skipped.append("\(dir)/\(f): name is not FIRST-LAST.data or FIRST-end.data"); continue
                        }
                        let last = parts[1] == "end" ? nil : Int64(parts[1])
                        guard first <= Self.lclsMaxRun, (last ?? 0) <= Self.lclsMaxRun else {
                            report.skipped.append("\(dir)/\(f): run numbers above \(Self.lclsMaxRun), which psana's finder does not read"); continue
                        }
                        guard let runs = try? RunRange(first: first, last: last) else {
                            report.skipped.append("\(dir)/\(f): reversed run range"); continue
                        }
                        items.append(Item(detector: det, type: tn, path: "\(dir)/\(f)", runs: runs))
                    }
                }
            }
        }
        guard !items.isEmpty else {
            var fix = "the tree must look like DIR/<group>/<source>/<type>/<first>-<last|end>.data"
            if let src = unknownSources.first {
                fix = "make the source directory a detector alias: `calibctl store detector annotate DET --alias '\(src)'` (or add the detector with `calibctl store detector add NAME --kind KIND --alias '\(src)'`), then import again"
            }
            throw StoreError.bad("no importable LCLS calibration file under \(calibDirectory)"
                                 + (report.skipped.isEmpty ? "" : " (skipped: \(report.skipped.prefix(3).joined(separator: "; "))\(report.skipped.count > 3 ? "; ..." : ""))"),
                                 fix: fix)
        }
        // psana order: first run ascending, then last run descending (`end` = 9999 is the largest); the file psana
        // would pick sorts last among those covering the run, so it is inserted last and wins.
        func psanaLast(_ r: RunRange) -> Int64 { Swift.min(r.last ?? Self.lclsMaxRun, Self.lclsMaxRun) }
        items.sort {
            if $0.runs.first != $1.runs.first { return $0.runs.first < $1.runs.first }
            if psanaLast($0.runs) != psanaLast($1.runs) { return psanaLast($0.runs) > psanaLast($1.runs) }
            return $0.path < $1.path
        }
        for it in items {
            let t = try type(it.type)
            guard let name = t.schema.primaryDataset, let rule = t.schema.datasets.first(where: { $0.name == name }) else { continue }
            let text = try ArrayFiles.readText(path: it.path)
            let a = try ArrayFiles.readLCLSText(text, name: name, defaultDType: rule.dtypes.first ?? .float64, source: it.path)
            let payload = try Payload(arrays: [a])
            if try lclsEntryPresent(detector: it.detector, type: it.type, tag: tag ?? ConstantsStore.defaultTag,
                                    runs: it.runs, sha: payload.contentHash) {
                report.skipped.append("\(it.path): already in the tag")
                continue
            }
            var links = provenance
            if links.comment.isEmpty { links.comment = "imported from \(it.path)" }
            try put(detector: it.detector, type: it.type, runs: it.runs, payload: payload, tag: tag,
                    provenance: links, createTag: true)
            report.files.append(it.path)
        }
        return report
    }

    /// True when the tag exists and holds an entry with exactly these runs and this payload.
    func lclsEntryPresent(detector: String, type: String, tag: String, runs: RunRange, sha: String) throws -> Bool {
        let d = try self.detector(detector), t = try self.type(type)
        guard let row = try tagRow(detectorID: d.id, typeID: t.id, name: tag) else { return false }
        return try db.first("SELECT 1 FROM iovs WHERE tag_id=? AND first_run=? AND last_run IS ? AND sha256=?",
                            row.id, runs.first, runs.last, sha) != nil
    }

    /// Makes files written without fsync durable: one `syncfs` per filesystem they are on.
    static func syncFiles(_ files: [String]) {
        guard let f = files.first else { return }
        let fd = open(f, O_RDONLY)
        guard fd >= 0 else { return }
        defer { close(fd) }
        // syncfs(2) is not exported by Glibc's Swift module; look it up, else sync(2).
        typealias SyncFS = @convention(c) (Int32) -> Int32
        if let sym = dlsym(nil, "syncfs") {
            _ = unsafeBitCast(sym, to: SyncFS.self)(fd)
        } else {
            sync()
        }
    }
}
