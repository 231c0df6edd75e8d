import CalibCore
import CalibIO
import Foundation

/// What an import did.
public struct ImportReport: Sendable, Codable {
    public var source: String
    public var detector: String
    public var detectorCreated: Bool
    public var typesCreated: [String]
    public var tagsCreated: [String]
    public var payloadsAdded: Int
    public var entriesAdded: Int
    public var entriesAlreadyPresent: Int
    /// Entries added to a tag that already existed here: inserted at the import time (their provenance keeps the
    /// original time), so no answer given before the import changes.
    public var entriesRetimed: Int = 0
    /// Global tags created (every detector they name is now in the store).
    public var globalTagsCreated: [String] = []
    /// Global tags waiting for other detectors' bundles (import those, then this bundle again or any of them).
    public var globalTagsDeferred: [String] = []
}

/// Portable per-detector bundles: one self-consistent HDF5 file `<detname>-<detid>.h5` holding the detector, the
/// types it uses, its tags, every validity entry with provenance, and every payload (docs/formats-store.md).
extension ConstantsStore {
    /// Writes the bundle of one detector into `directory`; returns its path.
    @discardableResult
    public func exportBundle(detector name: String, to directory: String) throws -> String {
        let d = try detector(name)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = (directory as NSString).appendingPathComponent(d.bundleStem + ".h5")
        let tmp = AtomicFile.temporaryPath(for: path)
        defer { unlink(tmp) }
        let f = try HDF5File.create(tmp, overwrite: true)
        try f.setAttribute(StoreFormat.attrFormat, .string(StoreFormat.bundleFormat))
        try f.setAttribute(StoreFormat.attrFormatVersion, .int(StoreFormat.bundleFormatVersion))
        try f.setAttribute(StoreFormat.attrCalibctlVersion, .string(CalibctlVersion.string))
        try f.setAttribute("detector", .string(d.name))
        try f.setAttribute("exported_at", .string(StoreTime.format(StoreTime.now())))
        try f.setAttribute("exported_by", .string(identity.user))
        let dg = StoreFormat.bundleDetectorGroup
        try f.createGroup(dg)
        try f.setAttribute("name", .string(d.name), on: dg)
        try f.setAttribute("kind", .string(d.kind), on: dg)
        if let v = d.hardwareIndex { try f.setAttribute("hw_index", .int(v), on: dg) }
        if let v = d.previousHardwareIndex { try f.setAttribute("prev_hw_index", .int(v), on: dg) }
        if let v = d.nextHardwareIndex { try f.setAttribute("next_hw_index", .int(v), on: dg) }
        try f.setAttribute("aliases", .string(d.aliases.joined(separator: "\n")), on: dg)
        try f.setAttribute("tags_json", .string(try ConstantsStore.json(d.tags)), on: dg)
        try f.setAttribute("comment", .string(d.comment), on: dg)

        let tagList = try tags(detector: d.name)
        let typeNames = Array(Set(tagList.map(\.type))).sorted()
        try f.createGroup(StoreFormat.bundleTypesGroup)
        for (i, tn) in typeNames.enumerated() {
            let t = try type(tn), g = "\(StoreFormat.bundleTypesGroup)/\(i)"
            try f.createGroup(g)
            try f.setAttribute("name", .string(t.name), on: g)
            try f.setAttribute("schema_json", .string(try ConstantsStore.json(t.schema)), on: g)
            try f.setAttribute("comment", .string(t.comment), on: g)
        }
        try f.createGroup(StoreFormat.bundleTagsGroup)
        for (i, t) in tagList.enumerated() {
            let g = "\(StoreFormat.bundleTagsGroup)/\(i)"
            let r = try db.first("SELECT * FROM tags WHERE id=?", t.id)!
            try f.createGroup(g)
            try f.setAttribute("name", .string(t.name), on: g)
            try f.setAttribute("type", .string(t.type), on: g)
            if let a = t.alias { try f.setAttribute("alias", .string(a), on: g) }
            try f.setAttribute("state", .string(t.state.rawValue), on: g)
            try f.setAttribute("comment", .string(t.comment), on: g)
            try f.setAttribute("created_at_us", .int(r.int("created_at_us")!), on: g)
            try f.setAttribute("created_by", .string(t.createdBy), on: g)
            try f.setAttribute("state_changed_at_us", .int(r.int("state_changed_at_us")!), on: g)
            try f.setAttribute("state_changed_by", .string(t.stateChangedBy), on: g)
        }
        try f.createGroup(StoreFormat.bundlePayloadsGroup)
        try f.createGroup(StoreFormat.bundleIOVsGroup)
        var written = Set<String>()
        for (i, e) in try entries(detector: d.name).enumerated() {
            if !written.contains(e.sha256) {
                let p = try readPayload(sha256: e.sha256, verify: true, context: "\(e.detector)/\(e.type)")
                try PayloadFile.write(p, sha256: e.sha256, to: f, group: "\(StoreFormat.bundlePayloadsGroup)/\(e.sha256)")
                written.insert(e.sha256)
            }
            let g = String(format: "%@/%08d", StoreFormat.bundleIOVsGroup, i)
            try f.createGroup(g)
            let attrs: [(String, AttributeValue?)] = [
                ("type", .string(e.type)), ("tag", .string(e.tag)), ("first_run", .int(e.runs.first)),
                ("last_run", e.runs.last.map { .int($0) }), ("open_ended", .int(e.runs.isOpenEnded ? 1 : 0)),
                ("sha256", .string(e.sha256)), ("inserted_at_us", .int(e.insertedAtMicroseconds)),
                ("inserted_at", .string(e.insertedAt)), ("prov_user", .string(e.provenance.user)),
                ("prov_host", .string(e.provenance.host)), ("prov_command_line", .string(e.provenance.commandLine)),
                ("prov_software_version", .string(e.provenance.softwareVersion)),
                ("prov_at_us", .int(e.provenance.atMicroseconds)), ("prov_comment", .string(e.provenance.links.comment)),
                ("prov_campaign", e.provenance.links.campaign.map { .string($0) }),
                ("prov_step", e.provenance.links.step.map { .string($0) }),
                ("prov_job", e.provenance.links.job.map { .string($0) }),
                ("prov_input_runs", e.provenance.links.inputRuns.map { .string($0) }),
            ]
            for (k, v) in attrs { if let v { try f.setAttribute(k, v, on: g) } }
        }
        // Every global tag that names this detector, complete (all its entries), so it can be re-created once all
        // its detectors are imported.
        try f.createGroup(StoreFormat.bundleGlobalTagsGroup)
        let gts = try globalTags().filter { $0.entries.contains { $0.detector == d.name } }
        for (i, g) in gts.enumerated() {
            let grp = "\(StoreFormat.bundleGlobalTagsGroup)/\(i)"
            let r = try db.first("SELECT created_at_us FROM global_tags WHERE id=?", g.id)!
            try f.createGroup(grp)
            try f.setAttribute("name", .string(g.name), on: grp)
            try f.setAttribute("as_of_us", .int(g.asOfMicroseconds), on: grp)
            try f.setAttribute("comment", .string(g.comment), on: grp)
            try f.setAttribute("created_at_us", .int(r.int("created_at_us")!), on: grp)
            try f.setAttribute("created_by", .string(g.createdBy), on: grp)
            try f.setAttribute("entries", .string(g.entries.map { "\($0.detector)\t\($0.type)\t\($0.tag)" }.joined(separator: "\n")), on: grp)
        }
        try f.close()
        try AtomicFile.commit(temporary: tmp, to: path)
        return path
    }

