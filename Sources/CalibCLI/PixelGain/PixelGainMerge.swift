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

extension PixelGainWorkflow {
    struct MergeReport: Codable {
        var run: Int
        var output: String
        var feds: Int
        var modules: Int
        var pixels: Int
        var verified: Bool
        var sha256: String
    }

    /// Merges the per-FED fit outputs into one file, verifies every array against its source, and publishes it
    /// atomically. Requires every FED job to have succeeded (their result records' checksums are checked first).
    func merge(run: Int) throws -> MergeReport {
        let lay = layout(run)
        let c = try lay.load()
        let st = try jobs.engine.status(jobSet: c.jobSet)
        guard st.succeeded else {
            let failed = st.failed.map { String(Self.fed(of: $0.key)) }
            throw WorkflowError.notFinished(run: run, what: "merge", detail: failed.isEmpty
                ? "jobs are still running (\(st.summaryLine))"
                : "FED(s) \(failed.joined(separator: ", ")) failed: resubmit them with calibctl resubmit \(run)")
        }
        // The result records carry each output's SHA-256: a file changed or truncated since is refused.
        let results = try jobs.engine.results(jobSet: c.jobSet)
        for r in results {
            for o in r.outputs {
                let sha = try JobFiles.sha256(ofFile: o.path)
                guard sha == o.sha256 else {
                    throw WorkflowError.verifyFailed(path: o.path, detail: "SHA-256 \(sha.prefix(12)) differs from the job's record \(o.sha256.prefix(12))")
                }
            }
        }
        try startStepIfReady(c, Self.stepMerge, note: "merging \(c.feds.count) FED(s)")
        let F = GainScanFormat.self
        let files = try c.feds.map { try HDF5File.open(PixelGainLayout.fedOutput(c, fed: $0)) }
        let modules = try files.map { Int(try $0.attribute(F.attrModules).intValue ?? 0) }
        let rows = try Int(files.first?.attribute(F.attrRows).intValue ?? 0)
        let cols = try Int(files.first?.attribute(F.attrCols).intValue ?? 0)
        let ppm = rows * cols, M = modules.reduce(0, +), P = M * ppm
        let target = lay.merged(c)
        let tmp = AtomicFile.temporaryPath(for: target)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let out = try HDF5File.create(tmp, overwrite: true)
        try out.setAttribute(F.attrFormat, .string(GainRunFormat.kind))
        try out.setAttribute(F.attrFormatVersion, .int(GainRunFormat.version))
        try out.setAttribute(F.attrRun, .int(Int64(run)))
        try out.setAttribute(GainRunFormat.attrFEDs, .ints(c.feds.map(Int64.init)))
        try out.setAttribute(GainRunFormat.attrVCalTag, .string(c.vcalTag))
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
                guard v.count == n else { throw WorkflowError.verifyFailed(path: f.path, detail: "\(name) has \(v.count) values, expected \(n)") }
                digests[name, default: []].append(v.withUnsafeBytes { SHA256Hasher.hex($0) })
                try v.withUnsafeBufferPointer { try fds[name]!.writeRows(r, from: $0) }
            }
            for name in bytes {
                let v = try f.read(name, as: UInt8.self)
                guard v.count == n else { throw WorkflowError.verifyFailed(path: f.path, detail: "\(name) has \(v.count) values, expected \(n)") }
                digests[name, default: []].append(SHA256Hasher.hex(v))
                try v.withUnsafeBufferPointer { try fds[name]!.writeRows(r, from: $0) }
            }
            detids += try f.read(F.moduleDetID, as: Int64.self)
            moduleFED += [Int64](repeating: Int64(c.feds[i]), count: modules[i])
            first.append(Int64(offset / max(ppm, 1)))
            offset += n
        }
        try out.write(F.moduleDetID, detids)
        try out.write(GainRunFormat.moduleFED, moduleFED)
        try out.write(GainRunFormat.fedIDs, c.feds.map(Int64.init))
        try out.write(GainRunFormat.fedFirstModule, first)
        try out.write(GainRunFormat.fedModules, modules.map(Int64.init))
        for (i, r) in results.sorted(by: { $0.index < $1.index }).enumerated() where i < c.feds.count {
            if let o = r.outputs.first {
                try out.setAttribute(GainRunFormat.fedSHAPrefix + String(Self.fed(of: r.key)), .string(o.sha256), on: "/feds")
            }
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
                    throw WorkflowError.verifyFailed(path: target, detail: "\(name) of FED \(c.feds[i]) differs from its source")
                }
            }
            for name in bytes {
                let v = try check.dataset(name).readRows(offset..<(offset + n), as: UInt8.self)
                guard SHA256Hasher.hex(v) == digests[name]![i] else {
                    throw WorkflowError.verifyFailed(path: target, detail: "\(name) of FED \(c.feds[i]) differs from its source")
                }
            }
            offset += n
        }
        try check.close()
        try AtomicFile.commit(temporary: tmp, to: target)
        let sha = try JobFiles.sha256(ofFile: target)
        let mergedBytes = JobFiles.size(target) ?? 0
        try finishStep(c, Self.stepMerge, metrics: ["failed_shards": 0, "modules": Double(M), "pixels": Double(P)],
                       effort: EffortRecord(runs: 1, jobs: 0, diskBytesWritten: mergedBytes, diskBytesHeld: mergedBytes))
        return MergeReport(run: run, output: target, feds: c.feds.count, modules: M, pixels: P, verified: true, sha256: sha)
    }

    /// Starts a campaign step if it is ready (or stale with its prerequisites done); leaves it alone otherwise.
    func startStepIfReady(_ c: PixelGainRunConfig, _ step: String, note: String) throws {
        let s = try campaigns.step(step, of: c.campaign)
        if s.state == .ready { try campaigns.apply(.start, campaign: c.campaign, step: step, note: note) }
        else if s.state == .done || s.state == .awaitingValidation || s.state == .awaitingSignOff {
            try campaigns.apply(.reopen, campaign: c.campaign, step: step, note: "redone: " + note)
        }
    }

    /// Records metrics and effort on a running step and moves it on (gates decide done or awaiting sign-off).
    func finishStep(_ c: PixelGainRunConfig, _ step: String, metrics: [String: Double], effort: EffortRecord? = nil) throws {
        guard try campaigns.step(step, of: c.campaign).state == .running else { return }
        try campaigns.recordMetrics(campaign: c.campaign, step: step, metrics: metrics)
        if let effort { try campaigns.recordEffort(campaign: c.campaign, step: step, effort: effort) }
        try campaigns.apply(.done, campaign: c.campaign, step: step)
    }
}
