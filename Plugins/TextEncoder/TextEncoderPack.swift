import SanaGraphKit
import DiffusionModels

/// Node pack for SANA's Gemma-2 text encoder: text_encoder.load, text.encode and the conditioning.* operations.
public enum TextEncoderPack: NodePack {
    public static let name = "TextEncoder"
    public static var nodes: [any Node.Type] {
        [TextEncoderLoad.self, TextEncode.self, ConditioningConcatNode.self, ConditioningAverageNode.self,
         ConditioningZeroNode.self]
    }
    public static var socketTypes: [SocketType] { DiffusionSocketTypes.all }
}
