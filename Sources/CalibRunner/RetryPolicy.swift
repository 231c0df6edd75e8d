import Foundation

/// How a job set reacts to each failure class (docs/runner.md). Automatic retries are bounded per class and in total;
/// out-of-memory retries ask for more memory, time-limit retries for more time; user errors, launch failures and
/// cancellations are never retried automatically (`calibctl jobs retry` does that on request).
public struct RetryPolicy: Sendable, Codable, Equatable {
    /// Automatic retries allowed per failure class (absent = 0).
    public var automaticRetries: [String: Int]
    /// No shard gets more attempts than this, automatic or not.
    public var maxAttempts: Int
    public var memoryFactor: Double
    public var timeFactor: Double
    public var maxMemoryMB: Int
    public var maxTimeLimitSeconds: Int

    public init(automaticRetries: [FailureClass: Int] = RetryPolicy.defaultRetries, maxAttempts: Int = 5,
                memoryFactor: Double = 2, timeFactor: Double = 2, maxMemoryMB: Int = 64_000,
                maxTimeLimitSeconds: Int = 7 * 24 * 3600) {
        self.automaticRetries = Dictionary(uniqueKeysWithValues: automaticRetries.map { ($0.key.rawValue, $0.value) })
        self.maxAttempts = maxAttempts
        self.memoryFactor = memoryFactor
        self.timeFactor = timeFactor
        self.maxMemoryMB = maxMemoryMB
        self.maxTimeLimitSeconds = maxTimeLimitSeconds
    }

    public static let defaultRetries: [FailureClass: Int] = [
        .nodeFailure: 2, .lost: 2, .outOfMemory: 2, .timeLimit: 2, .missingOutput: 1,
        .userError: 0, .launchFailure: 0, .cancelled: 0,
    ]

    public static let `default` = RetryPolicy()

    public func retries(for c: FailureClass) -> Int { automaticRetries[c.rawValue] ?? 0 }

    /// Whether a shard whose attempts ended with `history` (oldest first) is retried automatically.
    public func shouldRetry(history: [FailureClass?]) -> Bool {
        guard let last = history.last, let c = last, history.count < maxAttempts else { return false }
        let sameClass = history.filter { $0 == c }.count
        return sameClass <= retries(for: c)
    }

    /// Resources of the next attempt after a failure of class `c`.
    public func nextResources(after c: FailureClass?, memoryMB: Int, timeLimitSeconds: Int) -> (memoryMB: Int, timeLimitSeconds: Int) {
        switch c {
        case .outOfMemory?: (min(maxMemoryMB, Int((Double(memoryMB) * memoryFactor).rounded(.up))), timeLimitSeconds)
        case .timeLimit?: (memoryMB, min(maxTimeLimitSeconds, Int((Double(timeLimitSeconds) * timeFactor).rounded(.up))))
        default: (memoryMB, timeLimitSeconds)
        }
    }

    /// What status shows as the next step for a shard that ended with class `c` after `attempts` attempts.
    public func nextAction(history: [FailureClass?]) -> String {
        guard let last = history.last, let c = last else { return "" }
        if shouldRetry(history: history) { return "retried automatically" }
        switch c {
        case .userError, .launchFailure: return "fix the cause, then `calibctl jobs retry`"
        case .cancelled: return "`calibctl jobs retry` to run it again"
        default: return "automatic retries exhausted; `calibctl jobs retry` to try again"
        }
    }
}
