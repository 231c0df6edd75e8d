@testable import CalibStore
import CalibIO
import CalibTestSupport
import Foundation
import Testing

@Suite struct PayloadTests {
    @Test func hashIgnoresOrderButSeesEveryField() throws {
        let a = try PayloadArray(name: "gain", values: [Float(1), 2, 3, 4], shape: [2, 2])
        let b = try PayloadArray(name: "pedestal", values: [Float(5), 6, 7, 8], shape: [2, 2])
        let p1 = try Payload(arrays: [a, b], attributes: ["run": .int(5), "who": .string("x")])
        let p2 = try Payload(arrays: [b, a], attributes: ["who": .string("x"), "run": .int(5)])
        #expect(p1.contentHash == p2.contentHash)
        #expect(p1.contentHash.count == 64)
        var variants: [Payload] = []
        variants.append(try Payload(arrays: [try PayloadArray(name: "gain", values: [Float(1), 2, 3, 4], shape: [4]), b], attributes: p1.attributes))
        variants.append(try Payload(arrays: [try PayloadArray(name: "gain", values: [Float(1), 2, 3, 5], shape: [2, 2]), b], attributes: p1.attributes))
        variants.append(try Payload(arrays: [try PayloadArray(name: "gain", values: [Int32(1), 2, 3, 4], shape: [2, 2]), b], attributes: p1.attributes))
        variants.append(try Payload(arrays: [a, b], attributes: ["run": .int(6), "who": .string("x")]))
        variants.append(try Payload(arrays: [a, b], attributes: ["run": .double(5), "who": .string("x")]))
        variants.append(try Payload(arrays: [a, b], attributes: ["run": .int(5)]))
        let hashes = Set(variants.map(\.contentHash) + [p1.contentHash])
        #expect(hashes.count == variants.count + 1)
    }

    @Test func oneElementListsNormaliseLikeHDF5ReadsThem() throws {
        let p = try Payload(arrays: [try PayloadArray(name: "x", values: [UInt8(1)])], attributes: ["a": .ints([3]), "b": .doubles([2.5])])
        #expect(p.attributes["a"] == .int(3) && p.attributes["b"] == .double(2.5))
    }

    @Test func typedAccessRefusesTheWrongType() throws {
        let a = try PayloadArray(name: "s", values: [UInt16(1), 2, 65535])
        #expect(try a.values(as: UInt16.self) == [1, 2, 65535])
        #expect(throws: StoreError.self) { try a.values(as: Float.self) }
        #expect(a.doubles() == [1, 2, 65535])
        #expect(throws: StoreError.self) { try PayloadArray(name: "a/b", values: [Float(1)]) }
        #expect(throws: StoreError.self) { try PayloadArray(name: "x", dtype: .float32, shape: [3], bytes: [0, 0, 0, 0]) }
    }

    @Test func fileRoundTripKeepsEveryDTypeAndVerifies() throws {
        let tmp = TemporaryDirectory()
        var arrays: [PayloadArray] = []
        for (i, d) in DType.allCases.enumerated() {
            let bytes = (0..<(6 * d.size)).map { UInt8(($0 * 37 + i) & 0x7f) }
            arrays.append(try PayloadArray(name: "d_\(d.rawValue)", dtype: d, shape: [2, 3], bytes: bytes))
        }
        arrays.append(try PayloadArray(name: "scalar", dtype: .float64, shape: [], bytes: Array(repeating: 0, count: 8)))
        let p = try Payload(arrays: arrays, attributes: ["s": .string("text"), "i": .int(-3), "d": .double(0.1), "is": .ints([1, 2]), "ds": .doubles([0.5, 1e300])])
        let path = tmp.file("p.h5")
        let f = try HDF5File.create(path)
        try PayloadFile.write(p, sha256: p.contentHash, to: f)
        try f.close()
        let back = try PayloadFile.read(from: try HDF5File.open(path), expectedSHA256: p.contentHash)
        #expect(back == p)
        #expect(throws: StoreError.self) { try PayloadFile.read(from: try HDF5File.open(path), expectedSHA256: String(repeating: "0", count: 64)) }
    }

