import CalibCore
import CalibIO
import CalibRunner
import CalibStore
import Foundation

/// The pixel gain summary report a pixel expert signs off on (docs/workflow.md, "The summary report"): one
/// self-contained HTML file with the overview, the detector maps (BPix layers, FPix disks), the distributions, a
/// drill-down of the worst modules, example fits of every status, the per-module comparison with the payload in use,
/// and the per-FED and per-layer tables with the failed FEDs and why.
struct PixelGainReport {
    var info: SummaryInfo
    var data: GainRunData
    var validation: GainRunValidation
    var previous: PreviousPayload?
    var steps: [CampaignStep]
    /// The fit step's FED jobs (latest attempt, with their history), if it had a job set.
    var fedJobs: [ShardStatus] = []
    /// The FEDs the campaign asked for.
    var requestedFEDs: [Int] = []
    var scanDirectory: String?
    var vcal: VCalTable?
    var options = GainFitOptions()
    /// Modules to drill into besides the worst ones (`calibctl summary RUN --module DETID`).
    var extraModules: [Int64] = []
    var drillDownCount = 4

    /// Everything the report needs, from the campaign's records: the merged file, the previous payload in the store,
    /// the steps, the fit's job set, the scan directory, the VCal table and the fit options.
    static func gather(engine: WorkflowEngine, campaign: Campaign, extraModules: [Int64] = []) throws -> PixelGainReport {
        let name = campaign.name
        guard let merged = try engine.latestOutput(campaign: name, step: PixelGain.stepMerge, named: "merged") else {
            throw PixelGainError.stepFailed(campaign: name, step: PixelGain.stepValidation, reason: "the merge step recorded no merged file")
        }
        let d = try GainRunData(path: merged.path)
        let run = Int(campaign.runs.ranges.first?.lowerBound ?? 0)
        let (prev, note) = PreviousPayload.find(store: try? engine.store(), before: run, rows: d.rows, cols: d.cols)
        var v = SummaryReport.validate(d, previous: prev)
        v.comparisonNote = note
        let settings = try engine.settings(of: campaign)
        let fitIteration = (try? engine.campaigns.step(PixelGain.stepFit, of: name).iteration) ?? 1
        let vcal = try? VCalTable.read(engine.stepDirectory(campaign: name, step: PixelGain.stepFit, iteration: max(fitIteration, 1)) + "/vcal.json")
        let info = SummaryInfo(campaign: name, vcalTag: settings.params[PixelGain.Param.vcalTag] ?? vcal?.tag ?? "?",
                               vcalPayload: vcal?.payload ?? "?", createdBy: campaign.createdBy, createdAt: campaign.createdAt)
        var r = PixelGainReport(info: info, data: d, validation: v, previous: prev, steps: try engine.campaigns.steps(of: campaign))
        if let js = try? engine.currentJobSet(campaign: name, step: PixelGain.stepFit),
           let st = try? engine.jobs.status(jobSet: js, history: true) {
            r.fedJobs = st.shards ?? []
        }
        r.requestedFEDs = (settings.units["fed"] ?? []).compactMap(Int.init)
        r.scanDirectory = settings.params[PixelGain.Param.input]
        r.vcal = vcal
        if let json = settings.params[PixelGain.Param.fitOptions],
           let o = try? JSONDecoder().decode(GainFitOptions.self, from: Data(json.utf8)) { r.options = o }
        r.extraModules = extraModules
        return r
    }

    func html() -> String {
        let d = data, v = validation
        let stats = ModuleStats.compute(d)
        let comparison = previous.map { PayloadComparison.compute(d, $0) }
        var doc = ReportDocument(title: "Pixel gain calibration, run \(d.run)", intro: intro())
        doc.add("overview", "Overview", overview(stats))
        doc.add("maps", "Detector maps", maps(stats, comparison))
        doc.add("distributions", "Distributions", distributions())
        doc.add("modules", "Module drill-down", drillDown(stats, comparison))
        doc.add("fits", "Example fits", fits())
        doc.add("comparison", "Comparison with the payload in use", compare(stats, comparison, v))
        doc.add("feds", "FEDs and layers", fedTables(stats))
        var h = doc.html()
        h = h.replacingOccurrences(of: "</body></html>\n", with: DrillDown.script + "</body></html>\n")
        return h
    }

