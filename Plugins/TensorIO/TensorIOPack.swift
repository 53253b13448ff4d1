import GraphRuntime

/// Node pack for this plugin (registered by the CLI).
public enum TensorIOPack: NodePack {
    public static let name = "TensorIO"
    public static var nodes: [any Node.Type] { [] }
}
