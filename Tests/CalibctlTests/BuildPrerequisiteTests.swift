import CalibTestSupport
import Foundation
import Testing

/// A machine without the HDF5 development package must get one line naming the package, not a wall of errors.
/// Compiles the real shim header with the toolchain's clang but without HDF5's include directory, which is what a
/// machine without libhdf5-dev sees.
@Suite struct BuildPrerequisiteTests {
    @Test(arguments: [("CHDF5", "libhdf5-dev"), ("CSQLite", "libsqlite3-dev"), ("COpenSSL", "libssl-dev")])
    func missingDevelopmentPackageIsNamed(target: String, package: String) throws {
        guard let clang = which("clang") else {
            Issue.record("clang (part of the Swift toolchain) is not on PATH")
            return
        }
        let tmp = TemporaryDirectory()
        // An empty sysroot hides every system header, as on a machine without the -dev package.
        let sysroot = tmp.file("empty-sysroot")
        try FileManager.default.createDirectory(atPath: sysroot, withIntermediateDirectories: true)
        let shim = TestPaths.packageRoot + "/Sources/\(target)/shim.h"
        let r = try runProcess(clang, ["-fsyntax-only", "-nostdinc", "--sysroot=\(sysroot)", "-x", "c", shim])
        #expect(r.status != 0)
        let errors = r.stderr.split(separator: "\n").filter { $0.contains("error:") }
        #expect(errors.count == 1, "\(r.stderr)")
        #expect(errors.first?.contains("apt-get install \(package)") == true, "\(r.stderr)")
    }
}
