import Foundation
@testable import GraphRuntime
import Testing
import TestSupport

/// Property-based tests (seeded generator, 300 cases each): `--set`, a params file and the graph's own YAML read
/// the same text the same way; cache keys change exactly when something that determines a node changes.
@Suite struct ParamPropertyTests {
    static func graph(type: String, defaultValue: String) -> String {
        """
        sanagraph: 1
        params:
          v: {type: \(type), default: \(defaultValue)}
        nodes:
          s: {type: test.sink, inputs: {value: c}}
          c: {type: test.const_string, params: {text: "${v}"}}
        """
    }

    /// The typed value `text` resolves to through each route, or nil when the route refuses it.
    static func resolve(_ text: String, type: String) -> (set: ParamValue?, file: ParamValue?, yaml: ParamValue?) {
        let registry = TestNodesPack.registry()
        func value(_ g: () throws -> ValidatedGraph) -> ParamValue? { (try? g())?.params["v"] }
        let base = graph(type: type, defaultValue: type == "string" || type == "path" ? "\"\"" : type == "bool" ? "false" : "0")
        let set = value { try GraphLoader.load(yaml: base, file: "g.yaml", registry: registry, overrides: ["v": text]) }
        let dir = TestSupport.temporaryDirectory("props")
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("p.yaml").path
        try? Data("v: \(text)\n".utf8).write(to: URL(fileURLWithPath: file))
        let fromFile = value { try GraphLoader.load(yaml: base, file: "g.yaml", registry: registry, paramsFiles: [file]) }
        let yaml = value { try GraphLoader.load(yaml: graph(type: type, defaultValue: text), file: "g.yaml", registry: registry) }
        return (set, fromFile, yaml)
    }

    static func numberText(_ rng: inout SeededRandom) -> String {
        switch rng.int(0...6) {
        case 0: return String(rng.int(Int.min...Int.max))
        case 1: return String(rng.int(-1000...1000)) + ".0"
        case 2: return String(Double(rng.int(-1_000_000...1_000_000)) / Double(rng.pick([1, 3, 7, 1024])))
        case 3: return rng.pick(["1e30", "-1e30", "1e400", ".inf", "-.inf", ".nan", "0x1F", "0o17", "0b101", "1_000",
                                 "1:30", "1:0:0:0:0:0:0:0:0:0:0:0", "99999999999999999999", "+5", "-0", "007"])
        case 4: return String(Double(rng.int(-9_000_000...9_000_000)) * 1e9)
        case 5: return rng.pick(["true", "no", "On", "abc", "1.5.5", "1e", "e5", "--1"])
        default: return String(rng.int(-1_000_000...1_000_000))
        }
    }

    @Test func setParamsFilesAndYAMLReadNumbersTheSameWay() {
        var rng = SeededRandom(seed: 2301)
        for _ in 0..<300 {
            let type = rng.pick(["int", "float", "bool"])
            let text = Self.numberText(&rng)
            let r = Self.resolve(text, type: type)
            #expect(r.set == r.file, "\(type) '\(text)': --set \(String(describing: r.set)), params file \(String(describing: r.file))")
            #expect(r.file == r.yaml, "\(type) '\(text)': params file \(String(describing: r.file)), YAML \(String(describing: r.yaml))")
        }
        // The decision issue #23 asked for: an integral float is an acceptable int everywhere.
        #expect(Self.resolve("7.0", type: "int").set == .int(7))
        #expect(Self.resolve("7.5", type: "int").set == nil)
    }

    @Test func stringParamsTakeSetTextVerbatim() {
        var rng = SeededRandom(seed: 2302)
        let registry = TestNodesPack.registry()
        let base = Self.graph(type: "string", defaultValue: "\"\"")
        for _ in 0..<300 {
            let scalars = (0..<rng.int(0...40)).map { _ in
                Unicode.Scalar(UInt32(rng.pick([rng.int(1...0x7F), rng.int(0xA0...0xFFFF), rng.int(0x1F300...0x1F64F)])))
                    ?? "x"
            }
            var view = String.UnicodeScalarView()
            view.append(contentsOf: scalars)
            let text = String(view)
            let g = try? GraphLoader.load(yaml: base, file: "g.yaml", registry: registry, overrides: ["v": text])
            #expect(g?.params["v"] == .string(text), "\(text.debugDescription)")
        }
    }

    @Test func cacheKeysChangeExactlyWhenAnInputOfTheKeyChanges() {
        var rng = SeededRandom(seed: 2303)
        func randomValue() -> ParamValue {
            switch rng.int(0...3) {
            case 0: return .int(rng.int(-5...5))
            case 1: return .float(Double(rng.int(-5...5)))
            case 2: return .string(String(rng.int(-5...5)))
            default: return .bool(rng.chance(0.5))
            }
        }
        for _ in 0..<300 {
            var params: [String: ParamValue] = [:]
            for name in ["a", "b", "c", "d"].prefix(rng.int(0...4)) { params[name] = randomValue() }
            let key = CacheKey.compute(typeName: "t", version: 1, params: ParamValues(params), inputs: [:], fingerprint: nil)
            // Same content in another insertion order: same key.
            var shuffled: [String: ParamValue] = [:]
            for k in params.keys.shuffled(using: &rng) { shuffled[k] = params[k] }
            #expect(CacheKey.compute(typeName: "t", version: 1, params: ParamValues(shuffled), inputs: [:], fingerprint: nil) == key)
            // One param changed (also only in kind: int 3 vs float 3.0 vs string "3"): another key.
            if let name = params.keys.sorted().first {
                var changed = params
                repeat { changed[name] = randomValue() } while changed[name] == params[name]
                #expect(CacheKey.compute(typeName: "t", version: 1, params: ParamValues(changed), inputs: [:], fingerprint: nil) != key)
            }
            #expect(CacheKey.compute(typeName: "t", version: 2, params: ParamValues(params), inputs: [:], fingerprint: nil) != key)
            #expect(CacheKey.compute(typeName: "t", version: 1, params: ParamValues(params), inputs: [:], fingerprint: "f") != key)
        }
    }
}
