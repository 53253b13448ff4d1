import Crypto
import Foundation
import Safetensors
import Tensors

/// The on-disk form of one node's outputs: a safetensors file whose tensors are the tensor-valued outputs (F32,
/// exact) and whose `__metadata__` says which output each tensor belongs to, carries scalar outputs, the cache
/// key, and a SHA-256 checksum over everything else in the file.
///
/// Tensor names: `<output>` for Tensor, Latent and Image outputs; `<output>.embeddings` and `<output>.mask` for a
/// Conditioning. Metadata keys:
/// - `sanagraph.cache`: blob format version (`1`);
/// - `sanagraph.key`: the entry's `CacheKey` (a blob under another name is rejected);
/// - `sanagraph.node`: `type@version` of the producing node (for humans);
/// - `sanagraph.outputs`: JSON `{"<output>": {"kind": "latent"}, "<n>": {"kind": "int", "value": "3"}, …}`;
/// - `sanagraph.sha256`: SHA-256 over a length-prefixed encoding of every other metadata entry and, per tensor
///   (sorted by name), its name, dtype, shape and data bytes. A flipped bit anywhere that matters — data, shape,
///   dtype, mapping — changes it; a truncated file fails the safetensors header check before that.
enum CacheBlob {
    static let formatVersion = "1"
    static let checksumKey = "sanagraph.sha256"

    /// Why a blob was rejected.
    struct Invalid: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Whether every value can be written (models and other in-process objects can't).
    static func canEncode(_ outputs: NodeOutputs) -> Bool {
        outputs.values.allSatisfy { $0.socketType.isDiskCacheable }
    }

    /// Tensors and metadata (checksum included) for `outputs`, or nil when some value can't be stored.
    static func encode(_ outputs: NodeOutputs, key: CacheKey, node: String)
        -> (tensors: [String: Tensor], metadata: [String: String])? {
        var tensors: [String: Tensor] = [:]
        var manifest: [String: [String: String]] = [:]
        for (name, value) in outputs {
            switch value {
            case .tensor(let t): tensors[name] = t; manifest[name] = ["kind": "tensor"]
            case .latent(let t): tensors[name] = t; manifest[name] = ["kind": "latent"]
            case .image(let t): tensors[name] = t; manifest[name] = ["kind": "image"]
            case .conditioning(let c):
                tensors[name + ".embeddings"] = c.embeddings
                tensors[name + ".mask"] = c.mask
                manifest[name] = ["kind": "conditioning"]
            case .int(let v): manifest[name] = ["kind": "int", "value": String(v)]
            case .float(let v): manifest[name] = ["kind": "float", "value": String(v.bitPattern, radix: 16)]
            case .bool(let v): manifest[name] = ["kind": "bool", "value": v ? "1" : "0"]
            case .string(let v): manifest[name] = ["kind": "string", "value": v]
            case .path(let v): manifest[name] = ["kind": "path", "value": v]
            case .textEncoder, .denoiser, .autoencoder, .upscaler: return nil
            }
        }
        guard let json = try? JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys]) else {
            return nil
        }
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

    /// Reads and checks a blob: header, key, checksum, manifest. Throws `Invalid` (or a `SafetensorsError`) on
    /// any problem; never returns partial outputs.
    static func decode(path: String, key: CacheKey) throws -> NodeOutputs {
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
              let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)),
              let manifest = object as? [String: [String: String]] else {
            throw Invalid("unreadable output manifest")
        }
        var outputs: NodeOutputs = [:]
        var used = 0
        func tensor(_ name: String) throws -> Tensor {
            guard file.tensors[name] != nil else { throw Invalid("tensor '\(name)' is missing") }
            used += 1
            return try file.tensor(name)
        }
        for (name, entry) in manifest {
            let value = entry["value"] ?? ""
            switch entry["kind"] {
            case "tensor": outputs[name] = .tensor(try tensor(name))
            case "latent": outputs[name] = .latent(try tensor(name))
            case "image": outputs[name] = .image(try tensor(name))
            case "conditioning":
                outputs[name] = .conditioning(Conditioning(embeddings: try tensor(name + ".embeddings"),
                                                           mask: try tensor(name + ".mask")))
            case "int":
                guard let v = Int(value) else { throw Invalid("output '\(name)': bad int") }
                outputs[name] = .int(v)
            case "float":
                guard let bits = UInt64(value, radix: 16) else { throw Invalid("output '\(name)': bad float") }
                outputs[name] = .float(Double(bitPattern: bits))
            case "bool": outputs[name] = .bool(value == "1")
            case "string": outputs[name] = .string(value)
            case "path": outputs[name] = .path(value)
            default: throw Invalid("output '\(name)' has an unknown kind")
            }
        }
        guard used == file.tensors.count else { throw Invalid("tensors that no output claims") }
        return outputs
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
