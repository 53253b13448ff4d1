import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// Shared declaration and run logic of the two sampler nodes.
enum SampleNodeSupport {
    static func descriptor(typeName: String, summary: String, stepsDoc: String) -> NodeDescriptor {
        NodeDescriptor(
            typeName: typeName, version: 2, summary: summary,
            inputs: [
                InputSpec("model", .denoiserModel, doc: "the denoiser (e.g. dit.load)"),
                InputSpec("positive", .conditioning, doc: "prompt conditioning (text.encode)"),
                InputSpec("negative", .conditioning, optional: true,
                          doc: "negative-prompt conditioning; used when guidance > 1"),
                InputSpec("latent", .latent,
                          doc: "initial noise (latent.noise); with 'noise' connected, the clean latent to re-noise"),
                InputSpec("noise", .latent, optional: true,
                          doc: "img2img: noise mixed into 'latent' at the first used sigma (needed when denoise < 1)"),
                InputSpec("mask", .latentMask, optional: true,
                          doc: "inpainting (latent.mask; needs 'noise'): after every step the area outside the mask is "
                              + "reset to the clean 'latent' re-noised to the current sigma"),
                InputSpec("vae", .autoencoderModel, optional: true,
                          doc: "only for `run --preview N`: the autoencoder whose latent_preview.json projects the "
                              + "current latent to a preview picture (the result does not depend on it)"),
            ],
            outputs: [OutputSpec("latent", .latent, doc: "denoised latent")],
            params: [
                ParamSpec("steps", .int, default: .int(20), min: 1, max: 1000, doc: stepsDoc),
                ParamSpec("guidance", .float, default: .float(4.5), min: 0, max: 100,
                          doc: "classifier-free guidance scale; <= 1 runs without the negative branch"),
                ParamSpec("shift", .float, default: .float(0), min: 0, max: 100,
                          doc: "flow shift of the sigma schedule (SANA: 3.0; 4K models: 6.0); 0 = the "
                              + "scheduler config's flow_shift (3.0 without a config)"),
                ParamSpec("denoise", .float, default: .float(1.0), min: 0, max: 1,
                          doc: "img2img strength: runs the last steps*denoise steps (needs 'noise' when < 1)"),
                ParamSpec("scheduler_config", .path, default: .string(""),
                          doc: "optional diffusers scheduler_config.json, scheduler folder or model folder; "
                              + "empty = SANA's settings"),
                ParamSpec("pag_scale", .float, default: .float(0), min: 0, max: 100,
                          doc: "perturbed-attention guidance scale (SanaPAGPipeline's pag_scale; 3.0 there); "
                              + "0 = off. Costs one more model call per step (docs/workflows.md)"),
                ParamSpec("pag_applied_layers", .string, default: .string("transformer_blocks.0"),
                          doc: "comma-separated regular expressions searched in the self-attention layer names "
                              + "(transformer_blocks.N.attn1), as SanaPAGPipeline's pag_applied_layers"),
                ParamSpec("pag_adaptive_scale", .float, default: .float(0), min: 0, max: 100,
                          doc: "SanaPAGPipeline's pag_adaptive_scale: the PAG scale at timestep t is "
                              + "max(pag_scale - pag_adaptive_scale*(1000 - t), 0); 0 = constant"),
            ])
    }

