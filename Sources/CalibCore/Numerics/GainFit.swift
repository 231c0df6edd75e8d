import CalibIO
import Foundation

/// Quality metrics of one FED's gain fit (they become quality-gate metrics of the workflow).
public struct GainFitSummary: Codable, Sendable, Equatable {
    public var input: String
    public var output: String
    public var fed: Int
    public var run: Int
    public var modules: Int
    public var pixels: Int
    /// Pixels per status name (GainPixelStatus.description), every status present (0 if none).
    public var counts: [String: Int]
    /// Pixels with a usable fit (ok or no plateau) over all pixels.
    public var fractionGood: Double
    /// Mean and standard deviation of gain (e/ADC) and pedestal (ADC) over usable pixels.
    public var meanGain: Double
    public var rmsGain: Double
    public var meanPedestal: Double
    public var rmsPedestal: Double
    /// Mean and maximum chi2/ndf over usable pixels.
    public var meanChi2ndf: Double
    public var maxChi2ndf: Double
    public var seconds: Double
}

/// Fits a whole gain-scan file module by module with bounded memory (two module buffers: one being read while the
/// other is fitted) and writes the per-pixel results (GainScanFormat output names).
public enum GainFit {
    /// Runs the fit of one FED file. The output appears atomically. Peak memory ~ 2 x 3 x pixels/module x points x 4 B
    /// (185 MB for CMS modules) plus the per-module outputs.
    /// - Parameter conversion: VCal-to-electrons (slope, offset) per module detid, overriding the file's own
    ///   `/modules/vcal_slope` / `vcal_offset` (the workflow takes them from the store's VCal tag).
    public static func run(inputPath: String, outputPath: String, options: GainFitOptions = GainFitOptions(),
                           threads: Int = ProcessInfo.processInfo.activeProcessorCount,
                           conversion: (@Sendable (Int64) -> (slope: Double, offset: Double))? = nil) throws -> GainFitSummary {
        let t0 = Date()
        let reader = try GainScanReader(path: inputPath)
        // Injected charges of every module, checked before any output is written (NaN or non-increasing values
        // would silently spoil every pixel of the module).
        let charges = try (0..<reader.modules).map { m in
            let x = conversion.map { conv in
                let c = conv(reader.detIDs[m])
                return reader.vcal.map { Float(c.slope * Double($0) * reader.highToLow + c.offset) }
            } ?? reader.electrons(module: m)
            try reader.checkCharges(x, module: m, fromConversion: conversion != nil)
            return x
        }
        let ppm = reader.pixelsPerModule, M = reader.modules
        let F = GainScanFormat.self
        let tmp = AtomicFile.temporaryPath(for: outputPath)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let out = try HDF5File.create(tmp, overwrite: true)
        try out.setAttribute(F.attrFormat, .string(F.fitKind))
        try out.setAttribute(F.attrFormatVersion, .int(F.version))
        try out.setAttribute(F.attrFED, .int(Int64(reader.fed)))
        try out.setAttribute(F.attrRun, .int(Int64(reader.run)))
        try out.setAttribute(F.attrRows, .int(Int64(reader.rows)))
        try out.setAttribute(F.attrCols, .int(Int64(reader.cols)))
        try out.setAttribute(F.attrModules, .int(Int64(M)))
        try out.setAttribute(F.attrInput, .string(inputPath))
        try out.setAttribute(F.attrCreator, .string(CalibctlVersion.string))
        if let tag = try reader.file.attributeIfPresent(F.attrVCalTag) { try out.setAttribute(F.attrVCalTag, tag) }
        try out.write(F.moduleDetID, reader.detIDs)
        let P = reader.pixels
        let chunk = [max(ppm, 1)]
        let dg = try out.createDataset(F.gain, dtype: .float32, shape: [P], chunks: chunk)
        let dp = try out.createDataset(F.pedestal, dtype: .float32, shape: [P], chunks: chunk)
        let dc = try out.createDataset(F.chi2ndf, dtype: .float32, shape: [P], chunks: chunk)
        let dn = try out.createDataset(F.npoints, dtype: .uint8, shape: [P], chunks: chunk)
        let ds = try out.createDataset(F.status, dtype: .uint8, shape: [P], chunks: chunk)
        let dr = try out.createDataset(F.referenceStatus, dtype: .int8, shape: [P], chunks: chunk)

        // Per-pixel results of the whole file, written once at the end (14 bytes per pixel: 15 MB for the largest FED).
        let fout = UnsafeMutablePointer<Float>.allocate(capacity: 3 * max(P, 1))
        let bout = UnsafeMutablePointer<UInt8>.allocate(capacity: 2 * max(P, 1))
        defer { fout.deallocate(); bout.deallocate() }
        let all = GainFitResults(gain: fout, pedestal: fout + P, chi2ndf: fout + 2 * P, npoints: bout, status: bout + P)
        if let direct = reader.direct {
            try fitStreaming(reader, direct: direct, charges: charges, options: options, threads: threads, into: all)
        } else {
            try fitByModule(reader, charges: charges, options: options, threads: threads, into: all)
        }
        var counts = [Int](repeating: 0, count: GainPixelStatus.allCases.count)
        var acc = MomentAccumulator()
        var refs = [Int8](repeating: 0, count: P)
        for p in 0..<P {
            let s = GainPixelStatus(rawValue: all.status[p]) ?? .notANumber
            counts[Int(s.rawValue)] += 1
            refs[p] = s.referenceCode
            if s.hasUsableFit { acc.add(all.gain[p], all.pedestal[p], all.chi2ndf[p]) }
        }
        let r = 0..<P
        try dg.writeRows(r, from: UnsafeBufferPointer(start: all.gain, count: P))
        try dp.writeRows(r, from: UnsafeBufferPointer(start: all.pedestal, count: P))
        try dc.writeRows(r, from: UnsafeBufferPointer(start: all.chi2ndf, count: P))
        try dn.writeRows(r, from: UnsafeBufferPointer(start: all.npoints, count: P))
        try ds.writeRows(r, from: UnsafeBufferPointer(start: all.status, count: P))
        try refs.withUnsafeBufferPointer { try dr.writeRows(r, from: $0) }
        var summary = GainFitSummary(
            input: inputPath, output: outputPath, fed: reader.fed, run: reader.run, modules: M, pixels: P,
            counts: Dictionary(uniqueKeysWithValues: GainPixelStatus.allCases.map { ($0.description, counts[Int($0.rawValue)]) }),
            fractionGood: P > 0 ? Double(acc.count) / Double(P) : 0,
            meanGain: acc.mean(0), rmsGain: acc.std(0), meanPedestal: acc.mean(1), rmsPedestal: acc.std(1),
            meanChi2ndf: acc.mean(2), maxChi2ndf: acc.count > 0 ? acc.maxChi2 : 0, seconds: 0)
        try summary.writeAttributes(to: out)
        try out.close()
        try AtomicFile.commit(temporary: tmp, to: outputPath)
        summary.seconds = Date().timeIntervalSince(t0)
        return summary
    }
}

