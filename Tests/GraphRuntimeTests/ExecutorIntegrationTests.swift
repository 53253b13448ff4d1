import Foundation
import GraphRuntime
import Testing
import TestSupport

/// The executor on graphs that went through the real loader and planner (the front/back contract).
@Suite struct ExecutorIntegrationTests {
    func yaml(key: String) -> String {
        """
        sanagraph: 1
        params:
          offset: {type: int, default: 0}
        nodes:
          a: {type: test.const_int, params: {value: 2, key: \(key)}}
          b: {type: test.const_int, params: {value: 3, key: \(key)}}
          spare: {type: test.const_int, params: {value: 9, key: \(key)}}
          sum: {type: test.add, inputs: {a: a, b: b}, params: {offset: "${offset}", key: \(key)}}
          out: {type: test.sink, inputs: {value: sum}, params: {key: \(key)}}
        """
    }

    @Test func setVariantsRecomputeOnlyWhatChanged() throws {
        let key = ExecTest.key()
        let registry = TestNodesPack.registry()
        let log = EventLog()
        let executor = Executor(caches: [MemoryCache(budget: 1 << 20)], events: log.handler)
        var sums: [Int] = []
        for offset in ["1", "2", "2"] {
            let graph = try GraphLoader.load(yaml: yaml(key: key), file: "g.yaml", registry: registry,
                                             overrides: ["offset": offset])
            let plan = Planner.plan(graph)
            #expect(plan.pruned == ["spare"])
            try executor.run(graph, plan: plan)
            if let v = TestRecorder.shared.entries(key: key).last?.value.payload(as: Int.self) { sums.append(v) }
        }
        #expect(sums == [6, 7, 7])
        // Run 1 computes everything, run 2 only what depends on the changed offset, run 3 only the output.
        #expect(TestRecorder.shared.runs(key: key) == ["a", "b", "sum", "out", "sum", "out", "out"])
        let cachedFlags = log.all.compactMap { e -> String? in
            if case .nodeFinished(let node, _, _, let from) = e { return "\(node):\(from != nil)" }
            return nil
        }
        #expect(cachedFlags == ["a:false", "b:false", "sum:false", "out:false",
                                "a:true", "b:true", "sum:false", "out:false",
                                "a:true", "b:true", "sum:true", "out:false"])
    }

    @Test func plannerReleasesAreHonoured() throws {
        let key = ExecTest.key()
        let graph = try GraphLoader.load(yaml: yaml(key: key), file: "g.yaml", registry: TestNodesPack.registry())
        let plan = Planner.plan(graph)
        let log = EventLog()
        try Executor(events: log.handler).run(graph, plan: plan)
        let released = log.trace.filter { $0.hasPrefix("value_released:") }
        #expect(Set(released) == ["value_released:a.value", "value_released:b.value", "value_released:sum.sum"])
        #expect(released.count == 3)
        // Every release the plan asked for happened right after its step.
        for step in plan.steps {
            let finished = try #require(log.trace.firstIndex(of: "node_finished:\(step.node)"))
            for ref in step.releaseAfter {
                let at = try #require(log.trace.firstIndex(of: "value_released:\(ref)"))
                #expect(at > finished)
            }
        }
        #expect(log.all.compactMap { e -> String? in
            if case .nodeStarted(let n, _, _, _) = e { return n }
            return nil
        } == plan.steps.map(\.node))
    }
}
