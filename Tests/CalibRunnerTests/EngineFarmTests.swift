@testable import CalibRunner
import CalibCore
import CalibIO
import CalibTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A scheduler whose observations the test sets (holds, memory peaks), for engine behaviour.
final class ScriptedScheduler: BatchScheduler, @unchecked Sendable {
    let name = "htcondor"
    let minimumPollInterval: TimeInterval = 0
    let lock = NSLock()
    var next = 0
    var observe: (String) -> ObservedJob = { ObservedJob(batchID: $0, state: .pending) }
    var cancelled: [String] = []
    var keepsFailedJobsQueued: Bool { true }

    func submit(_ s: Submission) throws -> [Int: String] {
        lock.lock(); defer { lock.unlock() }
        next += 1
        return Dictionary(uniqueKeysWithValues: s.shards.enumerated().map { ($0.element.index, "\(next).\($0.offset)") })
    }
    func findSubmitted(_ s: Submission) throws -> [Int: String] { [:] }
    func poll(_ ids: [String]) throws -> [String: ObservedJob] {
        lock.lock(); defer { lock.unlock() }
        return Dictionary(uniqueKeysWithValues: ids.map { ($0, observe($0)) })
    }
    func cancel(_ ids: [String]) throws { lock.lock(); cancelled += ids; lock.unlock() }
}

@Suite struct EngineFarmTests {
    func create(_ e: JobEngine, _ name: String, shards: Int = 1, memoryMB: Int = 1000) throws {
        try e.createJobSet(JobSetDefinition(name: name, scheduler: "htcondor", memoryMB: memoryMB, timeLimitSeconds: 600,
                                            shards: (0..<shards).map { ShardDefinition(key: "i=\($0)", spec: JobSpec(kind: "command", parameters: ["shell": "true"])) }))
    }

    /// Defect 5: HTCondor's standard HOLD_IF_MEMORY_EXCEEDED (HoldReasonCode 21, subcode 102) is out-of-memory,
    /// retried with twice the memory; another hold shows its reason and fails after the documented time.
    @Test func memoryHoldIsOutOfMemoryAndOtherHoldsFailAfterTheLimit() throws {
        let attrs = HTCondorOutputParser.attributes
        func row(_ values: [String: String]) -> String {
            "7.0\t" + attrs.map { values[$0] ?? "undefined" }.joined(separator: "\t")
        }
        let memory = HTCondorOutputParser.parseRows(row(["ClusterId": "7", "ProcId": "0", "JobStatus": "5", "HoldReasonCode": "21",
                                                         "HoldReasonSubCode": "102", "HoldReason": "memory usage exceeded request_memory",
                                                         "EnteredCurrentStatus": "1765000000"]))
        #expect(memory.count == 1)
        let m = HTCondorOutputParser.observe(memory[0])
        #expect(m.state == .failed && m.failureClass == .outOfMemory)
        let other = HTCondorOutputParser.observe(HTCondorOutputParser.parseRows(row(["ClusterId": "7", "ProcId": "0", "JobStatus": "5",
            "HoldReasonCode": "1", "HoldReason": "via condor_hold (by user calib)", "EnteredCurrentStatus": "1765000000"]))[0])
        #expect(other.state == .held && other.reason == "via condor_hold (by user calib)")

        let f = EngineFixture()
        let sched = ScriptedScheduler()
        let e = try f.engine(sched)
        try create(e, "oom", memoryMB: 1000)
        try e.submit(jobSet: "oom")
        sched.observe = { id in
            id.hasPrefix("1.") ? ObservedJob(batchID: id, state: .failed, failureClass: .outOfMemory, reason: "memory usage exceeded request_memory")
                               : ObservedJob(batchID: id, state: .running)
        }
        try e.update(force: true)
        let st = try e.status(jobSet: "oom", history: true)
        let h = try #require(st.shards?.first?.history)
        #expect(h.count == 2 && h[0].failureClass == .outOfMemory && h[1].memoryMB == 2000)
        #expect(sched.cancelled == ["1.0"])  // the held job is removed once recorded

        // Another hold: shown with its reason while it lasts, a failure after the limit.
        let f2 = EngineFixture()
        let s2 = ScriptedScheduler()
        let e2 = try f2.engine(s2)
        e2.heldLimitSeconds = 1.0
        try create(e2, "held")
        try e2.submit(jobSet: "held")
        s2.observe = { ObservedJob(batchID: $0, state: .held, reason: "via condor_hold (by user calib)") }
        try e2.update(force: true)
        var hs = try e2.status(jobSet: "held")
        #expect(hs.held.map(\.reason) == ["via condor_hold (by user calib)"])
        #expect(hs.failed.isEmpty)
        Thread.sleep(forTimeInterval: 1.3)
        try e2.update(force: true)
        hs = try e2.status(jobSet: "held")
        #expect(hs.held.isEmpty)
        #expect(hs.failed.first?.failureClass == .launchFailure)
        #expect(hs.failed.first?.reason?.contains("held for more than") == true)
        #expect(hs.failed.first?.reason?.contains("via condor_hold") == true)
        #expect(s2.cancelled == ["1.0"])
    }

