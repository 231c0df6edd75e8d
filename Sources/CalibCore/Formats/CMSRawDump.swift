import CalibIO
import Foundation

/// The calibration configuration of a scan (what CMSSW keeps as SiPixelCalibConfiguration and the pixel online
/// software as calib.dat): triggers per point, VCal values, row and column patterns (docs/formats-cms-raw.md).
public struct CMSCalibConfiguration: Codable, Sendable, Equatable {
    public var mode = "GainCalibration"
    /// Triggers (injections) per VCal point and pattern.
    public var nTriggers: Int
    public var vcal: [Int]
    /// Each pattern: the ROC rows (columns) injected.
    public var rowPatterns: [[Int]]
    public var colPatterns: [[Int]]

    public init(nTriggers: Int, vcal: [Int], rowPatterns: [[Int]], colPatterns: [[Int]]) {
        self.nTriggers = nTriggers; self.vcal = vcal; self.rowPatterns = rowPatterns; self.colPatterns = colPatterns
    }

    public var patternSize: Int { nTriggers * vcal.count }
    public var patterns: Int { rowPatterns.count * colPatterns.count }
    public var expectedEvents: Int { patternSize * patterns }

    /// Event e (1-based) -> (pattern, VCal index, injection), nil outside the scan. calibctl counts events from 1
    /// throughout: pattern = (e - 1) / patternSize (docs/formats-cms-raw.md on CMSSW's e / patternSize).
    @inline(__always)
    public func locate(event e: Int) -> (pattern: Int, point: Int, injection: Int)? {
        guard e >= 1, e <= expectedEvents else { return nil }
        let r = (e - 1) % patternSize
        return ((e - 1) / patternSize, r / nTriggers, r % nTriggers)
    }

    /// Row and column pattern of a pattern number: column pattern = p mod (column patterns), row pattern = p / that.
    public func patternParts(_ p: Int) -> (row: Int, col: Int) { (p / colPatterns.count, p % colPatterns.count) }
}

/// The cabling of one FED: (link, ROC id) -> module (index within the FED file) and the ROC's first row and column in
/// the module. Versioned: a new cabling is a new constant (docs/formats-cms-raw.md).
public struct CMSCablingMap: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        public var link: Int
        public var roc: Int
        public var module: Int
        public var rowOffset: Int
        public var colOffset: Int
        /// BPix layer 1: hit words carry row (7 bits) and column (6 bits) instead of double column and pixel id.
        public var layer1 = false
        public init(link: Int, roc: Int, module: Int, rowOffset: Int, colOffset: Int, layer1: Bool = false) {
            self.link = link; self.roc = roc; self.module = module; self.rowOffset = rowOffset; self.colOffset = colOffset
            self.layer1 = layer1
        }
    }
    public var version: String
    public var fed: Int
    public var modules: Int
    public var moduleRows: Int
    public var moduleCols: Int
    public var rocRows: Int
    public var rocCols: Int
    public var entries: [Entry]

    public init(version: String, fed: Int, modules: Int, moduleRows: Int, moduleCols: Int, rocRows: Int, rocCols: Int,
                entries: [Entry]) {
        self.version = version; self.fed = fed; self.modules = modules; self.moduleRows = moduleRows
        self.moduleCols = moduleCols; self.rocRows = rocRows; self.rocCols = rocCols; self.entries = entries
    }

    /// The standard layout: 2 x 8 ROCs per module on two links (link 2m+1: ROCs 1-8 of rows 0..rocRows-1, link 2m+2:
    /// the upper half), ROC ids 1-8 left to right.
    public static func standard(fed: Int, modules: Int, moduleRows: Int, moduleCols: Int, version: String = "v1") -> CMSCablingMap {
        let rr = moduleRows / 2, rc = moduleCols / 8
        var e: [Entry] = []
        for m in 0..<modules { for half in 0..<2 { for r in 0..<8 {
            e.append(Entry(link: 2 * m + 1 + half, roc: r + 1, module: m, rowOffset: half * rr, colOffset: r * rc))
        } } }
        return CMSCablingMap(version: version, fed: fed, modules: modules, moduleRows: moduleRows, moduleCols: moduleCols,
                             rocRows: rr, rocCols: rc, entries: e)
    }
}

