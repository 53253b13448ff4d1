import SanaGraphKit
import DiffusionModels
import Tensors

/// One `SanaTransformerBlock`: adaLN-modulated ReLU linear self-attention, plain masked cross-attention,
/// adaLN-modulated Mix-FFN (sana-architecture.md §3.3.5).
struct SanaTransformerBlock: Sendable {
    var scale_shift_table: Tensor  // [6, D]
    var attn1: AttentionProjections
    var attn2: AttentionProjections
    var ff: GLUMBConv
    var normEps: Float

    init(_ w: WeightStore, _ prefix: String, config c: SanaTransformerConfig) {
        let d = c.innerDim, dc = c.numCrossAttentionHeads * c.crossAttentionHeadDim
        scale_shift_table = w(prefix + ".scale_shift_table", [6, d])
        attn1 = AttentionProjections(w, prefix + ".attn1", heads: c.numAttentionHeads, dim: d, kvDim: d, inner: d,
                                     qkvBias: c.attentionBias, qkNorm: c.usesQKNorm)
        attn2 = AttentionProjections(w, prefix + ".attn2", heads: c.numCrossAttentionHeads, dim: d,
                                     kvDim: c.crossAttentionDim ?? d, inner: dc, qkvBias: true, qkNorm: c.usesQKNorm)
        ff = GLUMBConv(w, prefix + ".ff", dim: d, hidden: c.ffnHidden)
        normEps = Float(c.normEps)
    }

    /// Cross-attention keys and values from the normed caption, and their padding under `maskBias` (constant
    /// across steps).
    func crossKeyValue(_ caption: Tensor, maskBias: Tensor) -> CrossKeyValue {
        let key = splitHeads(attn2.key(caption), attn2.heads)
        return CrossKeyValue(key: key, value: splitHeads(attn2.to_v(caption), attn2.heads),
                             padding: AttentionKeyPadding(key: key, mask: maskBias, queryHeads: attn2.heads, layout: .tokensFirst))
    }

    /// `x` [B, N, D]; `t6` [B, 6, D]; `maskBias` [B, 1, 1, L]. `perturbed` replaces the self-attention map by the
    /// identity (perturbed-attention guidance, diffusers' `PAGIdentitySanaLinearAttnProcessor2_0`).
    func callAsFunction(_ x: Tensor, t6: Tensor, text: CrossKeyValue, maskBias: Tensor,
                        height: Int, width: Int, perturbed: Bool = false) throws -> Tensor {
        let b = x.shape[0], n = x.shape[1], d = x.shape[2]
        let mod = SectionProfile.measure("modulation") {
            Ops.chunk(Ops.add(scale_shift_table.reshaped([1, 6, d]), t6), 6, axis: 1)  // each [B, 1, D]
        }
        let (shiftMSA, scaleMSA, gateMSA) = (mod[0], mod[1], mod[2])
        let (shiftMLP, scaleMLP, gateMLP) = (mod[3], mod[4], mod[5])
        var x = x

        // Self-attention (ReLU linear attention, fp32 core). Norm + modulation is one fused pass.
        let n1 = SectionProfile.measure("norm") { Ops.layerNormModulated(x, scale: scaleMSA, shift: shiftMSA, eps: normEps) }
        let o1: Tensor
        if perturbed {
            // Identity attention: every token's output is its own value.
            o1 = attn1.to_out(attn1.to_v(n1))
        } else {
            let (q, k, v) = SectionProfile.measure("self-attention q/k/v") {
                (splitHeads(attn1.query(n1), attn1.heads), splitHeads(attn1.key(n1), attn1.heads),
                 splitHeads(attn1.to_v(n1), attn1.heads))
            }
            let a1 = SectionProfile.measure("linear attention core") {
                Ops.reluLinearAttention(query: q, key: k, value: v, eps: 1e-15, layout: .tokensFirst)
            }
            o1 = SectionProfile.measure("self-attention out") { attn1.to_out(a1.reshaped([b, n, d])) }
        }
        // sana-architecture.md §7.1: fp16-trained checkpoints never saw values beyond the fp16 range here and
        // break without this clamp; it is a no-op for the others, so it is always applied (fused with the gate).
        SectionProfile.measure("gated residuals") { Ops.addGatedInPlace(&x, gate: gateMSA, o1, clampMagnitude: 65_504) }
        // At 4K one block takes seconds: an interrupt is noticed between its three parts.
        try CancellationToken.checkCurrent()

        // Cross-attention: no norm, no modulation, no gate.
        let cq = SectionProfile.measure("cross-attention q") { splitHeads(attn2.query(x), attn2.heads) }
        let a2 = SectionProfile.measure("cross-attention core") {
            // bf16 on AMX: the products on tiles too, as PyTorch's bf16 attention (fp32 elsewhere: unchanged).
            Ops.scaledDotProductAttention(query: cq, key: text.key, value: text.value, mask: maskBias, layout: .tokensFirst,
                                          products: attn2.to_q.weight.mode == .amxTiles ? .bf16Tiles : .fp32,
                                          keyPadding: text.padding)
        }
        let o2 = SectionProfile.measure("cross-attention out") { attn2.to_out(a2.reshaped([b, n, a2.shape[2] * a2.shape[3]])) }
        SectionProfile.measure("gated residuals") { Ops.addInPlace(&x, o2) }
        try CancellationToken.checkCurrent()

        // Mix-FFN on the token grid, kept tokens-first (channels-last): no permutes.
        let n2 = SectionProfile.measure("norm") { Ops.layerNormModulated(x, scale: scaleMLP, shift: shiftMLP, eps: normEps) }
        let f = ff.tokensFirst(n2, height: height, width: width)
        SectionProfile.measure("gated residuals") { Ops.addGatedInPlace(&x, gate: gateMLP, f) }
        return x
    }

