import Foundation
import SanaGraphKit
import Testing
import TestSupport
@testable import TextEncoder

/// One string of tools/reference/tokenizer_fixtures.py's corpus with HF GemmaTokenizerFast's answers.
struct TokenizerCase: Decodable {
    let text: String
    let ids: [Int]
    let ids_no_special: [Int]
    let decoded: String
    let decoded_skip_special: String
}

private struct Expected: Decodable { let cases: [TokenizerCase] }

/// The fixture tokenizers: the project's caption tokenizer and a multilingual one with byte fallback.
let tokenizerFixtures = ["sana-shapes", "varied"]

func loadTokenizerFixture(_ name: String) throws -> (GemmaTokenizer, [TokenizerCase]) {
    let tokenizer = try GemmaTokenizer(contentsOf: TestSupport.fixture("TextEncoder/\(name)/tokenizer.json"))
    let data = try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("TextEncoder/\(name)/expected.json")))
    return (tokenizer, try JSONDecoder().decode(Expected.self, from: data).cases)
}

/// Compares by UTF-8 bytes: Swift's `String ==` treats "é" and "e\u{301}" as equal.
func sameBytes(_ a: String, _ b: String) -> Bool { Array(a.utf8) == Array(b.utf8) }

@Test("encode with <bos> equals HF GemmaTokenizerFast ids on the tricky-string corpus", arguments: tokenizerFixtures)
func encodeMatchesHuggingFace(fixture: String) throws {
    let (tokenizer, cases) = try loadTokenizerFixture(fixture)
    #expect(cases.count >= 40)
    for item in cases {
        let ids = try tokenizer.encode(item.text, addSpecialTokens: true)
        #expect(ids == item.ids, "\(fixture): \(item.text.prefix(60).debugDescription)")
    }
}

@Test("encode without special tokens equals HF ids", arguments: tokenizerFixtures)
func encodeWithoutSpecialTokensMatchesHuggingFace(fixture: String) throws {
    let (tokenizer, cases) = try loadTokenizerFixture(fixture)
    for item in cases {
        #expect(try tokenizer.encode(item.text, addSpecialTokens: false) == item.ids_no_special,
                "\(fixture): \(item.text.prefix(60).debugDescription)")
    }
}

@Test("decode equals HF decode, with and without skipping special tokens", arguments: tokenizerFixtures)
func decodeMatchesHuggingFace(fixture: String) throws {
    let (tokenizer, cases) = try loadTokenizerFixture(fixture)
    var roundTrips = 0
    for item in cases {
        let decoded = tokenizer.decode(item.ids_no_special)
        #expect(sameBytes(decoded, item.decoded), "\(fixture): \(item.text.prefix(60).debugDescription)")
        #expect(sameBytes(tokenizer.decode(item.ids, skipSpecialTokens: true), item.decoded_skip_special),
                "\(fixture): \(item.text.prefix(60).debugDescription)")
        if sameBytes(item.decoded, item.text) {
            #expect(sameBytes(decoded, item.text))
            roundTrips += 1
        }
    }
    #expect(roundTrips >= cases.count - 2)
}

@Test("byte fallback and special tokens are exercised by the varied fixture")
func variedFixtureExercisesByteFallbackAndAddedTokens() throws {
    let (tokenizer, _) = try loadTokenizerFixture("varied")
    let ids = try tokenizer.encode("🚀<start_of_turn>", addSpecialTokens: false)
    let rocketBytes = Array("🚀".utf8).map { tokenizer.tokenId(String(format: "<0x%02X>", $0)) }
    #expect(rocketBytes.allSatisfy { $0 != nil })
    #expect(ids == rocketBytes.compactMap { $0 } + [tokenizer.tokenId("<start_of_turn>")!])
    #expect(tokenizer.bosTokenId == 2 && tokenizer.eosTokenId == 1 && tokenizer.padTokenId == 0)
    #expect(try tokenizer.encode("", addSpecialTokens: true) == [2])
}

@Test("a folder holding tokenizer.json loads like the file")
func folderPathLoadsTokenizerJSON() throws {
    let folder = TestSupport.fixture("TextEncoder/sana-shapes")
    let a = try GemmaTokenizer(contentsOf: folder)
    let b = try GemmaTokenizer(contentsOf: folder + "/tokenizer.json")
    #expect(try a.encode("a red circle") == b.encode("a red circle"))
}

