import Foundation

extension GainScanSimulator {
    /// The calibration configuration the simulator's dumps use: `injections` triggers per point, its VCal values,
    /// rows partitioned by row mod min(rocRows, 10) and columns by column mod min(rocCols, 13) (so every pixel is
    /// injected once per trigger of its pattern, and an event holds ~1/130 of a FED: < 16,384 words).
    public func calibConfiguration() -> CMSCalibConfiguration {
        let rr = rows / 2, rc = cols / 8
        let rp = max(1, min(rr, 10)), cp = max(1, min(rc, 13))
        return CMSCalibConfiguration(nTriggers: injections, vcal: vcal.map { Int($0) },
                                     rowPatterns: (0..<rp).map { i in Array(stride(from: i, to: rr, by: rp)) },
                                     colPatterns: (0..<cp).map { i in Array(stride(from: i, to: rc, by: cp)) })
    }

    /// Raw-dump corruptions (`simulate gain --dmp --corrupt`).
    public struct DumpCorruptions: Sendable {
        /// A timeout error word (ROC code 29) on link 1 in every `errorEvery`-th event.
        public var errorEvery = 97
        /// Link 2, ROC 1 is stuck: it sends a hit at row 0, column 0 in every event.
        public var stuckChannel = true
        /// The last block loses its last words and its trailer.
        public var truncate = true
        public init() {}
    }

    /// Writes `GainCalibration_<fed>_<run>.dmp` (and `calib.json`, `cabling_<fed>.json`) into `directory` from the same
    /// truth as `write(directory:feds:...)`: every reading of every pixel becomes a hit of the trigger it was taken in
    /// (docs/formats-cms-raw.md). Module rows must be even and columns a multiple of 8 (2 x 8 ROCs), ROCs at most
    /// 80 x 52. Returns the dump path.
    @discardableResult
    public func writeDump(directory: String, fed: Int, modules: Int, corruptions: DumpCorruptions? = nil,
                          threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws -> String {
        guard rows % 2 == 0, cols % 8 == 0, rows / 2 <= 80, cols / 8 <= 52, modules <= 24 else {
            throw NumericsError.badParameter("raw dump", "needs 2 x 8 ROCs of at most 80 x 52 per module and <= 24 modules (rows \(rows), cols \(cols), modules \(modules))",
                                             fix: "use --rows 160 --cols 416 (or e.g. 16 x 32) and at most 24 modules per FED")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let calib = calibConfiguration()
        let cabling = CMSCablingMap.standard(fed: fed, modules: modules, moduleRows: rows, moduleCols: cols)
        let enc = JSONEncoder(); enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try enc.encode(calib).write(to: URL(fileURLWithPath: directory + "/calib.json"), options: .atomic)
        try enc.encode(cabling).write(to: URL(fileURLWithPath: directory + "/cabling_\(fed).json"), options: .atomic)

        let ppm = pixelsPerModule, np = vcal.count, inj = injections
        let first = CMSPixelTopology.modules(fed: fed) > 0 ? CMSPixelTopology.firstModule(fed: fed) : 0
        // Every reading of the FED (modules x pixels x points x injections bytes) and the entries per point.
        var readings = [UInt8](repeating: 0, count: modules * ppm * np * inj)
        var entries = [Float](repeating: 0, count: modules * ppm * np)
        readings.withUnsafeMutableBufferPointer { rb in
            entries.withUnsafeMutableBufferPointer { eb in
                let r = SendablePointer(rb.baseAddress!), e = SendablePointer(eb.baseAddress!)
                DispatchQueue.concurrentPerform(iterations: modules) { m in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * ppm * np + 4 * ppm)
                    let kinds = UnsafeMutablePointer<UInt8>.allocate(capacity: ppm)
                    defer { scratch.deallocate(); kinds.deallocate() }
                    let s = scratch, q = scratch + ppm * np, t = scratch + 2 * ppm * np
                    generateModule(globalModule: first + m, n: e.base + m * ppm * np, sum: s, sumsq: q, truthGain: t,
                                   truthPedestal: t + ppm, truthPlateau: t + 2 * ppm, truthNoise: t + 3 * ppm,
                                   truthKind: kinds, readings: r.base + m * ppm * np * inj)
                }
            }
        }
        let path = directory + "/GainCalibration_\(fed)_\(run).dmp"
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: nil), let fh = FileHandle(forWritingAtPath: tmp) else {
            throw NumericsError.badParameter("raw dump", "cannot write \(tmp)", fix: "check the output directory")
        }
        defer { try? fh.close(); try? FileManager.default.removeItem(atPath: tmp) }
        var out: [UInt64] = [UInt64(UInt32(truncatingIfNeeded: run))]
        out.reserveCapacity(1 << 20)
        func flush() throws {
            try out.withUnsafeBytes { try fh.write(contentsOf: Data($0)) }
            out.removeAll(keepingCapacity: true)
        }
        var pending: UInt32? = nil
        func hit(_ x: UInt32) {
            if let p = pending { out.append(UInt64(p) | UInt64(x) << 32); pending = nil } else { pending = x }
        }
        let events = calib.expectedEvents
        for ev in 1...events {
            let loc = calib.locate(event: ev)!
            let (rp, cp) = calib.patternParts(loc.pattern)
            let start = out.count
            out.append(0x5000_0000_0000_0000 | UInt64(ev & 0xFF_FFFF) << 32 | UInt64(fed & 0xFFF) << 8)
            for entry in cabling.entries {
                let base = entry.module * ppm
                for r in calib.rowPatterns[rp] { for c in calib.colPatterns[cp] {
                    let p = base + (entry.rowOffset + r) * cols + entry.colOffset + c
                    let k = loc.point
                    guard loc.injection < Int(entries[p * np + k]) else { continue }
                    let adc = UInt32(readings[(p * np + k) * inj + loc.injection])
                    let pxid = UInt32(2 * (80 - r) + (c & 1)), dcol = UInt32(c / 2)
                    hit(UInt32(entry.link) << 26 | UInt32(entry.roc) << 21 | dcol << 16 | pxid << 8 | adc)
                } }
                if let cor = corruptions {
                    if cor.stuckChannel && entry.link == 2 && entry.roc == 1 { hit(2 << 26 | 1 << 21 | 0 << 16 | 160 << 8 | 77) }
                    if cor.errorEvery > 0 && ev % cor.errorEvery == 0 && entry.link == 1 && entry.roc == 1 {
                        hit(1 << 26 | 29 << 21 | 0x1234)
                    }
                }
            }
            if let p = pending { out.append(UInt64(p)); pending = nil }
            let length = UInt64(out.count - start + 1)
            out.append(0xA000_0000_0000_0000 | (length & 0x3FFF) << 32)
            if out.count > 1 << 20 { try flush() }
        }
        if corruptions?.truncate == true { out.removeLast(min(3, out.count - 1)) }
        try flush()
        try fh.close()
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
        try FileManager.default.moveItem(atPath: tmp, toPath: path)
        return path
    }
}
