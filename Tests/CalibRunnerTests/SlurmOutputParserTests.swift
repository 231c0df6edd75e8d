@testable import CalibRunner
import CalibTestSupport
import Foundation
import Testing

/// SlurmOutputParser on real Slurm 22.05 output captured by Fixtures/scheduler/capture-slurm.sh.
@Suite struct SlurmOutputParserTests {
    /// scancel arguments: an array's tasks as ranges in one expression (sorted, duplicates once), a lone task in its
    /// plain form, other ids unchanged, long lists split under the length limit without losing or repeating a task.
    @Test func cancelArgumentsGroupArrayTasksIntoRanges() {
        let ids = ["12_3", "12_0", "12_1", "12_2", "12_7", "12_9", "12_8", "12_1", "13_5", "14", "99_x", "14"]
        #expect(SlurmOutputParser.cancelArguments(ids) == ["14", "99_x", "12_[0-3,7-9]", "13_5"])
        let many = stride(from: 0, to: 20_000, by: 2).map { "500_\($0)" }
        let args = SlurmOutputParser.cancelArguments(many, maxLength: 200)
        #expect(args.count > 1 && args.allSatisfy { $0.count <= 200 && $0.hasPrefix("500_[") })
        let back = args.flatMap { $0.dropFirst(5).dropLast().split(separator: ",").map { Int($0)! } }
        #expect(back == Array(stride(from: 0, to: 20_000, by: 2)))
    }

    static let utc = TimeZone(identifier: "UTC")!

    func fixture(_ name: String) throws -> String {
        try String(contentsOfFile: TestPaths.fixtures + "/scheduler/slurm/" + name, encoding: .utf8)
    }

    func queue(_ name: String) throws -> [String: ObservedJob] {
        let rows = SlurmOutputParser.parseQueue(try fixture(name), timeZone: Self.utc)
        return Dictionary(rows.map { ($0.batchID, SlurmOutputParser.observe($0)) }, uniquingKeysWith: { a, _ in a })
    }

