import CalibIO
import Foundation
import Testing
@testable import CalibCore

/// Dark frames from facility layouts (EuXFEL, LCLS), other integer types, contiguous storage, gain-mode sources,
/// and the frame-count rule.
@Suite struct DarkLayoutTests {
    static func tmpDir() throws -> String {
        let tmp = NSTemporaryDirectory() + "calibctl-darklayout-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        return tmp
    }

    static func sim(_ layout: DarkLayout, frames: Int, modes: Int, bits: Bool, seed: UInt64 = 3) -> DarkRunSimulator {
        var s = DarkRunSimulator()
        s.panels = 3; s.rows = 32; s.cols = 64; s.frames = frames; s.gainModes = modes; s.gainBits = bits
        s.seed = seed; s.layout = layout; s.defectFraction = 0.002
        return s
    }

    /// The same simulated run written as calibctl, LCLS (gain from the bits only, contiguous, int32) gives the same
    /// constants bit for bit.
    @Test func lclsLayoutMatchesCalibctlLayout() throws {
        let tmp = try Self.tmpDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try Self.sim(.calibctl, frames: 150, modes: 3, bits: true).write(path: tmp + "/c.h5", truthPath: tmp + "/ct.h5", threads: 2)
        var l = Self.sim(.lcls, frames: 150, modes: 3, bits: true)
        l.contiguous = true; l.dtype = .int32
        try l.write(path: tmp + "/l.h5", truthPath: tmp + "/lt.h5", threads: 2)
        #expect(try HDF5File.open(tmp + "/l.h5").dataset(l.framesPath).chunkShape == nil)
        // calibctl's layout (uint16, a chunk per frame) takes the streaming stage 2 (pread of pixel slices), the int32
        // LCLS file the block-buffered one: the two paths must agree bit for bit, on one thread and on two.
        #expect(HDF5DirectReader(try DarkFrameSource(path: tmp + "/c.h5", options: DarkOptions()).dataset) != nil)
        let a1 = try DarkFit.run(inputPath: tmp + "/c.h5", outputPath: tmp + "/a1.h5", threads: 1)
        let a = try DarkFit.run(inputPath: tmp + "/c.h5", outputPath: tmp + "/a.h5", threads: 2)
        var o = DarkOptions()
        o.dataset = l.framesPath; o.gainSource = .bits
        let b = try DarkFit.run(inputPath: tmp + "/l.h5", outputPath: tmp + "/b.h5", options: o, threads: 2)
        #expect(b.modes.map(\.gainMode) == [0, 1, 2] && b.modes.map(\.frames) == [50, 50, 50])
        #expect(a.modes.map(\.statusCounts) == b.modes.map(\.statusCounts))
        #expect(b.modes.allSatisfy { ($0.statusCounts["64"] ?? 0) > 0 })  // bad gain bits seen
        let fa = try HDF5File.open(tmp + "/a.h5"), fb = try HDF5File.open(tmp + "/b.h5")
        let fa1 = try HDF5File.open(tmp + "/a1.h5")
        #expect(a1.modes == a.modes)
        for name in [DarkFormat.pedestals, DarkFormat.pixelRMS] {
            #expect(try fa.read(name, as: Float.self).map(\.bitPattern) == fb.read(name, as: Float.self).map(\.bitPattern))
            #expect(try fa.read(name, as: Float.self).map(\.bitPattern) == fa1.read(name, as: Float.self).map(\.bitPattern))
        }
        for name in [DarkFormat.pixelMin, DarkFormat.pixelMax, DarkFormat.pixelStatus] {
            #expect(try fa.read(name, as: UInt16.self) == fb.read(name, as: UInt16.self))
        }
        #expect(try fa.read(DarkFormat.entries, as: Int32.self) == fb.read(DarkFormat.entries, as: Int32.self))
        #expect(try fb.dataset(DarkFormat.pedestals).shape == [3, 3, 32, 64])
        // A per-frame gain dataset gives the same as the bits.
        var o2 = DarkOptions(); o2.gainSource = .dataset(DarkFormat.frameGainMode)
        let c = try DarkFit.run(inputPath: tmp + "/c.h5", outputPath: tmp + "/c2.h5", options: o2, threads: 2)
        #expect(c.modes == a.modes.map { var m = $0; m.gainMode = $0.gainMode; return m })
    }