    var bytes: Int { scale_shift_table.byteCount + attn1.bytes + attn2.bytes + ff.bytes }

    func patched(_ prefix: String, _ patch: LinearPatch) rethrows -> SanaTransformerBlock {
        var b = self
        b.attn1 = try attn1.patched(prefix + ".attn1", patch)
        b.attn2 = try attn2.patched(prefix + ".attn2", patch)
        b.ff = try ff.patched(prefix + ".ff", patch)
        return b
    }
}

/// One block's cross-attention keys and values `[B, L, Hc, dc]`, and the caption padding the attention may leave
/// out (found once per prompt: it reads every padding key).
struct CrossKeyValue: Sendable {
    var key: Tensor, value: Tensor
    var padding: AttentionKeyPadding
}

/// Text state prepared once per prompt batch: the cross-attention K/V of every block and the mask bias.
public struct SanaPreparedText: PreparedText {
    /// Per block.
    var keyValues: [CrossKeyValue]
    /// `(1 − mask) · −10000` as `[B, 1, 1, L]`.
    var maskBias: Tensor
    public var batch: Int { maskBias.shape[0] }

    /// Caption projection + RMSNorm, then every block's cross-attention K/V (the transformer's and the ControlNet's).
    init(_ conditioning: Conditioning, projection: PixArtAlphaTextProjection, norm: Tensor,
         blocks: [SanaTransformerBlock]) {
        let m = conditioning.mask
        let c = Ops.rmsNorm(projection(conditioning.embeddings), weight: norm, eps: 1e-5)
        let bias = Ops.mul(Ops.sub(1, m), -10_000).reshaped([m.shape[0], 1, 1, m.shape[1]])
        maskBias = bias
        keyValues = blocks.map { $0.crossKeyValue(c, maskBias: bias) }
    }
}

/// `PatchEmbed`: `[B, C, h, w]` → tokens `[B, N, D]` (+ the sin-cos position embedding when the config has an
/// `interpolation_scale`, the 2K/4K models).
func patchEmbedding(_ latent: Tensor, weight: Tensor, bias: Tensor, config: SanaTransformerConfig) -> Tensor {
    let b = latent.shape[0], p = config.patchSize, d = config.innerDim
    let hp = latent.shape[2] / p, wp = latent.shape[3] / p, n = hp * wp
    let patches = Ops.conv2d(latent, weight: weight, bias: bias, stride: p)
    var x = Ops.permute(patches, [0, 2, 3, 1]).reshaped([b, n, d])
    if let s = config.interpolationScale {
        let pe = sincosPositionEmbedding(dim: d, height: hp, width: wp, baseSize: config.sampleSize / p,
                                         interpolationScale: s)
        Ops.addInPlace(&x, pe.reshaped([1, n, d]))
    }
    return x
}

