import Foundation
import Safetensors
import Tensors

/// Errors reading a PyTorch checkpoint. All are model-file errors (exit 4) for the tools, and name the file.
public enum TorchCheckpointError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    /// Not a zip-format checkpoint (legacy pre-1.6 format, or not PyTorch at all), or truncated.
    case notACheckpoint(path: String, reason: String)
    /// The pickle asks for something other than tensor data: nothing was executed.
    case refused(path: String, reason: String)
    case malformed(path: String, reason: String)
    case unsupported(path: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read the checkpoint: \(r)"
        case .notACheckpoint(let p, let r): return "\(p): not a PyTorch checkpoint: \(r)"
        case .refused(let p, let r): return "\(p): refused: \(r)"
        case .malformed(let p, let r): return "\(p): corrupt PyTorch checkpoint: \(r)"
        case .unsupported(let p, let r): return "\(p): unsupported PyTorch checkpoint: \(r)"
        }
    }

    public var path: String {
        switch self {
        case .unreadable(let p, _), .notACheckpoint(let p, _), .refused(let p, _), .malformed(let p, _),
             .unsupported(let p, _):
            return p
        }
    }
}

/// The tensors of a `torch.save` checkpoint (zip format, PyTorch ≥ 1.6), read without Python and without
/// running anything from the file: the zip is mapped, `data.pkl` is interpreted by `RestrictedUnpickler`, and
/// each tensor is a view (offset, size, stride) into a `data/<key>` storage member. Nested dicts are flattened
/// to dotted names (`state_dict.blocks.0.attn.qkv.weight`); other values (epochs, strings) are ignored.
public final class TorchCheckpoint: @unchecked Sendable {
    public let path: String
    private let file: MappedFile
    private let storages: [String: ZipArchive.Entry]
    private let records: [String: TensorRecord]

    public init(path: String) throws(TorchCheckpointError) {
        self.path = path
        file = try MappedFile(path: path)
        let zip = try ZipArchive(file, path: path)
        let pickles = zip.entries.keys.filter { $0.hasSuffix("/data.pkl") || $0 == "data.pkl" }
        guard pickles.count == 1, let pickleName = pickles.first, let pickle = zip.entries[pickleName] else {
            throw .notACheckpoint(path: path, reason: "a zip archive without exactly one data.pkl (\(pickles.count))")
        }
        let prefix = String(pickleName.dropLast("data.pkl".count))
        if let order = zip.entries[prefix + "byteorder"] {
            let text = String(decoding: UnsafeRawBufferPointer(start: file.base + order.dataOffset, count: order.size),
                              as: UTF8.self)
            guard text.trimmingCharacters(in: .whitespacesAndNewlines) == "little" else {
                throw .unsupported(path: path, reason: "byte order '\(text)'; only little-endian checkpoints are read")
            }
        }
        var storages: [String: ZipArchive.Entry] = [:]
        for (name, entry) in zip.entries where name.hasPrefix(prefix + "data/") {
            storages[String(name.dropFirst(prefix.count + 5))] = entry
        }
        self.storages = storages
        var unpickler = RestrictedUnpickler(
            data: UnsafeRawBufferPointer(start: file.base + pickle.dataOffset, count: pickle.size), path: path,
            storageSizes: storages.mapValues(\.size))
        var records: [String: TensorRecord] = [:]
        Self.flatten(try unpickler.load(), prefix: "", into: &records)
        self.records = records
    }

    private static func flatten(_ v: PickleValue, prefix: String, into out: inout [String: TensorRecord]) {
        func join(_ key: String) -> String { prefix.isEmpty ? key : prefix + "." + key }
        switch v {
        case .tensor(let t): out[prefix] = t
        case .dict(let d):
            for (k, value) in d.items {
                switch k {
                case .string(let s): flatten(value, prefix: join(s), into: &out)
                case .int(let i): flatten(value, prefix: join(String(i)), into: &out)
                default: continue
                }
            }
        case .list(let l): for (i, value) in l.items.enumerated() { flatten(value, prefix: join(String(i)), into: &out) }
        case .tuple(let t): for (i, value) in t.enumerated() { flatten(value, prefix: join(String(i)), into: &out) }
        default: return
        }
    }

    /// Tensor names, sorted.
    public var names: [String] { records.keys.sorted() }

    public func contains(_ name: String) -> Bool { records[name] != nil }

    /// Dtype and shape of `name` (its data offsets describe the contiguous bytes `rawBytes` returns).
    public func info(_ name: String) -> TensorInfo? {
        guard let r = records[name] else { return nil }
        let count = r.shape.reduce(1, *)
        return TensorInfo(name: name, dtype: r.storage.dtype, shape: r.shape, dataOffsets: 0..<(count * r.storage.dtype.size))
    }

    /// The tensor's elements in row-major order in their stored dtype: borrowed from the mapping when the view is
    /// contiguous, else gathered into a new buffer (a transposed or sliced view, or one of several views of one
    /// storage).
    public func rawBytes(_ name: String) -> RawTensorBytes? {
        guard let r = records[name], let entry = storages[r.storage.key], let info = info(name) else { return nil }
        let size = r.storage.dtype.size
        let storage = file.base + entry.dataOffset
        let count = info.elementCount
        var contiguous = true, expected = 1
        for (n, st) in zip(r.shape, r.strides).reversed() where n != 1 {
            if st != expected { contiguous = false; break }
            expected *= n
        }
        if contiguous || count == 0 {
            return RawTensorBytes(info: info, bytes: UnsafeRawBufferPointer(start: storage + r.offset * size,
                                                                           count: count * size), owner: file)
        }
        let buffer = OwnedBytes(count: count * size)
        var index = [Int](repeating: 0, count: r.shape.count)
        for i in 0..<count {
            var element = r.offset
            for d in 0..<index.count { element += index[d] * r.strides[d] }
            buffer.pointer.advanced(by: i * size).copyMemory(from: storage + element * size, byteCount: size)
            var d = index.count - 1
            while d >= 0 {
                index[d] += 1
                if index[d] < r.shape[d] { break }
                index[d] = 0
                d -= 1
            }
        }
        return RawTensorBytes(info: info, bytes: UnsafeRawBufferPointer(start: buffer.pointer, count: count * size),
                              owner: buffer)
    }

    /// The tensor decoded to fp32.
    public func tensor(_ name: String) -> Tensor? { rawBytes(name)?.decoded() }
}

/// A heap buffer owned by the `RawTensorBytes` that points into it.
final class OwnedBytes: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(count: Int) { pointer = .allocate(byteCount: max(count, 1), alignment: 64) }
    deinit { pointer.deallocate() }
}
