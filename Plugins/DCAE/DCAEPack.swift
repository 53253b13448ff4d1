import GraphRuntime

/// Node pack for SANA's deep-compression autoencoder (diffusers `AutoencoderDC`).
public enum DCAEPack: NodePack {
    public static let name = "DCAE"
    public static var nodes: [any Node.Type] { [] }
}
