import Foundation
import GraphRuntime
import Testing
import TestSupport

// Graph params: `${name}` substitution typing, `--set` overrides and `--params` files.

@Suite struct FrontParamTests {
    let registry = TestNodesPack.registry()

    func load(_ yaml: String, overrides: [String: String] = [:], paramsFiles: [String] = []) throws -> ValidatedGraph {
        try GraphLoader.load(yaml: yaml, file: "g.yaml", registry: registry, overrides: overrides,
                             paramsFiles: paramsFiles)
    }

    /// The error lines of a failing load.
    func errors(_ yaml: String, overrides: [String: String] = [:], paramsFiles: [String] = []) -> [String] {
        do {
            _ = try load(yaml, overrides: overrides, paramsFiles: paramsFiles)
            return []
        } catch let error as GraphValidationError {
            return error.diagnostics.filter { $0.severity == .error }.map(\.description)
        } catch {
            return ["unexpected \(error)"]
        }
    }

    static let typed = """
        sanagraph: 1
        params:
          count: {type: int, default: 3}
          ratio: {type: float, default: 0.25}
          label: {type: string, default: run}
          enabled: {type: bool, default: true}
          dir: {type: path, default: /tmp/models}
        nodes:
          i: {type: test.const_int, params: {value: "${count}"}}
          f: {type: test.const_float, params: {value: "${count}"}}
          r: {type: test.scale, inputs: {x: i}, params: {factor: "${ratio}"}}
          s: {type: test.const_string, params: {text: "${label}-${count}/${ratio}"}}
          whole: {type: test.const_string, params: {text: "${count}"}}
          p: {type: test.read_text, params: {path: "${dir}/notes.txt"}}
          e: {type: test.const_string, params: {text: "cost: $${count} and $5"}}
          q: {type: test.const_string, params: {text: "${params.label}"}}
          c: {type: test.combine, inputs: {a: f, b: r}, params: {strict: "${enabled}"}}
          out: {type: test.sink, inputs: {value: c, extra: s}}
          out2: {type: test.sink, inputs: {value: whole, extra: p}}
          out3: {type: test.sink, inputs: {value: e, extra: q}}
        """

    @Test func wholeValueReferenceKeepsTheParamsType() throws {
        let g = try load(Self.typed)
        #expect(g.node("i")?.params["value"] == .int(3))
        #expect(g.node("f")?.params["value"] == .float(3))          // int param into a float node param
        #expect(g.node("r")?.params["factor"] == .float(0.25))
        #expect(g.node("c")?.params["strict"] == .bool(true))
        #expect(g.node("whole")?.params["text"] == .string("3"))     // into a string param: its text
    }

    @Test func referencesInsideTextInterpolate() throws {
        let g = try load(Self.typed)
        #expect(g.node("s")?.params["text"] == .string("run-3/0.25"))
        #expect(g.node("p")?.params["path"] == .string("/tmp/models/notes.txt"))
        #expect(g.node("q")?.params["text"] == .string("run"))       // ${params.name} form
    }

    @Test func doubleDollarEscapesASubstitution() throws {
        let g = try load(Self.typed)
        #expect(g.node("e")?.params["text"] == .string("cost: ${count} and $5"))
    }

