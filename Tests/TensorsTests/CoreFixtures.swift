import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// Access to the core-kernel fixtures written by tools/reference/kernels_core.py
/// (`Tests/Fixtures/Kernels/core_<family>.safetensors`, case parameters in the "cases" metadata).
enum CoreFixtures {
    /// Parity bound from the project rules: max|Δ| / max|ref|.
    static let tolerance: Float = 1e-5

    struct Case {
        let name: String
        let params: [String: Any]

        func int(_ key: String) -> Int? { params[key] as? Int }
        func bool(_ key: String) -> Bool { params[key] as? Bool ?? false }
        func float(_ key: String) -> Float? { (params[key] as? Double).map(Float.init) ?? (params[key] as? Int).map(Float.init) }
        func string(_ key: String) -> String? { params[key] as? String }
        func pair(_ key: String) -> (Int, Int)? {
            guard let a = params[key] as? [Int], a.count == 2 else { return nil }
            return (a[0], a[1])
        }
    }

    /// Opens `core_<family>.safetensors` and decodes its case list.
    static func load(_ family: String) throws -> (SafetensorsFile, [Case]) {
        let file = try TestSupport.loadFixture("Kernels/core_\(family).safetensors")
        let text = try #require(file.metadata["cases"], "fixture \(file.path) has no cases metadata")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[String: Any]],
                                "cases metadata of \(file.path) is not a list of objects")
        let cases = try json.map { entry in
            Case(name: try #require(entry["name"] as? String, "a case in \(file.path) has no name"), params: entry)
        }
        return (file, cases)
    }

    /// A tensor of a case (`<case>.<name>`), or nil when the fixture does not hold it (optional operands).
    static func optional(_ file: SafetensorsFile, _ name: String) throws -> Tensor? {
        file.tensors[name] == nil ? nil : try file.tensor(name)
    }
}

/// Deterministic pseudo-random tensors for the larger self-consistency tests (SplitMix64 → uniform [-1, 1)).
struct SeededValues {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }

    mutating func tensor(_ shape: [Int], scale: Float = 1, offset: Float = 0) -> Tensor {
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n { values[i] = next() * scale + offset }
        return Tensor(shape: shape, values: values)
    }
}
