import CalibCore
import Foundation

/// Where a module sits in the Phase-1 pixel detector, from the global module index in the low bits of its detid
/// (`CMSPixelTopology.detID`): BPix layers 1-4 with 12/28/44/64 ladders of 8 modules (96/224/352/512 modules), FPix
/// disks 1-6 (D1-D3 on the -z side, D4-D6 on +z) with 56 blades (22 in the inner ring, 34 in the outer) of 2 panels
/// (112 modules each). calibctl's numbering of the synthetic detids; the official one comes with the cabling map.
public struct PixelModulePosition: Equatable, Sendable {
    public enum Part: Equatable, Sendable {
        /// layer 1-4, ladder 1-N, module 1-8 along z (1-4 at -z, 5-8 at +z)
        case bpix(layer: Int, ladder: Int, module: Int)
        /// disk 1-6, blade 1-56 (1-22 inner ring), panel 1-2
        case fpix(disk: Int, blade: Int, panel: Int)
    }
    public var part: Part

    public static let ladders = [12, 28, 44, 64]
    public static let modulesPerLadder = 8
    public static let innerBlades = 22, outerBlades = 34
    public static var blades: Int { innerBlades + outerBlades }

    /// The position of a detid, nil when it is not one of the 1856 modules (another geometry: it is listed, not drawn).
    public init?(detID: Int64) {
        let high = detID >> 24, m = Int(detID & 0xFF_FFFF)
        if high == 0x12, m < CMSPixelTopology.bpixModules {
            var start = 0
            for (l, n) in Self.ladders.enumerated() {
                let count = n * Self.modulesPerLadder
                if m < start + count {
                    let local = m - start
                    part = .bpix(layer: l + 1, ladder: local / Self.modulesPerLadder + 1, module: local % Self.modulesPerLadder + 1)
                    return
                }
                start += count
            }
            return nil
        }
        if high == 0x14, m >= CMSPixelTopology.bpixModules, m < CMSPixelTopology.bpixModules + CMSPixelTopology.fpixModules {
            let k = m - CMSPixelTopology.bpixModules, per = 2 * Self.blades
            part = .fpix(disk: k / per + 1, blade: (k % per) / 2 + 1, panel: k % 2 + 1)
            return
        }
        return nil
    }

    /// "BPix L1" ... "FPix D6": the map a module is drawn on.
    public var mapName: String {
        switch part {
        case .bpix(let l, _, _): "BPix L\(l)"
        case .fpix(let d, _, _): "FPix D\(d)"
        }
    }

    public var label: String {
        switch part {
        case .bpix(let l, let lad, let mod): "BPix L\(l) ladder \(lad) module \(mod)"
        case .fpix(let d, let b, let p): "FPix D\(d) (\(Self.diskSide(d))) blade \(b) panel \(p)"
        }
    }

    /// "z-, disk 1" for D1 ... "z+, disk 3" for D6.
    public static func diskSide(_ d: Int) -> String { d <= 3 ? "z\u{2212} disk \(d)" : "z+ disk \(d - 3)" }

    public static var mapNames: [String] { (1...4).map { "BPix L\($0)" } + (1...6).map { "FPix D\($0)" } }
}
