import CalibCore
import CalibIO
import Foundation

/// Example fits: a few pixels of every status, re-fitted from the run's scan files with the scalar reference fit
/// (`GainFitKernel.fitPixelScalar`, the same operations as the vector kernel) to get their points: the mean ADC per
/// VCal point with its error, the points the fit selected, the plateau, the fitted line. The re-fit's gain and
/// status are checked against the merged file.
struct ExampleFit {
    var pixel: Int
    var module: Int
    var detID: Int64
    var row: Int
    var col: Int
    var merged: GainPixelStatus
    var refit: GainPixelFit?
    var curve: ReportSVG.Curve?
    /// Why there is no curve (scan file missing, another geometry).
    var problem: String?
}

enum ExampleFits {
    /// Up to `perStatus` pixels of each status present, from different modules where possible.
    static func pick(_ d: GainRunData, perStatus: Int = 3) -> [(GainPixelStatus, [Int])] {
        var chosen = [[Int]](repeating: [], count: 256), lastModule = [Int](repeating: -1, count: 256)
        let ppm = max(d.pixelsPerModule, 1)
        // First pass: at most one pixel per module and status (pixels are visited module by module).
        d.status.withUnsafeBufferPointer { st in
            for p in st.indices {
                let s = Int(st[p]), m = p / ppm
                guard chosen[s].count < perStatus, lastModule[s] != m else { continue }
                chosen[s].append(p)
                lastModule[s] = m
            }
            // Second pass: fill up from any module.
            for p in st.indices where chosen[Int(st[p])].count < perStatus && !chosen[Int(st[p])].contains(p) {
                chosen[Int(st[p])].append(p)
            }
        }
        return GainPixelStatus.allCases.compactMap { s in chosen[Int(s.rawValue)].isEmpty ? nil : (s, chosen[Int(s.rawValue)]) }
    }

    static func compute(_ d: GainRunData, scanDirectory: String?, vcal: VCalTable?, options: GainFitOptions,
                        perStatus: Int = 3) -> [(GainPixelStatus, [ExampleFit])] {
        var readers: [Int: GainScanReader] = [:], failed: [Int: String] = [:]
        func reader(_ fed: Int) -> (GainScanReader?, String?) {
            if let r = readers[fed] { return (r, nil) }
            if let e = failed[fed] { return (nil, e) }
            guard let dir = scanDirectory else { failed[fed] = "the campaign has no input directory"; return (nil, failed[fed]) }
            let path = dir + "/fed_\(fed).h5"
            do { let r = try GainScanReader(path: path); readers[fed] = r; return (r, nil) } catch {
                failed[fed] = "\(path): \(error)"
                return (nil, failed[fed])
            }
        }
        let ppm = max(d.pixelsPerModule, 1)
        return pick(d, perStatus: perStatus).map { status, pixels in
            (status, pixels.map { p in
                let m = p / ppm, local = p % ppm
                var e = ExampleFit(pixel: p, module: m, detID: d.detIDs[m], row: local / max(d.cols, 1), col: local % max(d.cols, 1),
                                   merged: status)
                let fed = m < d.moduleFED.count ? Int(d.moduleFED[m]) : -1
                let (r, why) = reader(fed)
                guard let r else { e.problem = why; return e }
                guard r.rows == d.rows, r.cols == d.cols, let fm = r.detIDs.firstIndex(of: d.detIDs[m]) else {
                    e.problem = "\(r.path) does not hold module 0x\(String(d.detIDs[m], radix: 16)) of \(d.rows) x \(d.cols) pixels"
                    return e
                }
                do { try refit(&e, reader: r, fileModule: fm, local: local, vcal: vcal, options: options) } catch {
                    e.problem = "\(r.path): \(error)"
                }
                return e
            })
        }
    }

    static func refit(_ e: inout ExampleFit, reader r: GainScanReader, fileModule fm: Int, local: Int, vcal: VCalTable?,
                      options o: GainFitOptions) throws {
        let row = fm * r.pixelsPerModule + local, np = r.points
        let n: [Float] = try r.file.dataset(GainScanFormat.n).readRows(row..<(row + 1))
        let sum: [Float] = try r.file.dataset(GainScanFormat.sum).readRows(row..<(row + 1))
        let sumsq: [Float] = try r.file.dataset(GainScanFormat.sumsq).readRows(row..<(row + 1))
        let x: [Float] = vcal.map { table in
            let c = table.conversion(detID: e.detID)
            return r.vcal.map { Float(c.slope * Double($0) * r.highToLow + c.offset) }
        } ?? r.electrons(module: fm)
        let fit = n.withUnsafeBufferPointer { nb in sum.withUnsafeBufferPointer { sb in sumsq.withUnsafeBufferPointer { qb in
            x.withUnsafeBufferPointer { xb in
                GainFitKernel.fitPixelScalar(n: nb.baseAddress!, sum: sb.baseAddress!, sumsq: qb.baseAddress!, x: xb.baseAddress!,
                                             points: np, options: o)
            }
        } } }
        e.refit = fit
        // The points as the scalar reference sees them (same float operations), its plateau and its selection.
        var xs: [Double] = [], ys: [Float] = [], errs: [Double] = []
        for k in 0..<np where n[k] > 1 {
            let nk = n[k], sk = sum[k]
            let d0 = (nk * sumsq[k]).addingProduct(-sk, sk), fl = o.varianceFloor * (nk * nk)
            let dvar = fl >= d0 ? fl : d0
            let rr = 1 / (nk * dvar), inv = dvar * rr
            let v = dvar * (inv * inv)
            xs.append(Double(x[k])); ys.append(sk * inv); errs.append(Double((v / nk).squareRoot()))
        }
        let nv = ys.count
        var plateau: Float = .nan
        var selected = [Bool](repeating: false, count: nv)
        if nv >= 2 {
            let tail = Array(ys.suffix(min(4, nv)))
            plateau = nv >= 4 ? (((tail[0] + tail[1]) + tail[2]) + tail[3]) * 0.25 : tail.reduce(0, +) / Float(nv)
            if tail.contains(where: { abs($0 - plateau) > o.plateauTolerance }) { plateau = 255 }
            let hi = plateau * o.fitFraction, stop = plateau * (o.fitFraction * o.fitFraction)
            var count = 0
            for j in 0..<nv {
                if j >= 2 && abs(ys[j] - ys[j - 1]) < o.stopStep && ys[j] > stop { break }
                if ys[j] <= hi { selected[j] = true; count += 1 }
            }
            if count < 4 {
                selected = [Bool](repeating: false, count: nv)
                count = 0
                for j in 0..<nv where count < 4 && ys[j] > 0 && ys[j] < plateau * o.fallbackFraction { selected[j] = true; count += 1 }
            }
        }
        let usable = fit.status.hasUsableFit
        let sub = "detid 0x\(String(e.detID, radix: 16)) row \(e.row) col \(e.col): " + (usable
            ? String(format: "gain %.1f e/ADC, pedestal %.1f ADC, chi2/ndf %.2f, %d points", fit.gain, fit.pedestal, fit.chi2ndf, fit.npoints)
            : "no usable fit (\(fit.status.description))")
        e.curve = ReportSVG.Curve(title: "\(e.merged.description) (reference code \(e.merged.referenceCode))", subtitle: sub,
                                  x: xs, y: ys.map(Double.init), err: errs, selected: selected,
                                  gain: usable ? Double(fit.gain) : nil, pedestal: usable ? Double(fit.pedestal) : nil,
                                  plateau: plateau.isFinite ? Double(plateau) : nil)
    }
}
