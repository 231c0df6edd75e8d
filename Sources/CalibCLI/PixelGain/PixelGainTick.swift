import CalibCore
import CalibIO
import CalibRunner
import Foundation

/// Settings of the unattended pixel gain calibration (`HOME/pixelgain.json`, optional):
/// `{"inbox": "/data/gainscans", "vcalTag": "VCal_2026_v1", "scheduler": "slurm", "payloadYear": 2026, "payloadVersion": 1}`.
/// A scan directory `<inbox>/<RUN>/` with its `fed_<id>.h5` files and a `READY` marker (written last by the transfer)
/// becomes a run at the next tick. Without payloadYear/payloadVersion the campaign stops before the payload.
struct PixelGainAutomation: Codable {
    var inbox: String?
    var vcalTag: String?
    var scheduler: String?
    var payloadYear: Int?
    var payloadVersion: Int?

    static func load(_ ws: Workspace) throws -> PixelGainAutomation? {
        let p = ws.home + "/pixelgain.json"
        guard let d = FileManager.default.contents(atPath: p) else { return nil }
        do { return try JSONDecoder().decode(PixelGainAutomation.self, from: d) } catch {
            throw ConfigError(message: "\(p) is not valid pixel gain automation settings: \(error)",
                              fix: "see docs/workflow.md (inbox, vcalTag, scheduler, payloadYear, payloadVersion)")
        }
    }
}

/// `calibctl tick`'s campaign work for pixel gain runs: picks up new scans from the inbox, submits the fits, records
/// their metrics and gates, merges, validates and writes the summary, and, once a person has signed off the
/// validation, writes the payloads. Each action is the same code the CLI verbs run, and each is guarded by the
/// campaign step's state, so a second tick does nothing and a killed tick is finished by the next one.
struct PixelGainTickParticipant: TickParticipant {
    let workflow: PixelGainWorkflow
    var name: String { "pixel-gain" }

    func tick(_ context: TickContext) throws -> TickContribution {
        var lines: [String] = []
        var submitted = 0
        let automation = try PixelGainAutomation.load(workflow.workspace)
        if let a = automation { lines += try pickUpScans(a, context) }
        let runsDir = PixelGainLayout.runsDirectory(home: workflow.workspace.home)
        let runs = ((try? FileManager.default.contentsOfDirectory(atPath: runsDir)) ?? []).compactMap(Int.init).sorted()
        for run in runs {
            if context.isPastDeadline { break }
            guard let c = try? workflow.layout(run).load() else { continue }
            do {
                let (line, n) = try advance(c, automation)
                lines.append(line)
                submitted += n
            } catch let e as DiagnosableError {
                lines.append("\(c.campaign): \(e.message)")
            }
        }
        return TickContribution(lines: lines, submitted: submitted)
    }

    private func pickUpScans(_ a: PixelGainAutomation, _ context: TickContext) throws -> [String] {
        guard let inbox = a.inbox, let tag = a.vcalTag else { return [] }
        var lines: [String] = []
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: inbox)) ?? []
        for run in entries.compactMap(Int.init).sorted() where !context.isPastDeadline {
            let dir = inbox + "/\(run)"
            guard FileManager.default.fileExists(atPath: dir + "/READY"),
                  !FileManager.default.fileExists(atPath: workflow.layout(run).config) else { continue }
            var r = PixelGainWorkflow.CreateRequest(run: run, vcalTag: tag, input: dir)
            r.scheduler = a.scheduler ?? "local"
            do {
                let c = try workflow.create(r)
                lines.append("\(c.campaign): new scan \(dir) with \(c.feds.count) FED(s)")
            } catch let e as DiagnosableError {
                lines.append("pixelgain-\(run): cannot create from \(dir): \(e.message)")
            }
        }
        return lines
    }

    /// Moves one run on by at most the steps that are ready; returns its one-line summary.
    private func advance(_ c: PixelGainRunConfig, _ a: PixelGainAutomation?) throws -> (String, Int) {
        let wf = workflow, S = PixelGainWorkflow.self
        func state(_ s: String) throws -> StepState { try wf.campaigns.step(s, of: c.campaign).state }
        var submitted = 0
        if try state(S.stepFit) == .ready {
            submitted = try wf.submit(run: c.run)
        }
        return (try line(c), submitted)
    }

    private func line(_ c: PixelGainRunConfig) throws -> String {
        let wf = workflow, S = PixelGainWorkflow.self
        func state(_ s: String) throws -> StepState { try wf.campaigns.step(s, of: c.campaign).state }
        let a = try PixelGainAutomation.load(workflow.workspace)
        if try state(S.stepFit) == .running { try wf.settleFitStep(c) }
        if try state(S.stepMerge) == .ready { _ = try wf.merge(run: c.run) }
        if try state(S.stepValidation) == .ready { _ = try wf.summary(run: c.run) }
        if try state(S.stepOffline) == .ready, try state(S.stepHLT) == .ready,
           let year = a?.payloadYear, let version = a?.payloadVersion {
            _ = try wf.payload(run: c.run, year: year, version: version, comment: "written by calibctl tick")
        }
        let steps = try wf.campaigns.steps(of: c.campaign)
        let waiting = steps.first { [.awaitingSignOff, .awaitingValidation, .failed].contains($0.state) }
        if let w = waiting {
            let why = w.gates?.failing.isEmpty == false ? w.gates!.failingSummary : "manual check"
            return "\(c.campaign): \(w.id) \(w.state.rawValue) (\(why)); sign off: calibctl step approve \(c.campaign) \(w.id) --note ..."
        }
        if let running = steps.first(where: { $0.state == .running }) {
            return "\(c.campaign): \(running.id) running"
        }
        if let ready = steps.first(where: { $0.state == .ready }) {
            return "\(c.campaign): \(ready.id) ready" + (ready.id.hasPrefix("payload") ? " (set payloadYear/payloadVersion in pixelgain.json or run calibctl payload \(c.run) YEAR VERSION)" : "")
        }
        return "\(c.campaign): \(steps.allSatisfy { $0.state == .done || $0.state == .skipped } ? "complete" : "waiting")"
    }
}
