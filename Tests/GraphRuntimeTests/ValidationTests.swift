import Foundation
import GraphRuntime
import Testing
import TestSupport

@Suite struct ValidationTests {
    let registry = TestNodesPack.registry()

    func diagnostics(_ yaml: String) -> [Diagnostic] {
        do {
            return try GraphLoader.load(yaml: yaml, file: "v.yaml", registry: registry).warnings
        } catch let error as GraphValidationError {
            return error.diagnostics
        } catch {
            Issue.record("unexpected error \(error)")
            return []
        }
    }

    @Test func validGraphResolvesTypesParamsDefaultsAndInputs() throws {
        let g = try GraphLoader.load(file: TestSupport.fixture("Graphs/valid/pipeline.yaml"), registry: registry)
        #expect(g.nodes.map(\.id) == ["report", "greeting", "hello", "who", "first", "scaled", "grid", "total",
                                      "unused", "tensor_out"])
        #expect(g.description == "A small pipeline over the test nodes (used by front-end tests).")
        let total = try #require(g.node("total"))
        #expect(total.descriptor.typeName == "test.combine")
        #expect(total.inputs == ["a": OutputRef(node: "scaled", output: "out"),
                                 "b": OutputRef(node: "grid", output: "count")])
        #expect(total.params.values == ["mode": .string("product"), "strict": .bool(false), "key": .string("")])
        #expect(g.node("grid")?.params.values == ["width": .int(3), "height": .int(2), "start": .float(2),
                                                  "step": .float(1), "key": .string("")])
        #expect(g.node("who")?.params["text"] == .string("world! (width 3, ${literal})"))
        #expect(g.node("report")?.location == SourceLocation(file: TestSupport.fixture("Graphs/valid/pipeline.yaml"),
                                                              line: 11, column: 3))
        #expect(g.params["width"] == .int(3))  // shorthand declaration
    }

    @Test func intIsAcceptedForFloatAndIntegralFloatForInt() throws {
        let g = try GraphLoader.load(yaml: """
            sanagraph: 1
            nodes:
              a: {type: test.const_float, params: {value: 3}}
              b: {type: test.const_int, params: {value: 4.0}}
              out: {type: test.sink, inputs: {value: a, extra: b}}
            """, file: "v.yaml", registry: registry)
        #expect(g.node("a")?.params["value"] == .float(3))
        #expect(g.node("b")?.params["value"] == .int(4))
    }

    @Test func stringParamsTakeScalarsAsWritten() throws {
        let g = try GraphLoader.load(yaml: """
            sanagraph: 1
            nodes:
              a: {type: test.const_string, params: {text: 1.50}}
              b: {type: test.const_string, params: {text: no}}
              out: {type: test.sink, inputs: {value: a, extra: b}}
            """, file: "v.yaml", registry: registry)
        #expect(g.node("a")?.params["text"] == .string("1.50"))
        #expect(g.node("b")?.params["text"] == .string("no"))
    }

    @Test func unreadableFileGivesOneDiagnostic() {
        let path = "/nonexistent/dir/graph.yaml"
        do {
            _ = try GraphLoader.load(file: path, registry: registry)
            Issue.record("expected an error")
        } catch let error as GraphValidationError {
            #expect(error.diagnostics.map(\.description) == ["error: cannot read graph file '\(path)': no such file"])
            #expect(error.category == .invalidGraph)
            #expect(error.category.exitCode == 2)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func directoryIsNotAGraphFile() {
        let dir = FileManager.default.temporaryDirectory
        #expect(throws: GraphValidationError.self) { try GraphLoader.load(file: dir.path, registry: registry) }
    }

    @Test func emptyFileIsAnError() {
        #expect(diagnostics("").map(\.description)
                == ["v.yaml:1:1: error: a graph file must be a mapping with 'sanagraph: 1' and 'nodes:', got an empty document"])
    }

    @Test func errorsAreSortedByLocationAndAllReported() {
        let ds = diagnostics("""
            sanagraph: 1
            nodes:
              out: {type: test.sink, inputs: {value: zzz}}
              a: {type: test.add, inputs: {a: b}, params: {offset: 1000}}
              b: {type: test.nope}
            """)
        let errors = ds.filter { $0.severity == .error }
        // b's unknown type silences checks on a's edge from b (one mistake, one error).
        #expect(errors.count == 3)
        let places = errors.compactMap { $0.location.map { [$0.line, $0.column] } }
        #expect(places == places.sorted { ($0[0], $0[1]) < ($1[0], $1[1]) })
        #expect(errors.map(\.node) == ["out", "a", "b"])
    }

    @Test func didYouMeanOnlyWhenClose() {
        #expect(Suggestions.closest(to: "test.ad", in: ["test.add", "test.scale"]) == "test.add")
        #expect(Suggestions.closest(to: "stpes", in: ["steps", "seed"]) == "steps")      // transposition
        #expect(Suggestions.closest(to: "Offset", in: ["offset"]) == "offset")             // case
        #expect(Suggestions.closest(to: "sink", in: ["test.sink", "test.add"]) == "test.sink")  // family prefix
        #expect(Suggestions.closest(to: "frobnicate", in: ["test.add", "test.scale"]) == nil)
        #expect(Suggestions.closest(to: "ab", in: ["xy"]) == nil)
        #expect(Suggestions.distance("abcd", "acbd") == 1)
        #expect(Suggestions.distance("kitten", "sitting") == 3)
        #expect(Suggestions.distance("", "abc") == 3)
    }

    @Test func validateHookRunsOnlyOnValidParams() {
        // width 2000 is out of range: the node's own check (which would multiply width * height) doesn't run.
        let ds = diagnostics("""
            sanagraph: 1
            nodes:
              t: {type: test.tensor, params: {width: 2000, height: 100}}
              out: {type: test.sink, inputs: {value: t.tensor}}
            """)
        #expect(ds.map(\.description)
                == ["v.yaml:3:42: error: node 't': param 'width': 2000 is above the maximum 1024 (allowed: 1...1024)"])
    }

    @Test func warningsDontFailTheLoad() throws {
        let g = try GraphLoader.load(file: TestSupport.fixture("Graphs/warnings/unused-param.yaml"), registry: registry)
        #expect(g.warnings.count == 2)
        #expect(g.warnings.allSatisfy { $0.severity == .warning })
    }

    @Test func graphValidationErrorDescriptionListsEveryDiagnostic() {
        let error = GraphValidationError([
            Diagnostic(.error, "first", at: SourceLocation(file: "f.yaml", line: 1, column: 2), node: "a"),
            Diagnostic(.warning, "second", at: nil),
        ])
        #expect(error.description == "f.yaml:1:2: error: node 'a': first\nwarning: second")
    }
}
