import CalibIO
import Foundation

/// Per gain mode results of dark processing.
public struct DarkModeSummary: Codable, Sendable, Equatable {
    public var gainMode: Int
    public var frames: Int
    public var meanPedestal: Double
    public var meanRMS: Double
    public var rmsLimits: [Double]
    public var pedestalLimits: [Double]
    /// Pixels with each status bit set ("1", "2", ..., "64") and pixels with any bit ("bad").
    public var statusCounts: [String: Int]
}

/// Summary of one dark-processing run.
public struct DarkFitSummary: Codable, Sendable, Equatable {
    public var input: String
    public var output: String
    public var detector: String
    public var shape: [Int]
    public var pixels: Int
    public var modes: [DarkModeSummary]
    public var seconds: Double
    public var bytesRead: Int
    /// Conditions the constants were computed under that the user should know of (e.g. fewer frames than nrecs1).
    public var warnings: [String] = []
}

/// Two-stage gated dark statistics of an HDF5 dark run, streamed block by block (docs/numerics.md).
public enum DarkFit {
    /// Processes `inputPath` (DarkFormat) into `outputPath`. Memory: nrecs1 frames for stage 1 plus two blocks of
    /// `framesPerBlock` frames plus ~40 bytes of accumulators per pixel.
    public static func run(inputPath: String, outputPath: String, options o: DarkOptions = DarkOptions(),
                           threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> DarkFitSummary {
        let t0 = Date()
        let D = DarkFormat.self
        guard o.nrecs1 >= 1, o.nrecs >= 1, o.minFrames >= 2, o.framesPerBlock >= 1 else {
            throw NumericsError.badParameter("dark options", "need nrecs1, nrecs, frames per block >= 1 and min frames >= 2 (got \(o.nrecs1), \(o.nrecs), \(o.framesPerBlock), \(o.minFrames))",
                                             fix: "e.g. --nrecs1 50 --nrecs 1000 --min-frames 20")
        }
        let src = try DarkFrameSource(path: inputPath, options: o)
        let F = src.frames, P = src.pixels
        let shape = src.detectorShape
        let cols = shape.last!, rows = shape.count >= 2 ? shape[shape.count - 2] : 1, panels = P / max(rows * cols, 1)
        let gainBits = src.gainBits
        var optsVar = o
        optsVar.dataMask = src.dataMask
        let opts = optsVar
        let modeOf = src.modeOf
        let present = Set(modeOf)
        if let only = o.onlyGainModes {
            let missing = Set(only).subtracting(present).sorted()
            guard missing.isEmpty else {
                throw NumericsError.badInput(
                    file: inputPath, object: src.modeObject,
                    problem: "has no frames of gain mode \(missing.map(String.init).joined(separator: ", ")) (it holds gain mode(s) \(present.sorted().map(String.init).joined(separator: ", ")))",
                    fix: "give a dark run taken in that gain mode, or process only the modes it holds")
            }
        }
        let modes = present.filter { o.onlyGainModes?.contains($0) ?? true }.sorted()
        // Too few frames: refused below minFrames, a warning below nrecs1 (docs/numerics.md).
        var warnings: [String] = []
        for mode in modes {
            let count = min(modeOf.lazy.filter { $0 == mode }.count, o.nrecs)
            if count < o.minFrames {
                throw NumericsError.badInput(
                    file: inputPath, object: src.modeObject,
                    problem: "gain mode \(mode) has \(count) frame(s); stage 1 needs at least \(o.minFrames) (its 5%/95% quantile gates of fewer frames are the extreme values themselves)",
                    fix: "take a dark run with at least \(o.nrecs1) frames per gain mode (the reference takes 1000), or lower --min-frames (>= 2) knowingly")
            }
            if count < o.nrecs1 {
                warnings.append("gain mode \(mode): stage 1 gates from \(count) frames, fewer than nrecs1 = \(o.nrecs1)")
            }
        }
        let detector = src.detector
        let valueBytes = src.dataset.dtype.size

        let tmp = AtomicFile.temporaryPath(for: outputPath)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let out = try HDF5File.create(tmp, overwrite: true)
        try out.setAttribute(D.attrFormat, .string(D.resultKind))
        try out.setAttribute(D.attrFormatVersion, .int(D.version))
        try out.setAttribute(D.attrDetector, .string(detector))
        try out.setAttribute(D.attrInput, .string(inputPath))
        try out.setAttribute(D.attrCreator, .string(CalibctlVersion.string))
        if let r = src.run { try out.setAttribute(D.attrRun, r) }
        let enc = JSONEncoder(); enc.outputFormatting = .sortedKeys
        try out.setAttribute(D.attrOptions, .string(String(decoding: try enc.encode(opts), as: UTF8.self)))
        try out.write(D.gainModes, modes.map { UInt8($0) })
        let oshape = [modes.count] + shape, ochunk = [1] + shape
        let dPed = try out.createDataset(D.pedestals, dtype: .float32, shape: oshape, chunks: ochunk)
        let dRMS = try out.createDataset(D.pixelRMS, dtype: .float32, shape: oshape, chunks: ochunk)
        let dMin = try out.createDataset(D.pixelMin, dtype: .uint16, shape: oshape, chunks: ochunk)
        let dMax = try out.createDataset(D.pixelMax, dtype: .uint16, shape: oshape, chunks: ochunk)
        let dSt = try out.createDataset(D.pixelStatus, dtype: .uint16, shape: oshape, chunks: ochunk)
        let dN = try out.createDataset(D.entries, dtype: .int32, shape: oshape, chunks: ochunk)

        let B = max(1, opts.framesPerBlock)
        let gl = LargeBuffer.zeroed(Float.self, count: 3 * max(P, 1))
        defer { free(gl) }
        let gates = DarkGates(lo: gl, hi: gl + P, ref: gl + 2 * P)
        // Stage-2 frames sit `stride` elements apart in the block buffer: padding by 3 x 64 bytes keeps the 16 frame
        // streams of a block off the same cache sets (a 2^n-byte frame size would make them alias).
        // Uncompressed uint16 frames, one frame per row of the dataset (the native layout; `calibctl simulate dark`
        // and the LCLS/Jungfrau writers without compression): both stages stream pixel slices with pread, outside
        // HDF5's lock, on every core. Stage 2 takes slices of 32,768 pixels x up to 128 frames (8 MB per core, in L3).
        // Measured on the 8.4 GB Jungfrau run (`fit dark`, wall s, docs/benchmarks-numerics.md, sixth session):
        // 32,768 x 128 1.02-1.08; x 64 1.14-1.19 (accumulators read and written twice as often: +0.2 s user);
        // x 256 1.32-1.42 and 65,536 x 128 1.21-1.41 (16 MB per core: past L3); 16,384 x 128 1.14-1.28 and
        // 8,192 x 256 1.20-1.25 (smaller reads: more system time). Exact integer sums: the shape does not change results.
        let streamReader = src.frameShape.count == 1 && src.dataset.dtype == .uint16 ? HDF5DirectReader(src.dataset) : nil
        let streamTile = Stage2.streamSlice
        let streamBlock = max(B, Stage2.streamFrames)
        let pool = BufferPool<UInt16>(elements: streamBlock * (streamTile + Stage2.slicePadding))
        let stage1Pool = BufferPool<UInt16>(elements: opts.nrecs1 * (Stage1.slice + Stage2.slicePadding))
        let streaming = streamReader != nil && opts.commonMode == nil
        let stride = P + 96
        // The block-buffered path holds nrecs1 frames for stage 1 and two blocks for stage 2 (streaming needs neither).
        let blocks = LargeBuffer.zeroed(UInt16.self, count: streaming ? 1 : max(2 * B * stride, opts.nrecs1 * max(P, 1)))
        defer { free(blocks) }
        let cmGroups = opts.commonMode.map {
            DarkKernel.groupCount(panels: panels, rows: rows, cols: cols, mode: $0, bankRows: opts.bankRows, bankCols: opts.bankCols)
        } ?? 0
        let cmBuf = UnsafeMutablePointer<Float>.allocate(capacity: max(1, B * cmGroups))
        defer { cmBuf.deallocate() }
        var summaries: [DarkModeSummary] = []
        var bytesRead = 0
        let tile = 16384, tiles = (P + tile - 1) / tile
        let th = max(1, threads)
        for (gi, mode) in modes.enumerated() {
            let frameList = Array((0..<F).filter { modeOf[$0] == mode }.prefix(opts.nrecs))
            // Runs of consecutive frames, at most `limit` long.
            func runs(_ list: ArraySlice<Int>, limit: Int) -> [Range<Int>] {
                var out: [Range<Int>] = []
                for i in list {
                    if let last = out.last, last.upperBound == i, last.count < limit { out[out.count - 1] = last.lowerBound..<(i + 1) }
                    else { out.append(i..<(i + 1)) }
                }
                return out
            }
            let expected: UInt16? = gainBits ? [0, 1, 3][mode] : nil
            let acc = DarkAccumulators.allocate(pixels: P)
            defer { acc.deallocate() }
            // The exact 16-bit stage-2 path takes the gates in integer form, built once per mode.
            let integerPath = opts.commonMode == nil && opts.dataMask <= 0x3fff
            var modeGates = gates
            defer { modeGates.integer?.deallocate() }
            // Stage 1.
            let n1 = min(opts.nrecs1, frameList.count)
            // Streaming on the integer path, stage 1 also builds its slices' integer gates and accumulates their n1
            // frames while they are in cache; stage 2 then starts at frame n1.
            let fused = streaming && integerPath
            if streaming, let direct = streamReader {
                if fused { modeGates.integer = .allocate(capacity: 4 * max(1, (P + 15) / 16)) }
                try Stage1.streamed(Array(frameList.prefix(n1)), reader: direct, pixels: P, options: opts, into: modeGates,
                                    accumulate: fused ? (acc, expected) : nil, pool: stage1Pool, threads: th)
            } else {
                var off = 0
                for r in runs(frameList.prefix(n1), limit: n1) {
                    try src.read(frames: r, into: blocks + off * P)
                    off += r.count
                }
                let b1 = SendablePointer(blocks)
                DispatchQueue.concurrentPerform(iterations: tiles) { t in
                    let r = (t * tile)..<min(P, (t + 1) * tile)
                    DarkKernel.gatesVector(frames: b1.base, frameCount: n1, pixels: P, range: r, options: opts, into: gates)
                }
            }
            bytesRead += n1 * P * valueBytes
            // Stage 2, double-buffered.
            if integerPath && modeGates.integer == nil {
                modeGates.integer = DarkKernel.makeIntegerGates(gates, pixels: P, dataMask: opts.dataMask, threads: th)
            }
            let gates2 = modeGates
            let blockRuns = runs(fused ? frameList[n1...] : frameList[...], limit: streaming ? streamBlock : B)
            let stage2 = Stage2(pixels: P, options: opts, gates: gates2, accumulators: acc, expectedGain: expected, threads: th)
            if streaming, let direct = streamReader {
                bytesRead += try stage2.streamed(blockRuns, reader: direct, slicePixels: streamTile, pool: pool)
            } else {
                let cm = opts.commonMode.map {
                    CommonModeBlock(mode: $0, values: cmBuf, groupsPerFrame: cmGroups, rows: rows, cols: cols,
                                    bankRows: opts.bankRows, bankCols: opts.bankCols)
                }
                bytesRead += try stage2.buffered(blockRuns, source: src, blocks: blocks, blockFrames: B, frameStride: stride,
                                                 commonMode: cm)
            }
            let res = DarkStatus.finalize(acc, gates: gates, frames: frameList.count, options: opts)
            let rr = gi..<(gi + 1)
            try res.pedestal.withUnsafeBufferPointer { try dPed.writeRows(rr, from: $0) }
            try res.rms.withUnsafeBufferPointer { try dRMS.writeRows(rr, from: $0) }
            try dMin.writeRows(rr, from: UnsafeBufferPointer(start: acc.min, count: P))
            try dMax.writeRows(rr, from: UnsafeBufferPointer(start: acc.max, count: P))
            try res.status.withUnsafeBufferPointer { try dSt.writeRows(rr, from: $0) }
            try dN.writeRows(rr, from: UnsafeBufferPointer(start: acc.n, count: P))
            summaries.append(DarkModeSummary(gainMode: mode, frames: frameList.count, meanPedestal: res.meanPedestal,
                                             meanRMS: res.meanRMS, rmsLimits: [res.rmsLo, res.rmsHi],
                                             pedestalLimits: [res.pedLo, res.pedHi], statusCounts: res.counts))
        }
        try out.setAttribute(D.attrRMSLimits, .doubles(summaries.flatMap(\.rmsLimits)))
        try out.setAttribute(D.attrPedestalLimits, .doubles(summaries.flatMap(\.pedestalLimits)))
        try out.setAttribute(D.attrFramesPerMode, .ints(summaries.map { Int64($0.frames) }))
        try out.setAttribute(D.attrStatusCounts, .ints(summaries.flatMap { s in
            DarkStatusBit.allCases.map { Int64(s.statusCounts[String($0.rawValue)] ?? 0) } }))
        try out.close()
        try AtomicFile.commit(temporary: tmp, to: outputPath)
        return DarkFitSummary(input: inputPath, output: outputPath, detector: detector, shape: shape, pixels: P,
                              modes: summaries, seconds: Date().timeIntervalSince(t0), bytesRead: bytesRead,
                              warnings: warnings)
    }
}

/// Stage 1 of one gain mode streamed (the layout `Stage2.streamed` reads): each task reads one slice of `slice` pixels
/// of the first nrecs1 frames with pread into a buffer in its core's L2 and sets the gates of those pixels there; with
/// `accumulate` it also writes the slice's integer gates (`gates.integer`, allocated by the caller) and accumulates the
/// slice's nrecs1 frames, so stage 2 need not read them again. The whole-frame alternative read 400 MB (50 Jungfrau
/// 4M frames) on one thread through HDF5 into fresh memory first: 0.19 s of a 0.97 s run.
enum Stage1 {
    /// Pixels per slice: 50 frames x 8,192 pixels x 2 B = 800 kB.
    static let slice = 8192

