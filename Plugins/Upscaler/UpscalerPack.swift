import SanaGraphKit
import DiffusionModels

/// Node pack for this plugin (registered by the CLI): Pillow-compatible resizing and ESRGAN-family upscaling.
public enum UpscalerPack: NodePack {
    public static let name = "Upscaler"
    public static var nodes: [any Node.Type] { [ImageResize.self, UpscaleLoad.self, UpscaleApply.self] }
    public static var socketTypes: [SocketType] { DiffusionSocketTypes.all }
}