    // MARK: sections

    func intro() -> String {
        let d = data
        return "<p>\(d.feds.count) FED(s), \(d.modules) modules of \(d.rows) x \(d.cols) pixels, \(d.gain.count) pixels. VCal tag <b>\(HTML.esc(info.vcalTag))</b> "
            + "(payload \(HTML.esc(String(info.vcalPayload.prefix(12))))). Campaign <b>\(HTML.esc(info.campaign))</b>, created by \(HTML.esc(info.createdBy)) "
            + "\(ISO8601DateFormatter().string(from: info.createdAt)); calibctl \(CalibctlVersion.string). Merged file: <code>\(HTML.esc(d.path))</code>.</p>"
    }

    func overview(_ stats: [ModuleStats]) -> String {
        let d = data, v = validation
        let badModules = stats.filter(\.isBad).count, badROCs = stats.reduce(0) { $0 + $1.badROCs.count }
        var h = "<div class=\"flex\"><div>"
        h += HTML.table(["quality", "value"], [
            [.init("fraction of good pixels"), .init(HTML.pct(v.fractionGood, 3), cls: v.fractionGood >= 0.98 ? "ok" : "bad")],
            [.init("mean gain (e/ADC)"), .init(HTML.f(v.meanGain))],
            [.init("mean pedestal (ADC)"), .init(HTML.f(v.meanPedestal))],
            [.init("median chi2/ndf"), .init(HTML.f(v.medianChi2ndf, 3))],
            [.init("modules with > 2% bad pixels"), .init(String(badModules), cls: badModules == 0 ? "ok" : "bad")],
            [.init("ROCs with > 10% bad pixels"), .init(String(badROCs), cls: badROCs == 0 ? "ok" : "bad")],
            [.init("payload in use"), .init(v.previousTag.map { "\($0) (\(v.previousRuns ?? "?"))" } ?? (v.comparisonNote == nil ? "none" : "not comparable"))],
        ])
        h += "</div><div>"
        h += HTML.table(["status", "reference code", "pixels", "fraction"], GainPixelStatus.allCases.map { s in
            let n = v.statusCounts[s.description] ?? 0
            return [.init(s.description), .init(String(s.referenceCode)), .init(String(n)), .init(HTML.pct(Double(n) / Double(max(d.gain.count, 1)), 3))]
        })
        h += "</div><div>"
        h += HTML.table(["step", "state", "iteration", "gates"], steps.map { s in
            let cls = s.state == .done ? "ok" : (s.state == .failed || s.state == .awaitingSignOff ? "bad" : nil)
            let gates = s.gates.map { g in g.results.map { "\($0.name): \($0.passed ? "pass" : "FAIL")" }.joined(separator: ", ") } ?? ""
            return [.init(s.id), .init(s.state.rawValue, left: true, cls: cls), .init(String(s.iteration)), .init(gates, left: true)]
        }, leftColumns: 2)
        return h + "</div></div>"
    }

