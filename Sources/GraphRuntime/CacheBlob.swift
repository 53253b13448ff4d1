import Crypto
import Foundation
import Safetensors
import SanaGraphKit
import Tensors

/// The on-disk form of one node's outputs: a safetensors file whose tensors are the tensor parts of the outputs (F32,
/// exact) and whose `__metadata__` says which output each part belongs to, carries the string fields, the cache
/// key, and a SHA-256 checksum over everything else in the file.
///
/// Each output is stored through its socket type's codec (`CacheableValue.cacheParts`). Tensor names:
/// `<output>` for a value that is one tensor (part name ""), `<output>.<part>` otherwise (a Conditioning's
/// `embeddings` and `mask`). Metadata keys:
/// - `sanagraph.cache`: blob format version (`2`);
/// - `sanagraph.key`: the entry's `CacheKey` (a blob under another name is rejected);
/// - `sanagraph.node`: `type@version` of the producing node (for humans);
/// - `sanagraph.outputs`: JSON `{"<output>": {"type": "Latent", "tensors": [""], "fields": {}}, …}`;
/// - `sanagraph.sha256`: SHA-256 over a length-prefixed encoding of every other metadata entry and, per tensor
///   (sorted by name), its name, dtype, shape and data bytes. A flipped bit anywhere that matters — data, shape,
///   dtype, mapping — changes it; a truncated file fails the safetensors header check before that.
enum CacheBlob {
    static let formatVersion = "2"
    static let checksumKey = "sanagraph.sha256"

    /// Why a blob was rejected.
    struct Invalid: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// One output's entry in `sanagraph.outputs`.
    private struct OutputEntry: Codable {
        var type: String
        var tensors: [String]
        var fields: [String: String]
    }

    private static func tensorName(output: String, part: String) -> String {
        part.isEmpty ? output : output + "." + part
    }

    /// Whether every value can be written (models and other in-process objects can't).
    static func canEncode(_ outputs: NodeOutputs) -> Bool {
        outputs.values.allSatisfy { $0.type.isDiskCacheable }
    }

