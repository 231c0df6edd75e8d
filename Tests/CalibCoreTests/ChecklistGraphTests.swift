import CalibCore
import Testing

@Suite struct ChecklistGraphTests {
    //   0 -> 1 -> 3
    //   0 -> 2 -> 3 -> 4 ;   5 alone
    let g = ChecklistGraph(prerequisites: [[], [0], [0], [1, 2], [3], []])

    @Test func topologicalOrderIsStableAndRespectsEdges() throws {
        #expect(g.topologicalOrder() == [0, 5, 1, 2, 3, 4])
        #expect(ChecklistGraph(prerequisites: [[1], [0]]).topologicalOrder() == nil)
    }

    @Test func readySetDownstreamUpstream() {
        var satisfied = [Bool](repeating: false, count: 6)
        let all = [Bool](repeating: true, count: 6)
        #expect(g.readySet(satisfied: satisfied, eligible: all) == [0, 5])
        satisfied[0] = true
        #expect(g.readySet(satisfied: satisfied, eligible: all) == [1, 2, 5])
        satisfied[1] = true
        #expect(g.readySet(satisfied: satisfied, eligible: all) == [2, 5])
        #expect(g.downstream(of: 1) == [3, 4])
        #expect(g.downstream(of: 0) == [1, 2, 3, 4])
        #expect(g.upstream(of: 4) == [0, 1, 2, 3])
        #expect(g.downstream(of: 5) == [])
    }

    @Test func criticalPathFollowsTheHeaviestUnfinishedChain() throws {
        let order = try #require(g.topologicalOrder())
        let w: [Double] = [1, 5, 2, 1, 1, 100]
        var finished = [Bool](repeating: false, count: 6)
        var cp = g.criticalPath(to: 4, order: order, weight: w, finished: finished)
        #expect(cp.path == [0, 1, 3, 4] && cp.length == 8)
        finished[1] = true   // the heavy branch is done: the other one is critical now
        cp = g.criticalPath(to: 4, order: order, weight: w, finished: finished)
        #expect(cp.path == [0, 2, 3, 4] && cp.length == 5)
        finished = [true, true, true, true, true, false]
        #expect(g.criticalPath(to: 4, order: order, weight: w, finished: finished).path == [])
    }

    @Test func cyclesOnePerComponent() {
        let c = ChecklistGraph(prerequisites: [[1], [2], [0], [3], [0], [6], [5]])
        #expect(c.cycles() == [[0, 1, 2, 0], [3, 3], [5, 6, 5]])
        #expect(g.cycles() == [])
    }

    @Test func syntheticTenThousandStepsIsAcyclicAndOrdered() throws {
        let c = SyntheticChecklist.make(steps: 10_000)
        #expect(ChecklistValidator.validate(c).isEmpty)
        let graph = ChecklistGraph(c)
        let order = try #require(graph.topologicalOrder())
        var position = [Int](repeating: 0, count: order.count)
        for (k, i) in order.enumerated() { position[i] = k }
        for i in 0..<graph.count { for p in graph.prerequisites[i] { #expect(position[p] < position[i]) } }
        // The YAML rendering loads back to the same steps.
        let back = try ChecklistLoader.load(yaml: SyntheticChecklist.yaml(SyntheticChecklist.make(steps: 300)))
        #expect(back.steps.map(\.prerequisites) == SyntheticChecklist.make(steps: 300).steps.map(\.prerequisites))
    }

    @Test func suggestions() {
        #expect(Suggestions.editDistance("kitten", "sitting") == 3)
        #expect(Suggestions.closest(to: "dc-alignmnt", in: ["dc-alignment", "fd-alignment"]) == "dc-alignment")
        #expect(Suggestions.closest(to: "zzz", in: ["dc-alignment"]) == nil)
    }
}