    /// The block-buffered path (16,384-pixel tiles) and the streamed one (32,768-pixel slices) on a detector of several
    /// tiles with a ragged last one (2 x 97 x 96 = 18,624 pixels, not a multiple of 16): bit for bit the same, and the
    /// same on one thread.
    @Test func blockPathMatchesStreamedAcrossTiles() throws {
        let tmp = try Self.tmpDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        func sized(_ layout: DarkLayout) -> DarkRunSimulator {
            var s = Self.sim(layout, frames: 120, modes: 1, bits: true, seed: 11)
            s.panels = 2; s.rows = 97; s.cols = 96
            return s
        }
        try sized(.calibctl).write(path: tmp + "/c.h5", truthPath: tmp + "/ct.h5", threads: 2)
        var l = sized(.lcls)
        l.contiguous = true; l.dtype = .int32
        try l.write(path: tmp + "/l.h5", truthPath: tmp + "/lt.h5", threads: 2)
        var o = DarkOptions()
        o.dataset = l.framesPath; o.gainSource = .bits; o.framesPerBlock = 32
        let a = try DarkFit.run(inputPath: tmp + "/c.h5", outputPath: tmp + "/a.h5", threads: 2)
        let b = try DarkFit.run(inputPath: tmp + "/l.h5", outputPath: tmp + "/b.h5", options: o, threads: 2)
        let b1 = try DarkFit.run(inputPath: tmp + "/l.h5", outputPath: tmp + "/b1.h5", options: o, threads: 1)
        #expect(a.pixels == 18_624 && a.modes.first?.frames == 120)
        #expect(a.modes == b.modes && b.modes == b1.modes)
        let fa = try HDF5File.open(tmp + "/a.h5"), fb = try HDF5File.open(tmp + "/b.h5"), fb1 = try HDF5File.open(tmp + "/b1.h5")
        for name in [DarkFormat.pedestals, DarkFormat.pixelRMS] {
            let ref = try fa.read(name, as: Float.self).map(\.bitPattern)
            #expect(try fb.read(name, as: Float.self).map(\.bitPattern) == ref)
            #expect(try fb1.read(name, as: Float.self).map(\.bitPattern) == ref)
        }
        for name in [DarkFormat.pixelMin, DarkFormat.pixelMax, DarkFormat.pixelStatus] {
            #expect(try fb.read(name, as: UInt16.self) == fa.read(name, as: UInt16.self))
        }
        #expect(try fb.read(DarkFormat.entries, as: Int32.self) == fa.read(DarkFormat.entries, as: Int32.self))
    }