    @Test func finalSqueueListingMapsEveryScenario() throws {
        let jobs = try queue("squeue-final.txt")
        #expect(jobs.count == 17)
        func check(_ id: String, _ state: JobState, _ cls: FailureClass?, exit: Int32? = nil, signal: Int32? = nil,
                   sourceLocation: SourceLocation = #_sourceLocation) {
            let j = jobs[id]
            #expect(j?.state == state, "\(id)", sourceLocation: sourceLocation)
            #expect(j?.failureClass == cls, "\(id)", sourceLocation: sourceLocation)
            if let exit { #expect(j?.exitCode == exit, "\(id)", sourceLocation: sourceLocation) }
            if let signal { #expect(j?.signal == signal, "\(id)", sourceLocation: sourceLocation) }
        }
        check("1", .succeeded, nil, exit: 0)
        check("5_0", .succeeded, nil, exit: 0)
        check("2", .failed, .userError, exit: 3)
        check("5_1", .failed, .userError, exit: 3)
        check("3", .failed, .nodeFailure, signal: 9)  // kill -9 $$: Reason=JobLaunchFailure, exit_code 9
        check("5_2", .failed, .nodeFailure, signal: 9)
        check("4", .failed, .launchFailure)  // unopenable output file: exit_code 4021 (0:53)
        check("6", .failed, .timeLimit)
        check("7", .cancelled, .cancelled)
        check("8", .cancelled, .cancelled)
        check("5_3", .cancelled, .cancelled)
        check("15", .failed, .nodeFailure)  // node set DOWN under a --no-requeue job: NODE_FAIL
        check("10", .pending, nil)  // --begin=now+1hour
        check("9", .held, nil)  // --hold: Reason=JobHeldUser
        check("11_0", .held, nil)
        check("11_2", .held, nil)
        #expect(jobs["9"]?.reason == "JobHeldUser")
        #expect(jobs["10"]?.startTime == nil)  // a pending job's StartTime is only an estimate
        let exit3 = try #require(jobs["2"])
        #expect(exit3.reason == "NonZeroExitCode")
        let start = try #require(exit3.startTime)
        #expect(Int(start.timeIntervalSince1970) == 1_795_292_691)  // 2026-11-21T20:24:51 UTC
        #expect(jobs["6"]?.endTime.map { Int($0.timeIntervalSince(jobs["6"]!.startTime!)) } == 87)
    }

    @Test func liveListingShowsRunningPendingAndHeld() throws {
        let jobs = try queue("squeue-live.txt")
        #expect(jobs["8"]?.state == .running)
        #expect(jobs["8"]?.endTime == nil)  // EndTime NONE
        #expect(jobs["6"]?.state == .running)
        #expect(jobs["5_3"]?.state == .running)
        #expect(jobs["10"]?.state == .pending)
        #expect(jobs["9"]?.state == .held)
        #expect(jobs.values.filter { $0.state == .running }.count == 4)
        #expect(jobs.values.allSatisfy { $0.state != .lost })
    }

    @Test func squeueByNameListsOnlyThatArray() throws {
        let rows = SlurmOutputParser.parseQueue(try fixture("squeue-by-name.txt"))
        #expect(rows.map(\.batchID).sorted() == ["5_0", "5_1", "5_2", "5_3"])
        #expect(rows.allSatisfy { $0.name == "cap-array" && $0.comment == "set-array" && $0.arrayJobID == "5" })
        #expect(Set(rows.compactMap(\.arrayTaskID)) == [0, 1, 2, 3])
        #expect(SlurmOutputParser.parseQueue(try fixture("squeue-after-forget.txt")).isEmpty)
    }

    @Test func scontrolShowJobForEachScenario() throws {
        let cases: [(String, String, JobState, FailureClass?)] = [
            ("scontrol-success.txt", "1", .succeeded, nil),
            ("scontrol-exit3.txt", "2", .failed, .userError),
            ("scontrol-kill9.txt", "3", .failed, .nodeFailure),
            ("scontrol-launch-failure.txt", "4", .failed, .launchFailure),
            ("scontrol-timeout.txt", "6", .failed, .timeLimit),
            ("scontrol-cancelled.txt", "7", .cancelled, .cancelled),
            ("scontrol-running.txt", "8", .running, nil),
            ("scontrol-held.txt", "9", .held, nil),
            ("scontrol-pending.txt", "10", .pending, nil),
            ("scontrol-node-fail.txt", "15", .failed, .nodeFailure),
            ("scontrol-array-task-exit3.txt", "5_1", .failed, .userError),
            ("scontrol-array-task-running.txt", "5_3", .running, nil),
        ]
        for (file, id, state, cls) in cases {
            let jobs = SlurmOutputParser.parseShowJob(try fixture(file), timeZone: Self.utc)
            #expect(jobs.count == 1, "\(file)")
            #expect(jobs.first?.batchID == id, "\(file)")
            #expect(jobs.first?.state == state, "\(file)")
            #expect(jobs.first?.failureClass == cls, "\(file)")
        }
        let exit3 = SlurmOutputParser.parseShowJob(try fixture("scontrol-exit3.txt"))
        #expect(exit3.first?.exitCode == 3 && exit3.first?.signal == nil)
        let kill9 = SlurmOutputParser.parseShowJob(try fixture("scontrol-kill9.txt"))
        #expect(kill9.first?.signal == 9 && kill9.first?.exitCode == nil)
        #expect(SlurmOutputParser.parseShowJob(try fixture("scontrol-launch-failure.txt")).first?.reason == "JobLaunchFailure")
    }

    @Test func unknownJobIsRecognised() throws {
        let text = try fixture("scontrol-invalid-id.txt")
        #expect(SlurmOutputParser.parseShowJob(text).isEmpty)
        #expect(SlurmOutputParser.isInvalidJobID(text))
        #expect(!SlurmOutputParser.isInvalidJobID(try fixture("sbatch-refused.txt")))
    }

    @Test func jobcompFileHasEveryFinishedJob() throws {
        let records = SlurmOutputParser.parseJobComp(try fixture("jobcomp.txt"), timeZone: Self.utc)
        let expected: [String: (JobState, FailureClass?)] = [
            "1": (.succeeded, nil), "5_0": (.succeeded, nil), "2": (.failed, .userError), "5_1": (.failed, .userError),
            "3": (.failed, .nodeFailure), "5_2": (.failed, .nodeFailure), "4": (.failed, .launchFailure),
            "6": (.failed, .timeLimit), "7": (.cancelled, .cancelled), "8": (.cancelled, .cancelled),
            "5_3": (.cancelled, .cancelled), "15": (.failed, .nodeFailure),
        ]
        for (id, (state, cls)) in expected {
            #expect(records[id]?.observed.state == state, "\(id)")
            #expect(records[id]?.observed.failureClass == cls, "\(id)")
        }
        #expect(records["5_1"]?.name == "cap-array")
        #expect(records["5_1"]?.arrayTaskID == 1)
        #expect(records["2"]?.observed.exitCode == 3)
        // Pending/held jobs never reach the jobcomp file.
        #expect(records["9"] == nil && records["10"] == nil && records["11_0"] == nil)
    }

    @Test func sbatchParsableOutput() throws {
        #expect(SlurmOutputParser.parseSubmitted(try fixture("sbatch-parsable.txt")) == "1")
        #expect(SlurmOutputParser.parseSubmitted(try fixture("sbatch-parsable-array.txt")) == "5")
        #expect(SlurmOutputParser.parseSubmitted("812;cluster2\n") == "812")
        #expect(SlurmOutputParser.parseSubmitted(try fixture("sbatch-refused.txt")) == nil)
    }

    @Test func waitStatusAndExitPairs() {
        #expect(SlurmOutputParser.decodeWaitStatus(0) == (0, nil))
        #expect(SlurmOutputParser.decodeWaitStatus(768) == (3, nil))
        #expect(SlurmOutputParser.decodeWaitStatus(9) == (nil, 9))
        #expect(SlurmOutputParser.decodeWaitStatus(15) == (nil, 15))
        #expect(SlurmOutputParser.decodeWaitStatus(36608) == (143, nil))
        #expect(SlurmOutputParser.parseExitPair("3:0") == (3, nil))
        #expect(SlurmOutputParser.parseExitPair("0:9") == (nil, 9))
        #expect(SlurmOutputParser.parseExitPair("garbage") == (nil, nil))
        #expect(SlurmOutputParser.parseTime("N/A") == nil)
        #expect(SlurmOutputParser.parseTime("NONE") == nil)
        #expect(SlurmOutputParser.parseTime("Unknown") == nil)
    }

    /// States this single-node test cluster cannot produce (no memory enforcement, no preemption, no cloud nodes):
    /// constructed inputs, labelled as such, for the rest of the mapping table.
    @Test func constructedStatesFromRealClusters() {
        func c(_ state: String, _ reason: String? = nil) -> ObservedJob {
            SlurmOutputParser.classify(batchID: "1_0", state: state, reason: reason, exitCode: 0, signal: nil)
        }
        #expect(c("OUT_OF_MEMORY").failureClass == .outOfMemory)
        #expect(c("PREEMPTED").failureClass == .nodeFailure)
        #expect(c("BOOT_FAIL").failureClass == .nodeFailure)
        #expect(c("DEADLINE").failureClass == .timeLimit)
        #expect(c("CANCELLED by 1000").state == .cancelled)  // sacct's spelling
        #expect(c("PENDING", "JobHeldAdmin").state == .held)
        #expect(c("REQUEUE_HOLD").state == .held)
        #expect(c("COMPLETING").state == .running)
        let odd = c("SOMETHING_NEW", "Why")
        #expect(odd.state == .running && odd.reason?.contains("SOMETHING_NEW") == true)
    }

    @Test func arraySpecCompressesRanges() {
        #expect(SlurmOutputParser.arraySpec([0, 1, 2, 3]) == "0-3")
        #expect(SlurmOutputParser.arraySpec([7, 0, 2, 1, 9, 10]) == "0-2,7,9-10")
        #expect(SlurmOutputParser.arraySpec([5]) == "5")
        #expect(SlurmOutputParser.arraySpec([]) == "")
    }

    @Test func keyValueSplittingKeepsValuesWithSpaces() {
        let kv = SlurmOutputParser.keyValues("JobId=7 JobName=a b c UserId=root(0) Reason=None")
        #expect(kv["JobName"] == "a b c")
        #expect(kv["UserId"] == "root(0)")
        #expect(kv["Reason"] == "None")
    }
}

/// Array records that Slurm has not split into tasks yet.
@Suite struct SlurmArrayRecordTests {
    @Test func unsplitHeldTasksBecomeOneJobEach() throws {
        let text = try String(contentsOfFile: TestPaths.fixtures + "/scheduler/slurm/scontrol-held-array-unsplit.txt",
                              encoding: .utf8)
        let jobs = Dictionary(uniqueKeysWithValues: SlurmOutputParser.parseShowJob(text).map { ($0.batchID, $0) })
        #expect(Set(jobs.keys) == ["36_0", "36_1", "36_2", "36_3", "36_4"])
        for t in [0, 2, 3, 4] { #expect(jobs["36_\(t)"]?.state == .held, "task \(t)") }
        #expect(jobs["36_1"]?.state != .held)  // released: ran
    }

    @Test func taskSpecsExpand() {
        #expect(SlurmOutputParser.expandTaskSpec("0-2") == [0, 1, 2])
        #expect(SlurmOutputParser.expandTaskSpec("0,2-4") == [0, 2, 3, 4])
        #expect(SlurmOutputParser.expandTaskSpec("1-9:4%2") == [1, 5, 9])
        #expect(SlurmOutputParser.expandTaskSpec("7") == [7])
        #expect(SlurmOutputParser.expandTaskSpec("x") == nil)
        #expect(SlurmOutputParser.expandTaskSpec("5-1") == nil)
    }
}

extension SlurmOutputParserTests {
    /// Issue 14 (tick over 100,000 tasks): `squeue` without `-r` prints the tasks still pending in an array's record
    /// as one line. Captured on Slurm 22.05 (`SLURM_BITSTR_LEN=0`): 58 held 0-1000, 59 pending 0-9%2 (throttled),
    /// 60 held 0-20 with task 4 released (split off, pending BeginTime: reasons `JobHeldUser,BeginTime`), 61 pending
    /// 3,5-9,12 with task 6 held by an admin, 62 0-3 with task 0 running. The `-r` listing of the same moment is the
    /// truth each combined line must reproduce, except where its reasons mix held and not held.
    @Test func combinedPendingArrayLinesExpandToTheTasksOfTheExpandedListing() throws {
        let rows = SlurmOutputParser.parseQueue(try fixture("squeue-arrays-unexpanded.txt"), timeZone: Self.utc)
        let expanded = try queue("squeue-arrays-expanded.txt")
        #expect(rows.count == 6 && expanded.count == 1043)
        var combined: [String: [Int]] = [:]
        var mixed: Set<String> = []
        for row in rows {
            guard let (array, tasks) = SlurmOutputParser.pendingArrayTasks(row.batchID) else {
                #expect(row.batchID == "62_0" && SlurmOutputParser.observe(row).state == .running)
                continue
            }
            combined[array] = tasks
            if SlurmOutputParser.hasMixedHoldReasons(row.reason) { mixed.insert(array); continue }
            for t in tasks {
                var o = SlurmOutputParser.observe(row)
                o.batchID = "\(array)_\(t)"
                #expect(expanded[o.batchID] == o, "\(o.batchID)")
            }
        }
        #expect(combined["58"] == Array(0...1000))
        #expect(combined["59"] == Array(0...9))  // `0-9%2`: the throttle is not a task
        #expect(combined["60"] == Array(0...20))
        #expect(combined["61"] == [3, 5, 6, 7, 8, 9, 12])
        #expect(combined["62"] == [1, 2, 3])
        #expect(mixed == ["60", "61"])
        #expect(expanded["60_4"]?.state == .pending && expanded["60_5"]?.state == .held && expanded["61_6"]?.state == .held)
        // The scontrol fallback for a mixed array tells the tasks apart.
        let show = Dictionary(SlurmOutputParser.parseShowJob(try fixture("scontrol-array-mixed-hold.txt"), timeZone: Self.utc)
            .map { ($0.batchID, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(show.count == 21 && show["60_4"]?.state == .pending && show["60_0"]?.state == .held && show["60_20"]?.state == .held)
    }

    @Test func pendingArrayTaskSpecs() {
        func tasks(_ s: String) -> [Int]? { SlurmOutputParser.pendingArrayTasks(s)?.tasks }
        #expect(tasks("7_[0-3]") == [0, 1, 2, 3])
        #expect(tasks("7_[3,5-9]") == [3, 5, 6, 7, 8, 9])
        #expect(tasks("7_[0-1000%10]")?.count == 1001)
        #expect(tasks("7_[0-6:3]") == [0, 3, 6])
        #expect(tasks("12_[4]") == [4])
        #expect(SlurmOutputParser.pendingArrayTasks("7_[0,2,4...")?.tasks == [])  // cut at SLURM_BITSTR_LEN: ask scontrol
        #expect(SlurmOutputParser.pendingArrayTasks("7_[x]")?.tasks == [])
        #expect(SlurmOutputParser.pendingArrayTasks("7_3") == nil)
        #expect(SlurmOutputParser.pendingArrayTasks("12") == nil)
        #expect(SlurmOutputParser.pendingArrayTasks("[1-3]") == nil)
        #expect(SlurmOutputParser.hasMixedHoldReasons("JobHeldUser,Resources"))
        #expect(SlurmOutputParser.hasMixedHoldReasons("BeginTime,JobHeldAdmin"))
        #expect(!SlurmOutputParser.hasMixedHoldReasons("JobHeldUser,JobHeldAdmin"))
        #expect(!SlurmOutputParser.hasMixedHoldReasons("ReqNodeNotAvail, UnavailableNodes:n1"))
        #expect(!SlurmOutputParser.hasMixedHoldReasons("JobHeldUser"))
        #expect(!SlurmOutputParser.hasMixedHoldReasons(nil))
    }
}
