import SanaGraphKit

/// The problems of a `tokenizer.json`, as model-folder errors (`ModelFolderError.invalidConfig`, exit 4); each
/// names the file and says what to do.
public enum TokenizerFile {
    /// The file is missing or unreadable.
    public static func unreadable(path: String, reason: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "tokenizer file can't be read (\(reason)); point the tokenizer param at a "
            + "folder holding tokenizer.json")
    }
    /// The file is not valid JSON, or its top level is not an object.
    public static func invalidJSON(path: String, reason: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "tokenizer file is not valid JSON (\(reason)); re-export it with "
            + "transformers' save_pretrained")
    }
    /// A field is missing or has the wrong type / an impossible value.
    public static func invalidField(path: String, field: String, message: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "tokenizer field '\(field)' \(message); re-export it with transformers' "
            + "save_pretrained")
    }
    /// A component (normalizer, pre-tokenizer, model, decoder, post-processor) of a type this reader doesn't implement.
    public static func unsupported(path: String, component: String, type: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "tokenizer \(component) of type '\(type)' is not supported "
            + "(supported: BPE model, Replace/Prepend/Sequence normalizers, Split/Metaspace pre-tokenizers, "
            + "Replace/ByteFallback/Fuse/Strip/Metaspace decoders, TemplateProcessing)")
    }
    /// A character has no piece, no byte-fallback pieces and the model declares no unknown token.
    public static func noUnknownToken(path: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "text holds a character with no piece and the tokenizer has no unk_token")
    }
    /// Padding needs a `<pad>` token and there is none (nor a pad_token_id in config.json).
    public static func noPadToken(path: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "tokenizer has no <pad> token and config.json no pad_token_id; padding "
            + "needs one")
    }
}
