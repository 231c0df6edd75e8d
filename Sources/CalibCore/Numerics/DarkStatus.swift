/// Turns stage-2 accumulators into pedestals, rms, limits and pixel_status (reference bits).
public enum DarkStatus {
    public struct Result: Sendable {
        public var pedestal: [Float]
        public var rms: [Float]
        public var status: [UInt16]
        public var meanPedestal = 0.0, meanRMS = 0.0
        public var rmsLo = 0.0, rmsHi = 0.0, pedLo = 0.0, pedHi = 0.0
        public var counts: [String: Int] = [:]
    }

    /// pedestal = ref + sum/n, rms = sqrt(sumsq/n - (sum/n)^2) (0 where n = 0); limits from the mean m and population
    /// std s over all pixels: lo = max(m - nSigmaLo s, floor), hi = min(m + nSigmaHi s, ceiling).
    public static func finalize(_ a: DarkAccumulators, gates g: DarkGates, frames: Int, options o: DarkOptions) -> Result {
        let P = a.pixels
        var ped = [Float](repeating: 0, count: P), rms = [Float](repeating: 0, count: P)
        var sp = 0.0, qp = 0.0, sr = 0.0, qr = 0.0
        for p in 0..<P {
            let n = Double(a.n[p])
            if n > 0 {
                let m = a.sum[p] / n
                let pv = Double(g.ref[p]) + m
                let rv = max(a.sumsq[p] / n - m * m, 0).squareRoot()
                ped[p] = Float(pv); rms[p] = Float(rv)
            }
            let pv = Double(ped[p]), rv = Double(rms[p])
            sp += pv; qp += pv * pv; sr += rv; qr += rv * rv
        }
        let N = Double(max(P, 1))
        let mp = sp / N, mr = sr / N
        let stdp = max(qp / N - mp * mp, 0).squareRoot(), stdr = max(qr / N - mr * mr, 0).squareRoot()
        var r = Result(pedestal: ped, rms: rms, status: [UInt16](repeating: 0, count: P))
        r.meanPedestal = mp; r.meanRMS = mr
        r.rmsLo = max(mr - Double(o.nSigmaLo) * stdr, Double(o.rmsLo))
        r.rmsHi = min(mr + Double(o.nSigmaHi) * stdr, Double(o.rmsHi))
        r.pedLo = max(mp - Double(o.nSigmaLo) * stdp, Double(o.intLo))
        r.pedHi = min(mp + Double(o.nSigmaHi) * stdp, Double(o.intHi))
        let frac = Double(o.fraclm) * Double(frames)
        var counts = [Int](repeating: 0, count: 8)
        for p in 0..<P {
            var s: UInt16 = 0
            let rv = Double(rms[p]), pv = Double(ped[p])
            if rv > r.rmsHi { s |= DarkStatusBit.rmsHigh.rawValue }
            if rv < r.rmsLo { s |= DarkStatusBit.rmsLow.rawValue }
            if Double(a.above[p]) > frac { s |= DarkStatusBit.saturated.rawValue }
            if Double(a.below[p]) > frac { s |= DarkStatusBit.cold.rawValue }
            if pv > r.pedHi { s |= DarkStatusBit.pedestalHigh.rawValue }
            if pv < r.pedLo { s |= DarkStatusBit.pedestalLow.rawValue }
            if a.badGain[p] > 0 { s |= DarkStatusBit.badGain.rawValue }
            r.status[p] = s
            for b in 0..<7 where s & (1 << b) != 0 { counts[b] += 1 }
            if s != 0 { counts[7] += 1 }
        }
        for b in 0..<7 { r.counts[String(1 << b)] = counts[b] }
        r.counts["bad"] = counts[7]
        return r
    }
}
