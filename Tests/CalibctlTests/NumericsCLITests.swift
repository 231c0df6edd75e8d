import CalibTestSupport
import Foundation
import Testing

/// End-to-end: the built binary simulates, fits gain and dark on tiny sizes; h5py reads every output.
@Suite struct NumericsCLITests {
    /// `bench fit` and `bench dark` on tiny inputs: every figure the goals are stated in is present and sane (the
    /// ceilings, the end-to-end ratios against cat, the process start), both layouts agree, stdout is only the JSON.
    @Test func benchFitAndDarkReportTheirCeilingsAndRatios() throws {
        let tmp = TemporaryDirectory()
        let fit = try calibctl(["bench", "fit", "--modules", "1", "--repeats", "1", "--no-numpy", "--dir", tmp.path])
        #expect(fit.status == 0, "\(fit.stderr)")
        let f = try JSONSerialization.jsonObject(with: Data(fit.stdout.utf8)) as? [String: Any]
        #expect(f?["layoutMismatches"] as? Int == 0)
        #expect((f?["cacheResidentFractionOfProbeMedian"] as? Double ?? 0) > 0)
        #expect(((f?["cacheResidentGBps"] as? [String: Double])?["median"] ?? 0) > 0)
        let e = f?["endToEnd"] as? [String: Any]
        #expect((e?["ratioToCat"] as? Double ?? 0) > 0 && (e?["pixelMajorKernelOverCat"] as? Double ?? 0) > 0)
        // Process start is measured with posix_spawn + waitpid: a static binary starts in well under a second.
        #expect((e?["processStartSeconds"] as? Double).map { $0 > 0 && $0 < 5 } == true)
        #expect(fit.stderr.contains("compute ceiling") && fit.stderr.contains("the pixel-major kernel alone"))
        // The kernel build in use; above x86-64-v3 the AVX2 build is measured in the same run.
        let isa = f?["kernelISA"] as? String
        #expect(isa == "x86-64-v3" || isa == "x86-64-v4")
        #expect((f?["portableVectorRunsGBps"] != nil) == (isa == "x86-64-v4"))

        let dark = try calibctl(["bench", "dark", "--shape", "2x64x128", "--frames", "80", "--kernel-frames", "64",
                                 "--repeats", "1", "--rounds", "1", "--no-numpy", "--dir", tmp.path])
        #expect(dark.status == 0, "\(dark.stderr)")
        let d = try JSONSerialization.jsonObject(with: Data(dark.stdout.utf8)) as? [String: Any]
        #expect((d?["cacheResidentFractionOfBandwidth"] as? Double ?? 0) > 0)
        // The ceiling's block: framesPerBlock frames x cacheResidentPixels pixels x 2 B = 512 kB, in each core's L2.
        #expect((d?["cacheResidentPixels"] as? Int).map { $0 * (d?["framesPerBlock"] as? Int ?? 0) * 2 } == 524_288)
        #expect((d?["endToEndOverCat"] as? Double ?? 0) > 0)
        #expect(dark.stderr.contains("compute ceiling"))
        #expect((d?["readsAloneOverCat"] as? Double ?? 0) > 0 && dark.stderr.contains("floor of the streamed design"))
    }

