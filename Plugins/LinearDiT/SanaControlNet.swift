import DiffusionModels
import SanaGraphKit
import Safetensors
import Tensors

/// diffusers `SanaControlNetModel`: a copy of the first blocks of a SANA transformer that reads the noisy latent
/// plus a control latent and returns, per block, a residual for the transformer's hidden states.
public final class SanaControlNetModel: LoadedModel, @unchecked Sendable {
    public let config: SanaTransformerConfig
    let patchWeight: Tensor, patchBias: Tensor
    let timestepEmbedder: TimestepEmbedding
    let timeLinear: Linear
    let caption_projection: PixArtAlphaTextProjection
    let caption_norm: Tensor
    let transformer_blocks: [SanaTransformerBlock]
    let input_block: Linear
    let controlnet_blocks: [Linear]
    public let residentBytes: Int

    /// Builds the ControlNet from `w`, declaring every checkpoint key and shape: the transformer's patch, time and
    /// caption embeddings and blocks (no final norm or projection), plus the zero-initialised `input_block` and one
    /// `controlnet_blocks.N` linear per block.
    init(config c: SanaTransformerConfig, weights w: WeightStore) {
        config = c
        let d = c.innerDim, p = c.patchSize
        patchWeight = w("patch_embed.proj.weight", [d, c.inChannels, p, p]); patchBias = w("patch_embed.proj.bias", [d])
        timestepEmbedder = TimestepEmbedding(w, "time_embed.emb.timestep_embedder", dim: d)
        timeLinear = Linear(w, "time_embed.linear", out: 6 * d, in: d)
        caption_projection = PixArtAlphaTextProjection(w, "caption_projection", in: c.captionChannels, dim: d)
        caption_norm = w("caption_norm.weight", [d])
        transformer_blocks = (0..<c.numLayers).map { SanaTransformerBlock(w, "transformer_blocks.\($0)", config: c) }
        input_block = Linear(w, "input_block", out: d, in: d)
        controlnet_blocks = (0..<c.numLayers).map { Linear(w, "controlnet_blocks.\($0)", out: d, in: d) }
        residentBytes = patchWeight.byteCount + patchBias.byteCount + timestepEmbedder.bytes + timeLinear.bytes
            + caption_projection.bytes + caption_norm.byteCount + input_block.bytes
            + transformer_blocks.reduce(0) { $0 + $1.bytes } + controlnet_blocks.reduce(0) { $0 + $1.bytes }
    }

    /// Loads a diffusers `SanaControlNetModel` folder (config.json + safetensors weights); every key and shape is
    /// checked first (a mismatch lists them all, exit 4).
    public static func load(folder: String, precision: Precision = .fp32) throws -> SanaControlNetModel {
        let model = try ModelFolder<SanaTransformerConfig>(path: folder, role: "controlnet/",
                                                           modelName: "SanaControlNetModel") { config, _ in
            config.problems() + (config.guidanceEmbeds ? ["guidance_embeds is not a SanaControlNetModel setting"] : [])
        }
        return try WeightStore.load(.checkpoint(model.checkpoint), path: model.weightsPath,
                                    folder: "a SanaControlNetModel folder", precision: precision) {
            SanaControlNetModel(config: model.config, weights: $0)
        }
    }

    /// Why this ControlNet cannot steer `base`, or nil: the hidden size, latent channels, patch size and caption
    /// width must agree.
    public func incompatibility(with base: SanaTransformerConfig) -> String? {
        let pairs: [(String, Int, Int)] = [
            ("hidden size (heads x head dim)", config.innerDim, base.innerDim),
            ("in_channels", config.inChannels, base.inChannels), ("patch_size", config.patchSize, base.patchSize),
            ("caption_channels", config.captionChannels, base.captionChannels),
        ]
        let bad = pairs.filter { $0.1 != $0.2 }.map { "\($0.0) \($0.1) (the transformer: \($0.2))" }
        return bad.isEmpty ? nil : bad.joined(separator: ", ")
    }

    /// The ControlNet's own caption projection and cross-attention K/V (constant across steps).
    func prepare(_ conditioning: Conditioning) -> SanaPreparedText {
        SanaPreparedText(conditioning, projection: caption_projection, norm: caption_norm, blocks: transformer_blocks)
    }

    func embedPatches(_ latent: Tensor) -> Tensor {
        patchEmbedding(latent, weight: patchWeight, bias: patchBias, config: config)
    }