    @Test func largeBlockwiseReadVerifiesAndCatchesLateDamage() throws {
        let tmp = TemporaryDirectory()
        // 3 blocks of rows plus a partial one, so hashing overlaps several reads.
        let rows = 2600, cols = 1024
        let v = (0..<(rows * cols)).map { Float($0 % 9973) * 0.5 }
        let p = try Payload(arrays: [try PayloadArray(name: "big", values: v, shape: [rows, cols]),
                                     try PayloadArray(name: "small", values: [Int32(1), 2])], attributes: ["k": .string("v")])
        let path = tmp.file("big.h5")
        let f = try HDF5File.create(path)
        try PayloadFile.write(p, sha256: p.contentHash, to: f)
        try f.close()
        let back = try PayloadFile.read(from: try HDF5File.open(path), expectedSHA256: p.contentHash)
        #expect(back == p)
        let w = try HDF5File.open(path, writable: true)
        var vals = try w.read("/data/big", as: Float.self)
        vals[vals.count - 1] += 1
        try w.dataset("/data/big").write(vals)
        try w.close()
        #expect(throws: StoreError.self) { try PayloadFile.read(from: try HDF5File.open(path), expectedSHA256: p.contentHash) }
        #expect(try PayloadFile.read(from: try HDF5File.open(path), expectedSHA256: nil)["big"]!.values(as: Float.self) == vals)
    }

    @Test func npyAndLCLSTextRoundTrip() throws {
        let a = try PayloadArray(name: "pixel_status", values: [UInt16(0), 1, 64, 2, 0, 9], shape: [2, 3])
        #expect(try ArrayFiles.readNPY(ArrayFiles.npy(a), name: "pixel_status", source: "x") == a)
        let text = ArrayFiles.lclsText(a, comments: ["TITLE t"])
        #expect(text.contains("# DTYPE uint16") && text.contains("# DIM:1 3") && text.contains("0 1 64\n"))
        #expect(try ArrayFiles.readLCLSText(text, name: "pixel_status", defaultDType: .float64, source: "x") == a)
        let f = try PayloadArray(name: "pedestals", values: [Float(2700.25), -1.5e-7, 3, 4], shape: [1, 2, 2])
        #expect(try ArrayFiles.readLCLSText(ArrayFiles.lclsText(f), name: "pedestals", defaultDType: .float64, source: "x") == f)
        // psana files without metadata: shape from the lines, dtype from the caller.
        let plain = try ArrayFiles.readLCLSText("1 2 3\n4 5 6\n", name: "p", defaultDType: .float32, source: "x")
        #expect(plain.shape == [2, 3] && plain.dtype == .float32)
        #expect(throws: StoreError.self) { try ArrayFiles.readLCLSText("# NDIM 2\n# DIM:0 2\n# DIM:1 3\n1 2 3\n4 5\n", name: "p", defaultDType: .float32, source: "t.txt") }
        #expect(throws: StoreError.self) { try ArrayFiles.readNPY(Data("junk".utf8), name: "p", source: "j.npy") }
        var trunc = ArrayFiles.npy(a); trunc.removeLast(3)
        #expect(throws: StoreError.self) { try ArrayFiles.readNPY(trunc, name: "p", source: "t.npy") }
    }

    @Test func diffCountsChangesAndMaskFlips() throws {
        let a = try Payload(arrays: [try PayloadArray(name: "pixel_status", values: [UInt8(0), 0, 4, 0])])
        let b = try Payload(arrays: [try PayloadArray(name: "pixel_status", values: [UInt8(0), 1, 0, 8])])
        let d = PayloadDiff(a: a, b: b, nameA: "a", nameB: "b")
        #expect(d.datasets.count == 1)
        let x = d.datasets[0]
        #expect(x.changed == 3 && x.becameNonZero == 2 && x.becameZero == 1 && x.maxAbsChange == 8 && x.maxRelChange == 1)
    }
}