    /// The binary with its kernels chosen for this CPU and with `CALIBCTL_ISA=x86-64-v3` (the AVX2 builds) writes
    /// the same gain and dark constants, bit for bit (on an AVX-512 machine the first run uses the AVX-512 builds).
    @Test func kernelBuildsGiveTheSameConstants() throws {
        let tmp = TemporaryDirectory()
        let scan = tmp.file("scan"), dark = tmp.file("dark.h5")
        #expect(try calibctl(["simulate", "gain", "-o", scan, "--feds", "1200", "--modules-per-fed", "2", "--rows", "40",
                              "--cols", "52", "--seed", "3"]).status == 0)
        #expect(try calibctl(["simulate", "dark", "-o", dark, "--shape", "2x48x64", "--frames", "90",
                              "--gain-modes", "3"]).status == 0)
        for (isa, env) in [("native", [String: String]()), ("v3", ["CALIBCTL_ISA": "x86-64-v3"])] {
            var e = ProcessInfo.processInfo.environment
            e.merge(env) { $1 }
            let g = try calibctl(["fit", "gain", scan + "/fed_1200.h5", "-o", tmp.file("gain-\(isa).h5")], environment: e)
            #expect(g.status == 0, "\(g.stderr)")
            let d = try calibctl(["fit", "dark", dark, "-o", tmp.file("dark-\(isa).h5")], environment: e)
            #expect(d.status == 0, "\(d.stderr)")
        }
        let py = try runProcess(TestPaths.python, ["-c", """
            import h5py, numpy as np, sys
            d = sys.argv[1]
            for kind in ('gain', 'dark'):
                a = h5py.File(f'{d}/{kind}-native.h5', 'r'); b = h5py.File(f'{d}/{kind}-v3.h5', 'r')
                names = []
                a.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
                assert len(names) >= 5, names
                for n in names:
                    x, y = a[n][()], b[n][()]
                    assert x.dtype == y.dtype and x.shape == y.shape, n
                    assert x.tobytes() == y.tobytes(), f'{kind}: {n} differs'
            print('same')
            """, tmp.path])
        #expect(py.status == 0 && py.stdout.contains("same"), "\(py.stderr)")
    }

    @Test func simulateFitGainAndDark() throws {
        let tmp = TemporaryDirectory()
        let scan = tmp.file("scan")
        let sim = try calibctl(["simulate", "gain", "-o", scan, "--feds", "1200,1201", "--modules-per-fed", "1",
                                "--rows", "16", "--cols", "32", "--seed", "7", "--json"])
        #expect(sim.status == 0, "\(sim.stderr)")
        #expect(FileManager.default.fileExists(atPath: scan + "/fed_1201.h5"))
        #expect(FileManager.default.fileExists(atPath: scan + "/truth/fed_1200.h5"))

        let fits = tmp.file("fits")
        let fit = try calibctl(["fit", "gain", scan + "/fed_1200.h5", scan + "/fed_1201.h5", "-o", fits, "--json"])
        #expect(fit.status == 0, "\(fit.stderr)")
        let summaries = try JSONSerialization.jsonObject(with: Data(fit.stdout.utf8)) as? [[String: Any]]
        #expect(summaries?.count == 2 && (summaries?[1]["fed"] as? Int) == 1201)
        #expect(((summaries?[0]["counts"] as? [String: Int])?.values.reduce(0, +)) == 512)

        // Same seed, same files: the fit is deterministic.
        let again = try calibctl(["fit", "gain", scan + "/fed_1200.h5", "-o", tmp.file("again.h5")])
        #expect(again.status == 0 && again.stdout.contains("FED 1200"))

        let py = try runProcess(TestPaths.python, ["-c", """
            import h5py, numpy as np, sys
            a = h5py.File(sys.argv[1], 'r'); b = h5py.File(sys.argv[2], 'r'); t = h5py.File(sys.argv[3], 'r')
            assert a['gain'].shape == (512,) and a['status'].dtype == np.uint8
            assert a.attrs['format'] in (b'calibctl.gain_fit', 'calibctl.gain_fit')
            assert np.array_equal(a['gain'][()], b['gain'][()], equal_nan=True)
            good = (t['truth/category'][()] == 0) & (a['status'][()] <= 1)
            rel = np.abs(a['gain'][()][good] / t['truth/gain'][()][good] - 1)
            assert np.median(rel) < 0.02, np.median(rel)
            print(int(a.attrs['summary_count_ok']))
            """, fits + "/fit_1200.h5", tmp.file("again.h5"), scan + "/truth/fed_1200.h5"])
        #expect(py.status == 0, "\(py.stderr)")

        let dark = tmp.file("dark.h5")
        let sd = try calibctl(["simulate", "dark", "-o", dark, "--shape", "2x16x64", "--frames", "60", "--gain-modes", "3"])
        #expect(sd.status == 0, "\(sd.stderr)")
        let fd = try calibctl(["fit", "dark", dark, "-o", tmp.file("dc.h5"), "--json", "--common-mode", "row"])
        #expect(fd.status == 0, "\(fd.stderr)")
        let ds = try JSONSerialization.jsonObject(with: Data(fd.stdout.utf8)) as? [String: Any]
        #expect((ds?["modes"] as? [[String: Any]])?.count == 3)
        let pyd = try runProcess(TestPaths.python, ["-c", """
            import h5py, sys
            f = h5py.File(sys.argv[1], 'r')
            assert f['pedestals'].shape == (3, 2, 16, 64) and f['pixel_status'].dtype.str == '<u2'
            assert list(f['gain_modes'][()]) == [0, 1, 2]
            """, tmp.file("dc.h5")])
        #expect(pyd.status == 0, "\(pyd.stderr)")
    }

    @Test func badInputsExitWithDocumentedCodes() throws {
        let tmp = TemporaryDirectory()
        let missing = try calibctl(["fit", "gain", tmp.file("nope.h5"), "-o", tmp.file("o.h5")])
        #expect(missing.status == 65 && missing.stderr.contains("nope.h5"))
        let usage = try calibctl(["simulate", "dark", "-o", tmp.file("d.h5"), "--shape", "2x3"])
        #expect(usage.status == 64 && usage.stderr.contains("--shape"))
        let cm = try calibctl(["fit", "dark", tmp.file("d.h5"), "-o", tmp.file("o.h5"), "--common-mode", "diagonal"])
        #expect(cm.status == 64 && cm.stderr.contains("bank, row or column"))
        let help = try calibctl(["fit", "gain", "--help"])
        #expect(help.status == 0 && help.stdout.contains("Example"))
    }
}
