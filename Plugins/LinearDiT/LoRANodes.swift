import DiffusionModels
import SanaGraphKit
import Safetensors
import Tensors

/// `lora.apply`: a SANA transformer with a LoRA merged into its linear layers; chain several for several LoRAs.
public struct LoRAApply: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "lora.apply", version: 1,
        summary: "Apply a LoRA (diffusers/PEFT safetensors, as SanaPipeline.load_lora_weights reads) to a SANA "
            + "transformer at a strength; chain nodes to stack LoRAs. The base weights on disk are never modified",
        inputs: [InputSpec("model", .denoiserModel, doc: "a SANA transformer on the CPU (dit.load or another lora.apply)")],
        outputs: [OutputSpec("model", .denoiserModel, doc: "a new model: W + strength * (alpha/r) * lora_B * lora_A per layer")],
        params: [
            ParamSpec("path", .path, doc: "the LoRA .safetensors file (keys [transformer.]<layer>.lora_A.weight / "
                + ".lora_B.weight; alpha and rank from its lora_adapter_metadata, else alpha = rank)"),
            ParamSpec("strength", .float, default: .float(1.0), min: -10, max: 10,
                      doc: "the LoRA's weight (diffusers' set_adapters adapter_weights); 0 = the model unchanged"),
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        params.optionalString("path") == nil ? ["path must name a LoRA .safetensors file"] : []
    }

    /// The LoRA file's fingerprint (the disk cache turns it into a content hash), so a changed file invalidates
    /// every result computed with it; the strength is a param, so it is in the key too.
    public func fingerprint(params: ParamValues) throws -> String? {
        let path = params.string("path")
        do { return try FileFingerprint.fast(path) } catch {
            throw SanaLoRAError.unreadable(path: path, reason: "\(error)")
        }
    }

    /// At most a second copy of every linear layer.
    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        (try? inputs?.denoiser("model"))?.residentBytes
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let model = try inputs.denoiser("model")
        guard let base = model as? SanaTransformer2DModel else {
            let why = model is ControlledSanaTransformer ? "apply LoRAs before controlnet.apply"
                : "lora.apply patches SANA transformers on the CPU (dit.load with device cpu)"
            throw NodeError.invalidInput(node: context.nodeID, message: "input 'model' cannot take a LoRA: \(why)")
        }
        let path = params.string("path")
        let lora = try SanaLoRA.load(path: path)
        if !lora.skippedKeys.isEmpty {
            context.logger.notice("\(context.nodeID): \(lora.skippedKeys.count) text-encoder keys in \(path) are not applied (SanaPipeline ignores them too)")
        }
        let strength = Float(params.double("strength"))
        try context.checkCancelled()
        let patched = try base.applying(lora, strength: strength)
        let ranks = Set(lora.modules.values.map { $0.down.shape[0] }).sorted()
        context.logger.info("applied LoRA \(path) (\(lora.modules.count) layers, rank \(ranks.map(String.init).joined(separator: "/")), strength \(strength))")
        return ["model": .denoiser(patched)]
    }
}