/// Why a latent of `height × width` cells cannot be used by a model of `config`, in the user's terms; nil when fine.
func latentSizeProblem(config: SanaTransformerConfig, divisor: Int, height: Int, width: Int) -> String? {
    let p = config.patchSize
    if height <= 0 || width <= 0 { return "the latent is empty" }
    if height % p != 0 || width % p != 0 {
        let px = divisor * p
        return "image size \(height * divisor)×\(width * divisor) px is not usable: with "
            + "patch_size \(p) width and height must be multiples of \(px) px"
    }
    return nil
}

/// Errors from running the model on unusable inputs (exit 3, node failed).
public enum LinearDiTInputError: CategorizedError, Equatable {
    case invalid(String)
    public var category: ErrorCategory { .nodeFailed }
    public var description: String {
        switch self { case .invalid(let m): return m }
    }
}

/// diffusers `SanaTransformer2DModel`: SANA's Linear DiT denoiser (sana-architecture.md §3). Activations are
/// fp32; the linear layers compute at `precision`.
public final class SanaTransformer2DModel: PerturbedAttentionDenoiser, @unchecked Sendable {
    public let config: SanaTransformerConfig
    /// The precision the linear layers compute at (a bf16 request runs fp32 where bf16 is unavailable).
    public let precision: Precision
    /// The kernel running the linear layers, e.g. "oneDNN brg:avx512_core_amx".
    public let kernel: String
    let patchWeight: Tensor, patchBias: Tensor
    /// Non-Sprint: `time_embed.emb.timestep_embedder`; Sprint: `time_embed.timestep_embedder`.
    let timestepEmbedder: TimestepEmbedding
    let guidanceEmbedder: TimestepEmbedding?
    let timeLinear: Linear
    let caption_projection: PixArtAlphaTextProjection
    let caption_norm: Tensor
    let transformer_blocks: [SanaTransformerBlock]
    let scale_shift_table: Tensor
    let proj_out: Linear
    public let residentBytes: Int

    /// Pixels per latent cell: the sibling `../vae` config's factor when the loader found one, else DC-AE f32's 32.
    public let latentSpatialDivisor: Int

    /// Builds the model from `w`, declaring every checkpoint key and shape (sana-architecture.md §3.6): on a
    /// collecting store this is the key set a checkpoint of `c` must hold.
    init(config c: SanaTransformerConfig, weights w: WeightStore, latentSpatialDivisor: Int = 32) {
        config = c
        precision = Kernels.effectivePrecision(w.precision).0
        self.latentSpatialDivisor = latentSpatialDivisor
        let d = c.innerDim, p = c.patchSize
        patchWeight = w("patch_embed.proj.weight", [d, c.inChannels, p, p]); patchBias = w("patch_embed.proj.bias", [d])
        if c.guidanceEmbeds {
            timestepEmbedder = TimestepEmbedding(w, "time_embed.timestep_embedder", dim: d)
            guidanceEmbedder = TimestepEmbedding(w, "time_embed.guidance_embedder", dim: d)
        } else {
            timestepEmbedder = TimestepEmbedding(w, "time_embed.emb.timestep_embedder", dim: d)
            guidanceEmbedder = nil
        }
        timeLinear = Linear(w, "time_embed.linear", out: 6 * d, in: d)
        caption_projection = PixArtAlphaTextProjection(w, "caption_projection", in: c.captionChannels, dim: d)
        caption_norm = w("caption_norm.weight", [d])
        transformer_blocks = (0..<c.numLayers).map { SanaTransformerBlock(w, "transformer_blocks.\($0)", config: c) }
        scale_shift_table = w("scale_shift_table", [2, d])
        proj_out = Linear(w, "proj_out", out: p * p * c.outputChannels, in: d)
        kernel = proj_out.weight.kernel
        residentBytes = patchWeight.byteCount + patchBias.byteCount + timestepEmbedder.bytes + (guidanceEmbedder?.bytes ?? 0)
            + timeLinear.bytes + caption_projection.bytes + caption_norm.byteCount + scale_shift_table.byteCount
            + proj_out.bytes + transformer_blocks.reduce(0) { $0 + $1.bytes }
    }

