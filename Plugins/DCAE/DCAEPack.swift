import SanaGraphKit
import DiffusionModels

/// Node pack for SANA's deep-compression autoencoder (diffusers `AutoencoderDC`): dcae.load, dcae.decode, dcae.encode.
public enum DCAEPack: NodePack {
    public static let name = "DCAE"
    public static var nodes: [any Node.Type] { [DCAELoad.self, DCAEDecode.self, DCAEEncode.self] }
    public static var socketTypes: [SocketType] { DiffusionSocketTypes.all }
}
