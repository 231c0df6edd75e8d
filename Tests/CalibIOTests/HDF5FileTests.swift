import CalibIO
import CalibTestSupport
import Foundation
import Testing

@Suite struct HDF5FileTests {
    @Test func roundTripEveryDTypeByteForByte() throws {
        let tmp = TemporaryDirectory()
        let path = tmp.file("t.h5")
        let f = try HDF5File.create(path)
        try f.write("/a/f32", [Float](arrayLiteral: 1.5, -2.25, .infinity, 0), shape: [2, 2])
        try f.write("/a/f64", [Double.pi, -0.0, 1e300])
        try f.write("/i8", [Int8.min, 0, Int8.max])
        try f.write("/u16", [UInt16.max, 0, 7])
        try f.write("/i64", [Int64.min, Int64.max])
        try f.write("/u64", [UInt64.max])
        try f.setAttribute("run", .int(5000))
        try f.setAttribute("name", .string("sipixel µ"))
        try f.setAttribute("conv", .doubles([47, -60]), on: "/a/f64")
        try f.close()

        let r = try HDF5File.open(path)
        #expect(try r.read("/a/f32", as: Float.self) == [1.5, -2.25, .infinity, 0])
        #expect(try r.dataset("/a/f32").shape == [2, 2])
        #expect(try r.read("/a/f64", as: Double.self).map(\.bitPattern) == [Double.pi, -0.0, 1e300].map(\.bitPattern))
        #expect(try r.read("/i8", as: Int8.self) == [Int8.min, 0, Int8.max])
        #expect(try r.read("/u16", as: UInt16.self) == [UInt16.max, 0, 7])
        #expect(try r.read("/i64", as: Int64.self) == [Int64.min, Int64.max])
        #expect(try r.read("/u64", as: UInt64.self) == [UInt64.max])
        #expect(try r.dataset("/u16").dtype == .uint16)
        #expect(try r.attribute("run") == .int(5000))
        #expect(try r.attribute("name") == .string("sipixel µ"))
        #expect(try r.attribute("conv", on: "/a/f64") == .doubles([47, -60]))
        #expect(try r.children() == ["a", "i64", "i8", "u16", "u64"])
        #expect(r.isGroup("/a"))
        #expect(!r.exists("/nope/x"))
    }

    @Test func chunkedRowStreaming() throws {
        let tmp = TemporaryDirectory()
        let path = tmp.file("c.h5")
        let f = try HDF5File.create(path)
        let ds = try f.createDataset("/frames", dtype: .uint16, shape: [10, 3, 4], chunks: [2, 3, 4], deflate: 1)
        let all = (0..<120).map { UInt16($0 * 3) }
        try all.withUnsafeBufferPointer { b in
            try ds.writeRows(0..<5, from: UnsafeBufferPointer(rebasing: b[0..<60]))
            try ds.writeRows(5..<10, from: UnsafeBufferPointer(rebasing: b[60..<120]))
        }
        #expect(ds.chunkShape == [2, 3, 4])
        try f.close()
        let r = try HDF5File.open(path).dataset("/frames")
        #expect(try r.readRows(3..<4, as: UInt16.self) == Array(all[36..<48]))
        #expect(try r.readRows(0..<10, as: Float.self) == all.map(Float.init))
        #expect(throws: HDF5Error.self) { try r.readRows(9..<11, as: UInt16.self) }
    }

    @Test func notHDF5AndMissingFilesNameTheFile() throws {
        let tmp = TemporaryDirectory()
        let bad = tmp.file("bad.h5")
        try Data("this is not hdf5".utf8).write(to: URL(fileURLWithPath: bad))
        do {
            _ = try HDF5File.open(bad)
            Issue.record("opened a text file as HDF5")
        } catch let e as HDF5Error {
            #expect(e.description.contains("bad.h5"))
            #expect(e.description.contains("not an HDF5 file"))
        }
        #expect(throws: HDF5Error.self) { try HDF5File.open(tmp.file("missing.h5")) }
        let f = try HDF5File.create(tmp.file("x.h5"))
        #expect(throws: HDF5Error.self) { try f.dataset("/absent") }
        #expect(throws: HDF5Error.self) { try HDF5File.create(tmp.file("x.h5")) }
    }
}