extension GainFit {
    /// Pixels per tile of the streaming fit: 2048 pixels x 29 points x 3 arrays = 713 kB, read from the page cache
    /// straight into a buffer that stays in the core's L2 cache and fitted there (as `cat` reads into one small
    /// buffer): the scan data go through memory once, and both cores read and fit.
    static let streamTile = 2048

    /// Contiguous float32 inputs: every (module, tile) pair is a task on `threads` workers; each task preads its
    /// pixels' n, sum and sumsq (outside HDF5's lock) into its worker's buffer and fits them.
    static func fitStreaming(_ reader: GainScanReader, direct: [HDF5DirectReader], charges: [[Float]],
                             options: GainFitOptions, threads: Int, into out: GainFitResults) throws {
        let ppm = reader.pixelsPerModule, np = reader.points, M = reader.modules
        let tile = streamTile, tilesPerModule = (ppm + tile - 1) / tile
        let buffers = BufferPool<Float>(elements: 3 * tile * np)
        let errors = ErrorBox()
        let work = M * tilesPerModule
        let task = { @Sendable (i: Int) in
            if errors.error != nil { return }
            let m = i / tilesPerModule, t = i % tilesPerModule
            let first = m * ppm + t * tile, count = min(tile, ppm - t * tile)
            let buf = buffers.take()
            defer { buffers.give(buf) }
            let c = count * np
            do {
                for a in 0..<3 {
                    try direct[a].readRows(first..<(first + count),
                                           into: UnsafeMutableRawBufferPointer(start: buf + a * c, count: 4 * c))
                }
            } catch { errors.set(error); return }
            let block = GainScanBlock(n: buf, sum: buf + c, sumsq: buf + 2 * c, pixels: count, points: np)
            let res = GainFitResults(gain: out.gain + first, pedestal: out.pedestal + first,
                                     chi2ndf: out.chi2ndf + first, npoints: out.npoints + first,
                                     status: out.status + first)
            charges[m].withUnsafeBufferPointer { x in
                _ = GainFitKernel.fitVector(block, x: x.baseAddress!, range: 0..<count, options: options, into: res)
            }
        }
        if threads <= 1 { for i in 0..<work { task(i) } } else { DispatchQueue.concurrentPerform(iterations: work, execute: task) }
        if let e = errors.error { throw e }
    }

