import Foundation

/// Pure functions that read an HTCondor user event log (the submit file's `log = ...`) into the last known state of each
/// job. The log records every transition of the jobs of a submission and stays readable after condor_q and
/// condor_history have forgotten them, so it is a second witness for `poll` and for diagnosing a lost job.
public enum HTCondorEventLogParser {
    /// One event: `005 (004.001.000) 2026-11-21 20:28:08 Job terminated.` and its indented lines, up to `...`.
    public struct Event: Sendable, Equatable {
        /// The event number (000 submitted, 001 executing, 004 evicted, 005 terminated, 009 aborted, 012 held,
        /// 013 released, ...).
        public var code: Int
        /// `cluster.proc`.
        public var batchID: String
        public var date: Date?
        public var title: String
        public var lines: [String]
    }

    /// Splits a user event log into events (malformed blocks are skipped).
    public static func parseEvents(_ text: String, timeZone: TimeZone = .current) -> [Event] {
        var events: [Event] = []
        var current: Event?
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            if line == "..." {
                if let e = current { events.append(e) }
                current = nil
                continue
            }
            if current == nil {
                current = header(line, timeZone: timeZone)
            } else {
                let body = line.trimmingCharacters(in: .whitespaces)
                if !body.isEmpty { current!.lines.append(body) }
            }
        }
        if let e = current { events.append(e) }
        return events
    }

    /// The state of every job in the log after its last event, with the same taxonomy as `HTCondorOutputParser`.
    public static func observe(_ text: String, timeZone: TimeZone = .current) -> [String: ObservedJob] {
        var jobs: [String: ObservedJob] = [:]
        var lastHoldCode: [String: Int] = [:]
        for e in parseEvents(text, timeZone: timeZone) {
            var job = jobs[e.batchID] ?? ObservedJob(batchID: e.batchID, state: .submitted)
            switch e.code {
            case 0:
                job.state = .pending
            case 1:
                job.state = .running
                job.startTime = e.date
                job.reason = nil
            case 4, 13:
                job.state = .pending
            case 5:
                job.endTime = e.date
                let detail = e.lines.first ?? ""
                if let value = number(after: "return value ", in: detail) {
                    job.exitCode = Int32(value)
                    job.state = value == 0 ? .succeeded : .failed
                    job.failureClass = value == 0 ? nil : .userError
                } else if let sig = number(after: "signal ", in: detail) {
                    job.signal = Int32(sig)
                    job.state = .failed
                    job.failureClass = .nodeFailure
                }
            case 9:
                job.endTime = e.date
                if let code = lastHoldCode[e.batchID], let cls = failureClass(holdCode: code) {
                    job.state = .failed
                    job.failureClass = cls
                } else {
                    job.state = .cancelled
                    job.failureClass = .cancelled
                    job.reason = e.lines.first
                }
            case 12:
                let code = e.lines.lazy.compactMap { number(after: "Code ", in: $0) }.first
                if let code { lastHoldCode[e.batchID] = code }
                job.reason = e.lines.first
                if let cls = code.flatMap(failureClass(holdCode:)) {
                    job.state = .failed
                    job.failureClass = cls
                    job.endTime = e.date
                } else {
                    job.state = .held
                }
            default:
                continue  // image size updates, starter errors (a hold follows), reconnects...
            }
            jobs[e.batchID] = job
        }
        return jobs
    }

    static func failureClass(holdCode: Int) -> FailureClass? {
        if HTCondorOutputParser.timeLimitHoldCodes.contains(holdCode) { return .timeLimit }
        if HTCondorOutputParser.memoryHoldCodes.contains(holdCode) { return .outOfMemory }
        if HTCondorOutputParser.launchHoldCodes.contains(holdCode) { return .launchFailure }
        return nil
    }

    /// `005 (004.001.000) 2026-11-21 20:28:08 Job terminated.`
    static func header(_ line: String, timeZone: TimeZone) -> Event? {
        let parts = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
        guard parts.count >= 4, parts[0].count == 3, let code = Int(parts[0]),
              parts[1].hasPrefix("("), parts[1].hasSuffix(")") else { return nil }
        let ids = parts[1].dropFirst().dropLast().split(separator: ".")
        guard ids.count == 3, let cluster = Int(ids[0]), let proc = Int(ids[1]) else { return nil }
        let date = SlurmOutputParser.parseTime("\(parts[2])T\(parts[3])", timeZone: timeZone)
        return Event(code: code, batchID: "\(cluster).\(proc)", date: date,
                     title: parts.count > 4 ? String(parts[4]) : "", lines: [])
    }

    static func number(after marker: String, in text: String) -> Int? {
        guard let r = text.range(of: marker) else { return nil }
        let digits = text[r.upperBound...].prefix { $0.isNumber }
        return Int(digits)
    }
}
