import SanaGraphKit
import DiffusionModels

/// Node pack for SANA's Linear DiT denoiser (diffusers `SanaTransformer2DModel`): dit.load and dit.predict, and
/// the model-side workflow blocks controlnet.load / controlnet.apply and lora.apply.
public enum LinearDiTPack: NodePack {
    public static let name = "LinearDiT"
    public static var nodes: [any Node.Type] { [DiTLoad.self, DiTPredict.self, ControlNetLoad.self, ControlNetApply.self, LoRAApply.self] }
    public static var socketTypes: [SocketType] { DiffusionSocketTypes.all + [.controlNetModel] }
}
