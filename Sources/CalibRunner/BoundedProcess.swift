import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs one subprocess (no shell) with a deadline: a scheduler command that hangs is sent SIGTERM, then SIGKILL after
/// two seconds, and the call throws a `SchedulerError` instead of hanging calibctl.
enum BoundedProcess {
    /// Collects one pipe's bytes on a background thread.
    private final class Drain: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private let done = DispatchSemaphore(value: 0)
        private let handle: FileHandle

        init(_ handle: FileHandle) {
            self.handle = handle
            DispatchQueue.global().async { [self] in
                while true {
                    let chunk = handle.availableData
                    if chunk.isEmpty { break }
                    lock.lock(); data.append(chunk); lock.unlock()
                }
                done.signal()
            }
        }

        /// The bytes read so far, waiting at most `seconds` for end of file (a grandchild may keep the pipe open).
        func finish(within seconds: Double) -> Data {
            if done.wait(timeout: .now() + seconds) == .success {
                try? handle.close()  // the reader is finished: release the descriptor now, not at deinit
            }
            lock.lock(); defer { lock.unlock() }
            return data
        }
    }

    static func run(executable: String, arguments: [String], environment: [String: String], currentDirectory: String?,
                    timeoutSeconds: Double, scheduler: String, operation: String) throws -> ToolOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var environment = environment
        if let currentDirectory {
            process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory)
            environment["PWD"] = currentDirectory  // wrappers (e.g. the test pool's chroot ones) read $PWD
        }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
        } catch {
            throw SchedulerError(scheduler: scheduler, operation: operation,
                                 detail: "cannot start \(executable): \(error.localizedDescription)")
        }
        // Foundation has closed our copies of the pipes' write ends, so the readers see end of file when the tool exits.
        let outDrain = Drain(out.fileHandleForReading)
        let errDrain = Drain(err.fileHandleForReading)

        if exited.wait(timeout: .now() + timeoutSeconds) == .timedOut {
            let pid = process.processIdentifier
            kill(pid, SIGTERM)
            if exited.wait(timeout: .now() + 2) == .timedOut {
                kill(pid, SIGKILL)
                _ = exited.wait(timeout: .now() + 2)
            }
            let partial = String(decoding: errDrain.finish(within: 0.5), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let shown = ([executable] + arguments.prefix(6)).joined(separator: " ")
            throw SchedulerError(
                scheduler: scheduler, operation: operation,
                detail: "`\(shown)` did not finish within \(timeoutSeconds) s and was killed; the \(scheduler) controller may be down or overloaded"
                    + (partial.isEmpty ? "" : " (stderr: \(partial.prefix(300)))"))
        }
        let stdout = outDrain.finish(within: 5)
        let stderr = errDrain.finish(within: 5)
        return ToolOutput(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                          stderr: String(decoding: stderr, as: UTF8.self))
    }
}