/// Per-FED anomaly counts of a raw dump. None is skipped silently.
public struct CMSDumpAnomalies: Codable, Sendable, Equatable {
    /// Words read while looking for a FED header (data corruption between blocks).
    public var wordsBeforeHeader = 0
    /// Blocks without a trailer at the end of the file (truncated file).
    public var truncatedBlocks = 0
    /// Error words by ROC code (26 gap, 27 dummy, 28 FIFO nearly full, 29 timeout, 30 trailer, 31 event number).
    public var errorWords: [String: Int] = [:]
    /// Hits of pixels the event's pattern did not inject (e.g. a stuck channel).
    public var hitsOutsidePattern = 0
    /// Headers whose event number is below the previous one.
    public var eventsOutOfOrder = 0
    /// Events with a number outside 1...expected events of the calibration configuration.
    public var eventsOutsideScan = 0
    /// Hits from a (link, ROC) that the cabling map does not have.
    public var unknownChannel = 0
    /// Hit words with an impossible pixel address (double column > 25, pixel id outside 2-161, outside the ROC).
    public var invalidAddress = 0
    /// Headers of another FED id.
    public var fedMismatch = 0

    public init() {}

    /// Every anomaly (error words included).
    public var total: Int {
        wordsBeforeHeader + truncatedBlocks + errorWords.values.reduce(0, +) + hitsOutsidePattern + eventsOutOfOrder
            + eventsOutsideScan + unknownChannel + invalidAddress + fedMismatch
    }
}

/// What decoding one FED dump found.
public struct CMSDumpSummary: Codable, Sendable, Equatable {
    public var file: String
    public var fed: Int
    public var run: Int
    public var blocks: Int
    public var events: Int
    public var hits: Int
    /// 32-bit all-zero padding words (not anomalies).
    public var fillWords: Int
    public var bytes: Int
    public var anomalies: CMSDumpAnomalies
    public var seconds: Double
}

/// Decoder of the per-FED raw dump of a gain scan (`GainCalibration_<FED>_<RUN>.dmp`, docs/formats-cms-raw.md):
/// streams the file in 8 MB pieces and accumulates n, sum and sum of squares per pixel and VCal point, in the
/// gain-scan layout ([pixel][point] float32), so the existing fit reads the result. Memory: the accumulators
/// (3 x pixels x points x 4 B) and one read buffer, independent of the file size.
public final class CMSDumpDecoder {
    public let calib: CMSCalibConfiguration
    public let cabling: CMSCablingMap
    public let pixels: Int
    public let points: Int
    /// n, sum, sum of squares of (pixel, point) side by side (one cache line per hit instead of three).
    var acc: [Float]
    var table: [Int32]          // (link << 5 | roc) -> entry index or -1
    var entryBase: [Int32]      // entry -> module * pixels + rowOffset * cols + colOffset
    var entryLayer1: [Bool]
    var patternMask: [UInt8]    // [pattern][rocRow][rocCol]: 1 if injected
    /// The pattern tile: the injected rows (columns) of each row (column) pattern within a ROC, and each ROC row's
    /// (column's) position in its pattern's list (-1: not injected), [rowPattern][rocRow] ([colPattern][rocCol]).
    var rowLists: [[Int]], colLists: [[Int]]
    var rowPos: [Int32], colPos: [Int32]
    /// Local pixels of one pattern: entries x max rows x max columns of any pattern.
    let maxRows: Int, maxCols: Int, tilePixels: Int
    /// Whether hits go through the pattern tile (n, sum, sum2 of the current pattern's pixels, [point][local pixel],
    /// a few MB that stay in cache, added to the accumulators when the pattern changes) instead of straight into the
    /// accumulators. Off when the tile would exceed `maxTileBytes` (patterns covering most of the FED).
    public let usesTile: Bool
    public static let maxTileBytes = 64 << 20

