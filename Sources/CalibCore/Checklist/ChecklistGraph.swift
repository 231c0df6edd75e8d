/// The prerequisite graph of a checklist over step indices (file order), with the algorithms the engine needs:
/// topological order, cycles, ready set, downstream closure and critical path. All are O(steps + edges).
public struct ChecklistGraph: Sendable {
    /// `prerequisites[i]`: indices of the steps step `i` waits for (unknown ids and duplicates dropped).
    public let prerequisites: [[Int]]
    /// `dependents[i]`: indices of the steps that wait for step `i`.
    public let dependents: [[Int]]
    public var count: Int { prerequisites.count }

    /// Builds the graph; prerequisite ids that name no step are ignored (the validator reports them).
    public init(_ checklist: Checklist) {
        self.init(checklist, index: checklist.indexByID())
    }

    /// Builds the graph with a ready id -> index map (first occurrence of each id).
    public init(_ checklist: Checklist, index: [String: Int]) {
        let steps = checklist.steps
        var pre = [[Int]](repeating: [], count: steps.count)
        var dep = [[Int]](repeating: [], count: steps.count)
        for i in steps.indices {
            guard index[steps[i].id] == i else { continue }
            pre[i].reserveCapacity(steps[i].prerequisites.count)
            for p in steps[i].prerequisites {
                // Prerequisite lists are short: a linear duplicate check beats a Set allocation per step.
                guard let j = index[p], !pre[i].contains(j) else { continue }
                pre[i].append(j)
                dep[j].append(i)
            }
        }
        prerequisites = pre
        dependents = dep
    }

    public init(prerequisites: [[Int]]) {
        self.prerequisites = prerequisites
        var dep = [[Int]](repeating: [], count: prerequisites.count)
        for (i, ps) in prerequisites.enumerated() { for p in ps { dep[p].append(i) } }
        dependents = dep
    }

    /// Kahn's algorithm, stable with respect to file order among steps that become available together
    /// (a FIFO over indices). Returns nil if there is a cycle.
    public func topologicalOrder() -> [Int]? {
        var indegree = prerequisites.map(\.count)
        var queue: [Int] = []
        queue.reserveCapacity(count)
        for i in 0..<count where indegree[i] == 0 { queue.append(i) }
        var head = 0
        while head < queue.count {
            let n = queue[head]
            head += 1
            for d in dependents[n] {
                indegree[d] -= 1
                if indegree[d] == 0 { queue.append(d) }
            }
        }
        return queue.count == count ? queue : nil
    }

    /// One cycle per strongly connected component that has one (Tarjan, iterative), each as a list of indices
    /// `a, b, ..., a` following prerequisite edges; self-dependencies are `a, a`. Empty if the graph is acyclic.
    public func cycles() -> [[Int]] {
        var index = [Int](repeating: -1, count: count), low = [Int](repeating: 0, count: count)
        var onStack = [Bool](repeating: false, count: count)
        var stack: [Int] = [], next = 0
        var components: [[Int]] = []
        for root in 0..<count where index[root] < 0 {
            var work: [(node: Int, edge: Int)] = [(root, 0)]
            index[root] = next; low[root] = next; next += 1
            stack.append(root); onStack[root] = true
            while let top = work.last {
                let v = top.node
                if top.edge < prerequisites[v].count {
                    work[work.count - 1].edge += 1
                    let w = prerequisites[v][top.edge]
                    if index[w] < 0 {
                        index[w] = next; low[w] = next; next += 1
                        stack.append(w); onStack[w] = true
                        work.append((w, 0))
                    } else if onStack[w] {
                        low[v] = min(low[v], index[w])
                    }
                } else {
                    work.removeLast()
                    if let parent = work.last { low[parent.node] = min(low[parent.node], low[v]) }
                    if low[v] == index[v] {
                        var comp: [Int] = []
                        while true {
                            let w = stack.removeLast()
                            onStack[w] = false
                            comp.append(w)
                            if w == v { break }
                        }
                        if comp.count > 1 || prerequisites[v].contains(v) { components.append(comp) }
                    }
                }
            }
        }
        return components.map(cycle(in:)).sorted { ($0.first ?? 0) < ($1.first ?? 0) }
    }