    /// A copy of `base` whose linear layers `patch` may replace (LoRA); the others are shared, not copied.
    init(patching base: SanaTransformer2DModel, _ patch: LinearPatch) throws {
        config = base.config
        precision = base.precision
        kernel = base.kernel
        latentSpatialDivisor = base.latentSpatialDivisor
        patchWeight = base.patchWeight; patchBias = base.patchBias
        caption_norm = base.caption_norm
        scale_shift_table = base.scale_shift_table
        if base.guidanceEmbedder != nil {
            timestepEmbedder = try base.timestepEmbedder.patched("time_embed.timestep_embedder", patch)
            guidanceEmbedder = try base.guidanceEmbedder?.patched("time_embed.guidance_embedder", patch)
        } else {
            timestepEmbedder = try base.timestepEmbedder.patched("time_embed.emb.timestep_embedder", patch)
            guidanceEmbedder = nil
        }
        timeLinear = try base.timeLinear.patched("time_embed.linear", patch)
        caption_projection = try base.caption_projection.patched("caption_projection", patch)
        transformer_blocks = try base.transformer_blocks.enumerated().map { i, block in
            try block.patched("transformer_blocks.\(i)", patch)
        }
        proj_out = try base.proj_out.patched("proj_out", patch)
        residentBytes = base.residentBytes
    }

    public var inChannels: Int { config.inChannels }
    public var takesGuidance: Bool { config.guidanceEmbeds }
    public var guidanceEmbedsScale: Double { config.guidanceEmbedsScale }
    public var timestepScale: Double { config.timestepScale }
    public var sampleSize: Int? { config.sampleSize }
    public var patchSize: Int { config.patchSize }

    /// Caption projection + RMSNorm and every block's cross-attention K/V.
    public func prepare(_ conditioning: Conditioning) throws -> any PreparedText {
        let y = conditioning.embeddings, m = conditioning.mask
        guard y.rank == 3, y.shape[2] == config.captionChannels else {
            throw LinearDiTInputError.invalid("encoder_hidden_states must be [B, L, \(config.captionChannels)], got \(y.shape)")
        }
        guard m.shape == [y.shape[0], y.shape[1]] else {
            throw LinearDiTInputError.invalid("encoder_attention_mask must be [B, L] = \([y.shape[0], y.shape[1]]), got \(m.shape)")
        }
        return SanaPreparedText(conditioning, projection: caption_projection, norm: caption_norm,
                                blocks: transformer_blocks)
    }

    /// Why a latent of `height × width` cells cannot be used, in the user's terms; nil when fine.
    public func latentSizeProblem(height: Int, width: Int) -> String? {
        LinearDiT.latentSizeProblem(config: config, divisor: latentSpatialDivisor, height: height, width: width)
    }