    /// Tensors and metadata (checksum included) for `outputs`, or nil when some value can't be stored.
    static func encode(_ outputs: NodeOutputs, key: CacheKey, node: String)
        -> (tensors: [String: Tensor], metadata: [String: String])? {
        var tensors: [String: Tensor] = [:]
        var manifest: [String: OutputEntry] = [:]
        for (name, value) in outputs {
            guard let parts = value.type.encodeForCache(value) else { return nil }
            for (part, t) in parts.tensors { tensors[tensorName(output: name, part: part)] = t }
            manifest[name] = OutputEntry(type: value.type.name, tensors: parts.tensors.keys.sorted(), fields: parts.fields)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard tensors.count == manifest.values.reduce(0, { $0 + $1.tensors.count }),
              let json = try? encoder.encode(manifest) else { return nil }
        var metadata = [
            "sanagraph.cache": formatVersion,
            "sanagraph.key": key.hex,
            "sanagraph.node": node,
            "sanagraph.outputs": String(decoding: json, as: UTF8.self),
        ]
        var hasher = ChecksumHasher(metadata: metadata, tensorCount: tensors.count)
        for name in tensors.keys.sorted() {
            let t = tensors[name]!
            t.withUnsafeBufferPointer { hasher.tensor(name: name, dtype: DType.f32.rawValue, shape: t.shape,
                                                      bytes: UnsafeRawBufferPointer($0)) }
        }
        metadata[checksumKey] = hasher.finish()
        return (tensors, metadata)
    }

    /// Reads and checks a blob: header, key, checksum, manifest. Each output is rebuilt through the socket type
    /// `info` declares for it. Throws `Invalid` (or a `SafetensorsError`) on any problem; never returns partial
    /// outputs.
    static func decode(path: String, key: CacheKey, info: NodeDescriptor) throws -> NodeOutputs {
        let (file, manifest) = try open(path: path, key: key)
        var outputs: NodeOutputs = [:]
        for (name, entry) in manifest {
            guard let type = info.outputs.first(where: { $0.name == name })?.type, type.name == entry.type else {
                throw Invalid("output '\(name)' (\(entry.type)) is not an output of \(info.typeName)@\(info.version)")
            }
            var parts = ValueParts(fields: entry.fields)
            for part in entry.tensors { parts.tensors[part] = try file.tensor(tensorName(output: name, part: part)) }
            do { outputs[name] = try type.decodeFromCache(parts) } catch {
                throw Invalid("output '\(name)': \(error)")
            }
        }
        return outputs
    }

    /// Checks a blob's integrity (header, key, checksum, manifest, every tensor claimed by one output) without
    /// knowing the node that wrote it (`cache verify`).
    static func verify(path: String, key: CacheKey) throws {
        _ = try open(path: path, key: key)
    }

    private static func open(path: String, key: CacheKey) throws -> (SafetensorsFile, [String: OutputEntry]) {
        let file = try SafetensorsFile(path: path)
        let metadata = file.metadata
        guard metadata["sanagraph.cache"] == formatVersion else {
            throw Invalid("not a SanaGraph cache blob of format \(formatVersion)")
        }
        guard metadata["sanagraph.key"] == key.hex else {
            throw Invalid("the blob belongs to key \(metadata["sanagraph.key"] ?? "?"), not \(key.hex)")
        }
        guard let stored = metadata[checksumKey] else { throw Invalid("no checksum") }
        if !file.unsupportedTensors.isEmpty { throw Invalid("unexpected tensor dtypes") }
        var rest = metadata
        rest[checksumKey] = nil
        var hasher = ChecksumHasher(metadata: rest, tensorCount: file.tensors.count)
        for name in file.names {
            let raw = try file.rawBytes(name)
            hasher.tensor(name: name, dtype: raw.dtype.rawValue, shape: raw.shape, bytes: raw.bytes)
        }
        let actual = hasher.finish()
        guard actual == stored else { throw Invalid("checksum mismatch (stored \(stored.prefix(12))…, computed \(actual.prefix(12))…)") }

        guard let text = metadata["sanagraph.outputs"],
              let manifest = try? StrictJSON.decode([String: OutputEntry].self, from: Array(text.utf8)) else {
            throw Invalid("unreadable output manifest")
        }
        var claimed = 0
        for (name, entry) in manifest {
            for part in entry.tensors {
                let tensorName = tensorName(output: name, part: part)
                guard file.tensors[tensorName] != nil else { throw Invalid("tensor '\(tensorName)' is missing") }
                claimed += 1
            }
        }
        guard claimed == file.tensors.count else { throw Invalid("tensors that no output claims") }
        return (file, manifest)
    }
}

/// SHA-256 over length-prefixed fields, so no two different blobs share a byte stream.
private struct ChecksumHasher {
    private var sha = SHA256()

    init(metadata: [String: String], tensorCount: Int) {
        field("sanagraph-cache-blob/1")
        field(String(metadata.count))
        for key in metadata.keys.sorted() {
            field(key)
            field(metadata[key]!)
        }
        field(String(tensorCount))
    }

    mutating func tensor(name: String, dtype: String, shape: [Int], bytes: UnsafeRawBufferPointer) {
        field(name)
        field(dtype)
        field(shape.map(String.init).joined(separator: ","))
        field(String(bytes.count))
        sha.update(bufferPointer: bytes)
    }

    private mutating func field(_ s: String) {
        let utf8 = Array(s.utf8)
        var n = UInt64(utf8.count).littleEndian
        withUnsafeBytes(of: &n) { sha.update(bufferPointer: $0) }
        utf8.withUnsafeBytes { sha.update(bufferPointer: $0) }
    }

    func finish() -> String { sha.finalize().map { String(format: "%02x", $0) }.joined() }
}