    /// The accumulated entries, sums and sums of squares ([pixel][point] each).
    public var n: [Float] { stride(from: 0, to: acc.count, by: 3).map { acc[$0] } }
    public var sum: [Float] { stride(from: 1, to: acc.count, by: 3).map { acc[$0] } }
    public var sumsq: [Float] { stride(from: 2, to: acc.count, by: 3).map { acc[$0] } }

    /// `tile: false` accumulates every hit straight into the accumulators (the benchmark's comparison).
    public init(calib: CMSCalibConfiguration, cabling: CMSCablingMap, tile: Bool = true) throws {
        guard calib.nTriggers > 0, !calib.vcal.isEmpty, !calib.rowPatterns.isEmpty, !calib.colPatterns.isEmpty else {
            throw NumericsError.badParameter("calibration configuration", "needs nTriggers > 0, VCal values and row and column patterns",
                                             fix: "write it as `calibctl simulate gain --dmp` does (docs/formats-cms-raw.md)")
        }
        self.calib = calib; self.cabling = cabling
        pixels = cabling.modules * cabling.moduleRows * cabling.moduleCols
        points = calib.vcal.count
        acc = [Float](repeating: 0, count: 3 * pixels * points)
        table = [Int32](repeating: -1, count: 64 * 32)
        for (i, e) in cabling.entries.enumerated() where (0..<64).contains(e.link) && (0..<32).contains(e.roc) {
            table[e.link << 5 | e.roc] = Int32(i)
        }
        let ppm = cabling.moduleRows * cabling.moduleCols
        entryBase = cabling.entries.map { Int32($0.module * ppm + $0.rowOffset * cabling.moduleCols + $0.colOffset) }
        entryLayer1 = cabling.entries.map(\.layer1)
        let rr = max(cabling.rocRows, 1), rc = max(cabling.rocCols, 1)
        patternMask = [UInt8](repeating: 0, count: calib.patterns * rr * rc)
        for p in 0..<calib.patterns {
            let (r, c) = calib.patternParts(p)
            for row in calib.rowPatterns[r] where (0..<rr).contains(row) {
                for col in calib.colPatterns[c] where (0..<rc).contains(col) { patternMask[(p * rr + row) * rc + col] = 1 }
            }
        }
        func unique(_ xs: [Int], below n: Int) -> [Int] {
            var seen = Set<Int>(), out: [Int] = []
            for x in xs where (0..<n).contains(x) && seen.insert(x).inserted { out.append(x) }
            return out
        }
        rowLists = calib.rowPatterns.map { unique($0, below: rr) }
        colLists = calib.colPatterns.map { unique($0, below: rc) }
        rowPos = [Int32](repeating: -1, count: rowLists.count * rr)
        colPos = [Int32](repeating: -1, count: colLists.count * rc)
        for (p, l) in rowLists.enumerated() { for (i, r) in l.enumerated() { rowPos[p * rr + r] = Int32(i) } }
        for (p, l) in colLists.enumerated() { for (i, c) in l.enumerated() { colPos[p * rc + c] = Int32(i) } }
        maxRows = rowLists.map(\.count).max() ?? 0
        maxCols = colLists.map(\.count).max() ?? 0
        tilePixels = cabling.entries.count * maxRows * maxCols
        usesTile = tile && tilePixels > 0 && tilePixels * points * 3 * 4 <= Self.maxTileBytes
    }

    @inline(__always) static func isHeader(_ w: UInt64) -> Bool { w & 0xFF00_0000_0000_000F == 0x5000_0000_0000_0000 }
    @inline(__always) static func isTrailer(_ w: UInt64) -> Bool { w & 0xFFFF_C000_0000_F00F == 0xA000_0000_0000_0000 }