    /// Imports a bundle. Everything is checked first (format, every payload's hash, schemas, tag states); then the
    /// payload files are written and all rows are inserted in one transaction, so a refused import changes nothing.
    /// Entries already present (same tag, runs, payload, insertion time) are skipped, so importing twice is harmless.
    @discardableResult
    public func importBundle(_ path: String) throws -> ImportReport {
        try requirePermission(.admin, detector: "*", type: "*", action: "import \(path)")
        let f: HDF5File
        do { f = try HDF5File.open(path) } catch let e as HDF5Error {
            throw StoreError.bad("bundle \(path) cannot be opened: \(e.detail)", fix: "export it again; a bundle is one complete HDF5 file")
        }
        func fail(_ m: String) -> StoreError { StoreError.bad("bundle \(path): \(m)", fix: "export it again from the source store") }
        do {
            guard try f.attributeIfPresent(StoreFormat.attrFormat)?.stringValue == StoreFormat.bundleFormat else {
                throw fail("not a calibctl bundle (no format=\(StoreFormat.bundleFormat) attribute)")
            }
            let version = try f.attributeIfPresent(StoreFormat.attrFormatVersion)?.intValue ?? 0
            guard version <= StoreFormat.bundleFormatVersion else { throw fail("bundle format version \(version) is newer than this calibctl") }
            func s(_ k: String, _ g: String) throws -> String {
                guard let v = try BundleAttributes.string(f, k, g) else { throw fail("\(g) lacks attribute \(k)") }
                return v
            }
            func i(_ k: String, _ g: String) throws -> Int64? { try BundleAttributes.int(f, k, g) }
            let dg = StoreFormat.bundleDetectorGroup
            let tagsJSON = try s("tags_json", dg)
            let spec = DetectorSpec(name: try s("name", dg), kind: try s("kind", dg),
                                    aliases: try s("aliases", dg).split(separator: "\n").map(String.init),
                                    hardwareIndex: try i("hw_index", dg), previousHardwareIndex: try i("prev_hw_index", dg),
                                    nextHardwareIndex: try i("next_hw_index", dg),
                                    tags: (try? JSONDecoder().decode([String: String].self, from: Data(tagsJSON.utf8))) ?? [:],
                                    comment: try s("comment", dg))
            try StoreNames.check(spec.name, what: "detector name")
            var types: [(String, TypeSchema, String)] = []
            for n in try f.children(of: StoreFormat.bundleTypesGroup) {
                let g = "\(StoreFormat.bundleTypesGroup)/\(n)"
                guard let schema = try? JSONDecoder().decode(TypeSchema.self, from: Data(try s("schema_json", g).utf8)) else { throw fail("\(g) has an unreadable schema") }
                types.append((try s("name", g), schema, try s("comment", g)))
            }
            struct TagIn { var name, type, state, comment, createdBy, changedBy: String; var alias: String?; var created, changed: Int64 }
            var tagsIn: [TagIn] = []
            for n in try f.children(of: StoreFormat.bundleTagsGroup) {
                let g = "\(StoreFormat.bundleTagsGroup)/\(n)"
                let st = try s("state", g)
                guard TagState(rawValue: st) != nil else { throw fail("\(g) has unknown state \(st)") }
                tagsIn.append(TagIn(name: try s("name", g), type: try s("type", g), state: st, comment: try s("comment", g),
                                    createdBy: try s("created_by", g), changedBy: try s("state_changed_by", g),
                                    alias: try f.attributeIfPresent("alias", on: g)?.stringValue,
                                    created: try i("created_at_us", g) ?? 0, changed: try i("state_changed_at_us", g) ?? 0))
            }
            var payloads: [String: Payload] = [:]
            for sha in try f.children(of: StoreFormat.bundlePayloadsGroup) {
                do {
                    payloads[sha] = try PayloadFile.read(from: f, group: "\(StoreFormat.bundlePayloadsGroup)/\(sha)", expectedSHA256: sha)
                } catch let e as DiagnosableError { throw fail("payload \(sha.prefix(12)): \(e.message)") }
            }
            struct IOVIn { var type, tag, sha: String; var runs: RunRange; var at: Int64; var prov: Provenance }
            var iovs: [IOVIn] = []
            for n in try f.children(of: StoreFormat.bundleIOVsGroup) {
                let g = "\(StoreFormat.bundleIOVsGroup)/\(n)"
                let sha = try s("sha256", g)
                guard payloads[sha] != nil else { throw fail("\(g) names payload \(sha.prefix(12)), which the bundle lacks") }
                let opt = { (k: String) in try f.attributeIfPresent(k, on: g)?.stringValue }
                let links = ProvenanceLinks(comment: try s("prov_comment", g), campaign: try opt("prov_campaign"),
                                            step: try opt("prov_step"), job: try opt("prov_job"), inputRuns: try opt("prov_input_runs"))
                let pat = try i("prov_at_us", g) ?? 0
                let prov = Provenance(user: try s("prov_user", g), host: try s("prov_host", g),
                                      commandLine: try s("prov_command_line", g), softwareVersion: try s("prov_software_version", g),
                                      at: StoreTime.format(pat), atMicroseconds: pat, links: links)
                let runs: RunRange
                do { runs = try RunRange(first: try i("first_run", g) ?? -1, last: try i("open_ended", g) == 1 ? nil : try i("last_run", g)) }
                catch { throw fail("\(g) has a bad run range") }
                guard let at = try i("inserted_at_us", g) else { throw fail("\(g) lacks inserted_at_us") }
                iovs.append(IOVIn(type: try s("type", g), tag: try s("tag", g), sha: sha, runs: runs, at: at, prov: prov))
            }
            struct GTIn { var name, comment, createdBy: String; var asOf, created: Int64; var entries: [GlobalTag.Entry] }
            var gtsIn: [GTIn] = []
            if f.exists(StoreFormat.bundleGlobalTagsGroup) {
                for n in try f.children(of: StoreFormat.bundleGlobalTagsGroup) {
                    let g = "\(StoreFormat.bundleGlobalTagsGroup)/\(n)"
                    let entries = try s("entries", g).split(separator: "\n").map { line -> GlobalTag.Entry in
                        let p = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                        guard p.count == 3 else { throw fail("\(g) has a malformed entry '\(line)'") }
                        return GlobalTag.Entry(detector: p[0], type: p[1], tag: p[2])
                    }
                    gtsIn.append(GTIn(name: try s("name", g), comment: try s("comment", g), createdBy: try s("created_by", g),
                                      asOf: try i("as_of_us", g) ?? 0, created: try i("created_at_us", g) ?? 0, entries: entries))
                }
            }
            // The name rules of the command line apply to everything a bundle names: a crafted bundle must not
            // add a tag or alias that no command could create.
            do {
                for a in spec.aliases { try StoreNames.check(a, what: "detector alias") }
                try StoreNames.check(spec.kind, what: "detector kind")
                for t in tagsIn {
                    try StoreNames.check(t.name, what: "tag name")
                    try StoreNames.checkType(t.type)
                    if let a = t.alias { try StoreNames.check(a, what: "tag alias") }
                }
                for (n, schema, _) in types {
                    try StoreNames.checkType(n)
                    for r in schema.datasets { try StoreNames.check(r.name, what: "dataset name") }
                }
                for e in iovs { try StoreNames.check(e.tag, what: "tag name"); try StoreNames.checkType(e.type) }
                for g in gtsIn {
                    try StoreNames.check(g.name, what: "global tag name")
                    for e in g.entries {
                        try StoreNames.check(e.detector, what: "detector name")
                        try StoreNames.checkType(e.type)
                        try StoreNames.check(e.tag, what: "tag name")
                    }
                }
            } catch let e as StoreError {
                throw StoreError(.badData, "bundle \(path): \(e.message)", fix: "a bundle written by `calibctl store export` holds only valid names; this one was made or changed by something else")
            }
            // Check against what the store holds, before any change.
            for (n, schema, _) in types {
                try StoreNames.checkType(n)
                if try typeID(n, orNil: true) != nil {
                    guard try type(n).schema == schema else {
                        throw fail("type \(n) has a different schema here than in the bundle")
                    }
                }
            }
            if let existing = try detectorID(spec.name, orNil: true) {
                let d = try detector(spec.name)
                guard d.id == existing, d.name == spec.name, d.kind == spec.kind, d.hardwareIndex == spec.hardwareIndex else {
                    throw fail("detector \(spec.name) exists here with kind \(try detector(spec.name).kind) and hardware index \(d.hardwareIndex.map(String.init) ?? "none"); the bundle has \(spec.kind), \(spec.hardwareIndex.map(String.init) ?? "none")")
                }
            }
            // Payload files first (outside the lock), then one transaction for every row.
            var temporaries: [String: String] = [:]
            defer { for t in temporaries.values { unlink(t) } }
            for (sha, p) in payloads where !(try payloadIntact(sha)) { temporaries[sha] = try writeTemporary(p, sha: sha) }
            var report = ImportReport(source: path, detector: spec.name, detectorCreated: false, typesCreated: [], tagsCreated: [],
                                      payloadsAdded: temporaries.count, entriesAdded: 0, entriesAlreadyPresent: 0)
            try write {
                let now = try transactionTime()
                var detID = try detectorID(spec.name, orNil: true)
                if detID == nil {
                    try db.run("INSERT INTO detectors(name, kind, hw_index, prev_hw_index, next_hw_index, comment, created_at_us, created_by) VALUES(?,?,?,?,?,?,?,?)",
                               spec.name, spec.kind, spec.hardwareIndex, spec.previousHardwareIndex, spec.nextHardwareIndex, spec.comment, now, identity.user)
                    detID = db.lastInsertRowID
                    for a in spec.aliases where try detectorID(a, orNil: true) == nil {
                        try db.run("INSERT INTO detector_aliases(alias, detector_id) VALUES(?,?)", a, detID)
                    }
                    for (k, v) in spec.tags { try db.run("INSERT INTO detector_tags VALUES(?,?,?)", detID, k, v) }
                    report.detectorCreated = true
                }
                for (n, schema, comment) in types where try typeID(n, orNil: true) == nil {
                    try db.run("INSERT INTO calib_types(name, schema_json, builtin, comment, created_at_us, created_by) VALUES(?,?,0,?,?,?)",
                               n, try ConstantsStore.json(schema), comment, now, identity.user)
                    report.typesCreated.append(n)
                }
                var tagIDsByKey: [String: TagRow] = [:]
                // Tags this import creates take the bundle's entries with their original insertion times (no
                // global tag or as-of answer can name them yet); tags that already exist get the import time.
                var createdTags = Set<Int64>()
                for t in tagsIn {
                    let tid = try typeID(t.type)
                    if let row = try tagRow(detectorID: detID!, typeID: tid, name: t.name) {
                        tagIDsByKey["\(t.type)\t\(t.name)"] = row
                    } else {
                        try db.run("INSERT INTO tags(name, detector_id, type_id, alias, state, comment, created_at_us, created_by, state_changed_at_us, state_changed_by) VALUES(?,?,?,?,?,?,?,?,?,?)",
                                   t.name, detID, tid, t.alias, t.state, t.comment, t.created, t.createdBy, t.changed, t.changedBy)
                        // Rows are inserted raw below; the imported tag keeps its state and its history.
                        tagIDsByKey["\(t.type)\t\(t.name)"] = TagRow(id: db.lastInsertRowID, name: t.name, state: .open, alias: t.alias)
                        createdTags.insert(db.lastInsertRowID)
                        report.tagsCreated.append("\(t.type)/\(t.name)")
                    }
                }
                for (sha, tmp) in temporaries {
                    try installPayload(temporary: tmp, sha: sha)
                    temporaries[sha] = nil
                }
                for (sha, p) in payloads { try insertPayloadRow(p, sha: sha, at: now) }
                for e in iovs {
                    guard let tag = tagIDsByKey["\(e.type)\t\(e.tag)"] else { throw fail("entry names tag \(e.type)/\(e.tag), which the bundle lacks") }
                    // Present: the same insertion, here with its original time or re-timed by an earlier import
                    // (which kept the original provenance time).
                    if try db.first("""
                        SELECT 1 FROM iovs i JOIN provenance p ON p.id = i.provenance_id
                        WHERE i.tag_id=? AND i.first_run=? AND i.last_run IS ? AND i.sha256=?
                          AND (i.inserted_at_us=? OR p.at_us=?)
                        """, tag.id, e.runs.first, e.runs.last, e.sha, e.at, e.prov.atMicroseconds) != nil {
                        report.entriesAlreadyPresent += 1
                        continue
                    }
                    if tag.state != .open {
                        throw StoreError(.state, "bundle \(path): tag \(e.type)/\(e.tag) exists here as \(tag.state.rawValue) and lacks entry \(e.runs) -> \(e.sha.prefix(12))",
                                         fix: "import into a store without that tag, or reopen it first")
                    }
                    let who = Identity(user: e.prov.user, host: e.prov.host, commandLine: e.prov.commandLine)
                    let pid = try insertProvenance(links: e.prov.links, at: e.prov.atMicroseconds, identity: who,
                                                   softwareVersion: e.prov.softwareVersion)
                    // Into a tag that existed before this import, a past insertion time would change answers already
                    // given (a global tag, an as-of lookup): the entry is inserted now; its provenance keeps the
                    // original time.
                    let at = createdTags.contains(tag.id) ? e.at : now
                    if at != e.at { report.entriesRetimed += 1 }
                    try db.run("INSERT INTO iovs(tag_id, first_run, last_run, sha256, inserted_at_us, provenance_id) VALUES(?,?,?,?,?,?)",
                               tag.id, e.runs.first, e.runs.last, e.sha, at, pid)
                    report.entriesAdded += 1
                }
                for g in gtsIn {
                    if let existing = try? globalTag(g.name) {
                        guard existing.asOfMicroseconds == g.asOf, Set(existing.entries.map { "\($0.detector)\t\($0.type)\t\($0.tag)" }) == Set(g.entries.map { "\($0.detector)\t\($0.type)\t\($0.tag)" }) else {
                            throw fail("global tag \(g.name) exists here with a different mapping or as-of time; global tags are immutable")
                        }
                        continue
                    }
                    var ids: [(Int64, Int64, Int64)] = []
                    for e in g.entries {
                        guard let d = try detectorID(e.detector, orNil: true), let t = try typeID(e.type, orNil: true),
                              let tag = try tagRow(detectorID: d, typeID: t, name: e.tag) else { break }
                        ids.append((d, t, tag.id))
                    }
                    guard ids.count == g.entries.count else {
                        let missing = Set(g.entries.map(\.detector)).filter { (try? detectorID($0, orNil: true)) == nil }.sorted()
                        report.globalTagsDeferred.append("\(g.name) (needs \(missing.isEmpty ? "tags not yet imported" : missing.joined(separator: ", ")))")
                        continue
                    }
                    let id = (try db.first("SELECT COALESCE(MAX(id), 0) + 1 AS n FROM global_tags")?.int("n")) ?? 1
                    for v in ids {
                        try db.run("INSERT INTO global_tag_entries(global_tag_id, detector_id, type_id, tag_id) VALUES(?,?,?,?)", id, v.0, v.1, v.2)
                    }
                    try db.run("INSERT INTO global_tags(id, name, as_of_us, comment, created_at_us, created_by) VALUES(?,?,?,?,?,?)",
                               id, g.name, g.asOf, g.comment, g.created, g.createdBy)
                    report.globalTagsCreated.append(g.name)
                }
            }
            return report
        } catch let e as HDF5Error {
            throw fail("unreadable (\(e.detail)); is it truncated?")
        }
    }
}

enum BundleAttributes {
    static func string(_ f: HDF5File, _ k: String, _ g: String) throws -> String? {
        try f.attributeIfPresent(k, on: g)?.stringValue
    }
    static func int(_ f: HDF5File, _ k: String, _ g: String) throws -> Int64? {
        try f.attributeIfPresent(k, on: g)?.intValue
    }
}