    static func streamed(_ frames: [Int], reader: HDF5DirectReader, pixels P: Int, options: DarkOptions, into gates: DarkGates,
                         accumulate: (DarkAccumulators, expectedGain: UInt16?)?, pool: BufferPool<UInt16>, threads: Int) throws {
        let count = frames.count
        try Stage2.sliced(frames, pixels: P, slicePixels: slice, reader: reader, pool: pool, threads: threads) { frames, range, fs in
            let lo = range.lowerBound, n = range.count
            // The kernels' frame stride is fs.
            DarkKernel.gatesVector(frames: frames, frameCount: count, pixels: fs, range: range, options: options, into: gates)
            if let (acc, expected) = accumulate, let all = gates.integer {
                let g0 = lo / 16, g1 = (lo + n + 15) / 16   // slices start on 16-pixel groups
                DarkKernel.makeIntegerGates(gates, pixels: P, groups: g0..<g1, dataMask: options.dataMask, into: all + 4 * g0)
                DarkKernel.accumulateVector(frames: frames, frameCount: count, pixels: P, range: range,
                                            expectedGain: expected, gates: gates, commonMode: nil, options: options,
                                            into: acc, frameStride: fs)
            }
        }
    }
}

/// Stage 2 of one gain mode: the frames of a list of runs accumulated into the accumulators, by one of two
/// strategies (docs/numerics.md, "Dark processing").
struct Stage2 {
    let pixels: Int
    let options: DarkOptions
    /// The stage-1 gates, with their integer form when the exact 16-bit path applies.
    let gates: DarkGates
    let accumulators: DarkAccumulators
    let expectedGain: UInt16?
    let threads: Int

