import Foundation

/// How the points of a block's pixels are laid out in memory.
public enum GainScanLayout: Sendable, Equatable {
    /// `[pixel][point]`: the points of one pixel are contiguous (the gain-scan file layout).
    case pixelMajor
    /// `[group][point][16]`: groups of `GainFitKernel.lanes` (16) pixels, each group holding one 16-pixel vector per
    /// point (structure of arrays inside the group, the SIMD kernel's native layout). The arrays are padded to whole
    /// groups: `GainScanBlock.interleavedCount(pixels:points:)` floats each.
    case interleaved
}

/// Scan data of a block of pixels: `n`, `sum`, `sumsq` each hold the `pixels * points` floats in `layout` order.
public struct GainScanBlock: @unchecked Sendable {
    public let n: UnsafePointer<Float>
    public let sum: UnsafePointer<Float>
    public let sumsq: UnsafePointer<Float>
    public let pixels: Int
    public let points: Int
    public let layout: GainScanLayout

    public init(n: UnsafePointer<Float>, sum: UnsafePointer<Float>, sumsq: UnsafePointer<Float>, pixels: Int, points: Int,
                layout: GainScanLayout = .pixelMajor) {
        self.n = n; self.sum = sum; self.sumsq = sumsq; self.pixels = pixels; self.points = points
        self.layout = layout
    }

    /// Floats per array of an interleaved block (pixels rounded up to whole 16-pixel groups).
    public static func interleavedCount(pixels: Int, points: Int) -> Int {
        (pixels + GainFitKernel.lanes - 1) / GainFitKernel.lanes * GainFitKernel.lanes * points
    }

    /// Offset of pixel `p`'s first point, and the distance between its consecutive points.
    @inline(__always) package func offset(ofPixel p: Int) -> (start: Int, stride: Int) {
        switch layout {
        case .pixelMajor: return (p * points, 1)
        case .interleaved:
            let L = GainFitKernel.lanes
            return ((p / L) * L * points + p % L, L)
        }
    }

    /// Copies pixel-major arrays (`pixels * points` floats each) into interleaved ones
    /// (`interleavedCount(pixels:points:)` floats each; the padding lanes of the last group are set to 0).
    public static func interleave(_ src: UnsafePointer<Float>, pixels: Int, points: Int,
                                  into dst: UnsafeMutablePointer<Float>) {
        let L = GainFitKernel.lanes
        var p = 0
        while p + L <= pixels {
            GainFitKernel.transpose16(src + p * points, points: points, into: dst + p * points)
            p += L
        }
        if p < pixels {
            let g = dst + p * points
            g.initialize(repeating: 0, count: L * points)
            for j in 0..<(pixels - p) { for k in 0..<points { g[k * L + j] = src[(p + j) * points + k] } }
        }
    }
}

/// Per-pixel outputs of the gain fit, each `pixels` long. No-fit pixels get NaN gain/pedestal and 0 points.
public struct GainFitResults: @unchecked Sendable {
    public let gain: UnsafeMutablePointer<Float>
    public let pedestal: UnsafeMutablePointer<Float>
    public let chi2ndf: UnsafeMutablePointer<Float>
    public let npoints: UnsafeMutablePointer<UInt8>
    public let status: UnsafeMutablePointer<UInt8>

    public init(gain: UnsafeMutablePointer<Float>, pedestal: UnsafeMutablePointer<Float>,
                chi2ndf: UnsafeMutablePointer<Float>, npoints: UnsafeMutablePointer<UInt8>,
                status: UnsafeMutablePointer<UInt8>) {
        self.gain = gain; self.pedestal = pedestal; self.chi2ndf = chi2ndf; self.npoints = npoints; self.status = status
    }
}

/// One pixel's fit result.
public struct GainPixelFit: Sendable, Equatable {
    public var gain: Float
    public var pedestal: Float
    public var chi2ndf: Float
    public var npoints: Int
    public var status: GainPixelStatus

    package init(gain: Float, pedestal: Float, chi2ndf: Float, npoints: Int, status: GainPixelStatus) {
        self.gain = gain; self.pedestal = pedestal; self.chi2ndf = chi2ndf; self.npoints = npoints; self.status = status
    }
}

/// The per-pixel weighted linear gain fit: a SIMD kernel (16 pixels per vector, points walked in order) with the scalar
/// reference `fitPixelScalar` next to it (GainFitKernel.swift, GainFitScalar.swift). The kernel is compiled twice, for
/// x86-64-v3 (AVX2, in this module) and x86-64-v4 (AVX-512, CalibKernelsAVX512); `fitVector` runs the one
/// `NumericKernels.gain` names, and both give the same bits (docs/numerics.md, "Instruction sets").
public enum GainFitKernel {
    /// Fits every pixel of `block` using `threads` workers (pixel ranges of 4096). `x` holds the injected charge in
    /// electrons per point.
    public static func fit(_ block: GainScanBlock, x: [Float], options: GainFitOptions = GainFitOptions(),
                           into out: GainFitResults, threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        precondition(x.count == block.points, "x has \(x.count) values for \(block.points) points")
        let tile = 4096
        let tiles = (block.pixels + tile - 1) / tile
        x.withUnsafeBufferPointer { xb in
            let xp = SendablePointer(xb.baseAddress ?? UnsafePointer(bitPattern: 8)!)
            if threads <= 1 || tiles <= 1 {
                fitVector(block, x: xp.base, range: 0..<block.pixels, options: options, into: out)
                return
            }
            DispatchQueue.concurrentPerform(iterations: tiles) { t in
                let r = (t * tile)..<Swift.min(block.pixels, (t + 1) * tile)
                fitVector(block, x: xp.base, range: r, options: options, into: out)
            }
        }
    }

    /// The vector kernel over a pixel range with the kernels `NumericKernels` selected for this CPU; groups of 16
    /// pixels, scalar for the tail and for irregular pixels. Returns how many pixels the scalar reference fitted
    /// (tail, missing points, float margins below `tieMargin`).
    @discardableResult
    public static func fitVector(_ block: GainScanBlock, x: UnsafePointer<Float>, range: Range<Int>,
                                 options: GainFitOptions = GainFitOptions(), into out: GainFitResults) -> Int {
        NumericKernels.gain.fitRange(block, x, range, options, out)
    }
}