    /// EuXFEL: [trains, memory cells, rows, cols] without gain bits, one gain setting (a parameter). One frame axis
    /// gives per-cell constants matching the truth; two pool the cells.
    @Test func euxfelLayoutPerCellAndPooled() throws {
        let tmp = try Self.tmpDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        var x = Self.sim(.euxfel, frames: 80, modes: 1, bits: false)
        x.dtype = .int16
        try x.write(path: tmp + "/x.h5", truthPath: tmp + "/t.h5", threads: 2)
        var o = DarkOptions()
        o.dataset = x.framesPath; o.gainSource = .fixed(0)
        let s = try DarkFit.run(inputPath: tmp + "/x.h5", outputPath: tmp + "/o.h5", options: o, threads: 2)
        #expect(s.shape == [3, 32, 64] && s.modes.map(\.frames) == [80] && s.warnings.isEmpty)
        let out = try HDF5File.open(tmp + "/o.h5"), truth = try HDF5File.open(tmp + "/t.h5")
        let ped = try out.read(DarkFormat.pedestals, as: Float.self), tp = try truth.read(DarkFormat.truthPedestal, as: Float.self)
        let kind = try truth.read(DarkFormat.truthKind, as: UInt8.self)
        var worst: Float = 0
        for p in 0..<kind.count where kind[p] == 0 { worst = max(worst, abs(ped[p] - tp[p])) }
        #expect(worst < 6, "largest pedestal error of a good pixel \(worst) ADU")   // noise 8-14 / sqrt(80) x 4 sigma
        #expect((s.modes[0].statusCounts["64"] ?? 0) == 0)   // no gain bits checked
        o.frameAxes = 2
        let pooled = try DarkFit.run(inputPath: tmp + "/x.h5", outputPath: tmp + "/p.h5", options: o, threads: 2)
        #expect(pooled.shape == [32, 64] && pooled.modes.map(\.frames) == [240])
        // Asking for a layout the file does not have names the object.
        o.frameAxes = 4
        #expect(throws: NumericsError.self) { try DarkFit.run(inputPath: tmp + "/x.h5", outputPath: tmp + "/q.h5", options: o) }
        var plain = DarkOptions(); plain.dataset = nil
        do { _ = try DarkFit.run(inputPath: tmp + "/x.h5", outputPath: tmp + "/q.h5", options: plain); Issue.record("expected an error") }
        catch let e as NumericsError { #expect(e.exitStatus == .dataError && e.fix!.contains("--dataset")) }
    }

    /// Fewer frames than stage 1 needs: refused below minFrames (exit 65, naming the file and mode), a warning below
    /// nrecs1.
    @Test(arguments: [1, 10, 30])
    func fewFramesAreRefusedOrWarned(frames: Int) throws {
        let tmp = try Self.tmpDir()
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        try Self.sim(.calibctl, frames: frames, modes: 1, bits: true).write(path: tmp + "/d.h5", truthPath: tmp + "/t.h5", threads: 1)
        if frames < 20 {
            do {
                _ = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/o.h5")
                Issue.record("expected a refusal")
            } catch let e as NumericsError {
                #expect(e.exitStatus == .dataError && e.message.contains(tmp + "/d.h5") && e.message.contains("gain mode 0 has \(frames) frame"))
            }
            #expect(!FileManager.default.fileExists(atPath: tmp + "/o.h5"))
        } else {
            let s = try DarkFit.run(inputPath: tmp + "/d.h5", outputPath: tmp + "/o.h5")
            #expect(s.warnings.count == 1 && s.warnings[0].contains("30 frames, fewer than nrecs1 = 50"))
        }
    }

    /// Options JSON of older versions (without the layout keys) still decodes; new keys round-trip.
    @Test func optionsDecodeOldAndNewJSON() throws {
        let old = #"{"nrecs1":40,"nrecs":500,"intLo":1,"intHi":16000,"rmsLo":0.001,"rmsHi":16000,"nSigmaLo":6,"nSigmaHi":6,"fraclm":0.1,"dataMask":16383,"cmMinPixels":10,"cmMax":200,"bankRows":256,"bankCols":64,"framesPerBlock":16}"#
        let o = try JSONDecoder().decode(DarkOptions.self, from: Data(old.utf8))
        #expect(o.nrecs1 == 40 && o.dataset == nil && o.frameAxes == 1 && o.minFrames == 20 && o.gainSource == nil)
        var n = DarkOptions(); n.dataset = "/a/b"; n.frameAxes = 2; n.gainSource = .dataset("/g"); n.gainBits = false
        let back = try JSONDecoder().decode(DarkOptions.self, from: JSONEncoder().encode(n))
        #expect(back == n)
        #expect(try JSONDecoder().decode(DarkOptions.self, from: Data("{}".utf8)) == DarkOptions())
        #expect(DarkGainSource(parsing: "fixed:3") == nil && DarkGainSource(parsing: "fixed:2") == .fixed(2))
    }
}
