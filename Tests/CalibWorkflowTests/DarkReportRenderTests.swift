@testable import CalibWorkflow
import CalibCore
import Foundation
import Testing

/// The dark-processing report's page from arrays: the maps per panel and gain mode, the counts per bit, the
/// per-panel comparison, block averaging of large panels, and previous constants of another shape never indexed.
struct DarkReportRenderTests {
    /// 2 gain modes x 3 panels x 8 x 16: pedestal 1000 + 100 g + p + a ramp; panel 1 of mode 0 has 20 hot pixels.
    static func report() -> DarkReport {
        let modes = 2, panels = 3, rows = 8, cols = 16, n = rows * cols
        var ped = [Float](), rms = [Float](), st = [UInt16]()
        for g in 0..<modes {
            for p in 0..<panels {
                for i in 0..<n {
                    ped.append(Float(1000 + 100 * g + p) + Float(i % cols) * 0.1)
                    rms.append(3 + Float(i % 7) * 0.01)
                    st.append(g == 0 && p == 1 && i < 20 ? DarkStatusBit.rmsHigh.rawValue | DarkStatusBit.saturated.rawValue : 0)
                }
            }
        }
        return DarkReport(campaign: "d1", checklist: "lcls-dark", runs: "100-110", gainModes: [0, 1],
                          detectorShape: [panels, rows, cols], pedestal: ped, rms: rms, status: st)
    }

    @Test func mapsCountsAndComparisonPerPanel() {
        var r = Self.report()
        // The constants in use: 2 ADU lower in panel 2 of gain mode 1, and pixel 0 of mode 0 panel 0 was bad.
        var old = r.pedestal.map(Double.init)
        for i in (5 * 128)..<(6 * 128) { old[i] -= 2 }
        var oldSt = [Double](repeating: 0, count: old.count)
        oldSt[0] = 1
        r.comparison = .init(detector: "jungfrau", tag: "default", run: 100, note: "compared", previousPedestals: "abc",
                             previousShape: [2, 3, 8, 16], newShape: [2, 3, 8, 16], pedestal: old, status: oldSt)
        let html = r.html()
        for map in ["pedestal", "rms", "status", "shift"] {
            for g in 0..<2 {
                for p in 0..<3 {
                    #expect(html.contains("data-map=\"\(map)\" data-gain-mode=\"\(g)\" data-panel=\"\(p)\" width=\"16\" height=\"8\""), "\(map) g\(g) p\(p)")
                }
            }
        }
        let st = r.stats()
        #expect(st[0][1].bad == 20 && st[0][1].bits[0] == 20 && st[0][1].bits[2] == 20 && st[1][0].bad == 0)
        #expect(abs(st[1][2].meanShift - 2) < 1e-4 && st[1][2].compared == 128 && st[0][0].meanShift == 0)
        #expect(st[0][0].recovered == 1 && st[0][1].newlyBad == 20 && st[0][1].compared == 108)
        #expect(html.contains("class=\"shifts\"") && html.contains("class=\"bits\"") && html.contains("rms high (noisy)"))
        #expect(html.contains("<tr class=\"bad\"><td>0</td><td>1</td>"), "the panel with 16% bad pixels stands out")
    }

    @Test func anotherShapeIsNeverIndexed() {
        var r = Self.report()
        r.comparison = .init(detector: "jungfrau", tag: "default", run: 100, note: "not compared", previousPedestals: "abc",
                             previousShape: [1, 4, 4], newShape: [2, 3, 8, 16], pedestal: [1, 2, 3], status: nil)
        let html = r.html()
        #expect(html.contains("class=\"bad shape-mismatch\"") && html.contains("shape 1x4x4") && html.contains("2x3x8x16"))
        #expect(!html.contains("data-map=\"shift\"") && r.stats().allSatisfy { $0.allSatisfy { $0.compared == 0 } })
        r.comparison = nil
        #expect(r.html().contains("No comparison was recorded"))
    }

    @Test func largePanelsAreBlockAveraged() {
        // One gain mode of a Jungfrau 4M (8 panels x 512 x 1024): the page stays bounded.
        let n = 8 * 512 * 1024
        let r = DarkReport(campaign: "big", checklist: "lcls-dark", runs: "1", gainModes: [0], detectorShape: [8, 512, 1024],
                           pedestal: [Float](repeating: 1500, count: n), rms: nil, status: [UInt16](repeating: 0, count: n))
        #expect(r.bin >= 2)
        let html = r.html()
        #expect(html.utf8.count < 12_000_000 && html.contains("data-roc-rows=\"\(256 / r.bin)\"") && html.contains("block of \(r.bin) x \(r.bin) pixels"))
    }

    @Test func aMissingBrowserIsANoteNotAFailure() {
        let r = ReportPrinter.printIfAvailable(html: "/nonexistent.html", to: "/nonexistent.pdf", environment: ["CALIBCTL_CHROMIUM": "/nonexistent/chromium"])
        #expect(r.pdf == nil && r.note.contains("not installed"))
        #expect(ReportPrinter.wanted(nil) && ReportPrinter.wanted("auto") && !ReportPrinter.wanted("false") && !ReportPrinter.wanted("no"))
    }
}
