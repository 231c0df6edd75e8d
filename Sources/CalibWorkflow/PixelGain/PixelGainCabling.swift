import CalibCore
import CalibIO
import CalibStore
import Foundation

/// The CMS pixel cabling as a versioned constant of the store (detector `sipixel`, built-in type `cabling`): one
/// payload holds the maps of every FED it covers, and a new cabling is a new IOV (docs/formats-cms-raw.md).
///
/// Payload: per entry `fed`, `link`, `roc`, `module` (index within the FED), `row_offset`, `col_offset` (int32) and
/// `layer1` (uint8); per FED `fed_id` and `fed_modules` (int32); attributes `module_rows`, `module_cols`,
/// `roc_rows`, `roc_cols`, `version`.
public enum PixelGainCabling {
    public static let type = "cabling"

    /// The payload of the maps (one per FED; the module and ROC sizes must agree).
    public static func payload(_ maps: [CMSCablingMap]) throws -> Payload {
        guard let first = maps.first else {
            throw PixelGainError.badCabling(source: "cabling", detail: "no FED map given")
        }
        let sorted = maps.sorted { $0.fed < $1.fed }
        for m in sorted where (m.moduleRows, m.moduleCols, m.rocRows, m.rocCols) != (first.moduleRows, first.moduleCols, first.rocRows, first.rocCols) {
            throw PixelGainError.badCabling(source: "FED \(m.fed)", detail: "module or ROC size differs from FED \(first.fed)'s")
        }
        if Set(sorted.map(\.fed)).count != sorted.count {
            throw PixelGainError.badCabling(source: "cabling", detail: "a FED is given twice")
        }
        var fed: [Int32] = [], link: [Int32] = [], roc: [Int32] = [], module: [Int32] = [], ro: [Int32] = [], co: [Int32] = []
        var l1: [UInt8] = []
        for m in sorted {
            for e in m.entries {
                fed.append(Int32(m.fed)); link.append(Int32(e.link)); roc.append(Int32(e.roc)); module.append(Int32(e.module))
                ro.append(Int32(e.rowOffset)); co.append(Int32(e.colOffset)); l1.append(e.layer1 ? 1 : 0)
            }
        }
        let versions = Array(Set(sorted.map(\.version))).sorted().joined(separator: ",")
        return try Payload(arrays: [
            try PayloadArray(name: "fed", values: fed), try PayloadArray(name: "link", values: link),
            try PayloadArray(name: "roc", values: roc), try PayloadArray(name: "module", values: module),
            try PayloadArray(name: "row_offset", values: ro), try PayloadArray(name: "col_offset", values: co),
            try PayloadArray(name: "layer1", values: l1),
            try PayloadArray(name: "fed_id", values: sorted.map { Int32($0.fed) }),
            try PayloadArray(name: "fed_modules", values: sorted.map { Int32($0.modules) }),
        ], attributes: [
            "module_rows": .int(Int64(first.moduleRows)), "module_cols": .int(Int64(first.moduleCols)),
            "roc_rows": .int(Int64(first.rocRows)), "roc_cols": .int(Int64(first.rocCols)), "version": .string(versions),
        ])
    }

    /// The maps of a payload, by FED. `source` names it in errors.
    public static func maps(_ p: Payload, source: String) throws -> [Int: CMSCablingMap] {
        func ints(_ name: String) throws -> [Int] {
            guard let a = p[name] else { throw PixelGainError.badCabling(source: source, detail: "no dataset \(name)") }
            return try a.values(as: Int32.self).map(Int.init)
        }
        func attr(_ name: String) throws -> Int {
            guard let v = p.attributes[name]?.intValue else {
                throw PixelGainError.badCabling(source: source, detail: "no integer attribute \(name)")
            }
            return Int(v)
        }
        let fed = try ints("fed"), link = try ints("link"), roc = try ints("roc"), module = try ints("module")
        let ro = try ints("row_offset"), co = try ints("col_offset")
        guard let l1a = p["layer1"] else { throw PixelGainError.badCabling(source: source, detail: "no dataset layer1") }
        let l1 = try l1a.values(as: UInt8.self)
        let ids = try ints("fed_id"), mods = try ints("fed_modules")
        let mr = try attr("module_rows"), mc = try attr("module_cols"), rr = try attr("roc_rows"), rc = try attr("roc_cols")
        let version: String
        if case .string(let v)? = p.attributes["version"] { version = v } else { version = "" }
        guard [link.count, roc.count, module.count, ro.count, co.count, l1.count].allSatisfy({ $0 == fed.count }),
              ids.count == mods.count else {
            throw PixelGainError.badCabling(source: source, detail: "datasets of different lengths")
        }
        var out: [Int: CMSCablingMap] = [:]
        for (f, n) in zip(ids, mods) {
            out[f] = CMSCablingMap(version: version, fed: f, modules: n, moduleRows: mr, moduleCols: mc, rocRows: rr,
                                   rocCols: rc, entries: [])
        }
        for i in fed.indices {
            guard out[fed[i]] != nil else {
                throw PixelGainError.badCabling(source: source, detail: "entry \(i) names FED \(fed[i]), which fed_id lacks")
            }
            guard (0..<(out[fed[i]]?.modules ?? 0)).contains(module[i]), ro[i] >= 0, co[i] >= 0, ro[i] + rr <= mr, co[i] + rc <= mc else {
                throw PixelGainError.badCabling(source: source, detail: "entry \(i) (FED \(fed[i]) link \(link[i]) ROC \(roc[i])) lies outside its FED's modules")
            }
            out[fed[i]]?.entries.append(.init(link: link[i], roc: roc[i], module: module[i], rowOffset: ro[i],
                                              colOffset: co[i], layer1: l1[i] != 0))
        }
        return out
    }

    /// The cabling valid for `run` in `tag` (detector sipixel, type cabling), by FED, and its payload hash.
    public static func fromStore(_ store: ConstantsStore, tag: String, run: Int) throws -> (maps: [Int: CMSCablingMap], payload: String) {
        let stored: StoredPayload
        do {
            stored = try store.get(detector: PixelGain.detector, type: type, run: Int64(run), tag: tag)
        } catch let e as DiagnosableError {
            throw PixelGainError.missingCabling(tag: tag, run: run, detail: e.message)
        }
        return (try maps(stored.payload, source: "cabling tag \(tag) payload \(stored.entry.sha256.prefix(12))"),
                stored.entry.sha256)
    }

    /// Reads `cabling_<FED>.json` files (as `calibctl simulate gain --dmp` writes them): files, or directories whose
    /// `cabling_*.json` are taken.
    public static func readJSON(_ paths: [String]) throws -> [CMSCablingMap] {
        var files: [String] = []
        for p in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
                throw PixelGainError.badCabling(source: p, detail: "no such file or directory")
            }
            if isDir.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []
                files += names.filter { $0.hasPrefix("cabling_") && $0.hasSuffix(".json") }.sorted().map { p + "/" + $0 }
            } else {
                files.append(p)
            }
        }
        if files.isEmpty { throw PixelGainError.badCabling(source: paths.joined(separator: ", "), detail: "no cabling_<FED>.json files") }
        return try files.map { f in
            guard let d = FileManager.default.contents(atPath: f) else { throw PixelGainError.badCabling(source: f, detail: "unreadable") }
            do { return try JSONDecoder().decode(CMSCablingMap.self, from: d) } catch {
                throw PixelGainError.badCabling(source: f, detail: "not a cabling map: \(error)")
            }
        }
    }
}
