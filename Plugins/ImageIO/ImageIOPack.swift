import SanaGraphKit

/// Node pack for this plugin (registered by the CLI): PNG load and save with provenance metadata.
public enum ImageIOPack: NodePack {
    public static let name = "ImageIO"
    public static var nodes: [any Node.Type] { [ImageLoad.self, ImageSave.self] }
}
