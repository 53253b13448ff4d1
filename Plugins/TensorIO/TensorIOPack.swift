import SanaGraphKit
import DiffusionModels

/// Node pack for this plugin (registered by the CLI): tensor.load and tensor.save, so any component can be
/// fed from and checked against safetensors files in a YAML graph.
public enum TensorIOPack: NodePack {
    public static let name = "TensorIO"
    public static var nodes: [any Node.Type] { [TensorLoad.self, TensorSave.self] }
    public static var socketTypes: [SocketType] { DiffusionSocketTypes.all }
}
