import CalibIO
import Foundation

/// Opens a gain-scan file (GainScanFormat), checks its layout and streams it module by module.
public final class GainScanReader: @unchecked Sendable {
    public let path: String
    public let file: HDF5File
    public let fed: Int
    public let run: Int
    public let modules: Int
    public let rows: Int
    public let cols: Int
    public let points: Int
    public let vcal: [Float]
    public let detIDs: [Int64]
    public let vcalSlope: [Double]
    public let vcalOffset: [Double]
    public let highToLow: Double
    let n: HDF5Dataset, sum: HDF5Dataset, sumsq: HDF5Dataset
    /// pread readers of n, sum, sumsq when all three are contiguous native float32 (what `simulate gain` and the
    /// CMS dump converter write): the three arrays of a module are then read in parallel, outside HDF5's global lock.
    let direct: [HDF5DirectReader]?

    public var pixelsPerModule: Int { rows * cols }
    public var pixels: Int { modules * rows * cols }

    public init(path: String) throws {
        self.path = path
        let F = GainScanFormat.self
        let file = try HDF5File.open(path)
        self.file = file
        func bad(_ object: String, _ problem: String) -> NumericsError {
            .badInput(file: path, object: object, problem: problem,
                      fix: "write gain scans with `calibctl simulate gain` or convert them to the layout in docs/formats-numerics.md")
        }
        guard let kind = try file.attributeIfPresent(F.attrFormat)?.stringValue, kind == F.scanKind else {
            throw bad("attribute \(F.attrFormat)", "missing or not '\(F.scanKind)': not a calibctl gain scan")
        }
        guard let version = try file.attributeIfPresent(F.attrFormatVersion)?.intValue, version <= F.version else {
            throw bad("attribute \(F.attrFormatVersion)", "missing or newer than \(F.version), which this calibctl reads")
        }
        func intAttr(_ name: String) throws -> Int {
            guard let v = try file.attributeIfPresent(name)?.intValue else { throw bad("attribute \(name)", "missing") }
            return Int(v)
        }
        fed = try intAttr(F.attrFED); run = try intAttr(F.attrRun)
        rows = try intAttr(F.attrRows); cols = try intAttr(F.attrCols); modules = try intAttr(F.attrModules)
        highToLow = try file.attributeIfPresent(F.attrVCalHighToLow)?.doubleValue ?? CMSPixelTopology.vcalHighToLow
        for name in [F.vcal, F.n, F.sum, F.sumsq, F.moduleDetID, F.moduleVCalSlope, F.moduleVCalOffset]
        where !file.exists(name) {
            throw bad(name, "dataset missing")
        }
        vcal = try file.read(F.vcal, as: Float.self)
        points = vcal.count
        for (k, v) in vcal.enumerated() where !v.isFinite || (k > 0 && !(v > vcal[k - 1])) {
            throw NumericsError.badInput(
                file: path, object: F.vcal,
                problem: v.isFinite ? "point \(k) is \(v), not above point \(k - 1) (\(vcal[k - 1])): VCal values must increase"
                                    : "point \(k) is \(v): VCal values must be finite",
                fix: "write the scan's VCal values in increasing order (one per point, as injected)")
        }
        n = try file.dataset(F.n); sum = try file.dataset(F.sum); sumsq = try file.dataset(F.sumsq)
        let P = modules * rows * cols
        for d in [n, sum, sumsq] where d.shape != [P, points] {
            throw bad(d.path, "shape \(d.shape), expected [\(P), \(points)] (modules x rows x cols, VCal points)")
        }
        let readers = [n, sum, sumsq].compactMap { $0.dtype == .float32 ? HDF5DirectReader($0) : nil }
        direct = readers.count == 3 ? readers : nil
        detIDs = try file.read(F.moduleDetID, as: Int64.self)
        vcalSlope = try file.read(F.moduleVCalSlope, as: Double.self)
        vcalOffset = try file.read(F.moduleVCalOffset, as: Double.self)
        guard detIDs.count == modules, vcalSlope.count == modules, vcalOffset.count == modules else {
            throw bad("/modules", "per-module arrays do not have \(modules) entries")
        }
    }

    /// Refuses injected charges (electrons per point of module `m`) that are not finite and strictly increasing:
    /// a NaN or non-positive VCal slope or offset (`NumericsError.badInput`, exit 65, naming the module).
    public func checkCharges(_ x: [Float], module m: Int, fromConversion: Bool) throws {
        guard let k = x.indices.first(where: { !x[$0].isFinite || ($0 > 0 && !(x[$0] > x[$0 - 1])) }) else { return }
        let what = fromConversion ? "the VCal conversion (store VCal tag)"
            : "\(GainScanFormat.moduleVCalSlope) \(vcalSlope[m]), \(GainScanFormat.moduleVCalOffset) \(vcalOffset[m])"
        throw NumericsError.badInput(
            file: path, object: "module \(m) (detid \(detIDs[m]))",
            problem: "\(what) gives \(x[k]) electrons at point \(k)\(k > 0 ? " after \(x[k - 1])" : ""): injected charges must be finite and increase",
            fix: fromConversion ? "put a VCal constant with a finite, positive slope for this module (calibctl vcal put)"
                : "write a finite, positive VCal slope and a finite offset for this module")
    }

    /// Injected charge (electrons) per point for module `m`.
    public func electrons(module m: Int) -> [Float] {
        vcal.map { Float(vcalSlope[m] * Double($0) * highToLow + vcalOffset[m]) }
    }

    /// Reads module `m` (pixel-major, pixelsPerModule x points per array) into the three buffers.
    public func readModule(_ m: Int, n nb: UnsafeMutablePointer<Float>, sum sb: UnsafeMutablePointer<Float>,
                           sumsq qb: UnsafeMutablePointer<Float>) throws {
        let r = (m * pixelsPerModule)..<((m + 1) * pixelsPerModule)
        let c = pixelsPerModule * points
        if let direct {
            let buffers = [SendablePointer(nb), SendablePointer(sb), SendablePointer(qb)]
            let errors = ErrorBox()
            DispatchQueue.concurrentPerform(iterations: 3) { i in
                do { try direct[i].readRows(r, into: UnsafeMutableRawBufferPointer(start: buffers[i].base, count: 4 * c)) }
                catch { errors.set(error) }
            }
            if let e = errors.error { throw e }
            return
        }
        try n.readRows(r, into: UnsafeMutableBufferPointer(start: nb, count: c))
        try sum.readRows(r, into: UnsafeMutableBufferPointer(start: sb, count: c))
        try sumsq.readRows(r, into: UnsafeMutableBufferPointer(start: qb, count: c))
    }
}