    /// Decodes `path` into the accumulators (adding to what is there).
    public func decode(path: String, expectedFED: Int) throws -> CMSDumpSummary {
        let t0 = Date()
        guard let fh = FileHandle(forReadingAtPath: path) else {
            throw NumericsError.badInput(file: path, object: "file", problem: "cannot be opened",
                                         fix: "check the path of the .dmp file")
        }
        defer { try? fh.close() }
        var an = CMSDumpAnomalies()
        var errors = [Int](repeating: 0, count: 32)
        var run = -1, blocks = 0, events = 0, hits = 0, fill = 0, bytes = 0
        var inBlock = false, first = true, skipEvent = false
        var lastEvent = -1
        var maskBase = 0, point = 0
        let mc = cabling.moduleCols, np = points
        let rocRows = cabling.rocRows, rocCols = cabling.rocCols
        let chunk = 1 << 20  // words (8 MB)
        var carry = Data()
        let tileCount = usesTile ? tilePixels * np * 3 : 0
        let tile = UnsafeMutablePointer<Float>.allocate(capacity: max(tileCount, 1))
        tile.initialize(repeating: 0, count: max(tileCount, 1))
        defer { tile.deallocate() }
        let useTile = usesTile, maxR = maxRows, maxC = maxCols, tp = tilePixels
        var tilePattern = -1, rowBase = 0, colBase = 0, pointBase = 0
        try acc.withUnsafeMutableBufferPointer { ab in
        try table.withUnsafeBufferPointer { tb in
        try entryBase.withUnsafeBufferPointer { eb in
        try entryLayer1.withUnsafeBufferPointer { l1 in
        try patternMask.withUnsafeBufferPointer { pm in
        try rowPos.withUnsafeBufferPointer { rpos in
        try colPos.withUnsafeBufferPointer { cpos in
        let a = ab.baseAddress!
        // Adds the tile of pattern `p` to the accumulators and clears it.
        // The current pattern's table (double column << 8 | pixel id) -> place in a ROC's part of the tile
        // (row position x max columns + column position), -1 not injected by the pattern, -2 impossible address.
        let ptab = UnsafeMutablePointer<Int32>.allocate(capacity: 1 << 13)
        defer { ptab.deallocate() }
        let rocTile = maxR * maxC
        func buildPixelTable(_ rowBase: Int, _ colBase: Int) {
            for key in 0..<(1 << 13) {
                let dcol = key >> 8, pxid = key & 0xFF
                var v: Int32 = -2
                if dcol <= 25 && pxid >= 2 && pxid <= 161 {
                    let col = 2 * dcol + (pxid & 1), row = 80 - pxid >> 1
                    if row < rocRows && col < rocCols {
                        let i = Int(rpos[rowBase + row]), j = Int(cpos[colBase + col])
                        v = i < 0 || j < 0 ? -1 : Int32(i * maxC + j)
                    }
                }
                ptab[key] = v
            }
        }
        // (tile pixel, accumulator pixel) pairs of the pattern being flushed.
        var pairs: [(Int, Int)] = []
        pairs.reserveCapacity(tp)
        func flush(_ p: Int) {
            guard p >= 0 else { return }
            let (r, c) = calib.patternParts(p)
            let rows = rowLists[r], cols = colLists[c]
            pairs.removeAll(keepingCapacity: true)
            for ei in 0..<eb.count {
                let base = Int(eb[ei])
                for (i, row) in rows.enumerated() {
                    for (j, col) in cols.enumerated() {
                        pairs.append(((ei &* maxR &+ i) &* maxC &+ j, (base &+ row &* mc &+ col) &* np))
                    }
                }
            }
            // Point by point: the tile is read in order, and the accumulator lines of the pattern's pixels (one per
            // pixel and a few points) stay in cache from one point to the next.
            pairs.withUnsafeBufferPointer { pb in
                for k in 0..<np {
                    let t = tile + k &* tp &* 3
                    for (l, pix) in pb {
                        let s = t + l &* 3, d = a + (pix &+ k) &* 3
                        d[0] += s[0]; d[1] += s[1]; d[2] += s[2]
                    }
                }
            }
            tile.update(repeating: 0, count: tileCount)
        }
        while true {
            guard var data = try fh.read(upToCount: chunk * 8), !data.isEmpty else { break }
            bytes += data.count
            if !carry.isEmpty { data = carry + data; carry = Data() }
            let whole = data.count / 8 * 8
            if whole < data.count { carry = data.subdata(in: whole..<data.count) }
            data.withUnsafeBytes { raw in
                var blockHits = 0
                let count = whole / 8
                for wi in 0..<count {
                    let w = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: wi &* 8, as: UInt64.self))
                    if inBlock {
                        if Self.isTrailer(w) { inBlock = false; continue }
                        if skipEvent { continue }
                        var half = 0
                        while half < 2 {
                            let x = UInt32(truncatingIfNeeded: half == 0 ? w : w >> 32)
                            half += 1
                            if x == 0 { fill += 1; continue }
                            let roc = Int((x >> 21) & 31), link = Int(x >> 26)
                            if roc > 25 { errors[roc] += 1; continue }
                            let ei = Int(tb[link << 5 | roc])
                            if ei < 0 { an.unknownChannel += 1; continue }
                            if useTile && !l1[ei] {
                                // Fast path: (double column, pixel id) -> the pixel's place in the pattern's tile.
                                let v = Int(ptab[Int((x >> 8) & 0x1FFF)])
                                if v < 0 {
                                    if v == -1 { an.hitsOutsidePattern += 1 } else { an.invalidAddress += 1 }
                                    continue
                                }
                                let adc = Float(x & 0xFF)
                                let idx = (pointBase &+ ei &* rocTile &+ v) &* 3
                                tile[idx] += 1; tile[idx &+ 1] += adc; tile[idx &+ 2] = tile[idx &+ 2].addingProduct(adc, adc)
                                blockHits &+= 1
                                continue
                            }
                            var row: Int, col: Int
                            if l1[ei] {
                                row = Int((x >> 8) & 0x7F); col = Int((x >> 15) & 0x3F)
                            } else {
                                let dcol = Int((x >> 16) & 31), pxid = Int((x >> 8) & 0xFF)
                                if dcol > 25 || pxid < 2 || pxid > 161 { an.invalidAddress += 1; continue }
                                col = 2 &* dcol &+ (pxid & 1); row = 80 &- pxid >> 1
                            }
                            if row >= rocRows || col >= rocCols { an.invalidAddress += 1; continue }
                            let adc = Float(x & 0xFF)
                            if useTile {
                                let i = Int(rpos[rowBase &+ row]), j = Int(cpos[colBase &+ col])
                                if i < 0 || j < 0 { an.hitsOutsidePattern += 1; continue }
                                let idx = (pointBase &+ (ei &* maxR &+ i) &* maxC &+ j) &* 3
                                tile[idx] += 1; tile[idx &+ 1] += adc; tile[idx &+ 2] = tile[idx &+ 2].addingProduct(adc, adc)
                            } else {
                                if pm[maskBase &+ row &* rocCols &+ col] == 0 { an.hitsOutsidePattern += 1; continue }
                                let idx = ((Int(eb[ei]) &+ row &* mc &+ col) &* np &+ point) &* 3
                                a[idx] += 1; a[idx &+ 1] += adc; a[idx &+ 2] = a[idx &+ 2].addingProduct(adc, adc)
                            }
                            blockHits &+= 1
                        }
                        continue
                    }
                    if Self.isHeader(w) {
                        first = false
                        inBlock = true; blocks += 1
                        let ev = Int((w >> 32) & 0xFF_FFFF), fed = Int((w >> 8) & 0xFFF)
                        if fed != expectedFED { an.fedMismatch += 1 }
                        if ev < lastEvent { an.eventsOutOfOrder += 1 }
                        if ev != lastEvent { events += 1 }
                        lastEvent = ev
                        if let loc = calib.locate(event: ev) {
                            skipEvent = false
                            maskBase = loc.pattern &* rocRows &* rocCols; point = loc.point
                            if useTile {
                                let (r, c) = calib.patternParts(loc.pattern)
                                rowBase = r &* rocRows; colBase = c &* rocCols; pointBase = loc.point &* tp
                                if loc.pattern != tilePattern {
                                    flush(tilePattern); tilePattern = loc.pattern
                                    buildPixelTable(rowBase, colBase)
                                }
                            }
                        } else { skipEvent = true; an.eventsOutsideScan += 1 }
                        continue
                    }
                    if first { first = false; run = Int(w & 0xFFFF_FFFF); continue }
                    an.wordsBeforeHeader += 1
                }
                hits += blockHits
            }
        }
        if !carry.isEmpty || inBlock { an.truncatedBlocks += 1 }
        flush(tilePattern)
        } } } } } } }
        for (code, c) in errors.enumerated() where c > 0 { an.errorWords[String(code)] = c }
        return CMSDumpSummary(file: path, fed: expectedFED, run: run, blocks: blocks, events: events, hits: hits,
                              fillWords: fill, bytes: bytes, anomalies: an, seconds: Date().timeIntervalSince(t0))
    }
}

