@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// HTCondorOutputParser on real HTCondor 23.9 output captured by Fixtures/scheduler/capture-htcondor.sh.
/// Cluster 4 = shards 0 success, 1 exit 3, 2 kill -9, 3 running then condor_rm, 4 allowed_job_duration = 5 s,
/// 5 unmatchable (idle); 6.0 missing executable; 7.0 unopenable output; 8.0 condor_hold.
@Suite struct HTCondorOutputParserTests {
    func fixture(_ name: String) throws -> String {
        try String(contentsOfFile: TestPaths.fixtures + "/scheduler/htcondor/" + name, encoding: .utf8)
    }

    func observed(_ name: String) throws -> [String: ObservedJob] {
        var result: [String: ObservedJob] = [:]
        for row in HTCondorOutputParser.parseRows(try fixture(name)) where result[row.batchID] == nil {
            result[row.batchID] = HTCondorOutputParser.observe(row)
        }
        return result
    }

    @Test func historyMapsEveryFinishedScenario() throws {
        let jobs = try observed("condor_history-final.txt")
        let expected: [String: (JobState, FailureClass?)] = [
            "4.0": (.succeeded, nil), "4.1": (.failed, .userError), "4.2": (.failed, .nodeFailure),
            "4.3": (.cancelled, .cancelled), "4.4": (.failed, .timeLimit), "4.5": (.cancelled, .cancelled),
            "6.0": (.failed, .launchFailure), "7.0": (.failed, .launchFailure), "8.0": (.cancelled, .cancelled),
        ]
        for (id, (state, cls)) in expected {
            #expect(jobs[id]?.state == state, "\(id)")
            #expect(jobs[id]?.failureClass == cls, "\(id)")
        }
        #expect(jobs["4.0"]?.exitCode == 0)
        #expect(jobs["4.1"]?.exitCode == 3)
        #expect(jobs["4.2"]?.signal == 9)
        #expect(jobs["4.3"]?.signal == nil)  // removed jobs say ExitBySignal/ExitSignal 15: not a failure signal
        #expect(jobs["4.3"]?.reason == "via condor_rm (by user calibtest)")
        #expect(jobs["4.4"]?.reason?.contains("hold code 46") == true)
        let done = try #require(jobs["4.1"])
        #expect(done.startTime.map { Int($0.timeIntervalSince1970) } == 1_795_292_887)
        #expect(done.endTime.map { Int($0.timeIntervalSince1970) } == 1_795_292_888)
        #expect(done.cpuSeconds == 0)
        #expect(done.peakMemoryMB == 5)
    }

    @Test func queueShowsHeldJobsWithTheirReason() throws {
        let jobs = try observed("condor_q-all.txt")
        #expect(jobs.count == 5)
        let timeLimit = try #require(jobs["4.4"])
        #expect(timeLimit.state == .failed && timeLimit.failureClass == .timeLimit)
        #expect(timeLimit.reason == "The job exceeded allowed job duration of 00:05")
        #expect(jobs["4.5"]?.state == .pending)
        let missing = try #require(jobs["6.0"])
        #expect(missing.state == .failed && missing.failureClass == .launchFailure)
        #expect(missing.reason?.contains("Failed to execute") == true)
        #expect(jobs["7.0"]?.failureClass == .launchFailure)
        #expect(jobs["7.0"]?.reason?.contains("standard output") == true)
        let held = try #require(jobs["8.0"])
        #expect(held.state == .held && held.failureClass == nil)
        #expect(held.reason == "via condor_hold (by user calibtest)")
    }

    @Test func liveQueueShowsRunningAndIdle() throws {
        let jobs = try observed("condor_q-live.txt")
        #expect(jobs["4.3"]?.state == .running)
        #expect(jobs["4.3"]?.startTime != nil)
        #expect(jobs["4.5"]?.state == .pending)
        #expect(jobs["4.5"]?.startTime == nil)
        let rows = HTCondorOutputParser.parseRows(try fixture("condor_q-cluster.txt"))
        #expect(rows.map(\.shard) == [4, 5])
        #expect(HTCondorOutputParser.parseRows(try fixture("condor_q-empty.txt")).isEmpty)
        #expect(HTCondorOutputParser.parseRows(try fixture("condor_q-after-rm.txt")).isEmpty)
    }

    @Test func historyRowsCarryShardAndCluster() throws {
        let rows = HTCondorOutputParser.parseRows(try fixture("condor_history-cluster.txt"))
        let cluster4 = rows.filter { $0.cluster == 4 }
        #expect(Set(cluster4.compactMap(\.shard)) == [0, 1, 2, 3])
        #expect(cluster4.allSatisfy { $0.shard == $0.proc })
    }

    @Test func submitOutputs() throws {
        let r = try #require(HTCondorOutputParser.parseSubmitted(try fixture("condor_submit-terse.txt")))
        #expect(r.cluster == 4 && r.first == 0 && r.last == 5)
        #expect(HTCondorOutputParser.parseSubmitted(try fixture("condor_submit-missing-executable.txt")) == nil)
        #expect(HTCondorOutputParser.parseSubmitted("12.0 - 12.0\n")! == (12, 0, 0))
        #expect(HTCondorOutputParser.parseSubmitted("1.0 - 2.3") == nil)  // two clusters: not ours
    }

