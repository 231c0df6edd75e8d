import Foundation

/// Runs a few blocking calls (scheduler tools that mostly wait for their controller) on their own threads, at most
/// `width` at a time, and returns their results in order. Threads, not Dispatch's concurrentPerform, which runs only
/// as many at once as there are cores, and these calls wait rather than compute. A thread runs each call to its end
/// (`BoundedProcess` waits for its tool): the tools' parent-death signal (`setpriv --pdeathsig`) follows the thread
/// that started them, so no thread may exit while its tool runs.
enum ParallelCalls {
    static func run<T: Sendable>(_ count: Int, width: Int, _ body: @escaping @Sendable (Int) -> T) -> [T] {
        guard count > 0 else { return [] }
        if count == 1 || width <= 1 { return (0..<count).map(body) }
        let state = State<T>(count)
        let group = DispatchGroup()
        for _ in 0..<min(width, count) {
            group.enter()
            let t = Thread {
                while let k = state.next() { state.store(k, body(k)) }
                group.leave()
            }
            t.stackSize = 1 << 20
            t.start()
        }
        group.wait()
        return state.results.map { $0! }
    }

    final class State<T: Sendable>: @unchecked Sendable {
        let lock = NSLock()
        var results: [T?]
        var cursor = 0
        init(_ count: Int) { results = Array(repeating: nil, count: count) }
        func next() -> Int? {
            lock.lock(); defer { lock.unlock() }
            guard cursor < results.count else { return nil }
            cursor += 1
            return cursor - 1
        }
        func store(_ k: Int, _ value: T) { lock.lock(); results[k] = value; lock.unlock() }
    }
}
