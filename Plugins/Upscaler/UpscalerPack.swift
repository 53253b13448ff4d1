import GraphRuntime

/// Node pack for this plugin (registered by the CLI).
public enum UpscalerPack: NodePack {
    public static let name = "Upscaler"
    public static var nodes: [any Node.Type] { [] }
}
