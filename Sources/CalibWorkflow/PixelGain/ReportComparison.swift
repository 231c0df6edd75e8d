import CalibCore
import Foundation

/// The comparison with the payload in use, per module: mean gain and pedestal over the pixels good in both, the pixels
/// that became bad or recovered, and the column-group gains (what the payload stores: one gain per 80 rows of a
/// column) of this run against the payload's. Modules are matched by detid; a module missing on either side, or of
/// another size, is counted and named, never indexed blindly.
struct ModuleComparison {
    var module: Int
    var detID: Int64
    var compared = 0
    var prevGain = 0.0, nowGain = 0.0, prevPed = 0.0, nowPed = 0.0
    var newlyBad = 0
    var recovered = 0

    var meanPrevGain: Double { compared > 0 ? prevGain / Double(compared) : .nan }
    var meanNowGain: Double { compared > 0 ? nowGain / Double(compared) : .nan }
    var gainShift: Double { compared > 0 && prevGain != 0 ? (nowGain - prevGain) / prevGain : .nan }
    var pedestalShift: Double { compared > 0 ? (nowPed - prevPed) / Double(compared) : .nan }
    var statusChanges: Int { newlyBad + recovered }
}

struct PayloadComparison {
    var modules: [ModuleComparison] = []
    /// Modules of the run the payload lacks, and payload modules not in the run.
    var notInPayload: [Int64] = []
    var notInRun = 0
    var skippedModules: [String] = []
    /// Column-group gains (electrons/ADC) of this run and of the payload, for the modules compared.
    var groupGainsNow: [Double] = []
    var groupGainsPrev: [Double] = []

    static func compute(_ d: GainRunData, _ prev: PreviousPayload, encoder: GainPayloadEncoder = GainPayloadEncoder()) -> PayloadComparison {
        var out = PayloadComparison()
        var index: [Int64: Int] = [:]
        for (i, id) in prev.detIDs.enumerated() where index[id] == nil { index[id] = i }
        let runIDs = Set(d.detIDs)
        out.notInRun = Set(prev.detIDs).subtracting(runIDs).count
        let ppm = d.pixelsPerModule, group = encoder.rowsPerGroup
        for m in 0..<d.modules {
            guard let pm = index[d.detIDs[m]] else { out.notInPayload.append(d.detIDs[m]); continue }
            let base = pm * ppm
            guard ppm > 0, base + ppm <= min(prev.gain.count, prev.pedestal.count) else {
                out.skippedModules.append("0x" + String(d.detIDs[m], radix: 16) + ": payload entry \(pm) lies outside the decoded payload")
                continue
            }
            var c = ModuleComparison(module: m, detID: d.detIDs[m])
            let r = d.module(m)
            for (k, p) in r.enumerated() {
                let good = (GainPixelStatus(rawValue: d.status[p]) ?? .notANumber).hasUsableFit
                let og = prev.gain[base + k], op = prev.pedestal[base + k]
                let prevGood = og.isFinite && op.isFinite
                if prevGood && !good { c.newlyBad += 1 }
                if !prevGood && good { c.recovered += 1 }
                guard good, prevGood else { continue }
                c.compared += 1
                c.prevGain += Double(og); c.nowGain += Double(d.gain[p])
                c.prevPed += Double(op); c.nowPed += Double(d.pedestal[p])
            }
            out.modules.append(c)
            // Column groups: the mean gain of the group's good pixels now, the payload's stored group gain.
            guard d.rows % group == 0 else { continue }
            for col in 0..<d.cols {
                for g in 0..<(d.rows / group) {
                    var s = 0.0, n = 0
                    for row in (g * group)..<((g + 1) * group) {
                        let p = r.lowerBound + row * d.cols + col
                        if (GainPixelStatus(rawValue: d.status[p]) ?? .notANumber).hasUsableFit { s += Double(d.gain[p]); n += 1 }
                    }
                    let pg = prev.gain[base + g * group * d.cols + col]
                    guard n > 0, pg.isFinite else { continue }
                    out.groupGainsNow.append(s / Double(n))
                    out.groupGainsPrev.append(Double(pg))
                }
            }
        }
        return out
    }

    /// The modules worth a look, worst first: by status changes, then by the size of the gain shift.
    func worst(_ n: Int) -> [ModuleComparison] {
        modules.sorted { a, b in
            let sa = abs(a.gainShift.isFinite ? a.gainShift : 0), sb = abs(b.gainShift.isFinite ? b.gainShift : 0)
            let ka = Double(a.statusChanges) + 1e4 * sa, kb = Double(b.statusChanges) + 1e4 * sb
            return ka > kb
        }.prefix(n).map { $0 }
    }
}
