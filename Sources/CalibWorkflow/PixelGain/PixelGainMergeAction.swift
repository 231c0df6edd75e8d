import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// Every path and attribute of the merged run file (`gain_run<RUN>.h5`, the `hadd` step). docs/formats.md.
enum GainRunFormat {
    static let kind = "calibctl.gain_run"
    static let version: Int64 = 1
    static let attrFEDs = "feds"
    static let attrVCalTag = "vcal_tag"
    static let moduleFED = "/modules/fed"          // [M] int64
    static let fedIDs = "/feds/id"                 // [F] int64
    static let fedFirstModule = "/feds/first_module" // [F] int64
    static let fedModules = "/feds/modules"        // [F] int64
    /// Per FED, on /feds: `sha256_<fed>` of the FED's fit file as merged.
    static let fedSHAPrefix = "sha256_"
}

/// `action: {builtin: pixel-gain-merge, per: campaign}` (inline): merges the per-FED fits of the `gain-fit` step into
/// `gain_run<RUN>.h5` (in parameter `output`, else the step directory), the `hadd` step. Every FED output is checked
/// against the SHA-256 its job recorded; the merged file is written under a temporary name, read back and compared
/// slice by slice with its sources, then renamed into place (output `merged`). Metrics: `feds`, `modules`, `pixels`.
public struct PixelGainMergeAction: WorkflowAction {
    public static let actionName = "pixel-gain-merge"
    public var name: String { Self.actionName }
    public var mode: ActionMode { .inline }
    public init() {}

    public func runInline(unit: WorkUnit, context: ActionContext) throws -> InlineResult {
        let run = PixelGain.run(context)
        let fits = try context.outputs(of: PixelGain.stepFit).filter { $0.name == "fit" }
            .map { (fed: PixelGain.fed(of: $0.unit), path: $0.path, sha256: $0.sha256) }
            .sorted { $0.fed < $1.fed }
        guard !fits.isEmpty else {
            throw PixelGainError.notFinished(run: run, what: "merge", detail: "step \(PixelGain.stepFit) recorded no FED fits")
        }
        // The result records carry each output's SHA-256: a file changed or truncated since is refused.
        for f in fits {
            let sha = try JobFiles.sha256(ofFile: f.path)
            guard sha == f.sha256 else {
                throw PixelGainError.verifyFailed(path: f.path, detail: "SHA-256 \(sha.prefix(12)) differs from the job's record \(f.sha256.prefix(12))")
            }
        }
        let dir = try PixelGain.outputDirectory(context, fallback: context.stepDirectory)
        let target = dir + "/gain_run\(run).h5"
        let (modules, pixels) = try Self.merge(run: run, vcalTag: context.param(PixelGain.Param.vcalTag) ?? "", fits: fits,
                                               target: target)
        return InlineResult(metrics: ["feds": Double(fits.count), "modules": Double(modules), "pixels": Double(pixels)],
                            outputs: ["merged": target],
                            message: "merged \(fits.count) FED(s), \(modules) modules, \(pixels) pixels -> \(target) (verified)")
    }

