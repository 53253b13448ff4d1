import Batch
import Foundation
import Testing
import TestSupport

@Suite struct SweepTests {
    @Test func rangesAreInclusiveAndTakeASteps() throws {
        #expect(try SweepAxis.parse("seed=0..3").values == ["0", "1", "2", "3"])
        #expect(try SweepAxis.parse("steps=10..50:20").values == ["10", "30", "50"])
        #expect(try SweepAxis.parse("x=-2..1").values == ["-2", "-1", "0", "1"])
        #expect(try SweepAxis.parse("seed=7..7").values == ["7"])
        #expect(try SweepAxis.parse("params.seed=1..2").name == "seed")
    }

    @Test func listsSplitOnCommasWithEscapes() throws {
        #expect(try SweepAxis.parse("guidance=3.5,4.5").values == ["3.5", "4.5"])
        #expect(try SweepAxis.parse(#"prompt=a cat\, sitting,a dog"#).values == ["a cat, sitting", "a dog"])
        // Text with dots that is not a range stays a value.
        #expect(try SweepAxis.parse("style=a..b").values == ["a..b"])
        #expect(try SweepAxis.parse("prompt=one").values == ["one"])
    }

    @Test func atFileTakesOneValuePerNonEmptyLine() throws {
        let dir = TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("prompts.txt").path
        try "a red circle\r\n\na blue square, small\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try SweepAxis.parse("prompt=@\(file)").values == ["a red circle", "a blue square, small"])
    }

    @Test(arguments: [
        ("seed", "expected NAME=VALUES"),
        ("=1,2", "the param name is missing"),
        ("9x=1", "is not a param name"),
        ("seed=", "no values"),
        ("seed=5..1", "is empty"),
        ("seed=1..x", "a range is two integers"),
        ("seed=1..5:0", "positive integer"),
        ("seed=1,,2", "value 2 of the list is empty"),
        ("prompt=@/nonexistent/prompts.txt", "no such file"),
        ("prompt=@", "must be followed by a file name"),
    ])
    func malformedSweepsNameTheProblem(argument: String, expected: String) {
        do {
            _ = try SweepAxis.parse(argument)
            Issue.record("'\(argument)' was accepted")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
            #expect((error as? BatchError)?.category == .invalidGraph)
        }
    }

    @Test func productVariesTheLastAxisFastest() throws {
        let sweep = Sweep(axes: [try SweepAxis.parse("seed=0..1"), try SweepAxis.parse("g=a,b,c")])
        let items = try sweep.items()
        #expect(items.count == 6)
        #expect(items.map(\.index) == Array(0..<6))
        #expect(items.map { $0.values.map(\.value).joined(separator: "/") } == ["0/a", "0/b", "0/c", "1/a", "1/b", "1/c"])
        #expect(items[4].overrides == ["seed": "1", "g": "b"])
        #expect(items[4].label == "seed=1 g=b")
    }

    @Test func zipPairsValuesAndRefusesUnequalLengths() throws {
        let zipped = Sweep(axes: [try SweepAxis.parse("seed=0..2"), try SweepAxis.parse("g=a,b,c")], zip: true)
        #expect(try zipped.items().map { $0.values.map(\.value).joined(separator: "/") } == ["0/a", "1/b", "2/c"])
        let unequal = Sweep(axes: [try SweepAxis.parse("seed=0..3"), try SweepAxis.parse("g=a,b,c")], zip: true)
        #expect(throws: BatchError.self) { try unequal.items() }
        do { _ = try unequal.items() } catch { #expect("\(error)".contains("--sweep seed has 4, --sweep g has 3")) }
    }

    @Test func noAxesIsOneItemWithTheDefaults() throws {
        let items = try Sweep(axes: []).items()
        #expect(items.count == 1 && items[0].values.isEmpty && items[0].label == "(defaults)")
    }

    @Test func productsOverTheLimitAreRefusedBeforeAnythingIsBuilt() throws {
        let sweep = Sweep(axes: [try SweepAxis.parse("a=0..999"), try SweepAxis.parse("b=0..999")])
        #expect(throws: BatchError.self) { try sweep.items(limit: 100_000) }
        #expect(throws: BatchError.self) { try SweepAxis.parse("seed=0..99999999") }
    }

    @Test func namesAreCheckedAgainstTheGraphAndSetOnce() throws {
        let sweep = Sweep(axes: [try SweepAxis.parse("sed=1,2")])
        do {
            try sweep.check(declared: ["seed", "prompt"], setNames: [])
            Issue.record("unknown param accepted")
        } catch {
            #expect("\(error)" == "--sweep sed: the graph has no param 'sed' (did you mean 'seed'?)")
        }
        let twice = Sweep(axes: [try SweepAxis.parse("seed=1,2"), try SweepAxis.parse("seed=3")])
        #expect(throws: BatchError.self) { try twice.check(declared: ["seed"], setNames: []) }
        let alsoSet = Sweep(axes: [try SweepAxis.parse("seed=1,2")])
        do {
            try alsoSet.check(declared: ["seed"], setNames: ["seed"])
            Issue.record("--set and --sweep of one param accepted")
        } catch {
            #expect("\(error)".contains("given twice, by --set and by --sweep seed"))
        }
    }
}

@Suite struct SweepFileTests {
    private func file(_ name: String, _ text: String) -> (path: String, dir: URL) {
        let dir = TestSupport.temporaryDirectory()
        let path = dir.appendingPathComponent(name).path
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return (path, dir)
    }