    /// Elements between one frame's slice and the next in a slice buffer beyond the slice itself: 64 bytes. Slices of
    /// 2^k pixels put the frames a power of two apart, so the kernel's 32-64 concurrent frame streams all fall in the
    /// same L1 set and evict each other (the block buffers are padded the same way).
    static let slicePadding = 32
    /// Pixels per task on the block-buffered path.
    static let tile = 16384
    /// The streamed path's slices: 32,768 pixels x (up to) 128 frames x 2 B = 8 MB per core (DarkFit.run).
    static let streamSlice = 32768
    static let streamFrames = 128

    /// The streamed path's reads alone (`streamed` without accumulating): every frame of `frames` read in slices of
    /// `streamSlice` pixels x runs of `streamFrames` frames on `threads` threads. For `bench dark`: the least time
    /// stage 2 can take reading this way. `pool` holds `streamFrames * (streamSlice + slicePadding)`-element buffers
    /// (made once by the caller, so that a timed call does not allocate them).
    static func readOnly(frames: Range<Int>, pixels P: Int, reader: HDF5DirectReader, pool: BufferPool<UInt16>,
                         threads: Int) throws {
        var f0 = frames.lowerBound
        while f0 < frames.upperBound {
            let r = f0..<Swift.min(frames.upperBound, f0 + streamFrames)
            try sliced(r, pixels: P, slicePixels: streamSlice, reader: reader, pool: pool, threads: threads) { _, _, _ in }
            f0 = r.upperBound
        }
    }

