import DiffusionModels
import SanaGraphKit
import Safetensors
import Tensors

extension SocketType {
    /// A loaded SANA ControlNet (`controlnet.load`), consumed by `controlnet.apply`.
    public static let controlNetModel = SocketType("ControlNetModel", holding: SanaControlNetModel.self,
                                                   doc: "a loaded SANA ControlNet (diffusers SanaControlNetModel)")
}

/// `controlnet.load`: loads a diffusers `SanaControlNetModel` folder.
public struct ControlNetLoad: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "controlnet.load", version: 1,
        summary: "Load a SANA ControlNet (diffusers SanaControlNetModel folder: config.json + safetensors)",
        outputs: [OutputSpec("controlnet", .controlNetModel)],
        params: [
            ParamSpec("path", .path, doc: "the ControlNet folder holding config.json and the safetensors weights"),
            .precision,
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        params.optionalString("path") == nil ? ["path must not be empty"] : []
    }

    /// Fingerprints config.json and every weight file, so edits invalidate cached results.
    public func fingerprint(params: ParamValues) throws -> String? {
        try ModelFolder<SanaTransformerConfig>.fingerprint(path: params.string("path"))
    }

    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        ModelFolder<SanaTransformerConfig>.fp32WeightBytes(path: params.string("path"))
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = params.string("path")
        let net = try SanaControlNetModel.load(folder: path, precision: params.precision())
        context.logger.info("loaded Sana ControlNet (\(net.config.numLayers) blocks, D=\(net.config.innerDim)) from \(path)")
        return ["controlnet": Value(.controlNetModel, net)]
    }
}

/// `controlnet.apply`: a denoiser steered by a ControlNet and a control image, for any sampler.
public struct ControlNetApply: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "controlnet.apply", version: 1,
        summary: "Steer a SANA transformer with a ControlNet and a control image (SanaControlNetPipeline): the "
            + "ControlNet's block residuals x conditioning_scale are added to the transformer at every step",
        inputs: [
            InputSpec("model", .denoiserModel, doc: "a SANA transformer on the CPU (dit.load, lora.apply)"),
            InputSpec("controlnet", .controlNetModel, doc: "controlnet.load"),
            InputSpec("image", .latent, doc: "the control image's latent (dcae.encode of the control image, resized "
                + "to the generated size): [1 or B, C, h, w], scaled by the VAE's scaling_factor"),
        ],
        outputs: [OutputSpec("model", .denoiserModel, doc: "the steered denoiser (connect to a sampler's model)")],
        params: [
            ParamSpec("conditioning_scale", .float, default: .float(1.0), min: 0, max: 10,
                      doc: "multiplies the ControlNet's residuals (SanaControlNetPipeline's "
                          + "controlnet_conditioning_scale); 0 = no effect"),
        ])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let node = context.nodeID
        let model = try inputs.denoiser("model")
        let net = try inputs.payload("controlnet", as: SanaControlNetModel.self, expected: "ControlNetModel")
        let control = try inputs.tensor("image")
        guard let base = model as? SanaTransformer2DModel else {
            let why = model is ControlledSanaTransformer ? "it is already steered by a ControlNet (one per model)"
                : "it is not a SANA transformer on the CPU"
            throw NodeError.invalidInput(node: node, message: "input 'model' cannot take a ControlNet: \(why)")
        }
        if let problem = net.incompatibility(with: base.config) {
            throw NodeError.invalidInput(node: node, message: "the ControlNet does not fit this transformer: \(problem)")
        }
        guard control.rank == 4, control.shape[1] == base.inChannels else {
            throw NodeError.invalidInput(
                node: node, message: "input 'image' must be a latent [B, \(base.inChannels), h, w] (dcae.encode of "
                    + "the control image), got \(control.shape)")
        }
        let steered = ControlledSanaTransformer(base: base, controlNet: net, control: control,
                                                conditioningScale: Float(params.double("conditioning_scale")))
        return ["model": .denoiser(steered)]
    }
}