    @Test func graphParamsAreRecordedWithDeclarations() throws {
        let g = try load(Self.typed)
        #expect(g.params == ["count": .int(3), "ratio": .float(0.25), "label": .string("run"), "enabled": .bool(true),
                             "dir": .string("/tmp/models")])
        #expect(g.parameters.map(\.name) == ["count", "ratio", "label", "enabled", "dir"])
        #expect(g.parameters.map(\.type) == [.int, .float, .string, .bool, .path])
        #expect(g.source == Self.typed)
    }

    @Test func substitutedValuesAreCheckedLikeLiterals() {
        let yaml = """
            sanagraph: 1
            params:
              ratio: {type: float, default: 2.5}
              big: {type: int, default: 5000}
              word: {type: string, default: abc}
            nodes:
              a: {type: test.const_int, params: {value: "${ratio}"}}
              b: {type: test.add, inputs: {a: a}, params: {offset: "${big}"}}
              c: {type: test.const_int, params: {value: "${word}"}}
              d: {type: test.const_int, params: {value: "1${big}"}}
              out: {type: test.sink, inputs: {value: b, extra: c}}
              out2: {type: test.sink, inputs: {value: d}}
            """
        #expect(errors(yaml) == [
            "g.yaml:7:45: error: node 'a': param 'value': expected an integer, got the float 2.5 (from ${ratio})",
            "g.yaml:8:56: error: node 'b': param 'offset': 5000 is above the maximum 100 (allowed: -100...100) (from ${big})",
            "g.yaml:9:45: error: node 'c': param 'value': expected an integer, got the string \"abc\" (from ${word})",
            "g.yaml:10:45: error: node 'd': param 'value': expected an integer, got the string \"15000\"",
        ])
    }

    static let overridable = """
        sanagraph: 1
        params:
          steps: {type: int, default: 20, min: 1, max: 200}
          ratio: {type: float, default: 1}
          fast: {type: bool, default: false}
          mode: {type: string, default: sum, choices: [sum, product]}
          prompt: {type: string}
        nodes:
          a: {type: test.const_int, params: {value: "${steps}"}}
          b: {type: test.const_float, params: {value: "${ratio}"}}
          c: {type: test.combine, inputs: {a: a, b: b}, params: {mode: "${mode}", strict: "${fast}"}}
          p: {type: test.const_string, params: {text: "${prompt}"}}
          out: {type: test.sink, inputs: {value: c, extra: p}}
        """

    @Test func setOverridesAreConvertedToTheDeclaredType() throws {
        let g = try load(Self.overridable, overrides: ["steps": "30", "ratio": "2", "fast": "yes", "mode": "product",
                                                       "prompt": "a red circle"])
        #expect(g.params["steps"] == .int(30))
        #expect(g.params["ratio"] == .float(2))
        #expect(g.params["fast"] == .bool(true))
        #expect(g.node("a")?.params["value"] == .int(30))
        #expect(g.node("b")?.params["value"] == .float(2))
        #expect(g.node("c")?.params["mode"] == .string("product"))
        #expect(g.node("p")?.params["text"] == .string("a red circle"))
    }

    @Test func requiredParamMustBeGiven() {
        #expect(errors(Self.overridable) == [
            "g.yaml:7:3: error: param 'prompt' is required (it has no default): give it with --set prompt=... "
                + "or in a --params file",
        ])
    }

    @Test func badOverridesNameTheSetArgument() {
        let errs = errors(Self.overridable, overrides: ["prompt": "x", "steps": "0", "ratio": "fast", "stpes": "3",
                                                        "mode": "max"])
        #expect(errs == [
            "error: --set mode=max: param 'mode': 'max' is not one of sum, product",
            "error: --set ratio=fast: param 'ratio' is a float: expected a number, got the string \"fast\"",
            "error: --set steps=0: param 'steps': 0 is below the minimum 1 (allowed: 1...200)",
            "error: --set stpes=3: the graph has no param 'stpes' (did you mean 'steps'?)",
        ])
    }

    @Test func paramsFilesApplyInOrderAndSetWins() throws {
        let dir = TestSupport.temporaryDirectory("front-params")
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = dir.appendingPathComponent("a.yaml").path
        let second = dir.appendingPathComponent("b.yaml").path
        try "steps: 50\nratio: 3\nprompt: from a\n".write(toFile: first, atomically: true, encoding: .utf8)
        try "steps: 60\n".write(toFile: second, atomically: true, encoding: .utf8)
        let g = try load(Self.overridable, overrides: ["ratio": "4.5"], paramsFiles: [first, second])
        #expect(g.params["steps"] == .int(60))         // b.yaml after a.yaml
        #expect(g.params["ratio"] == .float(4.5))      // --set after files
        #expect(g.params["prompt"] == .string("from a"))
        #expect(g.params["mode"] == .string("sum"))    // default
    }

    @Test func paramsFileErrorsNameThatFileAndLine() throws {
        let dir = TestSupport.temporaryDirectory("front-params")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml").path
        try "prompt: ok\nsteps: \"many\"\nmode: [sum]\nstep: 3\n".write(toFile: file, atomically: true, encoding: .utf8)
        let missing = dir.appendingPathComponent("missing.yaml").path
        #expect(errors(Self.overridable, paramsFiles: [file, missing]) == [
            "error: cannot read params file '\(missing)' (--params): no such file",
            "\(file):2:8: error: param 'steps' is an int: expected an integer, got the string \"many\"",
            "\(file):3:7: error: param 'mode' must be a single value, got a list",
            "\(file):4:1: error: the graph has no param 'step' (did you mean 'steps'?)",
        ])
    }

    @Test func paramsFileSyntaxErrorHasItsPosition() throws {
        let dir = TestSupport.temporaryDirectory("front-params")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml").path
        try "prompt: [unclosed\n".write(toFile: file, atomically: true, encoding: .utf8)
        let errs = errors(Self.overridable, paramsFiles: [file])
        #expect(errs.count == 2)  // the syntax error, then the still-missing required prompt
        #expect(errs.contains { $0.hasPrefix("\(file):2:1: error: YAML syntax error") })
    }
}

/// Node param defaults from the command line (`--device cuda` fills `device` on the nodes that have one).
@Suite struct NodeDefaultsTests {
    let registry = TestNodesPack.registry()
    static let graph = """
        sanagraph: 1
        nodes:
          a: {type: test.const_int}
          b: {type: test.const_int, params: {value: 7}}
          s: {type: test.const_string, params: {text: hi}}
          out: {type: test.sink, inputs: {value: a, extra: b}}
          out2: {type: test.sink, inputs: {value: s}}
        """

    @Test("a default fills the param on nodes that declare it and leave it unset; set values and other types stay")
    func fillsOnlyUnsetDeclaredParams() throws {
        let g = try GraphLoader.load(yaml: Self.graph, file: "g.yaml", registry: registry, nodeDefaults: ["value": "3"])
        #expect(g.node("a")?.params["value"] == .int(3))   // typed as the node declares it
        #expect(g.node("b")?.params["value"] == .int(7))   // the graph's own value wins
        #expect(g.node("s")?.params["value"] == nil)       // test.const_string has no such param
        let plain = try GraphLoader.load(yaml: Self.graph, file: "g.yaml", registry: registry)
        #expect(plain.node("a")?.params["value"] == .int(0))
    }

    @Test("a default that does not fit the param is an error at the node that received it")
    func badDefaultIsReportedAtTheNode() {
        do {
            _ = try GraphLoader.load(yaml: Self.graph, file: "g.yaml", registry: registry, nodeDefaults: ["value": "x"])
            Issue.record("expected a validation error")
        } catch let error as GraphValidationError {
            let errors = error.diagnostics.filter { $0.severity == .error }.map(\.description)
            #expect(errors.count == 1)
            #expect(errors.first?.contains("g.yaml:3:") == true && errors.first?.contains("value") == true)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
