import SanaGraphKit
import DiffusionModels

/// Why a `tokenizer.json` could not be loaded or a text could not be tokenized. Every case names the file.
public enum TokenizerError: CategorizedError, Equatable {
    /// The file is missing or unreadable.
    case unreadable(path: String, reason: String)
    /// The file is not valid JSON, or its top level is not an object.
    case invalidJSON(path: String, reason: String)
    /// A field is missing or has the wrong type / an impossible value.
    case invalidField(path: String, field: String, message: String)
    /// A component (normalizer, pre-tokenizer, model, decoder, post-processor) of a type this reader doesn't implement.
    case unsupported(path: String, component: String, type: String)
    /// A character has no piece, no byte-fallback pieces and the model declares no unknown token.
    case noUnknownToken(path: String)

    public var category: ErrorCategory { .modelFile }

    public var description: String {
        switch self {
        case let .unreadable(path, reason):
            return "tokenizer file \(path) can't be read (\(reason)); point the tokenizer param at a folder holding tokenizer.json"
        case let .invalidJSON(path, reason):
            return "tokenizer file \(path) is not valid JSON (\(reason)); re-export it with transformers' save_pretrained"
        case let .invalidField(path, field, message):
            return "tokenizer file \(path): field '\(field)' \(message); re-export it with transformers' save_pretrained"
        case let .unsupported(path, component, type):
            return "tokenizer file \(path): \(component) of type '\(type)' is not supported "
                + "(supported: BPE model, Replace/Prepend/Sequence normalizers, Split/Metaspace pre-tokenizers, "
                + "Replace/ByteFallback/Fuse/Strip/Metaspace decoders, TemplateProcessing)"
        case let .noUnknownToken(path):
            return "tokenizer file \(path): text holds a character with no piece and the model has no unk_token"
        }
    }
}