    /// The streamed paths' reading: every slice of `slicePixels` pixels is one task (on `threads` threads) that reads
    /// that slice of each of `frames` with pread (outside HDF5's lock) into a buffer from `pool` (frames `slicePadding`
    /// elements apart beyond the slice) and calls `body(frames, pixels, frameStride)`, where frame i, pixel p is at
    /// `frames + i * frameStride + p` for p in `pixels`. The first read error stops the remaining tasks and is thrown.
    static func sliced<C: Collection & Sendable>(_ frames: C, pixels P: Int, slicePixels: Int, reader: HDF5DirectReader,
                                                 pool: BufferPool<UInt16>, threads: Int,
                                                 _ body: @escaping @Sendable (UnsafePointer<UInt16>, Range<Int>, Int) -> Void) throws
    where C.Element == Int {
        let slices = (P + slicePixels - 1) / slicePixels
        let errs = ErrorBox()
        let task = { @Sendable (t: Int) in
            if errs.error != nil { return }
            let lo = t * slicePixels, n = Swift.min(P, lo + slicePixels) - lo, fs = n + slicePadding
            let buf = pool.take()
            defer { pool.give(buf) }
            do {
                for (i, fi) in frames.enumerated() {
                    try reader.read(row: fi, bytes: (2 * lo)..<(2 * (lo + n)), into: buf + i * fs)
                }
            } catch { errs.set(error); return }
            body(UnsafePointer(buf) - lo, lo..<(lo + n), fs)
        }
        perform(slices, threads: threads, task)
        if let e = errs.error { throw e }
    }