@Test("BPE merges in [a, b] array form give the same ids as the \"a b\" string form")
func mergeArrayAndStringFormsAgree() throws {
    let path = TestSupport.fixture("TextEncoder/varied/tokenizer.json")
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    var model = json["model"] as! [String: Any]
    let merges = model["merges"] as! [Any]
    let asStrings = merges.map { entry -> String in
        if let pair = entry as? [String] { return pair.joined(separator: " ") }
        return entry as! String
    }
    model["merges"] = asStrings
    json["model"] = model
    let stringForm = try GemmaTokenizer(data: JSONSerialization.data(withJSONObject: json), path: "strings.json")
    let arrayForm = try GemmaTokenizer(contentsOf: path)
    for text in ["a red circle above a blue square", "café 東京 🙂 123", "  spaces  "] {
        #expect(try stringForm.encode(text) == arrayForm.encode(text))
    }
}

@Test("Metaspace pre-tokenizer and Prepend normalizer follow the tokenizers rules")
func metaspaceAndPrependComponents() throws {
    let words = PreTokenizer.metaspace(replacement: Array("▁".utf8), prependScheme: .always, split: true)
        .apply([Array("hello big  world".utf8)], isFirst: true)
    #expect(words.map { String(decoding: $0, as: UTF8.self) } == ["▁hello", "▁big", "▁", "▁world"])
    let first = PreTokenizer.metaspace(replacement: Array("▁".utf8), prependScheme: .first, split: false)
    #expect(String(decoding: first.apply([Array("a b".utf8)], isFirst: false)[0], as: UTF8.self) == "a▁b")
    let normalizer = Normalizer.sequence([.prepend(Array("▁".utf8)), .replace(pattern: [0x20], content: Array("▁".utf8))])
    #expect(String(decoding: normalizer.apply(Array("a b".utf8)), as: UTF8.self) == "▁a▁b")
    #expect(normalizer.apply([]).isEmpty)
    let decoder = TokenDecoder.sequence([.replace(pattern: Array("▁".utf8), content: [0x20]), .byteFallback, .fuse,
                                    .strip(content: [0x20], start: 1, stop: 0)])
    // A run of byte tokens is decoded as a whole: valid UTF-8 → text, invalid → one U+FFFD per byte.
    let tokens = ["▁hi", "<0xE2>", "<0x98>", "<0x83>", "▁", "<0xFF>", "<0x41>"].map { Array($0.utf8) }
    #expect(Array(decoder.apply(tokens)[0]) == Array("hi☃ \u{FFFD}\u{FFFD}".utf8))
}

@Test("malformed tokenizer.json gives an error naming the file")
func malformedFilesGiveClearErrors() throws {
    let directory = TestSupport.temporaryDirectory("tokenizer")
    defer { try? FileManager.default.removeItem(at: directory) }
    let good = try JSONSerialization.jsonObject(
        with: Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture("TextEncoder/sana-shapes/tokenizer.json")))) as! [String: Any]
    func variant(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        var json = good
        edit(&json)
        return try JSONSerialization.data(withJSONObject: json)
    }
    var badMergeModel = good["model"] as! [String: Any]
    badMergeModel["merges"] = ["▁ zzzq"]
    var regexSplit = good
    regexSplit["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "\\s+"], "behavior": "Isolated", "invert": false]
    let cases: [(String, Data)] = [
        ("truncated.json", Data("{\"model\": {\"vocab\"".utf8)),
        ("array.json", Data("[1, 2]".utf8)),
        ("nomodel.json", try variant { $0["model"] = nil }),
        ("badmerge.json", try variant { $0["model"] = badMergeModel }),
        ("wordpiece.json", try variant { $0["model"] = ["type": "WordPiece", "vocab": [:]] }),
        ("regex.json", try JSONSerialization.data(withJSONObject: regexSplit)),
        ("normalizer.json", try variant { $0["normalizer"] = ["type": "NFKC"] }),
    ]
    for (name, data) in cases {
        let file = directory.appendingPathComponent(name)
        try data.write(to: file)
        do {
            _ = try GemmaTokenizer(contentsOf: file.path)
            Issue.record("\(name) loaded without error")
        } catch let error as ModelFolderError {
            #expect(error.description.contains(file.path), "\(name): \(error)")
            #expect(error.category == .modelFile)
        }
    }
    let missing = directory.appendingPathComponent("nowhere/tokenizer.json").path
    #expect(throws: TokenizerFile.unreadable(path: missing, reason: "no such file")) {
        try GemmaTokenizer(contentsOf: missing)
    }
}