    /// Velocity for `latent` [B, C, h, w] at `timestep` [B] (and `guidance` [B] for Sana-Sprint).
    public func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?) throws -> Tensor {
        try predict(latent: latent, timestep: timestep, text: text, guidance: guidance, perturbedLayers: [],
                    blockResiduals: nil)
    }

    /// diffusers' names of the self-attention modules, one per block.
    public var selfAttentionLayerNames: [String] { (0..<config.numLayers).map { "transformer_blocks.\($0).attn1" } }

    /// `predict` with identity self-attention in the blocks `perturbedLayers` (perturbed-attention guidance).
    public func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?,
                        perturbedLayers: Set<Int>) throws -> Tensor {
        try predict(latent: latent, timestep: timestep, text: text, guidance: guidance,
                    perturbedLayers: perturbedLayers, blockResiduals: nil)
    }

    /// The forward with optional PAG layers and ControlNet residuals: `blockResiduals[i - 1]` [B, N, D] is added
    /// to the hidden states after block i, for 0 < i ≤ count (diffusers' `controlnet_block_samples`).
    func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?,
                 perturbedLayers: Set<Int>, blockResiduals: [Tensor]?) throws -> Tensor {
        guard let text = text as? SanaPreparedText else {
            throw LinearDiTInputError.invalid("the prepared text was not made by this Sana transformer")
        }
        guard latent.rank == 4, latent.shape[1] == config.inChannels else {
            throw LinearDiTInputError.invalid("latent must be [B, \(config.inChannels), h, w], got \(latent.shape)")
        }
        let b = latent.shape[0], p = config.patchSize, d = config.innerDim
        if let problem = latentSizeProblem(height: latent.shape[2], width: latent.shape[3]) {
            throw LinearDiTInputError.invalid(problem)
        }
        guard text.batch == b else {
            throw LinearDiTInputError.invalid("the text batch (\(text.batch)) differs from the latent batch (\(b))")
        }
        guard timestep.count == b else {
            throw LinearDiTInputError.invalid("timestep must hold one value per batch item (\(b)), got \(timestep.shape)")
        }
        if config.guidanceEmbeds {
            guard let g = guidance, g.count == b else {
                throw LinearDiTInputError.invalid("this model (guidance_embeds) needs a guidance value per batch item (\(b))")
            }
        }
        let hp = latent.shape[2] / p, wp = latent.shape[3] / p

        // 1. Patch embedding (+ sin-cos PE for the 2K/4K models).
        var x = embedPatches(latent)

        // 2. adaLN-single timestep (+ guidance) embedding.
        var temb = timestepEmbedder(TimestepEmbedding.sinusoid(timestep.scalars))
        if let guidanceEmbedder, let guidance {
            Ops.addInPlace(&temb, guidanceEmbedder(TimestepEmbedding.sinusoid(guidance.scalars)))
        }
        let t6 = timeLinear(Ops.silu(temb)).reshaped([b, 6, d])

        // 3. Blocks.
        for (i, (block, kv)) in zip(transformer_blocks, text.keyValues).enumerated() {
            // A block at 4K takes seconds: stop between blocks when the run is interrupted.
            try CancellationToken.checkCurrent()
            x = try block(x, t6: t6, text: kv, maskBias: text.maskBias, height: hp, width: wp,
                          perturbed: perturbedLayers.contains(i))
            if let blockResiduals, i > 0, i <= blockResiduals.count { Ops.addInPlace(&x, blockResiduals[i - 1]) }
        }

        // 4. Final modulated norm (uses temb, not t6) and projection.
        let mod = Ops.chunk(Ops.add(scale_shift_table.reshaped([1, 2, d]), temb.reshaped([b, 1, d])), 2, axis: 1)
        let normed = Ops.layerNormModulated(x, scale: mod[1], shift: mod[0], eps: 1e-6)
        let out = proj_out(normed)  // [B, N, p·p·C]

        // 5. Unpatchify.
        let c = config.outputChannels
        return Ops.permute(out.reshaped([b, hp, wp, p, p, c]), [0, 5, 1, 3, 2, 4]).reshaped([b, c, hp * p, wp * p])
    }

    func embedPatches(_ latent: Tensor) -> Tensor {
        patchEmbedding(latent, weight: patchWeight, bias: patchBias, config: config)
    }

    /// The full forward as diffusers' `SanaTransformer2DModel.forward` (prepare + predict).
    public func forward(hiddenStates: Tensor, encoderHiddenStates: Tensor, encoderAttentionMask: Tensor,
                        timestep: Tensor, guidance: Tensor? = nil) throws -> Tensor {
        let text = try prepare(Conditioning(embeddings: encoderHiddenStates, mask: encoderAttentionMask))
        return try predict(latent: hiddenStates, timestep: timestep, text: text, guidance: guidance)
    }
}

extension SanaTransformer2DModel: ActivationEstimating {
    /// Peak activations of `predict` for a latent [B, C, h, w]: per token about 8 hidden-size tensors (the
    /// residual stream, its modulated norm, q/k/v, attention outputs, cross-attention) and 5 Mix-FFN-width ones
    /// (the inverted and depthwise convolutions' 2 × hidden channels and the gated product), in fp32.
    public func activationBytes(inputShape shape: [Int]) -> Int {
        guard shape.count == 4 else { return 0 }
        let p = max(1, config.patchSize)
        let tokens = MachineMemory.product([shape[0], shape[2] / p, shape[3] / p])
        return MachineMemory.product([tokens, MachineMemory.sum([8 * config.innerDim, 5 * config.ffnHidden]), 4])
    }
}