    func maps(_ stats: [ModuleStats], _ cmp: PayloadComparison?) -> String {
        let grid = ModuleStats.rocGrid(rows: data.rows, cols: data.cols)
        let dm = DetectorMaps(modules: stats, rocGrid: grid)
        let g = DetectorMaps.range(stats.map(\.meanGain)), p = DetectorMaps.range(stats.map(\.meanPedestal))
        var quantities: [DetectorMaps.Quantity] = [
            .init(key: "gain", title: "mean gain", unit: "e/ADC", scale: ColourScale(.sequential, lo: g.0, hi: g.1), value: { $0.meanGain }),
            .init(key: "pedestal", title: "mean pedestal", unit: "ADC", scale: ColourScale(.sequential, lo: p.0, hi: p.1), value: { $0.meanPedestal }),
            .init(key: "status", title: "pixels without a usable fit", unit: "fraction", scale: ColourScale(.bad, lo: 0, hi: 0.1),
                  value: { $0.badFraction }, digits: 4, showROCs: true),
        ]
        if let cmp {
            var shift: [Int: Double] = [:]
            for c in cmp.modules { shift[c.module] = c.gainShift * 100 }
            let lim = max(1, (cmp.modules.map { abs($0.gainShift * 100) }.filter(\.isFinite).max() ?? 1))
            quantities.append(.init(key: "gainshift", title: "gain shift vs payload in use", unit: "%",
                                    scale: ColourScale(.diverging, lo: -lim, hi: lim), value: { shift[$0.index] ?? .nan }, digits: 2))
        }
        var h = "<p>Each module of the run is one cell in the detector's geometry: BPix layers unrolled (ladders along \u{03c6}, the 8 modules along z), "
            + "FPix disks as seen along the beam (inner ring blades 1-22, outer 23-56, each blade's two panels side by side). Grey: not in this run. "
            + "Red outline: more than 2% of the module's pixels without a usable fit; red cells on the status maps: ROCs with more than 10%. "
            + "Hover a module for its detid, FED and values.</p>"
        h += "<div class=\"flex\">" + quantities.map { ReportSVG.colourBar($0.scale, label: "\($0.title) (\($0.unit))", digits: $0.digits > 2 ? 2 : 1) }.joined() + "</div>"
        let used = dm.usedMaps
        for map in used {
            h += "<div class=\"flex maprow\" data-part=\"\(map)\">" + quantities.map { dm.svg(map: map, $0) }.joined() + "</div>"
        }
        let unused = PixelModulePosition.mapNames.filter { !used.contains($0) }
        if !unused.isEmpty { h += "<p class=\"note\">Not in this run: \(unused.joined(separator: ", ")).</p>" }
        let unplaced = stats.filter { $0.position == nil }
        if !unplaced.isEmpty {
            h += "<p class=\"warn\">\(unplaced.count) module(s) have detids outside the Phase-1 geometry and are not drawn: "
                + unplaced.prefix(20).map(\.hexID).joined(separator: ", ") + (unplaced.count > 20 ? ", ..." : "") + ".</p>"
        }
        let bad = stats.filter { $0.isBad || !$0.badROCs.isEmpty }.sorted { $0.badFraction > $1.badFraction }
        h += "<h3>Bad modules and ROCs (\(bad.count))</h3>"
        if bad.isEmpty { h += "<p class=\"ok\">No module with more than 2% bad pixels, no ROC with more than 10%.</p>" } else {
            h += HTML.table(["detid", "position", "FED", "bad pixels", "bad %", "bad ROCs", "most frequent problem"], bad.prefix(40).map { m in
                let worst = GainPixelStatus.allCases.filter { !$0.hasUsableFit }.max { m.statusCounts[Int($0.rawValue)] < m.statusCounts[Int($1.rawValue)] }
                return [.init("<a href=\"#module-\(m.hexID)\">\(m.hexID)</a>", raw: true), .init(m.position?.label ?? "-", left: true), .init(String(m.fed)),
                        .init(String(m.bad)), .init(HTML.pct(m.badFraction)), .init(m.badROCs.map(String.init).joined(separator: " "), left: true),
                        .init(worst.map { "\($0.description) (\(m.statusCounts[Int($0.rawValue)]))" } ?? "-", left: true)]
            }, leftColumns: 2, rowClass: bad.prefix(40).map { $0.isBad ? "bad" : "warn" })
            if bad.count > 40 { h += "<p class=\"note\">... and \(bad.count - 40) more.</p>" }
        }
        return h
    }

    func distributions() -> String {
        let d = data
        var gainH = Histogram(lo: 0, hi: 400, bins: 80), pedH = Histogram(lo: -100, hi: 250, bins: 70), chiH = Histogram(lo: 0, hi: 10, bins: 50)
        for p in d.gain.indices where (GainPixelStatus(rawValue: d.status[p]) ?? .notANumber).hasUsableFit {
            gainH.fill(Double(d.gain[p])); pedH.fill(Double(d.pedestal[p])); chiH.fill(Double(d.chi2ndf[p]))
        }
        var prevPed: Histogram?
        if let prev = previous {
            var q = Histogram(lo: -100, hi: 250, bins: 70)
            for x in prev.pedestal where x.isFinite { q.fill(Double(x)) }
            prevPed = q.scaled(toEntries: pedH.total - pedH.nan)
        }
        var h = "<p>Pixels with a usable fit (ok, no plateau). The pedestal of the payload in use is drawn as an outline, scaled to the same number "
            + "of pixels; its gains are stored per column group and are compared in the comparison section, not here.</p><div class=\"flex\">"
        h += SVG.histogram(gainH, title: "Gain", xLabel: "electrons per ADC count")
        h += SVG.histogram(pedH, title: "Pedestal", xLabel: "ADC counts at zero charge", reference: prevPed)
        h += SVG.histogram(chiH, title: "chi2 / ndf", xLabel: "chi2/ndf", logY: true)
        return h + "</div>"
    }

