import GraphRuntime
import Testing
import TestSupport

@Suite struct PlannerTests {
    let registry = TestNodesPack.registry()

    func load(_ yaml: String) throws -> ValidatedGraph {
        try GraphLoader.load(yaml: yaml, file: "plan.yaml", registry: registry)
    }

    @Test func ordersByDependenciesAndBreaksTiesByFileOrder() throws {
        let graph = try GraphLoader.load(file: TestSupport.fixture("Graphs/valid/pipeline.yaml"), registry: registry)
        let plan = Planner.plan(graph)
        // Ready nodes run in file order: hello (3rd in file) and who (4th) are ready before greeting (2nd).
        #expect(plan.order == ["hello", "who", "greeting", "first", "scaled", "grid", "total", "report", "tensor_out"])
        for (i, step) in plan.steps.enumerated() {
            let node = try #require(graph.node(step.node))
            for ref in node.inputs.values {
                let producerStep = try #require(plan.order.firstIndex(of: ref.node))
                #expect(producerStep < i, "\(ref.node) must run before \(step.node)")
            }
        }
    }

    @Test func prunesNodesNoOutputNeeds() throws {
        let graph = try GraphLoader.load(file: TestSupport.fixture("Graphs/valid/pipeline.yaml"), registry: registry)
        let plan = Planner.plan(graph)
        #expect(plan.pruned == ["unused"])
        #expect(!plan.order.contains("unused"))
        // The loader warns about it at the node's position.
        let warning = try #require(graph.warnings.first { $0.node == "unused" })
        #expect(warning.description
                == "plan.yaml:19:3: warning: node 'unused': not needed by any output node, so it will not run"
                    .replacingOccurrences(of: "plan.yaml", with: TestSupport.fixture("Graphs/valid/pipeline.yaml")))
    }

    @Test func prunesWholeBranchesAndKeepsEveryOutputsAncestors() throws {
        let graph = try load("""
            sanagraph: 1
            nodes:
              a: {type: test.const_int, params: {value: 1}}
              b: {type: test.add, inputs: {a: a}}
              c: {type: test.add, inputs: {a: b}}
              d: {type: test.const_string, params: {text: x}}
              e: {type: test.concat, inputs: {a: d}}
              out: {type: test.sink, inputs: {value: b}}
            """)
        let plan = Planner.plan(graph)
        #expect(plan.order == ["a", "b", "out"])
        #expect(plan.pruned == ["c", "d", "e"])
    }

    @Test func releasesEachValueAfterItsLastConsumer() throws {
        let graph = try load("""
            sanagraph: 1
            nodes:
              x: {type: test.const_int, params: {value: 3}}
              y: {type: test.add, inputs: {a: x}}
              z: {type: test.add, inputs: {a: x, b: y}}
              grid: {type: test.tensor}
              sum: {type: test.tensor_sum, inputs: {tensor: grid.tensor}}
              out: {type: test.sink, inputs: {value: z, extra: sum}}
            """)
        let plan = Planner.plan(graph)
        #expect(plan.order == ["x", "y", "z", "grid", "sum", "out"])
        let releases = Dictionary(uniqueKeysWithValues: plan.steps.map { ($0.node, $0.releaseAfter.map(\.description)) })
        #expect(releases["x"] == [])
        #expect(releases["y"] == [])
        #expect(releases["z"] == ["x.value", "y.sum"])        // z is the last consumer of x and y
        #expect(releases["grid"] == ["grid.count"])           // nobody consumes grid.count: dropped at once
        #expect(releases["sum"] == ["grid.tensor"])
        #expect(releases["out"] == ["z.sum", "sum.sum"])      // ordered by producer's file position
        // Every output of every planned node is released exactly once.
        let all = plan.steps.flatMap(\.releaseAfter)
        #expect(all.count == Set(all).count)
        #expect(Set(all.map(\.node)) == Set(["x", "y", "z", "grid", "sum"]))
    }

    @Test func planIsDeterministicAcrossLoads() throws {
        let path = TestSupport.fixture("Graphs/valid/pipeline.yaml")
        let first = Planner.plan(try GraphLoader.load(file: path, registry: registry))
        for _ in 0..<20 {
            let again = Planner.plan(try GraphLoader.load(file: path, registry: registry))
            #expect(again.order == first.order)
            #expect(again.steps.map(\.releaseAfter) == first.steps.map(\.releaseAfter))
            #expect(again.pruned == first.pruned)
        }
    }

    @Test func independentOutputsRunInFileOrder() throws {
        let graph = try load("""
            sanagraph: 1
            nodes:
              late: {type: test.sink, inputs: {value: b}}
              early: {type: test.sink, inputs: {value: a}}
              b: {type: test.const_int, params: {value: 2}}
              a: {type: test.const_int, params: {value: 1}}
            """)
        #expect(Planner.plan(graph).order == ["b", "late", "a", "early"])
    }
}
