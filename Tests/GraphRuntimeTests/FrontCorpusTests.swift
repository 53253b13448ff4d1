import Foundation
import GraphRuntime
import Testing
import TestSupport

// The broken-graph corpus: every `Tests/Fixtures/Graphs/broken/NAME.yaml` (and `warnings/NAME.yaml`) has a
// `NAME.expected` file holding the exact diagnostics, one per line, as `sanagraph validate` prints them
// (`FILE:LINE:COL: severity: node 'id': message`, paths relative to Tests/Fixtures/Graphs). A case may start
// with comment lines giving command-line input:
//   `# set: name=value`  (a --set override)     `# params: broken/x.params.yaml`  (a --params file)

enum Corpus {
    static let root = TestSupport.fixture("Graphs")

    /// Case names (`broken/yaml-syntax`), sorted.
    static func cases(in folder: String) -> [String] {
        let dir = root + "/" + folder
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasSuffix(".yaml") && !$0.hasSuffix(".params.yaml") }
            .map { folder + "/" + $0.dropLast(".yaml".count) }.sorted()
    }

    /// Loads a case with the overrides and params files its header comments give; returns the diagnostics
    /// (errors, or the warnings of a graph that loaded) rendered with paths relative to the corpus root.
    static func diagnostics(_ name: String, registry: NodeRegistry = TestNodesPack.registry()) throws -> [Diagnostic] {
        let path = root + "/" + name + ".yaml"
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var overrides: [String: String] = [:]
        var paramsFiles: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("# ") {
            if line.hasPrefix("# set: ") {
                let parts = line.dropFirst("# set: ".count).split(separator: "=", maxSplits: 1).map(String.init)
                overrides[parts[0]] = parts.count > 1 ? parts[1] : ""
            } else if line.hasPrefix("# params: ") {
                paramsFiles.append(root + "/" + line.dropFirst("# params: ".count))
            }
        }
        do {
            return try GraphLoader.load(file: path, registry: registry, overrides: overrides,
                                        paramsFiles: paramsFiles).warnings
        } catch let error as GraphValidationError {
            return error.diagnostics
        }
    }

    static func rendered(_ name: String) throws -> [String] {
        try diagnostics(name).map { $0.description.replacingOccurrences(of: root + "/", with: "") }
    }

    static func expected(_ name: String) throws -> [String] {
        let text = try String(contentsOfFile: root + "/" + name + ".expected", encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }
}

@Suite struct FrontCorpusTests {
    @Test(arguments: Corpus.cases(in: "broken"))
    func brokenGraphGivesExactlyItsExpectedErrors(_ name: String) throws {
        let actual = try Corpus.rendered(name)
        #expect(actual == (try Corpus.expected(name)))
        #expect(try Corpus.diagnostics(name).contains { $0.severity == .error }, "a broken graph must fail to load")
    }

    @Test(arguments: Corpus.cases(in: "warnings"))
    func graphWithWarningsLoadsAndWarns(_ name: String) throws {
        let actual = try Corpus.rendered(name)
        #expect(actual == (try Corpus.expected(name)))
        #expect(!actual.isEmpty)
        #expect(try Corpus.diagnostics(name).allSatisfy { $0.severity == .warning })
    }

    @Test func corpusIsComplete() {
        #expect(Corpus.cases(in: "broken").count >= 25)
        for name in Corpus.cases(in: "broken") + Corpus.cases(in: "warnings") {
            #expect(FileManager.default.fileExists(atPath: Corpus.root + "/" + name + ".expected"), "\(name).expected")
        }
    }

    /// Every kind of mistake the validator knows has at least one case in the corpus.
    @Test func corpusCoversEveryErrorKind() throws {
        let kinds: [String: String] = [
            "YAML syntax": "YAML syntax error",
            "duplicate key": "duplicate key",
            "format version": "unsupported graph format version",
            "missing version": "missing the format version",
            "unknown top-level key": "unknown top-level key",
            "unknown node type": "unknown node type",
            "unknown param": "unknown param '",
            "missing required param": "missing required param",
            "wrong param type": "expected an integer, got",
            "out of range": "is below the minimum",
            "above range": "is above the maximum",
            "not in choices": "is not one of",
            "node validate hook": "at most 4096 elements",
            "unknown input": "unknown input '",
            "missing required input": "missing required input",
            "unknown node referenced": "refers to unknown node",
            "unknown output": "has no output '",
            "several outputs": "which has several outputs",
            "no outputs": "which has no outputs",
            "socket type mismatch": "accepts Int, but",
            "cycle": "cycle: a -> b -> c -> a",
            "self cycle": "cycle: self -> self",
            "no output node": "the graph has no output node",
            "unknown substitution": "unknown graph param '${sed}' (did you mean 'seed'?)",
            "unterminated substitution": "unterminated '${'",
            "bad --set value": "error: --set steps=many",
            "unknown --set name": "the graph has no param 'stpes' (did you mean 'steps'?)",
            "params file": "bad-params-file.params.yaml:1:8: error",
            "required graph param": "is required (it has no default)",
            "bad param declaration": "unknown type 'flaot' (did you mean 'float'?)",
            "bad node id": "is not an identifier",
            "unused param warning": "warning: graph param 'sed' is declared but no node uses it",
            "unneeded node warning": "warning: node 'spare': not needed by any output node",
        ]
        var all: [String] = []
        for name in Corpus.cases(in: "broken") + Corpus.cases(in: "warnings") { all += try Corpus.expected(name) }
        for (kind, phrase) in kinds.sorted(by: { $0.key < $1.key }) {
            #expect(all.contains { $0.contains(phrase) }, "no corpus case covers \(kind)")
        }
    }

    @Test func fiveMistakesGiveFiveErrorsOnTheirLines() throws {
        let diagnostics = try Corpus.diagnostics("broken/five-mistakes")
        let errors = diagnostics.filter { $0.severity == .error }
        #expect(errors.count == 5)
        #expect(errors.compactMap { $0.location?.line } == [7, 10, 11, 13, 14])
        #expect(errors.map(\.node) == ["scaled", "sum", "sum", "mixed", "grid"])
        // Each marked line of the file has exactly one error.
        let lines = try String(contentsOfFile: Corpus.root + "/broken/five-mistakes.yaml", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false)
        let marked = lines.enumerated().filter { $0.element.contains("# <-") }.map { $0.offset + 1 }
        #expect(marked == [7, 10, 11, 13, 14])
    }
}
