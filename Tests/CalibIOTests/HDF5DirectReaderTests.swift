import CalibIO
import CalibTestSupport
import Foundation
import Testing

/// The pread path for contiguous native datasets: the same bytes as H5Dread, none for layouts it cannot read, and a
/// clear error for a file cut short.
@Suite struct HDF5DirectReaderTests {
    static func values(_ count: Int) -> [Float] { (0..<count).map { Float($0) * 0.37 - 100 } }

    @Test func readsWhatH5DreadReads() throws {
        let tmp = TemporaryDirectory()
        let path = tmp.file("d.h5")
        let f = try HDF5File.create(path)
        try f.write("/a", [Float](repeating: 7, count: 10))           // another dataset before, so the offset is not 0
        try f.write("/scan/sum", Self.values(1000 * 29), shape: [1000, 29])
        try f.write("/scan/big", (0..<300).map { Double($0) / 3 }, shape: [100, 3])
        try f.close()
        let r = try HDF5File.open(path)
        for rows in [0..<1000, 0..<1, 377..<912, 999..<1000] {
            let ds = try r.dataset("/scan/sum")
            let direct = try #require(HDF5DirectReader(ds))
            let expected: [Float] = try ds.readRows(rows)
            var got = [Float](repeating: .nan, count: rows.count * 29)
            try got.withUnsafeMutableBytes { try direct.readRows(rows, into: $0) }
            #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "rows \(rows)")
        }
        let d64 = try r.dataset("/scan/big")
        let direct64 = try #require(HDF5DirectReader(d64))
        var got64 = [Double](repeating: 0, count: 30)
        try got64.withUnsafeMutableBytes { try direct64.readRows(10..<20, into: $0) }
        #expect(got64 == (30..<60).map { Double($0) / 3 })
        // Out of range or a wrong-sized buffer: an error naming the object, nothing read.
        var small = [Float](repeating: 0, count: 29)
        #expect(throws: HDF5Error.self) { try small.withUnsafeMutableBytes { try HDF5DirectReader(r.dataset("/scan/sum"))!.readRows(999..<1001, into: $0) } }
    }

    /// Chunks of whole rows (the gain-scan files: one chunk per module) are read chunk by chunk, across chunk
    /// boundaries and the partial last chunk; chunks that split rows and compressed chunks have no direct reader.
    @Test func chunksOfWholeRowsAndNothingElse() throws {
        let tmp = TemporaryDirectory()
        let path = tmp.file("c.h5")
        let f = try HDF5File.create(path)
        try f.write("/rows", Self.values(4000), shape: [125, 32], chunks: [16, 32])
        try f.write("/split", Self.values(4096), shape: [128, 32], chunks: [16, 16])
        try f.write("/deflated", Self.values(4096), shape: [128, 32], chunks: [16, 32], deflate: 4)
        try f.close()
        let r = try HDF5File.open(path)
        let ds = try r.dataset("/rows")
        let direct = try #require(HDF5DirectReader(ds))
        for rows in [0..<125, 15..<17, 3..<99, 112..<125, 124..<125] {
            let expected: [Float] = try ds.readRows(rows)
            var got = [Float](repeating: .nan, count: rows.count * 32)
            try got.withUnsafeMutableBytes { try direct.readRows(rows, into: $0) }
            #expect(got.map(\.bitPattern) == expected.map(\.bitPattern), "rows \(rows)")
        }
        #expect(HDF5DirectReader(try r.dataset("/split")) == nil)
        #expect(HDF5DirectReader(try r.dataset("/deflated")) == nil)
    }

    @Test func truncatedFileIsAClearError() throws {
        let tmp = TemporaryDirectory()
        let path = tmp.file("t.h5")
        let f = try HDF5File.create(path)
        try f.write("/scan/n", Self.values(100_000), shape: [10_000, 10])
        try f.close()
        let r = try HDF5File.open(path)
        let direct = try #require(HDF5DirectReader(try r.dataset("/scan/n")))
        // Cut the file in the middle of the dataset (as a copy interrupted by a full disk would).
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        #expect(truncate(path, off_t(size - 200_000)) == 0)
        var buf = [Float](repeating: 0, count: 100_000)
        let e = #expect(throws: HDF5Error.self) { try buf.withUnsafeMutableBytes { try direct.readRows(0..<10_000, into: $0) } }
        #expect(e?.description.contains("ends early") == true)
        #expect(e?.description.contains("/scan/n") == true)
    }
}
