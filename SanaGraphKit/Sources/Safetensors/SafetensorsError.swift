import Tensors

/// Errors reading or writing safetensors files and checkpoints. Every message names the file, and the tensor
/// when one is involved, says what is wrong, and (where it helps) what to do.
public enum SafetensorsError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened or mapped (missing, a directory, permission denied …).
    case unreadable(path: String, reason: String)
    /// The 8-byte length prefix or the JSON header is unusable (truncated, too long, not UTF-8, not an object).
    case invalidHeader(path: String, reason: String)
    /// One header entry is inconsistent (unknown dtype, bad shape, size mismatch, offsets out of range or overlapping).
    case invalidTensor(path: String, tensor: String, reason: String)
    /// The file or checkpoint has no tensor of that name.
    case tensorNotFound(path: String, tensor: String, available: [String])
    /// The tensor exists but its dtype has no fp32 conversion here (e.g. F64, I8, F8_E4M3).
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// Writing failed; an existing file at `path` is left as it was.
    case writeFailed(path: String, reason: String)
    /// A `*.safetensors.index.json` is malformed, or a checkpoint directory cannot be resolved.
    case invalidIndex(path: String, reason: String)
    /// The index maps `tensor` to a shard file that does not exist.
    case missingShard(index: String, shard: String, tensor: String)
    /// The index maps `tensor` to `shard`, but that shard does not contain it.
    case tensorMissingFromShard(index: String, shard: String, tensor: String)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): return "\(p): cannot read safetensors file: \(r)"
        case .invalidHeader(let p, let r): return "\(p): corrupt safetensors header: \(r)"
        case .invalidTensor(let p, let t, let r): return "\(p): corrupt safetensors header: tensor '\(t)': \(r)"
        case .tensorNotFound(let p, let t, let a):
            let list = a.prefix(8).joined(separator: ", ") + (a.count > 8 ? ", …" : "")
            return "\(p): no tensor named '\(t)' (the file has \(a.count)\(a.isEmpty ? "" : ": " + list))"
        case .unsupportedDType(let p, let t, let d):
            return "\(p): tensor '\(t)' has dtype \(d), which SanaGraph cannot convert "
                + "(supported: \(DTypeNames.supported)); convert the checkpoint to F32, F16 or BF16"
        case .writeFailed(let p, let r): return "\(p): cannot write safetensors file: \(r)"
        case .invalidIndex(let p, let r): return "\(p): invalid safetensors checkpoint: \(r)"
        case .missingShard(let i, let s, let t):
            return "\(i): shard '\(s)' (holding tensor '\(t)') does not exist; the download is incomplete"
        case .tensorMissingFromShard(let i, let s, let t):
            return "\(i): the index maps tensor '\(t)' to shard '\(s)', but that shard has no such tensor; "
                + "the index and shards do not belong together"
        }
    }

    /// The file the error is about.
    public var path: String {
        switch self {
        case .unreadable(let p, _), .invalidHeader(let p, _), .invalidTensor(let p, _, _), .tensorNotFound(let p, _, _),
             .unsupportedDType(let p, _, _), .writeFailed(let p, _), .invalidIndex(let p, _): return p
        case .missingShard(let i, _, _), .tensorMissingFromShard(let i, _, _): return i
        }
    }

    /// The tensor the error is about, if any.
    public var tensor: String? {
        switch self {
        case .invalidTensor(_, let t, _), .tensorNotFound(_, let t, _), .unsupportedDType(_, let t, _),
             .missingShard(_, _, let t), .tensorMissingFromShard(_, _, let t): return t
        default: return nil
        }
    }
}

/// Dtype names of the safetensors format.
enum DTypeNames {
    static var supported: String { DType.allCases.map(\.rawValue).joined(separator: ", ") }
    /// Dtypes of the format that this project does not convert, with their element sizes in bytes.
    static let unsupportedSizes: [String: Int] = [
        "F64": 8, "I8": 1, "I16": 2, "U16": 2, "U32": 4, "U64": 8,
        "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "C64": 8,
    ]
}
