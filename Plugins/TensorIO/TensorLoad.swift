import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// `tensor.load`: reads one tensor, converted to fp32, from a safetensors file, a sharded checkpoint's
/// `*.safetensors.index.json`, or a model folder.
public struct TensorLoad: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "tensor.load", version: 1,
        summary: "Load one tensor (as fp32) from a .safetensors file, a *.safetensors.index.json or a model folder",
        outputs: [OutputSpec("tensor", .tensor, doc: "the tensor, converted to fp32 whatever its stored dtype")],
        params: [
            ParamSpec("path", .path, doc: "a .safetensors file, a *.safetensors.index.json, or a folder holding one"),
            ParamSpec("name", .string, doc: "tensor name inside the file, e.g. 'proj_out.weight'"),
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        var problems: [String] = []
        if params.optionalString("path") == nil { problems.append("path must not be empty") }
        if params.optionalString("name") == nil { problems.append("name must not be empty") }
        return problems
    }

    /// The fast fingerprint (path, size, mtime, inode) of every file the checkpoint consists of.
    public func fingerprint(params: ParamValues) throws -> String? {
        let path = params.string("path")
        do {
            return try SafetensorsCheckpoint(path: path).fingerprint()
        } catch {
            throw TensorIOErrors.modelFile(error, requested: path)
        }
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = params.string("path"), name = params.string("name")
        do {
            let checkpoint = try SafetensorsCheckpoint(path: path)
            let tensor = try checkpoint.tensor(name)
            context.logger.debug("loaded '\(name)' \(tensor.shape) from \(path)")
            return ["tensor": .tensor(tensor)]
        } catch {
            throw TensorIOErrors.modelFile(error, requested: path)
        }
    }
}

/// Maps Safetensors errors to the runtime's categories.
enum TensorIOErrors {
    /// A missing or corrupt input file: `NodeError.modelFile` (exit 4), with a did-you-mean for tensor names.
    static func modelFile(_ error: SafetensorsError, requested: String) -> NodeError {
        switch error {
        case .tensorNotFound(let path, let tensor, let available):
            var message = "no tensor named '\(tensor)'"
            if let close = Suggestions.closest(to: tensor, in: available) {
                message += " (did you mean '\(close)'?)"
            } else if available.isEmpty {
                message += " (the file holds no tensors)"
            } else {
                let shown = available.prefix(10).joined(separator: ", ")
                message += " (the file has \(available.count): \(shown)\(available.count > 10 ? ", …" : ""))"
            }
            return .modelFile(path: path, message: message)
        case .unreadable(let path, let reason) where reason == "no such file":
            return .modelFile(path: path, message: "no such file; check the 'path' param")
        default:
            return .modelFile(path: error.path, message: stripPath(error))
        }
    }

    /// A failure writing the output file: `NodeError.io` (exit 6).
    static func io(_ error: SafetensorsError, path: String) -> NodeError {
        .io(path: path, message: stripPath(error))
    }

    /// The error text without its leading "path: ", which `NodeError` adds back.
    static func stripPath(_ error: SafetensorsError) -> String {
        let text = error.description
        let prefix = error.path + ": "
        return text.hasPrefix(prefix) ? String(text.dropFirst(prefix.count)) : text
    }
}
