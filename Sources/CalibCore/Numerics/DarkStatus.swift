import Foundation

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
        // Per pixel on every core (chunks of 65,536 pixels); the sums over all pixels stay one sequential loop, so
        // the limits do not depend on the thread count.
        let chunk = 65536, chunks = (P + chunk - 1) / chunk
        ped.withUnsafeMutableBufferPointer { pb in
            rms.withUnsafeMutableBufferPointer { rb in
                let pp = SendablePointer(pb.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
                let rp = SendablePointer(rb.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
                DispatchQueue.concurrentPerform(iterations: chunks) { k in
                    for p in (k * chunk)..<Swift.min(P, (k + 1) * chunk) {
                        let n = Double(a.n[p])
                        if n > 0 {
                            let m = a.sum[p] / n
                            pp.base[p] = Float(Double(g.ref[p]) + m)
                            rp.base[p] = Float(max(a.sumsq[p] / n - m * m, 0).squareRoot())
                        }
                    }
                }
            }
        }
        var sp = 0.0, qp = 0.0, sr = 0.0, qr = 0.0
        for p in 0..<P {
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
        let (rmsLo, rmsHi, pedLo, pedHi) = (r.rmsLo, r.rmsHi, r.pedLo, r.pedHi)
        let perChunk = UnsafeMutablePointer<Int>.allocate(capacity: 8 * Swift.max(chunks, 1))
        perChunk.initialize(repeating: 0, count: 8 * Swift.max(chunks, 1))
        defer { perChunk.deallocate() }
        let cp = SendablePointer(perChunk)
        ped.withUnsafeBufferPointer { pb in
            rms.withUnsafeBufferPointer { rb in
                r.status.withUnsafeMutableBufferPointer { sb in
                    let pp = SendablePointer(pb.baseAddress ?? UnsafePointer(bitPattern: 8)!)
                    let rp = SendablePointer(rb.baseAddress ?? UnsafePointer(bitPattern: 8)!)
                    let st = SendablePointer(sb.baseAddress ?? UnsafeMutablePointer(bitPattern: 8)!)
                    DispatchQueue.concurrentPerform(iterations: chunks) { k in
                        let counts = cp.base + 8 * k
                        for p in (k * chunk)..<Swift.min(P, (k + 1) * chunk) {
                            var s: UInt16 = 0
                            let rv = Double(rp.base[p]), pv = Double(pp.base[p])
                            if rv > rmsHi { s |= DarkStatusBit.rmsHigh.rawValue }
                            if rv < rmsLo { s |= DarkStatusBit.rmsLow.rawValue }
                            if Double(a.above[p]) > frac { s |= DarkStatusBit.saturated.rawValue }
                            if Double(a.below[p]) > frac { s |= DarkStatusBit.cold.rawValue }
                            if pv > pedHi { s |= DarkStatusBit.pedestalHigh.rawValue }
                            if pv < pedLo { s |= DarkStatusBit.pedestalLow.rawValue }
                            if a.badGain[p] > 0 { s |= DarkStatusBit.badGain.rawValue }
                            st.base[p] = s
                            for b in 0..<7 where s & (1 << b) != 0 { counts[b] += 1 }
                            if s != 0 { counts[7] += 1 }
                        }
                    }
                }
            }
        }
        var counts = [Int](repeating: 0, count: 8)
        for k in 0..<chunks { for b in 0..<8 { counts[b] += perChunk[8 * k + b] } }
        for b in 0..<7 { r.counts[String(1 << b)] = counts[b] }
        r.counts["bad"] = counts[7]
        return r
    }
}