    /// Defect 8: peak memory far above the request is a warning in status.
    @Test func peakMemoryFarAboveTheRequestIsWarned() throws {
        let f = EngineFixture()
        let sched = ScriptedScheduler()
        let e = try f.engine(sched)
        try create(e, "greedy", shards: 2, memoryMB: 1000)
        try e.submit(jobSet: "greedy")
        sched.observe = { ObservedJob(batchID: $0, state: .running, peakMemoryMB: $0.hasSuffix(".0") ? 3100 : 1100) }
        try e.update(force: true)
        // The peak is recorded with the state change (running); the warning names shard 0 only.
        let st = try e.status(jobSet: "greedy")
        #expect(st.warnings.count == 1)
        #expect(st.warnings.first?.contains("shard 0") == true && st.warnings.first?.contains("3100 MB") == true)
    }

    /// Defect 8: `jobs retry` honours the attempt cap unless forced.
    @Test func manualRetryHonoursTheAttemptCap() throws {
        let f = EngineFixture()
        let sched = ScriptedScheduler()
        let e = try f.engine(sched)
        try create(e, "capped")
        try e.submit(jobSet: "capped")
        sched.observe = { ObservedJob(batchID: $0, state: .failed, exitCode: 3, failureClass: .userError) }
        try e.update(force: true)
        for _ in 0..<6 {
            _ = try e.retry(jobSet: "capped")
            try e.update(force: true)
        }
        #expect(try e.status(jobSet: "capped").failed.first?.attempts == RetryPolicy.default.maxAttempts)
        let r = try e.retry(jobSet: "capped")
        #expect(r.retried.isEmpty && r.skipped["0"]?.contains("attempt cap") == true)
        #expect(try e.retry(jobSet: "capped", force: true).retried == [0])
    }

    /// Defect 8: a finished job set is deleted (records only; files moved aside) and its name reused.
    @Test func deleteRemovesRecordsKeepsFilesAndFreesTheName() throws {
        let f = EngineFixture()
        let sched = ScriptedScheduler()
        let e = try f.engine(sched)
        try create(e, "again")
        try e.submit(jobSet: "again")
        #expect(throws: JobError.self) { try e.delete(jobSet: "again") }  // still live
        sched.observe = { ObservedJob(batchID: $0, state: .failed, exitCode: 3, failureClass: .userError) }
        try e.update(force: true)
        let out = f.tmp.path + "/jobs/again/shard-0/gains.h5"
        try FileManager.default.createDirectory(atPath: f.tmp.path + "/jobs/again/shard-0", withIntermediateDirectories: true)  // the job's
        try Data("payload".utf8).write(to: URL(fileURLWithPath: out))
        let r = try e.delete(jobSet: "again")
        #expect(r.shards == 1 && r.attempts == 1)
        let moved = try #require(r.movedTo)
        #expect(FileManager.default.contents(atPath: moved + "/shard-0/gains.h5") == Data("payload".utf8))
        #expect(throws: JobError.self) { try e.status(jobSet: "again") }
        try create(e, "again")
        #expect(try e.status(jobSet: "again").shardCount == 1)
    }

    /// Defect 7: the lock names a dead process, and a second tick has just taken the flock but not yet written its
    /// record: the next tick must not replace the file and run too.
    @Test func staleLockTakeoverDoesNotRaceANewHolder() throws {
        let tmp = TemporaryDirectory("lock-race")
        let path = tmp.file("tick.lock")
        // A dead process's record (a child that has exited).
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run(); dead.waitUntilExit()
        try "\(dead.processIdentifier) \(Spawn.hostName) 1 1000\n".write(toFile: path, atomically: true, encoding: .utf8)
        // "Tick A": has the flock, writes its record a moment later.
        let fd = open(path, O_RDWR)
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        let writer = Thread {
            Thread.sleep(forTimeInterval: 0.1)
            let me = "\(getpid()) \(Spawn.hostName) \(Spawn.processStart(getpid())!.start) \(Date().timeIntervalSince1970)\n"
            ftruncate(fd, 0)
            _ = me.withCString { pwrite(fd, $0, strlen($0), 0) }
        }
        writer.start()
        // "Tick B" starts at the same moment.
        let b = TickLock(path: path)
        #expect(throws: TickLock.Held.self) { try b.acquire() }
        Thread.sleep(forTimeInterval: 0.2)
        flock(fd, LOCK_UN)
        close(fd)

        // Many ticks at once on a stale record: exactly one holds the lock at a time.
        for _ in 0..<20 {
            try "\(dead.processIdentifier) \(Spawn.hostName) 1 1000\n".write(toFile: path, atomically: true, encoding: .utf8)
            let stale = open(path, O_RDWR)
            flock(stale, LOCK_EX)  // a stale lock that outlived its holder (as on NFS)
            let holders = NSLock()
            nonisolated(unsafe) var winners: [TickLock] = []
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                let l = TickLock(path: path)
                if (try? l.acquire()) != nil { holders.lock(); winners.append(l); holders.unlock() }
            }
            #expect(winners.count <= 1)
            winners.forEach { $0.release() }
            close(stale)
        }
    }
}
