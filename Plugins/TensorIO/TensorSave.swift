import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// `tensor.save`: writes a Tensor, Latent, Image or Conditioning into a safetensors file under `name`.
///
/// An existing file keeps its other tensors (copied byte for byte, whatever their dtype) and metadata; the
/// named tensor is added or replaced. The file is replaced atomically, so a failure leaves the old one intact.
public struct TensorSave: Node {
    public static let dtypes = ["F32", "F16", "BF16"]

    public static let descriptor = NodeDescriptor(
        typeName: "tensor.save", version: 1,
        summary: "Save a Tensor, Latent, Image or Conditioning into a .safetensors file (atomic; keeps other tensors)",
        inputs: [InputSpec("tensor", accepts: [.tensor, .latent, .image, .conditioning],
                           doc: "an Image is stored as [B, 3, H, W] in [0, 1]; a Conditioning as NAME.embeddings "
                           + "and NAME.mask")],
        outputs: [OutputSpec("path", .path, doc: "the written file")],
        params: [
            ParamSpec("path", .path, doc: "output .safetensors file; missing folders are created"),
            ParamSpec("name", .string, doc: "tensor name to add or replace in the file"),
            ParamSpec("dtype", .choice(dtypes), default: .string("F32"),
                      doc: "stored element type (F16/BF16 round to nearest even, as PyTorch)"),
        ],
        hasSideEffects: true, diskCacheable: false)

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        var problems: [String] = []
        if params.optionalString("path") == nil { problems.append("path must not be empty") }
        switch params.optionalString("name") {
        case nil: problems.append("name must not be empty")
        case "__metadata__"?: problems.append("name '__metadata__' is reserved by the safetensors format")
        default: break
        }
        return problems
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = params.string("path"), name = params.string("name")
        let dtype = DType(rawValue: params.optionalString("dtype") ?? "F32") ?? .f32
        var new: [String: Tensor] = [:]
        // A value stores as its tensor parts: a tensor as `name`, a Conditioning as `name.embeddings`/`name.mask`.
        if let value = inputs["tensor"], let parts = value.type.encodeForCache(value), !parts.tensors.isEmpty,
           parts.fields.isEmpty {
            for (part, t) in parts.tensors { new[part.isEmpty ? name : name + "." + part] = t }
        } else {
            new[name] = try inputs.tensor("tensor")
        }
        try context.checkCancelled()
        try Self.save(new, dtype: dtype, to: path)
        context.logger.info("saved \(new.keys.sorted().joined(separator: ", ")) to \(path)")
        return ["path": .path(path)]
    }

    /// Adds or replaces `tensors` in the file at `path` (created with its folders if missing), atomically.
    /// Throws `NodeError.io` naming the path.
    public static func save(_ tensors: [String: Tensor], dtype: DType, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            } catch {
                throw NodeError.io(path: path, message: "cannot create the folder '\(dir)': "
                                   + "\((error as NSError).localizedDescription)")
            }
        }
        var entries: [String: SafetensorsWriter.Entry] = [:]
        var metadata: [String: String] = [:]
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            // Keep what the file already holds; refuse to clobber something that is not safetensors.
            let existing: SafetensorsFile
            do { existing = try SafetensorsFile(path: path) } catch {
                throw NodeError.io(path: path, message: "the file exists but is not a valid safetensors file "
                                   + "(\(TensorIOErrors.stripPath(error))); remove it or choose another path")
            }
            let foreign = existing.unsupportedTensors.keys.filter { tensors[$0] == nil }.sorted()
            if !foreign.isEmpty {
                throw NodeError.io(path: path, message: "the file holds tensors in dtypes SanaGraph cannot copy "
                                   + "(\(foreign.prefix(5).joined(separator: ", "))); choose another path")
            }
            for other in existing.names where tensors[other] == nil {
                do { entries[other] = .raw(try existing.rawBytes(other)) } catch {
                    throw TensorIOErrors.io(error, path: path)
                }
            }
            metadata = existing.metadata
        }
        for (name, t) in tensors { entries[name] = .tensor(t, dtype) }
        do {
            try SafetensorsWriter.write(entries: entries, metadata: metadata, to: path)
        } catch {
            throw TensorIOErrors.io(error, path: path)
        }
    }
}