    /// The denoiser's activations for the latent, at twice the batch when guidance runs the negative branch too,
    /// plus the solver's few latent-sized buffers.
    static func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        guard let inputs, let latent = try? inputs.tensor("latent"), latent.rank == 4,
              let model = try? inputs.denoiser("model") as? any ActivationEstimating else { return nil }
        let guided = params.double("guidance") > 1 && inputs["negative"] != nil
        var shape = latent.shape
        if guided { shape[0] = MachineMemory.product([shape[0], 2]) }
        return MachineMemory.sum([model.activationBytes(inputShape: shape), MachineMemory.product([latent.byteCount, 8])])
    }

    /// PAG's layer patterns must be regular expressions, and at least one when PAG is on.
    static func validate(params: ParamValues) -> [String] {
        let patterns = PAGOptions.patterns(params.optionalString("pag_applied_layers") ?? "")
        if params.double("pag_scale") > 0 && patterns.isEmpty {
            return ["pag_applied_layers must name at least one layer when pag_scale > 0 (e.g. transformer_blocks.8)"]
        }
        return patterns.compactMap { p in
            (try? NSRegularExpression(pattern: p)) == nil
                ? "pag_applied_layers: '\(p)' is not a regular expression" : nil
        }
    }

    static func schedulerConfig(_ params: ParamValues) throws -> SchedulerConfig {
        guard let path = params.optionalString("scheduler_config") else { return .sana }
        return try SchedulerConfig.load(path: path)
    }

    /// Hash of the scheduler config file, so editing it invalidates cached samples.
    static func fingerprint(_ params: ParamValues) throws -> String? {
        guard let path = params.optionalString("scheduler_config") else { return nil }
        _ = try SchedulerConfig.load(path: path)
        return try configHash(path: path)
    }

    /// FNV-1a 64 of the scheduler config file that `path` resolves to.
    static func configHash(path: String) throws -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in try SchedulerConfig.read(path: path).data {
            hash ^= UInt64(b)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return "scheduler_config:" + String(hash, radix: 16)
    }

    /// The connected autoencoder's preview projection, if any.
    static func previewProjection(_ inputs: NodeInputs) throws -> LatentPreview? {
        inputs["vae"] == nil ? nil : try inputs.autoencoder("vae").latentPreview
    }

    static func run(kind: FlowSolverKind, inputs: NodeInputs, params: ParamValues,
                    context: RunContext) throws -> NodeOutputs {
        let config = try schedulerConfig(params)
        let model = try inputs.denoiser("model")
        // 0 = "as the model's scheduler config says"; without flow_shift there, the value diffusers' conversion
        // writes for the model's size: 6.0 for the 4K models (sample_size 128), else 3.0.
        let configShift = config.flowShiftGiven ? config.flowShift : ((model.sampleSize ?? 0) >= 128 ? 6.0 : 3.0)
        let shift = params.double("shift") > 0 ? params.double("shift") : configShift
        if params.optionalString("scheduler_config") != nil, configShift != shift {
            let message = "\(context.nodeID): shift \(shift) is used; the scheduler config's flow_shift is "
                + (config.flowShiftGiven ? "\(config.flowShift)" : "not given (\(configShift) for this model)")
            context.logger.notice("\(message)")
        }
        let pag = PAGOptions(scale: params.double("pag_scale"), adaptiveScale: params.double("pag_adaptive_scale"),
                             appliedLayers: PAGOptions.patterns(params.string("pag_applied_layers")))
        let options = SamplingOptions(steps: params.int("steps"), guidance: params.double("guidance"),
                                      shift: shift, denoise: params.double("denoise"), config: config, pag: pag)
        let out = try FlowSampler.sample(
            kind: kind, model: model, positive: try inputs.conditioning("positive"),
            negative: try inputs.optionalConditioning("negative"), latent: try inputs.tensor("latent"),
            noise: try inputs.optionalTensor("noise"), options: options, context: context,
            mask: try inputs.optionalPayload("mask", as: Tensor.self, expected: "a latent mask"),
            preview: context.wantsPreviews ? try previewProjection(inputs) : nil)
        return ["latent": .latent(out)]
    }
}

/// `sample.flow_dpm_solver`: Flow-DPM-Solver (DPM-Solver++ 2M on shifted flow sigmas), SANA's default sampler.
public struct FlowDPMSolverNode: Node {
    public static let descriptor = SampleNodeSupport.descriptor(
        typeName: "sample.flow_dpm_solver",
        summary: "Flow-DPM-Solver (DPM-Solver++ 2M, flow sigmas) with classifier-free guidance",
        stepsDoc: "sampling steps (SANA: 20)")

    public init() {}

    public func validate(params: ParamValues) -> [String] { SampleNodeSupport.validate(params: params) }

    public func fingerprint(params: ParamValues) throws -> String? { try SampleNodeSupport.fingerprint(params) }

    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        SampleNodeSupport.estimateMemory(params: params, inputs: inputs)
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        try SampleNodeSupport.run(kind: .dpmSolver, inputs: inputs, params: params, context: context)
    }
}

/// `sample.flow_euler`: first-order flow-matching Euler (`FlowMatchEulerDiscreteScheduler`).
public struct FlowEulerNode: Node {
    public static let descriptor = SampleNodeSupport.descriptor(
        typeName: "sample.flow_euler",
        summary: "Flow-matching Euler sampler with classifier-free guidance",
        stepsDoc: "sampling steps (SANA's original flow_euler uses 28)")

