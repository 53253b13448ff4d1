import GraphRuntime
import Testing
import TestSupport

// Loader behaviour beyond the corpus: YAML features, large graphs, messages that must not repeat a mistake.

@Suite struct FrontLoaderTests {
    let registry = TestNodesPack.registry()

    func errors(_ yaml: String) -> [String] {
        do {
            _ = try GraphLoader.load(yaml: yaml, file: "l.yaml", registry: registry)
            return []
        } catch let error as GraphValidationError {
            return error.diagnostics.filter { $0.severity == .error }.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    @Test func yamlAnchorsAndAliasesWork() throws {
        let g = try GraphLoader.load(yaml: """
            sanagraph: 1
            nodes:
              a: {type: test.tensor, params: &shape {width: 5, height: 3}}
              b: {type: test.tensor, params: *shape}
              out: {type: test.sink, inputs: {value: a.tensor, extra: b.tensor}}
            """, file: "l.yaml", registry: registry)
        #expect(g.node("b")?.params["width"] == .int(5))
        #expect(g.node("b")?.params["height"] == .int(3))
    }

    @Test func blockStyleAndNodeDocsAreAccepted() throws {
        let g = try GraphLoader.load(yaml: """
            sanagraph: 1
            params:
              seed: 9
            nodes:
              a:
                type: test.const_int
                doc: the seed as a node
                params:
                  value: ${seed}
              out:
                type: test.sink
                inputs:
                  value: a.value
            """, file: "l.yaml", registry: registry)
        #expect(g.node("a")?.params["value"] == .int(9))
        #expect(g.node("out")?.inputs["value"] == OutputRef(node: "a", output: "value"))
        #expect(g.warnings.isEmpty)
    }

    @Test func longChainValidatesAndPlansInOrder() throws {
        let count = 3000
        var yaml = "sanagraph: 1\nnodes:\n  out: {type: test.sink, inputs: {value: n\(count - 1)}}\n"
        yaml += "  n0: {type: test.const_int, params: {value: 1}}\n"
        for i in 1..<count { yaml += "  n\(i): {type: test.add, inputs: {a: n\(i - 1)}, params: {offset: 1}}\n" }
        let g = try GraphLoader.load(yaml: yaml, file: "l.yaml", registry: registry)
        let plan = Planner.plan(g)
        #expect(plan.order == (0..<count).map { "n\($0)" } + ["out"])
        #expect(plan.steps[5].releaseAfter == [OutputRef(node: "n4", output: "sum")])
    }

    @Test func longCycleIsReportedOnce() {
        let count = 2000
        var yaml = "sanagraph: 1\nnodes:\n  out: {type: test.sink, inputs: {value: n0}}\n"
        for i in 0..<count { yaml += "  n\(i): {type: test.add, inputs: {a: n\((i + 1) % count)}}\n" }
        let errs = errors(yaml)
        #expect(errs.count == 1)
        // Data flows from n1 into n0, from n2 into n1, ...: the printed cycle starts at n0 and follows the flow.
        #expect(errs.first?.hasPrefix("l.yaml:4:3: error: node 'n0': cycle: n0 -> n\(count - 1) -> n\(count - 2)") == true)
        // Long cycles are shortened to their first 12 nodes and the count.
        #expect(errs.first?.contains("n\(count - 11) -> … (\(count) nodes in all) -> n0 (each node feeds the next") == true,
                "\(errs)")
    }

    @Test func unknownTypeDoesNotCascade() {
        // The unknown type hides what the node would output, so its consumer's edge and the
        // "no output node" check stay silent: one mistake, one error.
        #expect(errors("""
            sanagraph: 1
            nodes:
              a: {type: test.const_int}
              out: {type: test.snik, inputs: {value: a}}
            """) == ["l.yaml:4:15: error: node 'out': unknown node type 'test.snik' (did you mean 'test.sink'?)"])
    }

    @Test func brokenGraphParamDoesNotCascadeIntoNodes() {
        #expect(errors("""
            sanagraph: 1
            params:
              steps: {type: int, default: many}
            nodes:
              a: {type: test.const_int, params: {value: "${steps}"}}
              out: {type: test.sink, inputs: {value: a}}
            """) == ["l.yaml:3:31: error: param 'steps': default: expected an integer, got the string \"many\""])
    }

    @Test func overrideForAGraphWithoutParams() throws {
        do {
            _ = try GraphLoader.load(yaml: """
                sanagraph: 1
                nodes:
                  a: {type: test.const_int}
                  out: {type: test.sink, inputs: {value: a}}
                """, file: "l.yaml", registry: registry, overrides: ["seed": "1"])
            Issue.record("expected an error")
        } catch let error as GraphValidationError {
            #expect(error.description == "error: --set seed=1: the graph has no param 'seed' (there are none)")
        }
    }
}
