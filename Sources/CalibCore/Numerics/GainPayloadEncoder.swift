/// The 8-bit payload encoding of the CMS offline and HLT gain-calibration objects (SiPixelGainCalibrationOffline /
/// ForHLT): 253 bins between a minimum and a maximum, 254 = noisy, 255 = dead.
///
/// Offline blob per module (rows x cols, averaged over `rowsPerGroup` = 80 rows): for each column, for each 80-row half,
/// 80 pedestal codes then one gain code; 416 x 2 x 81 = 67,392 bytes for a CMS module. HLT blob: for each column and
/// half, a pedestal code and a gain code; 416 x 2 x 2 = 1,664 bytes.
public struct GainPayloadEncoder: Sendable {
    public var pedestalMin: Float = -100
    public var pedestalMax: Float = 250
    public var gainMin: Float = 0
    public var gainMax: Float = 500.5
    public var rowsPerGroup = 80
    /// A module mean replaces bad pixels only if more than this many pixels are good.
    public var minGoodForModuleMean = 100
    public static let bins = 253
    public static let noisyCode: UInt8 = 254
    public static let deadCode: UInt8 = 255

    public init() {}

    /// code = trunc((x - min) / precision) with precision = (max - min) / 253; values outside [min, max] clamp to 0/253.
    public static func encode(_ x: Float, min: Float, max: Float) -> UInt8 {
        let c = (Double(x) - Double(min)) * Double(bins) / (Double(max) - Double(min))
        return UInt8(Swift.min(Swift.max(c.rounded(.towardZero), 0), Double(bins)))
    }

    /// min + code * precision (codes 254/255 decode to NaN).
    public static func decode(_ code: UInt8, min: Float, max: Float) -> Float {
        code > UInt8(bins) ? .nan : Float(Double(min) + Double(code) * (Double(max) - Double(min)) / Double(bins))
    }

    public func encodePedestal(_ x: Float) -> UInt8 { Self.encode(x, min: pedestalMin, max: pedestalMax) }
    public func encodeGain(_ x: Float) -> UInt8 { Self.encode(x, min: gainMin, max: gainMax) }
    public func decodePedestal(_ c: UInt8) -> Float { Self.decode(c, min: pedestalMin, max: pedestalMax) }
    public func decodeGain(_ c: UInt8) -> Float { Self.decode(c, min: gainMin, max: gainMax) }

    /// A good pixel: usable fit status and values strictly inside the payload ranges (pedestal -100..250, gain 0..500).
    public func isGood(gain: Float, pedestal: Float, status: GainPixelStatus) -> Bool {
        status.hasUsableFit && pedestal > -100 && pedestal < 250 && gain > 0 && gain < 500
    }

    /// Encoded payloads of one module.
    public struct ModulePayload: Sendable, Equatable {
        public var offline: [UInt8]
        public var hlt: [UInt8]
        /// Pixels replaced by the module (or global) mean, flagged noisy, flagged dead.
        public var replaced: Int
        public var noisy: Int
        public var dead: Int
    }

    /// Encodes one module from row-major (rows x cols) gain, pedestal and status arrays. Bad pixels take the module
    /// mean of good pixels (if more than 100 are good) or `globalMean`; they are dead (255) only if that is out of range.
    /// Noisy pixels are coded 254 in the offline pedestal and enter averages with the replacement values.
    public func encodeModule(gain: [Float], pedestal: [Float], status: [GainPixelStatus], rows: Int, cols: Int,
                             globalMean: (gain: Float, pedestal: Float)) throws -> ModulePayload {
        let P = rows * cols
        guard gain.count == P, pedestal.count == P, status.count == P, rows % rowsPerGroup == 0, cols > 0 else {
            throw NumericsError.badParameter("payload module", "needs rows x cols = \(P) values and rows a multiple of \(rowsPerGroup)",
                                             fix: "pass whole modules (160 x 416 for CMS) or set rowsPerGroup")
        }
        var sg = 0.0, sp = 0.0, good = 0
        var isGood = [Bool](repeating: false, count: P)
        for p in 0..<P where self.isGood(gain: gain[p], pedestal: pedestal[p], status: status[p]) {
            isGood[p] = true; good += 1; sg += Double(gain[p]); sp += Double(pedestal[p])
        }
        let mean = good > minGoodForModuleMean ? (gain: Float(sg / Double(good)), pedestal: Float(sp / Double(good)))
                                                : globalMean
        let meanGood = self.isGood(gain: mean.gain, pedestal: mean.pedestal, status: .ok)
        var g = gain, pd = pedestal
        var pedCode = [UInt8](repeating: 0, count: P)
        var replaced = 0, noisy = 0, dead = 0
        var deadPixel = [Bool](repeating: false, count: P)
        for p in 0..<P {
            if isGood[p] { pedCode[p] = encodePedestal(pd[p]); continue }
            g[p] = mean.gain; pd[p] = mean.pedestal
            if status[p] == .noisy { pedCode[p] = Self.noisyCode; noisy += 1 }
            else if !meanGood { pedCode[p] = Self.deadCode; deadPixel[p] = true; dead += 1 }
            else { pedCode[p] = encodePedestal(pd[p]); replaced += 1 }
        }
        let groups = rows / rowsPerGroup
        var offline = [UInt8](); offline.reserveCapacity(cols * groups * (rowsPerGroup + 1))
        var hlt = [UInt8](); hlt.reserveCapacity(cols * groups * 2)
        for c in 0..<cols {
            for h in 0..<groups {
                var gs = 0.0, ps = 0.0, n = 0
                for r in (h * rowsPerGroup)..<((h + 1) * rowsPerGroup) {
                    let p = r * cols + c
                    offline.append(pedCode[p])
                    if !deadPixel[p] { gs += Double(g[p]); ps += Double(pd[p]); n += 1 }
                }
                let gainCode = n > 0 ? encodeGain(Float(gs / Double(n))) : Self.deadCode
                offline.append(gainCode)
                hlt.append(n > 0 ? encodePedestal(Float(ps / Double(n))) : Self.deadCode)
                hlt.append(gainCode)
            }
        }
        return ModulePayload(offline: offline, hlt: hlt, replaced: replaced, noisy: noisy, dead: dead)
    }

    /// Decodes an offline blob: per-pixel pedestal (row-major, NaN for 254/255), per-pixel codes, and gain per column
    /// group (`cols x groups`, column-major as stored).
    public func decodeOffline(_ blob: [UInt8], rows: Int, cols: Int) -> (pedestal: [Float], pedestalCodes: [UInt8], gain: [Float]) {
        let groups = rows / rowsPerGroup
        var ped = [Float](repeating: .nan, count: rows * cols), codes = [UInt8](repeating: 0, count: rows * cols)
        var gains: [Float] = []
        var i = 0
        for c in 0..<cols {
            for h in 0..<groups {
                for r in (h * rowsPerGroup)..<((h + 1) * rowsPerGroup) {
                    codes[r * cols + c] = blob[i]; ped[r * cols + c] = decodePedestal(blob[i]); i += 1
                }
                gains.append(decodeGain(blob[i])); i += 1
            }
        }
        return (ped, codes, gains)
    }

    /// Decodes an HLT blob into pedestal and gain per column group (column-major, NaN for dead).
    public func decodeHLT(_ blob: [UInt8]) -> (pedestal: [Float], gain: [Float]) {
        var p: [Float] = [], g: [Float] = []
        for i in stride(from: 0, to: blob.count - 1, by: 2) {
            p.append(decodePedestal(blob[i])); g.append(decodeGain(blob[i + 1]))
        }
        return (p, g)
    }
}
