import CalibIO
import Foundation

/// What an LCLS calib-tree import or export did.
public struct LCLSTreeReport: Sendable, Codable {
    public var files: [String]
    public var skipped: [String]
}

/// The LCLS-I calibration directory, both directions:
/// `calib/<group>/<source>/<type>/<first>-<last|end>.data`, one text n-d array per file. psana picks, among the files
/// whose range covers the run, the one that sorts latest (by first run, then last run, `end` last).
extension ConstantsStore {
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
        for tn in typeNames {
            let t = try type(tn)
            if t.name.hasPrefix("/") { report.skipped.append("\(tn): CCDB-style types have no LCLS directory"); continue }
            for seg in try timeline(detector: d.name, type: t.name, tag: tagName) {
                let p = try readPayload(sha256: seg.entry.sha256, verify: true, context: "\(d.name)/\(t.name)")
                guard p.arrays.count == 1, let a = p.arrays.first else {
                    report.skipped.append("\(tn) \(seg.runs): \(p.arrays.count) datasets; an LCLS .data file holds one array")
                    continue
                }
                let dir = [calibDirectory, grp, src, t.name].joined(separator: "/")
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                let file = "\(dir)/\(seg.runs.first)-\(seg.runs.last.map(String.init) ?? "end").data"
                let text = ArrayFiles.lclsText(a, comments: [
                    "TITLE      \(t.name) of \(d.name) exported by calibctl", "DETECTOR   \(src)", "CALIB_TYPE \(t.name)",
                    "PAYLOAD    \(seg.entry.sha256)", "TAG        \(tagName)", "DATE_TIME  \(seg.entry.insertedAt)",
                    "AUTHOR     \(seg.entry.provenance.user)",
                ])
                try AtomicFile.write(Data(text.utf8), to: file)
                report.files.append(file)
            }
        }
        return report
    }

    /// Reads every `<group>/<source>/<type>/<first>-<last|end>.data` under `calibDirectory` and puts it into `tag`
    /// (created if needed), in psana's order so that the file psana would pick is the newest insertion.
    /// The source directory must be a detector name or alias (add the DAQ source as an alias), the type directory a
    /// known type; the array becomes the type's first dataset, with the file's DTYPE or else the schema's first dtype.
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
        func dirs(_ p: String) -> [String] {
            ((try? fm.contentsOfDirectory(atPath: p)) ?? []).filter { var d: ObjCBool = false; return fm.fileExists(atPath: p + "/" + $0, isDirectory: &d) && d.boolValue }.sorted()
        }
        for g in dirs(calibDirectory) {
            for src in dirs(calibDirectory + "/" + g) {
                guard let detID = try detectorID(src, orNil: true) else {
                    report.skipped.append("\(g)/\(src): no detector has this name or alias (add it: `calibctl store detector alias DET \(src)`)")
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
                        guard let runs = try? RunRange(parsing: stem.hasSuffix("-end") ? String(stem.dropLast(3)) : stem),
                              stem.contains("-") else {
                            report.skipped.append("\(dir)/\(f): name is not FIRST-LAST.data or FIRST-end.data"); continue
                        }
                        items.append(Item(detector: det, type: tn, path: "\(dir)/\(f)", runs: runs))
                    }
                }
            }
        }
        // psana order: later-sorting files win, so they are inserted last.
        items.sort { ($0.runs.first, $0.runs.last ?? .max) < ($1.runs.first, $1.runs.last ?? .max) }
        for it in items {
            let t = try type(it.type)
            guard let name = t.schema.primaryDataset, let rule = t.schema.datasets.first(where: { $0.name == name }) else { continue }
            let text: String
            do { text = try String(contentsOfFile: it.path, encoding: .utf8) } catch {
                throw StoreError.bad("\(it.path) is not readable UTF-8 text", fix: "check the file")
            }
            let a = try ArrayFiles.readLCLSText(text, name: name, defaultDType: rule.dtypes.first ?? .float64, source: it.path)
            var links = provenance
            if links.comment.isEmpty { links.comment = "imported from \(it.path)" }
            try put(detector: it.detector, type: it.type, runs: it.runs, payload: try Payload(arrays: [a]), tag: tag,
                    provenance: links, createTag: true)
            report.files.append(it.path)
        }
        return report
    }
}