    /// Merges `fits` into `target` atomically and verifies it; returns the module and pixel counts.
    static func merge(run: Int, vcalTag: String, fits: [(fed: Int, path: String, sha256: String)],
                      target: String) throws -> (modules: Int, pixels: Int) {
        let feds = fits.map(\.fed)
        let F = GainScanFormat.self
        let files = try fits.map { try HDF5File.open($0.path) }
        let modules = try files.map { Int(try $0.attribute(F.attrModules).intValue ?? 0) }
        let rows = try Int(files.first?.attribute(F.attrRows).intValue ?? 0)
        let cols = try Int(files.first?.attribute(F.attrCols).intValue ?? 0)
        let ppm = rows * cols, M = modules.reduce(0, +), P = M * ppm
        let tmp = AtomicFile.temporaryPath(for: target)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let out = try HDF5File.create(tmp, overwrite: true)
        try out.setAttribute(F.attrFormat, .string(GainRunFormat.kind))
        try out.setAttribute(F.attrFormatVersion, .int(GainRunFormat.version))
        try out.setAttribute(F.attrRun, .int(Int64(run)))
        try out.setAttribute(GainRunFormat.attrFEDs, .ints(feds.map(Int64.init)))
        try out.setAttribute(GainRunFormat.attrVCalTag, .string(vcalTag))
        try out.setAttribute(F.attrRows, .int(Int64(rows)))
        try out.setAttribute(F.attrCols, .int(Int64(cols)))
        try out.setAttribute(F.attrModules, .int(Int64(M)))
        try out.setAttribute(F.attrCreator, .string(CalibctlVersion.string))
        let chunk = [max(ppm, 1)]
        let floats = [F.gain, F.pedestal, F.chi2ndf], bytes = [F.npoints, F.status]
        var fds: [String: HDF5Dataset] = [:]
        for n in floats { fds[n] = try out.createDataset(n, dtype: .float32, shape: [P], chunks: chunk) }
        for n in bytes { fds[n] = try out.createDataset(n, dtype: .uint8, shape: [P], chunks: chunk) }
        var detids: [Int64] = [], moduleFED: [Int64] = [], first: [Int64] = []
        var digests: [String: [String]] = [:]   // per array, per FED: SHA-256 of the source slice
        var offset = 0
        for (i, f) in files.enumerated() {
            let n = modules[i] * ppm
            let r = offset..<(offset + n)
            for name in floats {
                let v = try f.read(name, as: Float.self)
                guard v.count == n else { throw PixelGainError.verifyFailed(path: f.path, detail: "\(name) has \(v.count) values, expected \(n)") }
                digests[name, default: []].append(v.withUnsafeBytes { SHA256Hasher.hex($0) })
                try v.withUnsafeBufferPointer { try fds[name]!.writeRows(r, from: $0) }
            }
            for name in bytes {
                let v = try f.read(name, as: UInt8.self)
                guard v.count == n else { throw PixelGainError.verifyFailed(path: f.path, detail: "\(name) has \(v.count) values, expected \(n)") }
                digests[name, default: []].append(SHA256Hasher.hex(v))
                try v.withUnsafeBufferPointer { try fds[name]!.writeRows(r, from: $0) }
            }
            detids += try f.read(F.moduleDetID, as: Int64.self)
            moduleFED += [Int64](repeating: Int64(feds[i]), count: modules[i])
            first.append(Int64(offset / max(ppm, 1)))
            offset += n
        }
        try out.write(F.moduleDetID, detids)
        try out.write(GainRunFormat.moduleFED, moduleFED)
        try out.write(GainRunFormat.fedIDs, feds.map(Int64.init))
        try out.write(GainRunFormat.fedFirstModule, first)
        try out.write(GainRunFormat.fedModules, modules.map(Int64.init))
        for f in fits {
            try out.setAttribute(GainRunFormat.fedSHAPrefix + String(f.fed), .string(f.sha256), on: "/feds")
        }
        fds.removeAll()
        try out.close()

        // Verify: read the merged file back and compare every FED slice of every array with its source digest.
        let check = try HDF5File.open(tmp)
        offset = 0
        for (i, _) in files.enumerated() {
            let n = modules[i] * ppm
            for name in floats {
                let v = try check.dataset(name).readRows(offset..<(offset + n), as: Float.self)
                guard v.withUnsafeBytes({ SHA256Hasher.hex($0) }) == digests[name]![i] else {
                    throw PixelGainError.verifyFailed(path: target, detail: "\(name) of FED \(feds[i]) differs from its source")
                }
            }
            for name in bytes {
                let v = try check.dataset(name).readRows(offset..<(offset + n), as: UInt8.self)
                guard SHA256Hasher.hex(v) == digests[name]![i] else {
                    throw PixelGainError.verifyFailed(path: target, detail: "\(name) of FED \(feds[i]) differs from its source")
                }
            }
            offset += n
        }
        try check.close()
        try AtomicFile.commit(temporary: tmp, to: target)
        return (M, P)
    }
}
