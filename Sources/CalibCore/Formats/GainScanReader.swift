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
        n = try file.dataset(F.n); sum = try file.dataset(F.sum); sumsq = try file.dataset(F.sumsq)
        let P = modules * rows * cols
        for d in [n, sum, sumsq] where d.shape != [P, points] {
            throw bad(d.path, "shape \(d.shape), expected [\(P), \(points)] (modules x rows x cols, VCal points)")
        }
        detIDs = try file.read(F.moduleDetID, as: Int64.self)
        vcalSlope = try file.read(F.moduleVCalSlope, as: Double.self)
        vcalOffset = try file.read(F.moduleVCalOffset, as: Double.self)
        guard detIDs.count == modules, vcalSlope.count == modules, vcalOffset.count == modules else {
            throw bad("/modules", "per-module arrays do not have \(modules) entries")
        }
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
        try n.readRows(r, into: UnsafeMutableBufferPointer(start: nb, count: c))
        try sum.readRows(r, into: UnsafeMutableBufferPointer(start: sb, count: c))
        try sumsq.readRows(r, into: UnsafeMutableBufferPointer(start: qb, count: c))
    }
}