/// Raw dump -> calibctl gain scan (GainScanFormat), the input of `GainFit`.
public enum CMSRawDump {
    /// Decodes `dumpPath` with the calibration configuration and cabling and writes the gain-scan file `outputPath`
    /// (VCal conversion per module from CMSPixelTopology for the FED's modules, `radiationCorrection`). Refuses
    /// (exit 65, naming the FED and the counts) when anomalies exceed `maxAnomalyFraction` of the hits; nil: the
    /// caller judges the counts (the engine's fit job reports them as metrics first).
    public static func convert(dumpPath: String, calib: CMSCalibConfiguration, cabling: CMSCablingMap,
                               outputPath: String, radiationCorrection: Double = 1.06,
                               maxAnomalyFraction: Double? = 0.001) throws -> CMSDumpSummary {
        let dec = try CMSDumpDecoder(calib: calib, cabling: cabling)
        let s = try dec.decode(path: dumpPath, expectedFED: cabling.fed)
        if let limit = maxAnomalyFraction, let e = anomalyError(s, maxAnomalyFraction: limit) { throw e }
        try write(decoder: dec, summary: s, dumpPath: dumpPath, outputPath: outputPath, radiationCorrection: radiationCorrection)
        return s
    }

    /// True when the anomalies of `s` exceed `maxAnomalyFraction` of its hits.
    public static func exceeds(_ s: CMSDumpSummary, maxAnomalyFraction: Double) -> Bool {
        Double(s.anomalies.total) > maxAnomalyFraction * Double(max(s.hits, 1))
    }

