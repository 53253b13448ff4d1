import SanaGraphKit
import Crypto
import Foundation

/// The content address of one node's outputs: a SHA-256 over everything that determines them.
///
/// It is a Merkle key: a node's key covers its inputs' keys, which cover theirs, so an unchanged prefix of
/// a graph keeps its keys (and cache entries) when only something downstream changes.
public struct CacheKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The digest as 64 lowercase hex digits.
    public let hex: String

    public init(hex: String) { self.hex = hex }

    /// The first 12 hex digits, for humans.
    public var short: String { String(hex.prefix(12)) }

    public var description: String { hex }

    public static func < (a: CacheKey, b: CacheKey) -> Bool { a.hex < b.hex }

    /// The key of a node from its parts.
    ///
    /// - Parameters:
    ///   - typeName: the node type's stable name.
    ///   - version: the node type's version (bumping it invalidates every entry of that type).
    ///   - params: resolved params; entered sorted by name, each tagged with its kind.
    ///   - inputs: input socket name -> (key of the producing node, output name of that node).
    ///   - fingerprint: what the node read from outside the graph (e.g. a weights digest), if anything.
    public static func compute(typeName: String, version: Int, params: ParamValues,
                               inputs: [String: (key: CacheKey, output: String)], fingerprint: String?) -> CacheKey {
        var encoder = CanonicalEncoder()
        encoder.field("sanagraph-node-key/1")
        encoder.field(typeName)
        encoder.field(String(version))
        encoder.field("params")
        encoder.field(String(params.values.count))
        for name in params.values.keys.sorted() {
            encoder.field(name)
            encoder.param(params.values[name]!)
        }
        encoder.field("inputs")
        encoder.field(String(inputs.count))
        for name in inputs.keys.sorted() {
            let input = inputs[name]!
            encoder.field(name)
            encoder.field(input.key.hex)
            encoder.field(input.output)
        }
        if let fingerprint {
            encoder.field("fingerprint")
            encoder.field(fingerprint)
        } else {
            encoder.field("no-fingerprint")
        }
        let digest = SHA256.hash(data: encoder.bytes)
        return CacheKey(hex: digest.map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined())
    }
}

/// An unambiguous byte encoding: every field is length-prefixed, so no two different field lists
/// encode to the same bytes ("ab","c" vs "a","bc").
private struct CanonicalEncoder {
    var bytes: [UInt8] = []

    mutating func field(_ s: String) {
        let utf8 = Array(s.utf8)
        var n = UInt64(utf8.count).littleEndian
        withUnsafeBytes(of: &n) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: utf8)
    }

    /// Typed: `int 3`, `float 3.0` and `string "3"` are different keys. Floats are entered by bit
    /// pattern so the key never depends on decimal formatting.
    mutating func param(_ value: ParamValue) {
        switch value {
        case .int(let v):
            field("i")
            field(String(v))
        case .float(let v):
            field("f")
            // -0.0 and 0.0 behave the same in every node; normalise so they share a key.
            field(String((v == 0 ? 0.0 : v).bitPattern, radix: 16))
        case .string(let v):
            field("s")
            field(v)
        case .bool(let v):
            field("b")
            field(v ? "1" : "0")
        }
    }
}