    /// `controlnet_block_samples`: per block `[B, N, D]`, already × `scale`. `control` is the scaled control
    /// latent with the latent's batch and size.
    func residuals(latent: Tensor, timestep: Tensor, text: SanaPreparedText, control: Tensor,
                   scale: Float) throws -> [Tensor] {
        let b = latent.shape[0], p = config.patchSize, d = config.innerDim
        let hp = latent.shape[2] / p, wp = latent.shape[3] / p
        var x = embedPatches(latent)
        Ops.addInPlace(&x, input_block(embedPatches(control)))
        let temb = timestepEmbedder(TimestepEmbedding.sinusoid(timestep.scalars))
        let t6 = timeLinear(Ops.silu(temb)).reshaped([b, 6, d])
        var out: [Tensor] = []
        for (i, (block, kv)) in zip(transformer_blocks, text.keyValues).enumerated() {
            try CancellationToken.checkCurrent()
            x = try block(x, t6: t6, text: kv, maskBias: text.maskBias, height: hp, width: wp)
            var r = controlnet_blocks[i](x)
            Ops.scaleInPlace(&r, by: scale)
            out.append(r)
        }
        return out
    }
}

/// Text prepared for the transformer and for its ControlNet.
struct ControlledPreparedText: PreparedText {
    var base: SanaPreparedText
    var control: SanaPreparedText
}

/// A SANA transformer steered by a ControlNet, as `SanaControlNetPipeline` runs the pair at every step: the
/// ControlNet reads the noisy latent, the timestep, the text and the control latent; its residuals (× the
/// conditioning scale) are added after the transformer's blocks 1…n. A `DenoiserModel` like any other, so every
/// sampler drives it.
public final class ControlledSanaTransformer: PerturbedAttentionDenoiser, @unchecked Sendable {
    public let base: SanaTransformer2DModel
    public let controlNet: SanaControlNetModel
    /// The control image's latent, scaled by the VAE's scaling factor, `[1 or B, C, h, w]`.
    public let control: Tensor
    public let conditioningScale: Float

    public init(base: SanaTransformer2DModel, controlNet: SanaControlNetModel, control: Tensor,
                conditioningScale: Float) {
        self.base = base
        self.controlNet = controlNet
        self.control = control
        self.conditioningScale = conditioningScale
    }

    public var residentBytes: Int { base.residentBytes + controlNet.residentBytes + control.byteCount }
    public var inChannels: Int { base.inChannels }
    public var latentSpatialDivisor: Int { base.latentSpatialDivisor }
    public var takesGuidance: Bool { base.takesGuidance }
    public var guidanceEmbedsScale: Double { base.guidanceEmbedsScale }
    public var timestepScale: Double { base.timestepScale }
    public var sampleSize: Int? { base.sampleSize }
    public var patchSize: Int { base.patchSize }
    public var selfAttentionLayerNames: [String] { base.selfAttentionLayerNames }

    public func prepare(_ conditioning: Conditioning) throws -> any PreparedText {
        guard let text = try base.prepare(conditioning) as? SanaPreparedText else {
            throw LinearDiTInputError.invalid("the transformer prepared an unexpected text state")
        }
        return ControlledPreparedText(base: text, control: controlNet.prepare(conditioning))
    }

    public func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?) throws -> Tensor {
        try predict(latent: latent, timestep: timestep, text: text, guidance: guidance, perturbedLayers: [])
    }

    public func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?,
                        perturbedLayers: Set<Int>) throws -> Tensor {
        guard let text = text as? ControlledPreparedText else {
            throw LinearDiTInputError.invalid("the prepared text was not made by this ControlNet-steered transformer")
        }
        guard latent.rank == 4, control.shape[1...] == latent.shape[1...] else {
            throw LinearDiTInputError.invalid(
                "the control latent is \(control.shape) but the latent is \(latent.shape): the control image must "
                    + "have the generated image's size (resize it to the width and height)")
        }
        let b = latent.shape[0]
        let cond: Tensor
        if control.shape[0] == b {
            cond = control
        } else if control.shape[0] == 1 {
            cond = Ops.concat(Array(repeating: control, count: b), axis: 0)
        } else {
            throw LinearDiTInputError.invalid("the control latent has batch \(control.shape[0]); use 1 or the latent's batch")
        }
        guard timestep.count == b, text.control.batch == b else {
            throw LinearDiTInputError.invalid("timestep and text must have the latent's batch (\(b))")
        }
        let residuals = try controlNet.residuals(latent: latent, timestep: timestep, text: text.control,
                                                 control: cond, scale: conditioningScale)
        return try base.predict(latent: latent, timestep: timestep, text: text.base, guidance: guidance,
                                perturbedLayers: perturbedLayers, blockResiduals: residuals)
    }
}

extension ControlledSanaTransformer: ActivationEstimating {
    /// The transformer's activations plus the ControlNet's residuals (one `[B, N, D]` per ControlNet block).
    public func activationBytes(inputShape shape: [Int]) -> Int {
        guard shape.count == 4 else { return 0 }
        let p = max(1, base.config.patchSize)
        let tokens = MachineMemory.product([shape[0], shape[2] / p, shape[3] / p])
        return MachineMemory.sum([base.activationBytes(inputShape: shape),
                                  MachineMemory.product([tokens, base.config.innerDim, controlNet.config.numLayers, 4])])
    }
}
