import GraphRuntime

/// Node pack for this plugin (registered by the CLI).
public enum ImageIOPack: NodePack {
    public static let name = "ImageIO"
    public static var nodes: [any Node.Type] { [] }
}