    func drillDownModules(_ stats: [ModuleStats], _ cmp: PayloadComparison?) -> [(ModuleStats, String)] {
        var out: [(ModuleStats, String)] = []
        var seen = Set<Int>()
        for id in extraModules {
            if let m = stats.first(where: { $0.detID == id }), seen.insert(m.index).inserted { out.append((m, "requested with --module")) }
        }
        let worst = stats.filter { $0.bad > 0 }.sorted { $0.bad > $1.bad }.prefix(drillDownCount)
        for (k, m) in worst.enumerated() where seen.insert(m.index).inserted {
            out.append((m, "number \(k + 1) by pixels without a usable fit"))
        }
        if let cmp, let c = cmp.modules.filter({ $0.gainShift.isFinite }).max(by: { abs($0.gainShift) < abs($1.gainShift) }),
           seen.insert(c.module).inserted {
            out.append((stats[c.module], "largest gain shift against the payload in use"))
        }
        if out.isEmpty, let m = stats.first { out.append((m, "no module has bad pixels; the first module of the run")) }
        return out
    }

    func drillDown(_ stats: [ModuleStats], _ cmp: PayloadComparison?) -> String {
        let chosen = drillDownModules(stats, cmp)
        var byModule: [Int: ModuleComparison] = [:]
        for c in cmp?.modules ?? [] { byModule[c.module] = c }
        var h = "<p>\(chosen.count) module(s): the worst by pixels without a usable fit, the largest gain shift, and any asked for with "
            + "<code>calibctl summary \(data.run) --module DETID</code>. Red pixels: no usable fit.</p>"
        for (m, why) in chosen { h += DrillDown.section(data, m, why: why, comparison: byModule[m.index]) }
        return h
    }

    func fits() -> String {
        let examples = ExampleFits.compute(data, scanDirectory: scanDirectory, vcal: vcal, options: options)
        var h = "<p>Pixels of every status found, re-fitted from the scan files (<code>\(HTML.esc(scanDirectory ?? "?"))</code>) with the scalar "
            + "reference fit: mean ADC per VCal point with its error, filled points are those the fit selected, the dashed line is the plateau "
            + "(255 when the last four points do not form one), the red line the fitted response ADC = pedestal + charge / gain.</p>"
        var mismatches = 0
        for (status, list) in examples {
            h += "<h3>\(status.description) (reference code \(status.referenceCode)): \(validation.statusCounts[status.description] ?? 0) pixel(s)</h3><div class=\"flex fits\" data-status=\"\(status.description)\">"
            for e in list {
                if let c = e.curve {
                    var card = ReportSVG.responseCurve(c)
                    if let f = e.refit, f.status != e.merged {
                        mismatches += 1
                        card += "<div class=\"warn\">re-fit gives \(f.status.description), the merged file \(e.merged.description)</div>"
                    }
                    h += "<div class=\"card\">\(card)</div>"
                } else {
                    h += "<div class=\"card warn\">pixel \(e.pixel) (detid 0x\(String(e.detID, radix: 16))): \(HTML.esc(e.problem ?? "no points"))</div>"
                }
            }
            h += "</div>"
        }
        if mismatches > 0 { h += "<p class=\"bad\">\(mismatches) re-fit(s) disagree with the merged file's status: were the scan files changed since the fit?</p>" }
        return h
    }

