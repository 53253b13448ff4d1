import Foundation
@testable import GraphRuntime
import Testing
import TestSupport
import Yams

/// The front end's YAML composer: same scalars, tags and marks as Yams, plus its limits.
@Suite struct YAMLComposerTests {
    @Test func plainScalarsResolveAsYamsResolvesThem() {
        var rng = SeededRandom(seed: 2307)
        let alphabet = Array("0123456789+-._:eExXoObB~aAnNfFtTyYlLsSuUiI ")
        let fixed = ["", "~", "null", "Null", "NULL", "yes", "No", "ON", "off", "true", "False", "0", "-0", "+12", "0x1F",
                     "0o17", "017", "08", "0b101", "1_000", "1:30", "1:0:0", "190:20:30.15", "1.5", ".5", "-.5e+3", "1e5",
                     "1E-5", ".inf", "-.Inf", ".nan", ".NaN", "1.", "+.inf", ".e1", "1e", "e5", "0x", "0b", "_1", "1__2",
                     "12:60", "1:5", "-1:30", "1.2.3", "y", "n", "nul", "~~"]
        var cases = fixed
        for _ in 0..<5000 { cases.append(String((0..<rng.int(1...8)).map { _ in rng.pick(alphabet) })) }
        for s in cases where !s.hasPrefix(" ") && !s.hasSuffix(" ") {
            let yams = Resolver.default.resolveTag(of: Yams.Node(s))
            #expect(YAMLScalars.resolve(s) == yams, "'\(s)': ours \(YAMLScalars.resolve(s).rawValue), Yams \(yams.rawValue)")
        }
    }

    @Test func composesLikeYamsWithMarks() throws {
        let text = "a: 1\nb: [x, 'y', 2.5]\nc: {d: ~, e: yes}\nf: &anchor {g: 1}\nh: *anchor\n"
        let ours = try #require(try YAMLComposer.compose(text))
        let theirs = try #require(try Yams.compose(yaml: text))
        #expect(ours == theirs)
        #expect(ours["b"]?.mark?.line == 2 && ours["b"]?.mark?.column == 4)
        #expect(ours["h"]?["g"]?.int == 1)
    }

    @Test func refusesDeepNestingAliasBombsAndDuplicates() {
        func failure(_ text: String) -> YAMLComposer.Failure? {
            do { _ = try YAMLComposer.compose(text); return nil } catch { return error }
        }
        // libyaml's scanner may refuse a very deep flow first (it limits flow levels itself); either way, no crash.
        let deep = failure(String(repeating: "[", count: 100_000))?.message ?? ""
        #expect(deep.contains("nested more than 64") || deep.hasPrefix("YAML syntax error"), "\(deep)")
        #expect(failure(String(repeating: "- ", count: 100) + "x\n")?.message.contains("nested more than 64") == true)
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        let f = failure(bomb)
        #expect(f?.message.contains("expands to more than") == true)
        #expect(f?.line == 7)
        #expect(failure("a: 1\nb: 2\na: 3\n") == YAMLComposer.Failure(
            message: "duplicate key 'a' in a mapping; each key may appear once", line: 1, column: 1))
        #expect(failure("a: *nope\n")?.message.contains("undefined alias") == true)
        #expect(failure("a: [1, 2\n")?.message.hasPrefix("YAML syntax error") == true)
    }
}