    /// Runs `task(0..<count)`: in order on this thread when `threads` is 1, else through `concurrentPerform`.
    static func perform(_ count: Int, threads: Int, _ task: @Sendable (Int) -> Void) {
        if threads == 1 { for t in 0..<count { task(t) } } else { DispatchQueue.concurrentPerform(iterations: count, execute: task) }
    }

    /// Streaming, for uncompressed uint16 frames one per dataset row: each task reads one pixel slice of every frame of
    /// a run straight from the file (`pread`, outside HDF5's lock) into a buffer that stays in its core's cache and
    /// accumulates it there. Returns the bytes read.
    func streamed(_ runs: [Range<Int>], reader: HDF5DirectReader, slicePixels: Int, pool: BufferPool<UInt16>) throws -> Int {
        let P = pixels
        var bytes = 0
        for r in runs {
            bytes += r.count * P * 2
            try Self.sliced(r, pixels: P, slicePixels: slicePixels, reader: reader, pool: pool, threads: threads) { frames, range, fs in
                DarkKernel.accumulateVector(frames: frames, frameCount: r.count, pixels: P, range: range,
                                            expectedGain: expectedGain, gates: gates, commonMode: nil, options: options,
                                            into: accumulators, frameStride: fs)
            }
        }
        return bytes
    }

