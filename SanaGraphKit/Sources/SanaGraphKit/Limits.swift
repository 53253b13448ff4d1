/// Limits on what the graph front end accepts (docs/limits.md). Past each one, loading stops with an error
/// naming the file (exit 2) before anything is built from the input.
public enum GraphLimits {
    /// A graph file or `--params` file larger than this is refused unread.
    public static let maxFileBytes = 16 << 20
    /// Nodes in one graph. Validation and planning are linear (plus sorting), so this bounds time and memory,
    /// not correctness: 100 000 nodes load, validate and plan in about a second.
    public static let maxNodes = 200_000
    /// YAML nesting (mappings and lists inside each other); a graph needs about 5.
    public static let maxYAMLDepth = 64
    /// YAML values after alias expansion (an anchor used n times counts n times).
    public static let maxYAMLNodes = 2_000_000
    /// Bytes of one string param value (prompts included), after `${...}` substitution.
    public static let maxStringBytes = 1 << 20
    /// Bytes of one path param value (Linux's PATH_MAX less the terminating NUL).
    public static let maxPathBytes = 4095
    /// A model's `config.json` or `scheduler_config.json`.
    public static let maxConfigBytes = 16 << 20
    /// A tokenizer's `tokenizer.json` (Gemma-2's is 34 MB).
    public static let maxTokenizerBytes = 512 << 20
    /// Nodes of a cycle printed in its error message (longer cycles are shortened with their length).
    public static let maxCycleNodesShown = 12
}
