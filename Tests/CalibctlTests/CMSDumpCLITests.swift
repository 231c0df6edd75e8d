import CalibTestSupport
import Foundation
import Testing

/// `simulate gain --dmp` and `fit gain X.dmp`: same fit as the HDF5 form; a corrupt dump exits 65 with its counts.
@Suite struct CMSDumpCLITests {
    @Test func dumpFitsLikeHDF5AndCorruptDumpIsRefused() throws {
        let tmp = TemporaryDirectory()
        let d = tmp.file("scan"), bad = tmp.file("bad")
        #expect(try calibctl(["simulate", "gain", "-o", d, "--feds", "1205", "--modules-per-fed", "2", "--rows", "16",
                              "--cols", "32", "--dmp", "--seed", "4"]).status == 0)
        let a = try calibctl(["fit", "gain", d + "/GainCalibration_1205_400000.dmp", "-o", tmp.file("a.h5"), "--json"])
        let b = try calibctl(["fit", "gain", d + "/fed_1205.h5", "-o", tmp.file("b.h5"), "--json"])
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)")
        func strip(_ s: String) throws -> [String: AnyHashable] {
            var o = (try JSONSerialization.jsonObject(with: Data(s.utf8)) as? [[String: Any]])?.first ?? [:]
            for k in ["input", "output", "seconds"] { o[k] = nil }
            return o.compactMapValues { $0 as? AnyHashable }
        }
        #expect(try strip(a.stdout) == strip(b.stdout))
        #expect(try calibctl(["simulate", "gain", "-o", bad, "--feds", "1205", "--modules-per-fed", "2", "--rows", "16",
                              "--cols", "32", "--dmp", "--corrupt", "--seed", "4"]).status == 0)
        let r = try calibctl(["fit", "gain", bad + "/GainCalibration_1205_400000.dmp", "-o", tmp.file("c.h5")])
        #expect(r.status == 65 && r.stderr.contains("FED 1205") && r.stderr.contains("truncated blocks 1"), "\(r.stderr)")
    }
}