    @Test func removeOfUnknownJobIsNotAnError() throws {
        // The capture appends the exit status as a last `rc=N` line.
        let text = try fixture("condor_rm-unknown.txt")
        #expect(text.contains("rc=1"))
        #expect(HTCondorOutputParser.isOnlyNotFound(text.split(separator: "\n").filter { !$0.hasPrefix("rc=") }.joined(separator: "\n")))
        #expect(HTCondorOutputParser.isOnlyNotFound(try fixture("condor_rm.txt")))
        #expect(!HTCondorOutputParser.isOnlyNotFound("ERROR: Can't find address of local schedd"))
    }

    /// Hold codes this pool cannot produce (no memory enforcement): constructed rows for the rest of the table.
    @Test func constructedMemoryHoldAndSuspension() {
        func row(status: Int, hold: Int? = nil, lastHold: Int? = nil) -> HTCondorOutputParser.Row {
            HTCondorOutputParser.Row(batchID: "9.0", cluster: 9, proc: 0, shard: 0, jobStatus: status, exitCode: nil,
                                     exitBySignal: false, exitSignal: nil, holdReasonCode: hold, holdReasonSubCode: nil,
                                     lastHoldReasonCode: lastHold, startDate: nil, completionDate: nil,
                                     enteredCurrentStatus: nil, cpuSeconds: nil, memoryMB: nil, holdReason: "r",
                                     removeReason: nil)
        }
        #expect(HTCondorOutputParser.observe(row(status: 5, hold: 34)).failureClass == .outOfMemory)
        #expect(HTCondorOutputParser.observe(row(status: 3, lastHold: 34)).failureClass == .outOfMemory)
        #expect(HTCondorOutputParser.observe(row(status: 5, hold: 47)).failureClass == .timeLimit)
        #expect(HTCondorOutputParser.observe(row(status: 5, hold: 3)).state == .held)  // periodic_hold policy
        #expect(HTCondorOutputParser.observe(row(status: 7)).state == .running)
        #expect(HTCondorOutputParser.observe(row(status: 6)).state == .running)
        #expect(HTCondorOutputParser.observe(row(status: 4)).state == .succeeded)
    }

    @Test func classAdStringsAreEscaped() {
        #expect(HTCondorOutputParser.classAdString("a\"b\\c") == "\"a\\\"b\\\\c\"")
    }
}

/// HTCondorEventLogParser on the real user event logs captured with the fixtures above.
@Suite struct HTCondorEventLogParserTests {
    func log(_ name: String) throws -> [String: ObservedJob] {
        let text = try String(contentsOfFile: TestPaths.fixtures + "/scheduler/htcondor/" + name, encoding: .utf8)
        return HTCondorEventLogParser.observe(text, timeZone: TimeZone(identifier: "UTC")!)
    }

    @Test func clusterLogGivesEveryOutcome() throws {
        let jobs = try log("cluster-event-log.txt")
        #expect(jobs.count == 6)
        #expect(jobs["4.0"]?.state == .succeeded && jobs["4.0"]?.exitCode == 0)
        #expect(jobs["4.1"]?.state == .failed && jobs["4.1"]?.failureClass == .userError && jobs["4.1"]?.exitCode == 3)
        #expect(jobs["4.2"]?.failureClass == .nodeFailure && jobs["4.2"]?.signal == 9)
        #expect(jobs["4.3"]?.state == .cancelled && jobs["4.3"]?.reason == "via condor_rm (by user calibtest)")
        #expect(jobs["4.4"]?.state == .failed && jobs["4.4"]?.failureClass == .timeLimit)  // held 46, then removed
        #expect(jobs["4.5"]?.state == .cancelled)  // never ran
        let ran = try #require(jobs["4.1"])
        #expect(ran.startTime.map { Int($0.timeIntervalSince1970) } == 1_795_292_887)  // 2026-11-21 20:28:07 UTC
        #expect(ran.endTime.map { Int($0.timeIntervalSince1970) } == 1_795_292_888)
    }

    @Test func holdsAreClassifiedByTheirCode() throws {
        #expect(try log("missing-run-event-log.txt")["6.0"]?.failureClass == .launchFailure)
        #expect(try log("badout-event-log.txt")["7.0"]?.failureClass == .launchFailure)
        let held = try log("hold-event-log.txt")["8.0"]
        #expect(held?.state == .cancelled)  // condor_hold (code 1), then condor_rm: a person's decision
        let events = HTCondorEventLogParser.parseEvents(
            try String(contentsOfFile: TestPaths.fixtures + "/scheduler/htcondor/hold-event-log.txt", encoding: .utf8))
        #expect(events.contains { $0.code == 12 && $0.lines.first == "via condor_hold (by user calibtest)" })
    }

    @Test func partialLogEndsInTheLastState() {
        let text = """
        000 (012.000.000) 2026-11-21 20:28:05 Job submitted from host: <127.0.0.1:9618>
        ...
        001 (012.000.000) 2026-11-21 20:28:07 Job executing on host: <127.0.0.1:9618>
        """
        let jobs = HTCondorEventLogParser.observe(text)
        #expect(jobs["12.0"]?.state == .running)
        #expect(HTCondorEventLogParser.observe("garbage\n...\n").isEmpty)
    }
}
