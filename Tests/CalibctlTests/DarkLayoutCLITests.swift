import CalibTestSupport
import Foundation
import Testing

/// `fit dark` reads facility layouts by options alone; too few frames exit 65.
@Suite struct DarkLayoutCLITests {
    @Test func euxfelAndLCLSLayoutsByOptionsAlone() throws {
        let tmp = TemporaryDirectory()
        let xfel = tmp.file("xfel.h5"), lcls = tmp.file("lcls.h5")
        let sx = try calibctl(["simulate", "dark", "-o", xfel, "--layout", "euxfel", "--shape", "4x32x64",
                               "--frames", "60", "--no-gain-bits", "--dtype", "int32"])
        #expect(sx.status == 0, "\(sx.stderr)")
        let fx = try calibctl(["fit", "dark", xfel, "-o", tmp.file("xc.h5"), "--json",
                               "--dataset", "/INSTRUMENT/SPB_IRDA_JF4M/DET/JNGFR01:daqOutput/data/adc",
                               "--frame-axes", "1", "--gain-source", "fixed:0"])
        #expect(fx.status == 0, "\(fx.stderr)")
        let jx = try JSONSerialization.jsonObject(with: Data(fx.stdout.utf8)) as? [String: Any]
        #expect((jx?["shape"] as? [Int]) == [4, 32, 64])
        // Without the options the file is refused, pointing at them.
        let plain = try calibctl(["fit", "dark", xfel, "-o", tmp.file("p.h5")])
        #expect(plain.status == 65 && plain.stderr.contains("--dataset"))

        let sl = try calibctl(["simulate", "dark", "-o", lcls, "--layout", "lcls", "--shape", "2x32x64",
                               "--frames", "90", "--gain-modes", "3", "--contiguous"])
        #expect(sl.status == 0, "\(sl.stderr)")
        let fl = try calibctl(["fit", "dark", lcls, "-o", tmp.file("lc.h5"), "--json", "--dataset", "/jungfrau4m/raw",
                               "--gain-source", "bits"])
        #expect(fl.status == 0, "\(fl.stderr)")
        let jl = try JSONSerialization.jsonObject(with: Data(fl.stdout.utf8)) as? [String: Any]
        #expect((jl?["modes"] as? [[String: Any]])?.compactMap { $0["frames"] as? Int } == [30, 30, 30])
        #expect(fl.stderr.contains("warning") && fl.stderr.contains("fewer than nrecs1"))
    }

    @Test func tooFewFramesExit65() throws {
        let tmp = TemporaryDirectory()
        let d = tmp.file("d.h5")
        #expect(try calibctl(["simulate", "dark", "-o", d, "--shape", "1x16x32", "--frames", "10"]).status == 0)
        let r = try calibctl(["fit", "dark", d, "-o", tmp.file("o.h5")])
        #expect(r.status == 65 && r.stderr.contains(d) && r.stderr.contains("gain mode 0 has 10 frame"), "\(r.stderr)")
    }
}