    func compare(_ stats: [ModuleStats], _ cmp: PayloadComparison?, _ v: GainRunValidation) -> String {
        guard let cmp, let t = v.previousTag else {
            if let note = v.comparisonNote { return "<p class=\"bad\">\(HTML.esc(note)).</p>" }
            return "<p>No earlier offline gain payload for this detector in the store: nothing to compare with.</p>"
        }
        var h = "<p>Payload in use: tag <b>\(HTML.esc(t))</b>, validity \(HTML.esc(v.previousRuns ?? "?")). Modules are matched by detid; "
            + "pixels count when both have a usable value (the payload's dead and noisy pixels have none).</p>"
        h += HTML.table(["quantity", "value"], [
            [.init("modules compared"), .init(String(cmp.modules.count))],
            [.init("modules of the run not in the payload"), .init(String(cmp.notInPayload.count), cls: cmp.notInPayload.isEmpty ? nil : "warn")],
            [.init("modules of the payload not in the run"), .init(String(cmp.notInRun))],
            [.init("pixels compared"), .init(String(v.comparedPixels))],
            [.init("relative shift of the mean gain"), .init(HTML.pct(v.meanGainShift, 3))],
            [.init("mean pedestal shift (ADC)"), .init(HTML.f(v.meanPedestalShift, 3))],
            [.init("pixels changed by more than one 8-bit bin"), .init(String(v.changedPixels))],
            [.init("pixels newly without a usable fit"), .init(String(cmp.modules.reduce(0) { $0 + $1.newlyBad }))],
            [.init("pixels recovered"), .init(String(cmp.modules.reduce(0) { $0 + $1.recovered }))],
        ])
        if !cmp.skippedModules.isEmpty { h += "<p class=\"warn\">Not compared: \(HTML.esc(cmp.skippedModules.prefix(10).joined(separator: "; "))).</p>" }
        // Column-group gains, module shifts.
        // On the payload's own 8-bit grid, so its quantised gains are not drawn as spikes between empty bins.
        let enc = GainPayloadEncoder(), bin = Double(enc.gainMax - enc.gainMin) / 253
        let gr = DetectorMaps.range(cmp.groupGainsNow + cmp.groupGainsPrev, pad: 0.3)
        let glo = Double(enc.gainMin) + (((gr.0 - Double(enc.gainMin)) / bin).rounded(.down) - 0.5) * bin
        let bins = max(1, min(200, Int(((gr.1 - glo) / bin).rounded(.up))))
        var now = Histogram(lo: glo, hi: glo + Double(bins) * bin, bins: bins), before = Histogram(lo: glo, hi: glo + Double(bins) * bin, bins: bins)
        for x in cmp.groupGainsNow { now.fill(x) }
        for x in cmp.groupGainsPrev { before.fill(x) }
        let shifts = cmp.modules.map { $0.gainShift * 100 }.filter(\.isFinite), pshifts = cmp.modules.map(\.pedestalShift).filter(\.isFinite)
        let sr = DetectorMaps.range(shifts, pad: 0.3), pr = DetectorMaps.range(pshifts, pad: 0.3)
        var sh = Histogram(lo: sr.0, hi: sr.1, bins: 40), ph = Histogram(lo: pr.0, hi: pr.1, bins: 40)
        for x in shifts { sh.fill(x) }
        for x in pshifts { ph.fill(x) }
        h += "<div class=\"flex\">"
        h += SVG.histogram(now, title: "Gain per column group (80 rows), as the payload stores it", xLabel: "electrons per ADC count, bins of the payload's 8-bit precision", reference: before)
        h += SVG.histogram(sh, title: "Per module: mean gain shift", xLabel: "(this run - payload) / payload, %")
        h += SVG.histogram(ph, title: "Per module: mean pedestal shift", xLabel: "this run - payload, ADC")
        h += "</div>"
        func rows(_ list: [ModuleComparison]) -> [[HTML.Cell]] {
            list.map { c in
                let s = stats[c.module]
                return [.init("<a href=\"#module-\(s.hexID)\">\(s.hexID)</a>", raw: true), .init(s.position?.label ?? "-", left: true),
                        .init(String(s.fed)), .init(String(c.compared)), .init(HTML.f(c.meanPrevGain)), .init(HTML.f(c.meanNowGain)),
                        .init(HTML.pct(c.gainShift)), .init(HTML.f(c.pedestalShift)), .init(String(c.newlyBad)), .init(String(c.recovered))]
            }
        }
        let header = ["detid", "position", "FED", "pixels compared", "gain before", "gain now", "gain shift", "pedestal shift (ADC)", "newly bad", "recovered"]
        let byShift = cmp.modules.filter { $0.gainShift.isFinite }.sorted { abs($0.gainShift) > abs($1.gainShift) }.prefix(15).map { $0 }
        h += "<h3>Worst modules by gain shift</h3>" + HTML.table(header, rows(byShift), leftColumns: 2,
                                                               rowClass: byShift.map { abs($0.gainShift) > 0.05 ? "bad" : nil }, attributes: "class=\"worst\"")
        let byStatus = cmp.modules.filter { $0.statusChanges > 0 }.sorted { $0.statusChanges > $1.statusChanges }.prefix(15).map { $0 }
        h += "<h3>Worst modules by status changes</h3>"
        h += byStatus.isEmpty ? "<p class=\"ok\">No pixel changed between usable and unusable.</p>"
            : HTML.table(header, rows(byStatus), leftColumns: 2, rowClass: byStatus.map { $0.newlyBad > 100 ? "bad" : nil })
        if !cmp.notInPayload.isEmpty {
            h += "<p class=\"warn\">Not in the payload in use (new modules, or another geometry): "
                + cmp.notInPayload.prefix(20).map { "0x" + String($0, radix: 16) }.joined(separator: ", ") + (cmp.notInPayload.count > 20 ? ", ..." : "") + ".</p>"
        }
        return h
    }