    /// Block-buffered, for every other layout (compressed, other types, 2-D frames) and for common mode: blocks of
    /// `blockFrames` frames read through HDF5 on one thread while the previous block is accumulated (double
    /// buffering; frames `frameStride` apart), each block by `accumulate`. Returns the bytes read.
    func buffered(_ runs: [Range<Int>], source src: DarkFrameSource, blocks: UnsafeMutablePointer<UInt16>,
                  blockFrames B: Int, frameStride fs: Int, commonMode geometry: CommonModeBlock?) throws -> Int {
        let P = pixels, o = options
        let b1 = SendablePointer(blocks)
        let errors = ErrorBox()
        let q = DispatchQueue(label: "calibctl.dark.read")
        let groups = [DispatchGroup(), DispatchGroup()]
        func startRead(_ k: Int) {
            let slot = k % 2, r = runs[k]
            groups[slot].enter()
            q.async {
                defer { groups[slot].leave() }
                do {
                    for (i, fi) in r.enumerated() {
                        try src.read(frames: fi..<(fi + 1), into: b1.base + (slot * B + i) * fs)
                    }
                } catch { errors.set(error) }
            }
        }
        defer { q.sync {} }
        var bytes = 0
        if !runs.isEmpty { startRead(0) }
        for k in 0..<runs.count {
            let slot = k % 2
            groups[slot].wait()
            if let e = errors.error { throw e }
            if k + 1 < runs.count { startRead(k + 1) }
            let count = runs[k].count
            bytes += count * P * src.dataset.dtype.size
            let fp = SendablePointer(UnsafePointer(blocks + slot * B * fs))
            if let geo = geometry {
                let cp = SendablePointer(UnsafeMutablePointer(mutating: geo.values))
                DispatchQueue.concurrentPerform(iterations: count) { fi in
                    DarkKernel.commonMode(frames: fp.base, frame: fi, pixels: P, gates: gates, geometry: geo,
                                          options: o, into: cp.base + fi * geo.groupsPerFrame, frameStride: fs)
                }
            }
            accumulate(frames: fp.base, frameCount: count, frameStride: fs, commonMode: geometry, threads: threads)
        }
        return bytes
    }

    /// One block of frames in memory (`frameStride` apart) accumulated on every core, in tiles of `tile` pixels read
    /// in place (the integer kernel prefetches its frame streams; `DarkKernel.prefetchDistance`). `tiles` limits the
    /// tiles (the bench's one-thread figure).
    func accumulate(frames: UnsafePointer<UInt16>, frameCount: Int, frameStride fs: Int, commonMode geometry: CommonModeBlock?,
                    threads th: Int, tiles limit: Int? = nil) {
        let P = pixels, o = options
        let fp = SendablePointer(frames)
        let n = limit ?? (P + Self.tile - 1) / Self.tile
        let task = { @Sendable (t: Int) in
            DarkKernel.accumulateVector(frames: fp.base, frameCount: frameCount, pixels: P,
                                        range: (t * Self.tile)..<min(P, (t + 1) * Self.tile), expectedGain: expectedGain,
                                        gates: gates, commonMode: geometry, options: o, into: accumulators, frameStride: fs)
        }
        Self.perform(n, threads: th, task)
    }
}
