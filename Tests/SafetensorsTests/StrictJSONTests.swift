import Foundation
import Safetensors
import SanaGraphKit
import Testing
import TestSupport

/// The one JSON reader: what it refuses that Foundation's readers let through, and how a Decodable config reads.
@Suite struct StrictJSONTests {
    struct Config: Decodable, Equatable {
        var layers: Int
        var eps: Double
        var scale: Float?
        var name: String?
        var channels: [UInt16]
    }

    func error(_ text: String) -> String? {
        do {
            _ = try StrictJSON.decode(Config.self, from: Array(text.utf8))
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func decodesIntegersAndNumbersApart() throws {
        let c = try StrictJSON.decode(Config.self, from: Array(#"{"layers": 2, "eps": 1, "scale": 0.5, "name": null, "channels": [3, 65535]}"#.utf8))
        #expect(c == Config(layers: 2, eps: 1, scale: 0.5, name: nil, channels: [3, 65535]))
    }

    @Test func refusesWhatFoundationAccepts() {
        #expect(error(#"{"layers": 2.0, "eps": 1, "channels": []}"#) == "'layers' must be an integer, not a non-integer number")
        #expect(error(#"{"layers": true, "eps": 1, "channels": []}"#) == "'layers' must be an integer, not a boolean")
        #expect(error(#"{"layers": 1, "eps": 1, "channels": [65536]}"#) == "'channels[0]' = 65536 is out of range (0…65535)")
        #expect(error(#"{"layers": 1, "eps": 1, "scale": 1e39, "channels": []}"#) == "'scale' = 1e+39 does not fit a Float")
        #expect(error(#"{"layers": 1, "layers": 2, "eps": 1, "channels": []}"#) == "invalid JSON: duplicate key \"layers\" at byte 14")
        #expect(error(#"{"eps": 1, "channels": []}"#) == "'layers' is missing")
        #expect(error(#"{"layers": 99999999999999999999, "eps": 1, "channels": []}"#)?.contains("out of range") == true)
    }

    @Test func limitsDepthAndSize() {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: StrictJSONError.self) { try JSONValue.parse(Array(deep.utf8)) }
        #expect(throws: StrictJSONError("the JSON text is 12 bytes, over the limit of 8")) {
            try JSONValue.parse(Array(#"{"a": "bcd"}"#.utf8), maxBytes: 8)
        }
    }

    @Test func nonFiniteLiteralsOnlyWhenAsked() throws {
        let text = Array(#"{"lambda_min_clipped": -Infinity}"#.utf8)
        #expect(throws: StrictJSONError.self) { try JSONValue.parse(text) }
        #expect(try JSONValue.parse(text, nonFiniteLiterals: true)["lambda_min_clipped"]?.double == -.infinity)
    }

    @Test func modelFolderConfigsGoThroughIt() throws {
        let dir = TestSupport.temporaryDirectory("strict-json")
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(#"{"layers": 1, "eps": 1, "channels": [], "layers": 3}"#.utf8).write(to: dir.appendingPathComponent("config.json"))
        #expect {
            _ = try ModelFolder<Config>(path: dir.path, role: "x/", modelName: "X") { _, _ in [] }
        } throws: { error in
            guard case .invalidConfig(let path, let message)? = error as? ModelFolderError else { return false }
            return path.hasSuffix("config.json") && message.contains("duplicate key \"layers\"")
        }
    }
}