    public init() {}

    public func validate(params: ParamValues) -> [String] { SampleNodeSupport.validate(params: params) }

    public func fingerprint(params: ParamValues) throws -> String? { try SampleNodeSupport.fingerprint(params) }

    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        SampleNodeSupport.estimateMemory(params: params, inputs: inputs)
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        try SampleNodeSupport.run(kind: .euler, inputs: inputs, params: params, context: context)
    }
}

/// `sample.scm`: Sana-Sprint's sampler (`SCMScheduler`, TrigFlow) with the guidance scale embedded in the model,
/// as `SanaSprintPipeline` and `SanaSprintImg2ImgPipeline` run it.
public struct SCMNode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "sample.scm", version: 1,
        summary: "Sana-Sprint's few-step sampler (SCMScheduler / TrigFlow, guidance embedded in the model)",
        inputs: [
            InputSpec("model", .denoiserModel, doc: "a Sana-Sprint denoiser (dit.load of a guidance_embeds transformer)"),
            InputSpec("positive", .conditioning, doc: "prompt conditioning (text.encode); Sprint takes no negative"),
            InputSpec("latent", .latent,
                      doc: "initial noise (latent.noise); with 'noise' connected, the clean latent (dcae.encode)"),
            InputSpec("noise", .latent, optional: true,
                      doc: "img2img: latent.noise of the same seed, mixed into 'latent' at the first used time"),
        ],
        outputs: [OutputSpec("latent", .latent, doc: "denoised latent (for dcae.decode)")],
        params: [
            ParamSpec("steps", .int, default: .int(2), min: 1, max: 1000,
                      doc: "sampling steps (Sana-Sprint: 1 to 4, default 2)"),
            ParamSpec("guidance", .float, default: .float(4.5), min: 0, max: 100,
                      doc: "guidance scale embedded in the model (times its guidance_embeds_scale); no negative pass"),
            ParamSpec("max_timestep", .float, default: .float(1.57080), min: 0.01, max: 1.5708,
                      doc: "first TrigFlow time (pure noise at π/2; SanaSprintPipeline's max_timesteps)"),
            ParamSpec("intermediate_timestep", .float, default: .float(1.3), min: 0, max: 1.5708,
                      doc: "middle time for 2 steps (SanaSprintPipeline's intermediate_timesteps); other step "
                          + "counts use evenly spaced times"),
            ParamSpec("denoise", .float, default: .float(1.0), min: 0, max: 1,
                      doc: "img2img strength: runs the last steps*denoise steps (needs 'noise' when < 1)"),
            ParamSpec("seed", .int, default: .int(0),
                      doc: "the seed of latent.noise: each step's fresh noise continues that generator, as the "
                          + "pipeline's one torch.Generator does"),
            ParamSpec("scheduler_config", .path, default: .string(""),
                      doc: "optional SCMScheduler scheduler_config.json, scheduler folder or model folder (sigma_data); "
                          + "empty = Sana-Sprint's settings"),
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        params.int("steps") != 2 || params.double("intermediate_timestep") < params.double("max_timestep") ? []
            : ["intermediate_timestep (used for 2 steps) must be below max_timestep"]
    }

    public func fingerprint(params: ParamValues) throws -> String? {
        guard let path = params.optionalString("scheduler_config") else { return nil }
        _ = try SCMConfig.load(path: path)
        return try SampleNodeSupport.configHash(path: path)
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let config = try params.optionalString("scheduler_config").map { try SCMConfig.load(path: $0) } ?? .sprint
        let options = SCMOptions(steps: params.int("steps"), guidance: params.double("guidance"),
                                 maxTimestep: params.double("max_timestep"),
                                 intermediateTimestep: params.double("intermediate_timestep"),
                                 denoise: params.double("denoise"), seed: params.int("seed"), config: config)
        let out = try SCMSampler.sample(model: try inputs.denoiser("model"),
                                        positive: try inputs.conditioning("positive"),
                                        latent: try inputs.tensor("latent"), noise: try inputs.optionalTensor("noise"),
                                        options: options, context: context)
        return ["latent": .latent(out)]
    }
}