    func fedTables(_ stats: [ModuleStats]) -> String {
        let d = data
        struct Acc { var modules = 0, pixels = 0, good = 0, g = 0.0, p = 0.0, badModules = 0 }
        var perFED: [Int: Acc] = [:], perLayer: [String: Acc] = [:]
        for m in stats {
            let layer = m.position?.mapName ?? PixelLayer.name(detID: m.detID)
            for k in [0, 1] {
                var a = (k == 0 ? perFED[m.fed] : perLayer[layer]) ?? Acc()
                a.modules += 1; a.pixels += m.pixels; a.good += m.usable; a.g += m.gainSum; a.p += m.pedSum
                if m.isBad { a.badModules += 1 }
                if k == 0 { perFED[m.fed] = a } else { perLayer[layer] = a }
            }
        }
        var jobs: [Int: ShardStatus] = [:]
        for s in fedJobs { jobs[PixelGain.fed(of: s.key)] = s }
        let allFEDs = Array(Set(perFED.keys).union(requestedFEDs).union(jobs.keys)).sorted()
        // Failed FEDs: not merged, or their job failed; and those that needed more than one attempt.
        let missing = allFEDs.filter { perFED[$0] == nil }
        var h = ""
        if missing.isEmpty {
            h += "<p class=\"ok\">Every requested FED (\(allFEDs.count)) is in the merged file.</p>"
        } else {
            h += "<h3 class=\"bad\">Failed FEDs (\(missing.count))</h3>"
            h += HTML.table(["FED", "partition", "job state", "attempts", "failure class", "why"], missing.map { f in
                let j = jobs[f]
                return [.init(String(f)), .init(CMSPixelTopology.isBPix(fed: f) ? "BPix" : "FPix", left: true),
                        .init(j?.state?.rawValue ?? "not submitted", left: true), .init(String(j?.attempts ?? 0)),
                        .init(j?.failureClass?.rawValue ?? "-", left: true), .init(j?.reason ?? "no fit output merged", left: true)]
            }, rowClass: missing.map { _ in "bad" }, attributes: "class=\"failed-feds\"")
        }
        let retried = allFEDs.compactMap { f -> (Int, ShardStatus)? in jobs[f].flatMap { $0.attempts > 1 ? (f, $0) : nil } }
        if !retried.isEmpty {
            h += "<h3>FEDs that needed more than one attempt</h3>" + HTML.table(["FED", "attempts", "earlier failures"], retried.map { f, s in
                let why = (s.history ?? []).filter { $0.state != .succeeded }.map { a in
                    "attempt \(a.number): \(a.state.rawValue)" + (a.failureClass.map { " (\($0.rawValue))" } ?? "") + (a.reason.map { ": \($0)" } ?? "")
                }.joined(separator: "; ")
                return [.init(String(f)), .init(String(s.attempts)), .init(why.isEmpty ? "-" : why, left: true)]
            }, rowClass: retried.map { _ in "warn" })
        }
        func table(_ key: String, _ rows: [(String, Acc?, ShardStatus?)]) -> String {
            HTML.table([key, "modules", "bad modules", "pixels", "good", "mean gain", "mean pedestal", "job", "attempts"], rows.map { k, a, j in
                let ok = a.map { $0.pixels > 0 ? Double($0.good) / Double($0.pixels) : 0 }
                return [.init(k), .init(a.map { String($0.modules) } ?? "-"), .init(a.map { String($0.badModules) } ?? "-"),
                        .init(a.map { String($0.pixels) } ?? "-"),
                        .init(ok.map { HTML.pct($0, 3) } ?? "failed", cls: (ok ?? 0) >= 0.98 ? "ok" : "bad"),
                        .init(a.map { HTML.f($0.good > 0 ? $0.g / Double($0.good) : .nan) } ?? "-"),
                        .init(a.map { HTML.f($0.good > 0 ? $0.p / Double($0.good) : .nan) } ?? "-"),
                        .init(j?.state?.rawValue ?? "-", left: true), .init(j.map { String($0.attempts) } ?? "-")]
            }, rowClass: rows.map { $0.1 == nil ? "bad" : nil })
        }
        h += "<h3>Per FED</h3>" + table("FED", allFEDs.map { f in ("\(f) (\(CMSPixelTopology.isBPix(fed: f) ? "BPix" : "FPix"))", perFED[f], jobs[f]) })
        let layers = PixelModulePosition.mapNames.filter { perLayer[$0] != nil } + perLayer.keys.filter { !PixelModulePosition.mapNames.contains($0) }.sorted()
        h += "<h3>Per layer / disk</h3>" + table("layer", layers.map { ($0, perLayer[$0], nil) })
        _ = d
        return h
    }