    /// Every count of `a` in one line (the reason of a refused FED).
    public static func describe(_ a: CMSDumpAnomalies) -> String {
        "words before header \(a.wordsBeforeHeader), truncated blocks \(a.truncatedBlocks), error words \(a.errorWords.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")), hits outside pattern \(a.hitsOutsidePattern), events out of order \(a.eventsOutOfOrder), events outside scan \(a.eventsOutsideScan), unknown channel \(a.unknownChannel), invalid address \(a.invalidAddress), FED mismatch \(a.fedMismatch)"
    }

    /// The refusal of a FED whose anomalies exceed the limit (nil: within it).
    public static func anomalyError(_ s: CMSDumpSummary, maxAnomalyFraction: Double) -> NumericsError? {
        guard exceeds(s, maxAnomalyFraction: maxAnomalyFraction) else { return nil }
        return NumericsError.badInput(
            file: s.file, object: "FED \(s.fed)",
            problem: "\(s.anomalies.total) anomalies in \(s.hits) hits (limit \(maxAnomalyFraction)): \(describe(s.anomalies))",
            fix: "retake or repair the dump of this FED, or raise --max-anomalies knowingly")
    }

    /// The anomaly counts of one FED as metrics (`anomaly_*`, `anomalies`, `anomaly_fraction`) and the decode figures
    /// (`dump_*`).
    public static func metrics(_ s: CMSDumpSummary) -> [String: Double] {
        let a = s.anomalies
        var m: [String: Double] = [
            "anomalies": Double(a.total), "anomaly_fraction": Double(a.total) / Double(max(s.hits, 1)),
            "anomaly_words_before_header": Double(a.wordsBeforeHeader), "anomaly_truncated_blocks": Double(a.truncatedBlocks),
            "anomaly_error_words": Double(a.errorWords.values.reduce(0, +)),
            "anomaly_hits_outside_pattern": Double(a.hitsOutsidePattern), "anomaly_events_out_of_order": Double(a.eventsOutOfOrder),
            "anomaly_events_outside_scan": Double(a.eventsOutsideScan), "anomaly_unknown_channel": Double(a.unknownChannel),
            "anomaly_invalid_address": Double(a.invalidAddress), "anomaly_fed_mismatch": Double(a.fedMismatch),
            "dump_hits": Double(s.hits), "dump_events": Double(s.events), "dump_blocks": Double(s.blocks),
            "dump_fill_words": Double(s.fillWords), "dump_bytes": Double(s.bytes), "dump_decode_seconds": s.seconds,
        ]
        for (code, c) in a.errorWords { m["anomaly_error_words_code\(code)"] = Double(c) }
        return m
    }

    /// Writes the accumulators of `dec` as the gain-scan file `outputPath`.
    static func write(decoder dec: CMSDumpDecoder, summary s: CMSDumpSummary, dumpPath: String, outputPath: String,
                      radiationCorrection: Double) throws {
        let calib = dec.calib, cabling = dec.cabling
        let F = GainScanFormat.self
        let tmp = AtomicFile.temporaryPath(for: outputPath)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        let f = try HDF5File.create(tmp, overwrite: true)
        let M = cabling.modules, ppm = cabling.moduleRows * cabling.moduleCols, np = calib.vcal.count
        try f.setAttribute(F.attrFormat, .string(F.scanKind))
        try f.setAttribute(F.attrFormatVersion, .int(F.version))
        try f.setAttribute(F.attrRun, .int(Int64(s.run)))
        try f.setAttribute(F.attrFED, .int(Int64(cabling.fed)))
        try f.setAttribute(F.attrRows, .int(Int64(cabling.moduleRows)))
        try f.setAttribute(F.attrCols, .int(Int64(cabling.moduleCols)))
        try f.setAttribute(F.attrModules, .int(Int64(M)))
        try f.setAttribute(F.attrInjections, .int(Int64(calib.nTriggers)))
        try f.setAttribute(F.attrVCalTag, .string(String(format: "VCal_simulated_corr%.3f", radiationCorrection)))
        try f.setAttribute(F.attrVCalHighToLow, .double(CMSPixelTopology.vcalHighToLow))
        try f.setAttribute(F.attrCreator, .string(CalibctlVersion.string))
        try f.setAttribute("source_dump", .string(dumpPath))
        try f.setAttribute("cabling_version", .string(cabling.version))
        try f.write(F.vcal, calib.vcal.map { Float($0) })
        let first = CMSPixelTopology.modules(fed: cabling.fed) > 0 ? CMSPixelTopology.firstModule(fed: cabling.fed) : 0
        let mods = (0..<M).map { first + $0 }
        try f.write(F.moduleDetID, mods.map { CMSPixelTopology.detID(globalModule: $0) })
        let conv = mods.map { CMSPixelTopology.vcalConversion(globalModule: $0, radiationCorrection: radiationCorrection) }
        try f.write(F.moduleVCalSlope, conv.map(\.slope))
        try f.write(F.moduleVCalOffset, conv.map(\.offset))
        let (nv, sv, qv) = (dec.n, dec.sum, dec.sumsq)
        for (name, a) in [(F.n, nv), (F.sum, sv), (F.sumsq, qv)] {
            try f.write(name, a, shape: [M * ppm, np], chunks: [ppm, np])
        }
        try f.close()
        try AtomicFile.commit(temporary: tmp, to: outputPath)
    }
}