    /// Any other layout (chunked, compressed, other dtypes): module by module through HDF5 with bounded memory, two
    /// module buffers, one being read while the other is fitted.
    static func fitByModule(_ reader: GainScanReader, charges: [[Float]], options: GainFitOptions, threads: Int,
                            into out: GainFitResults) throws {
        let ppm = reader.pixelsPerModule, np = reader.points, M = reader.modules
        let per = ppm * np
        let input = UnsafeMutablePointer<Float>.allocate(capacity: 2 * 3 * per)
        defer { input.deallocate() }
        let inBase = SendablePointer(input)
        let readQueue = DispatchQueue(label: "calibctl.gainfit.read")
        let errors = ErrorBox()
        let groups = [DispatchGroup(), DispatchGroup()]
        func startRead(_ m: Int) {
            let slot = m % 2
            groups[slot].enter()
            readQueue.async {
                defer { groups[slot].leave() }
                let b = inBase.base + slot * 3 * per
                do { try reader.readModule(m, n: b, sum: b + per, sumsq: b + 2 * per) } catch { errors.set(error) }
            }
        }
        defer { readQueue.sync {} }
        if M > 0 { startRead(0) }
        for m in 0..<M {
            let slot = m % 2
            groups[slot].wait()
            if let e = errors.error { throw e }
            if m + 1 < M { startRead(m + 1) }
            let b = input + slot * 3 * per
            let block = GainScanBlock(n: b, sum: b + per, sumsq: b + 2 * per, pixels: ppm, points: np)
            let o = m * ppm
            let res = GainFitResults(gain: out.gain + o, pedestal: out.pedestal + o, chi2ndf: out.chi2ndf + o,
                                     npoints: out.npoints + o, status: out.status + o)
            GainFitKernel.fit(block, x: charges[m], options: options, into: res, threads: threads)
        }
    }
}

/// Fixed-size buffers reused by the tasks of a concurrentPerform (one per task running at once; more are made when
/// more tasks run at once than expected). The gain fit's tiles and the dark fit's frame slices use it.
final class BufferPool<Element>: @unchecked Sendable {
    private let lock = NSLock()
    private let elements: Int
    private var free: [UnsafeMutablePointer<Element>] = []
    private var all: [UnsafeMutablePointer<Element>] = []

    init(elements: Int) { self.elements = elements }

    deinit { for b in all { b.deallocate() } }

    func take() -> UnsafeMutablePointer<Element> {
        lock.lock(); defer { lock.unlock() }
        if let b = free.popLast() { return b }
        let b = UnsafeMutablePointer<Element>.allocate(capacity: elements)
        all.append(b)
        return b
    }

    func give(_ b: UnsafeMutablePointer<Element>) {
        lock.lock(); free.append(b); lock.unlock()
    }
}

extension GainFitSummary {
    func writeAttributes(to f: HDF5File) throws {
        let p = GainScanFormat.summaryPrefix
        for (k, v) in counts { try f.setAttribute(p + "count_" + k, .int(Int64(v))) }
        try f.setAttribute(p + "fraction_good", .double(fractionGood))
        try f.setAttribute(p + "mean_gain", .double(meanGain))
        try f.setAttribute(p + "rms_gain", .double(rmsGain))
        try f.setAttribute(p + "mean_pedestal", .double(meanPedestal))
        try f.setAttribute(p + "rms_pedestal", .double(rmsPedestal))
        try f.setAttribute(p + "mean_chi2ndf", .double(meanChi2ndf))
        try f.setAttribute(p + "max_chi2ndf", .double(maxChi2ndf))
    }
}

/// Running sums in double for the summary (three quantities: gain, pedestal, chi2/ndf).
struct MomentAccumulator {
    var count = 0
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, q0 = 0.0, q1 = 0.0, q2 = 0.0
    var maxChi2 = -Double.infinity
    @inline(__always) mutating func add(_ a: Float, _ b: Float, _ c: Float) {
        let a = Double(a), b = Double(b), c = Double(c)
        count += 1
        s0 += a; s1 += b; s2 += c
        q0 += a * a; q1 += b * b; q2 += c * c
        maxChi2 = max(maxChi2, c)
    }
    private func sums(_ i: Int) -> (Double, Double) { i == 0 ? (s0, q0) : i == 1 ? (s1, q1) : (s2, q2) }
    func mean(_ i: Int) -> Double { count > 0 ? sums(i).0 / Double(count) : 0 }
    func std(_ i: Int) -> Double {
        guard count > 1 else { return 0 }
        let m = mean(i)
        return max(sums(i).1 / Double(count) - m * m, 0).squareRoot()
    }
}

/// The first error raised on a background queue.
final class ErrorBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    var error: Error? { lock.lock(); defer { lock.unlock() }; return stored }
    func set(_ e: Error) { lock.lock(); if stored == nil { stored = e }; lock.unlock() }
}