    /// The text summary of the archive (run.py's twiki text).
    func text() -> String {
        let d = data, v = validation
        let stats = ModuleStats.compute(d)
        var t = "Pixel gain calibration, run \(d.run) (campaign \(info.campaign))\n"
        t += "calibctl \(CalibctlVersion.string); VCal tag \(info.vcalTag); merged file \(d.path)\n"
        t += "\(d.feds.count) FED(s), \(d.modules) modules, \(d.gain.count) pixels\n"
        t += String(format: "good pixels %.3f%%, mean gain %.2f e/ADC, mean pedestal %.2f ADC, median chi2/ndf %.3f\n",
                    100 * v.fractionGood, v.meanGain, v.meanPedestal, v.medianChi2ndf)
        t += "modules with > 2% bad pixels: \(stats.filter(\.isBad).count); ROCs with > 10%: \(stats.reduce(0) { $0 + $1.badROCs.count })\n"
        t += "status: " + GainPixelStatus.allCases.map { "\($0.description) \(v.statusCounts[$0.description] ?? 0)" }.joined(separator: ", ") + "\n"
        if let tag = v.previousTag {
            t += String(format: "vs %@ (%@): mean gain shift %.3f%%, mean pedestal shift %.3f ADC, %d pixel(s) changed by > 1 bin\n",
                        tag, v.previousRuns ?? "?", 100 * v.meanGainShift, v.meanPedestalShift, v.changedPixels)
        } else if let n = v.comparisonNote { t += n + "\n" }
        let failed = fedJobs.filter { $0.state != .succeeded }
        for f in failed { t += "FED \(PixelGain.fed(of: f.key)): \(f.state?.rawValue ?? "created")\(f.reason.map { ": \($0)" } ?? "")\n" }
        for s in steps { t += "step \(s.id): \(s.state.rawValue) (iteration \(s.iteration))\n" }
        return t
    }
}

extension Histogram {
    /// The same histogram scaled to `n` entries in range (for outlines compared by shape).
    func scaled(toEntries n: Int) -> Histogram {
        let have = counts.reduce(0, +)
        guard have > 0 else { return self }
        var h = self
        let f = Double(n) / Double(have)
        h.counts = counts.map { Int((Double($0) * f).rounded()) }
        h.underflow = Int((Double(underflow) * f).rounded())
        h.overflow = Int((Double(overflow) * f).rounded())
        return h
    }
}