    private func rows(_ f: SweepFile) -> [String] {
        f.rows.map { $0.map { "\($0.name)=\($0.value)" }.joined(separator: ";") }
    }

    @Test func yamlListOfMappingsKeepsScalarsAsWritten() throws {
        let (path, dir) = file("items.yaml", "- {seed: 1, prompt: a cat, guidance: 4.50}\n- seed: 2\n  prompt: \"a dog\"\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try SweepFile.load(path)
        #expect(rows(f) == ["seed=1;prompt=a cat;guidance=4.50", "seed=2;prompt=a dog"])
        #expect(f.names == ["seed", "prompt", "guidance"])
    }

    @Test func csvQuotesAndEmptyCells() throws {
        let (path, dir) = file("items.csv", "\u{FEFF}seed,prompt,negative\n1,\"a cat, sitting\",\"\"\n\n2,\"say \"\"hi\"\"\",\r\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try SweepFile.load(path)
        // An empty unquoted cell leaves the param at its default; a quoted "" is an empty string.
        #expect(rows(f) == ["seed=1;prompt=a cat, sitting;negative=", "seed=2;prompt=say \"hi\""])
    }

    @Test func jsonLinesTakeStringsNumbersAndBooleans() throws {
        let (path, dir) = file("items.jsonl", "{\"seed\": 3, \"guidance\": 4.5, \"flag\": true, \"prompt\": \"a cat\"}\n\n{}\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let f = try SweepFile.load(path)
        #expect(rows(f) == ["flag=true;guidance=4.5;prompt=a cat;seed=3", ""])
    }

    @Test(arguments: [
        ("items.jsonl", "{\"seed\": 1}\n{\"seed\": [1, 2]}\n", "items.jsonl:2: values must be strings"),
        ("items.jsonl", "{\"seed\": 1}\nnot json\n", "items.jsonl:2: not a JSON object"),
        ("items.jsonl", "{\"seed\": null}\n", "items.jsonl:1: a value is null"),
        ("items.csv", "seed,prompt\n1,a\n2\n", "items.csv:3: 1 fields, but the header has 2"),
        ("items.csv", "seed,seed\n1,2\n", "column 'seed' appears twice"),
        ("items.csv", "seed,prompt\n1,\"open\n", "items.csv:2: a quoted field is not closed"),
        ("items.yaml", "seed: 1\n", "expected a list of param sets"),
        ("items.yaml", "- {seed: [1, 2]}\n", "items.yaml:1: param 'seed': the value must be a single value"),
        ("items.yaml", "- {seed: 1}\n- 3\n", "items.yaml:2: each item must be a mapping"),
        ("items.txt", "1\n", "name it .yaml, .csv or .jsonl"),
        ("items.jsonl", "\n\n", "no values"),
        ("items.jsonl", "{\"bad-name\": 1}\n", "'bad-name' is not a param name"),
    ])
    func badFilesNameTheLine(name: String, text: String, expected: String) {
        let (path, dir) = file(name, text)
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try SweepFile.load(path)
            Issue.record("\(name) was accepted")
        } catch {
            #expect("\(error)".contains(expected), "\(error)")
        }
    }

    @Test func fileRowsComeFirstInTheProduct() throws {
        let (path, dir) = file("items.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n")
        defer { try? FileManager.default.removeItem(at: dir) }
        let sweep = Sweep(rows: try SweepFile.load(path), axes: [try SweepAxis.parse("seed=0..1")])
        #expect(try sweep.items().map(\.label) == ["prompt=a seed=0", "prompt=a seed=1", "prompt=b seed=0", "prompt=b seed=1"])
        let zipped = Sweep(rows: try SweepFile.load(path), axes: [try SweepAxis.parse("seed=5..6")], zip: true)
        #expect(try zipped.items().map(\.label) == ["prompt=a seed=5", "prompt=b seed=6"])
    }
}