    /// A concrete cycle inside one strongly connected component, starting at its lowest index.
    private func cycle(in component: [Int]) -> [Int] {
        let start = component.min()!
        if prerequisites[start].contains(start) { return [start, start] }
        let members = Set(component)
        // BFS inside the component from start until an edge leads back to start; shortest such cycle.
        var parent: [Int: Int] = [start: start]
        var queue = [start], head = 0
        while head < queue.count {
            let v = queue[head]
            head += 1
            for w in prerequisites[v] where members.contains(w) {
                if w == start {
                    var path = [v]
                    var x = v
                    while x != start { x = parent[x]!; path.append(x) }
                    return [start] + path.reversed().dropFirst() + [start]
                }
                if parent[w] == nil { parent[w] = v; queue.append(w) }
            }
        }
        return [start, start]
    }

    /// Steps not yet finished whose prerequisites are all satisfied, in file order.
    /// - Parameters:
    ///   - satisfied: per step, true when it counts as finished for its dependents (done or skipped).
    ///   - eligible: per step, true when it may be started if its prerequisites are satisfied.
    public func readySet(satisfied: [Bool], eligible: [Bool]) -> [Int] {
        var out: [Int] = []
        for i in 0..<count where eligible[i] && !satisfied[i] {
            var ok = true
            for p in prerequisites[i] where !satisfied[p] { ok = false; break }
            if ok { out.append(i) }
        }
        return out
    }

    /// Per step, true when it satisfies its dependents: done, or skipped with every prerequisite satisfied (a skipped
    /// step passes its inputs through, so a step behind it waits for what the skipped step would have waited for).
    public func satisfied(_ stored: [StoredStepState]) -> [Bool] {
        var out = [Bool](repeating: false, count: count)
        guard let order = topologicalOrder() else { return stored.map(\.satisfiesDependents) }
        for i in order {
            switch stored[i] {
            case .done: out[i] = true
            case .skipped: out[i] = prerequisites[i].allSatisfy { out[$0] }
            default: out[i] = false
            }
        }
        return out
    }

    /// Every step that depends on `start`, directly or transitively (not including `start`), in file order.
    public func downstream(of start: Int) -> [Int] { downstream(of: start, through: { _ in true }) }

    /// The steps reached from `start` along dependent edges, entering only steps for which `include` is true (so a
    /// change travels only through steps it affects), in file order, without `start`.
    public func downstream(of start: Int, through include: (Int) -> Bool) -> [Int] {
        var seen = [Bool](repeating: false, count: count)
        var queue = [start], head = 0
        seen[start] = true
        while head < queue.count {
            let v = queue[head]
            head += 1
            for d in dependents[v] where !seen[d] && include(d) { seen[d] = true; queue.append(d) }
        }
        return (0..<count).filter { seen[$0] && $0 != start }
    }

    /// Every step `target` depends on, directly or transitively (not including `target`), in file order.
    public func upstream(of target: Int) -> [Int] {
        var seen = [Bool](repeating: false, count: count)
        var queue = [target], head = 0
        seen[target] = true
        while head < queue.count {
            let v = queue[head]
            head += 1
            for p in prerequisites[v] where !seen[p] { seen[p] = true; queue.append(p) }
        }
        return (0..<count).filter { seen[$0] && $0 != target }
    }

    /// The longest chain of unfinished steps ending at `target`, weighted by `weight` (e.g. estimated days); finished
    /// steps weigh nothing and are left out of the result. Returns indices from the first step to `target`, and the
    /// chain's total weight. Empty if `target` is finished. Requires an acyclic graph (`order` from
    /// `topologicalOrder()`).
    public func criticalPath(to target: Int, order: [Int], weight: [Double], finished: [Bool]) -> (path: [Int], length: Double) {
        if finished[target] { return ([], 0) }
        var dist = [Double](repeating: 0, count: count), via = [Int](repeating: -1, count: count)
        for v in order {
            var best = 0.0, arg = -1
            for p in prerequisites[v] where dist[p] > best || (arg < 0 && dist[p] > 0) {
                best = dist[p]; arg = p
            }
            dist[v] = best + (finished[v] ? 0 : weight[v])
            via[v] = arg
            if v == target { break }
        }
        var path: [Int] = []
        var x = target
        while x >= 0 {
            if !finished[x] { path.append(x) }
            x = via[x]
        }
        return (path.reversed(), dist[target])
    }
}
