import CUDA
import Foundation
import DiffusionModels
import SanaGraphKit
import Tensors

/// diffusers `SanaTransformer2DModel` on an NVIDIA GPU: the same function as `SanaTransformer2DModel`, bf16
/// weights and GEMM operands with fp32 accumulation (cuBLASLt), the residual stream, norms, softmax and linear
/// attention in fp32 (project kernels, `NNKernels`). Latents and timesteps cross to the device at `predict` and
/// the velocity comes back to the host, so the samplers drive it unchanged.
public final class SanaTransformerCUDA: DenoiserModel, @unchecked Sendable {
    public let config: SanaTransformerConfig
    public let context: CUDAContext
    let kernels: NNKernels
    let gemm: Gemm

    let patch: DeviceLinear
    let timestep1: DeviceLinear, timestep2: DeviceLinear
    let guidance1: DeviceLinear?, guidance2: DeviceLinear?
    let timeLinear: DeviceLinear
    let caption1: DeviceLinear, caption2: DeviceLinear
    let captionNorm: DeviceTensor
    let blocks: [Block]
    /// Every block's `scale_shift_table`, fp32 `[layers, 6, D]`.
    let tables: DeviceTensor
    /// The final `scale_shift_table`, fp32 `[2, D]`.
    let finalTable: DeviceTensor
    let projOut: DeviceLinear

    /// Host memory held: none (the weights live on the GPU; see `deviceBytes`).
    public let residentBytes = 0
    /// GPU memory the weights take.
    public let deviceBytes: Int
    public let latentSpatialDivisor: Int

    struct Block {
        let qkv: DeviceLinear, out1: DeviceLinear
        let crossQ: DeviceLinear, crossKV: DeviceLinear, out2: DeviceLinear
        let ffInverted: DeviceLinear, ffPoint: DeviceLinear
        let depthTaps: DeviceTensor, depthBias: DeviceTensor
        let normQ1: DeviceTensor?, normK1: DeviceTensor?, normQ2: DeviceTensor?, normK2: DeviceTensor?
        var bytes: Int {
            [qkv, out1, crossQ, crossKV, out2, ffInverted, ffPoint].reduce(0) { $0 + $1.bytes }
                + depthTaps.byteCount + depthBias.byteCount
        }
    }

    init(config c: SanaTransformerConfig, weights w: WeightStore, context: CUDAContext,
         latentSpatialDivisor: Int) throws {
        guard c.attentionHeadDim == NNKernels.linearAttentionHeadDim else {
            throw CUDAError.unsupported("attention_head_dim \(c.attentionHeadDim) (the GPU linear attention is built for 32)")
        }
        config = c
        self.context = context
        self.latentSpatialDivisor = latentSpatialDivisor
        try context.bind()
        kernels = try NNKernels(context: context)
        gemm = try context.gemm()
        func linear(_ prefix: String, f32: Bool) throws -> DeviceLinear {
            try DeviceLinear(weight: w(prefix + ".weight"), bias: w.optional(prefix + ".bias"), outputF32: f32, on: context)
        }
        func f32(_ key: String) throws -> DeviceTensor { try DeviceTensor(w(key), dtype: .f32, on: context) }
        func optionalF32(_ key: String) throws -> DeviceTensor? { try w.optional(key).map { try DeviceTensor($0, on: context) } }

        patch = try DeviceLinear(weight: w("patch_embed.proj.weight"), bias: w("patch_embed.proj.bias"), outputF32: true,
                                 on: context)
        let embedder = c.guidanceEmbeds ? "time_embed.timestep_embedder" : "time_embed.emb.timestep_embedder"
        timestep1 = try linear(embedder + ".linear_1", f32: true)
        timestep2 = try linear(embedder + ".linear_2", f32: true)
        guidance1 = c.guidanceEmbeds ? try linear("time_embed.guidance_embedder.linear_1", f32: true) : nil
        guidance2 = c.guidanceEmbeds ? try linear("time_embed.guidance_embedder.linear_2", f32: true) : nil
        timeLinear = try linear("time_embed.linear", f32: true)
        caption1 = try linear("caption_projection.linear_1", f32: true)
        caption2 = try linear("caption_projection.linear_2", f32: true)
        captionNorm = try f32("caption_norm.weight")
        var blocks: [Block] = []
        var tableRows: [Tensor] = []
        for i in 0..<c.numLayers {
            let p = "transformer_blocks.\(i)."
            let qkvParts = ["to_q", "to_k", "to_v"].map { n in
                (weight: w(p + "attn1.\(n).weight"), bias: w.optional(p + "attn1.\(n).bias"))
            }
            let kvParts = ["to_k", "to_v"].map { n in
                (weight: w(p + "attn2.\(n).weight"), bias: w.optional(p + "attn2.\(n).bias"))
            }
            blocks.append(Block(
                qkv: try DeviceLinear(stacking: qkvParts, outputF32: false, on: context),
                out1: try linear(p + "attn1.to_out.0", f32: true),
                crossQ: try linear(p + "attn2.to_q", f32: false),
                crossKV: try DeviceLinear(stacking: kvParts, outputF32: false, on: context),
                out2: try linear(p + "attn2.to_out.0", f32: true),
                ffInverted: try linear(p + "ff.conv_inverted", f32: false),
                ffPoint: try linear(p + "ff.conv_point", f32: true),
                depthTaps: try DeviceTensor(Ops.depthwiseTapsChannelsLast(w(p + "ff.conv_depth.weight")), on: context),
                depthBias: try f32(p + "ff.conv_depth.bias"),
                normQ1: try optionalF32(p + "attn1.norm_q.weight"), normK1: try optionalF32(p + "attn1.norm_k.weight"),
                normQ2: try optionalF32(p + "attn2.norm_q.weight"), normK2: try optionalF32(p + "attn2.norm_k.weight")))
            tableRows.append(w(p + "scale_shift_table"))
        }
        self.blocks = blocks
        tables = try DeviceTensor(tableRows.isEmpty ? Tensor(zeros: [0, 6, c.innerDim]) : Ops.concat(tableRows, axis: 0),
                                  on: context)
        finalTable = try f32("scale_shift_table")
        projOut = try linear("proj_out", f32: true)
        deviceBytes = blocks.reduce(0) { $0 + $1.bytes } + tables.byteCount + finalTable.byteCount
            + [patch, timestep1, timestep2, timeLinear, caption1, caption2, projOut].reduce(0) { $0 + $1.bytes }
        try context.synchronize()
    }

    /// Loads a diffusers `transformer/` folder (as `SanaTransformer2DModel.load`) onto GPU `device`.
    public static func load(folder: String, variant: String? = nil, device: Int = 0) throws -> SanaTransformerCUDA {
        let context = try CUDAContext.open(device: device)
        let model = try ModelFolder<SanaTransformerConfig>(path: folder, role: "transformer/",
                                                           modelName: "SanaTransformer2DModel", variant: variant) {
            config, _ in config.problems()
        }
        let weights = try WeightStore.sanaTransformer(.checkpoint(model.checkpoint), config: model.config,
                                                      path: model.weightsPath, precision: .fp32)
        let transformer = try SanaTransformerCUDA(config: model.config, weights: weights, context: context,
                                                  latentSpatialDivisor: SanaTransformer2DModel.siblingVAEFactor(folder: folder) ?? 32)
        try weights.finish()
        return transformer
    }

    public var inChannels: Int { config.inChannels }
    public var takesGuidance: Bool { config.guidanceEmbeds }
    public var sampleSize: Int? { config.sampleSize }
    public var patchSize: Int { config.patchSize }

    var crossDim: Int { config.numCrossAttentionHeads * config.crossAttentionHeadDim }

    /// Caption projection + RMSNorm and every block's cross-attention K/V, on the GPU.
    public func prepare(_ conditioning: Conditioning) throws -> any PreparedText {
        let y = conditioning.embeddings, m = conditioning.mask
        guard y.rank == 3, y.shape[2] == config.captionChannels else {
            throw LinearDiTInputError.invalid("encoder_hidden_states must be [B, L, \(config.captionChannels)], got \(y.shape)")
        }
        guard m.shape == [y.shape[0], y.shape[1]] else {
            throw LinearDiTInputError.invalid("encoder_attention_mask must be [B, L] = \([y.shape[0], y.shape[1]]), got \(m.shape)")
        }
        try context.bind()
        let b = y.shape[0], l = y.shape[1], d = config.innerDim, rows = b * l
        let stream = context.stream
        let yDev = try DeviceTensor(y.reshaped([rows, config.captionChannels]), dtype: .bf16, on: context)
        let h = try DeviceTensor(uninitialized: [rows, d], dtype: .f32, on: context)
        let hb = try DeviceTensor(uninitialized: [rows, d], dtype: .bf16, on: context)
        try caption1(yDev.pointer, rows: rows, out: h.pointer, gemm: gemm, stream: stream)
        try kernels.activation(.geluTanh, x: h.pointer, out: hb.pointer, count: rows * d)
        try caption2(hb.pointer, rows: rows, out: h.pointer, gemm: gemm, stream: stream)
        try kernels.rmsNorm(x: h.pointer, weight: captionNorm.pointer, out: hb.pointer, rows: rows, dim: d, eps: 1e-5)
        var kv: [DeviceTensor] = []
        for block in blocks {
            let t = try DeviceTensor(uninitialized: [rows, 2 * crossDim], dtype: .bf16, on: context)
            try block.crossKV(hb.pointer, rows: rows, out: t.pointer, gemm: gemm, stream: stream)
            if let normK = block.normK2 {
                try kernels.rmsNormInPlace(t.pointer, rows: rows, dim: crossDim, ld: 2 * crossDim, weight: normK.pointer,
                                           eps: 1e-5)
            }
            kv.append(t)
        }
        let bias = Ops.mul(Ops.sub(1, m), -10_000)
        return SanaPreparedTextCUDA(keyValues: kv, maskBias: try DeviceTensor(bias, on: context), batch: b, length: l,
                                    context: context)
    }

    /// Velocity for `latent` [B, C, h, w] at `timestep` [B] (and `guidance` [B] for Sana-Sprint); the result is
    /// copied back to the host.
    public func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?) throws -> Tensor {
        guard let text = text as? SanaPreparedTextCUDA, text.context === context else {
            throw LinearDiTInputError.invalid("the prepared text was not made by this GPU Sana transformer")
        }
        guard latent.rank == 4, latent.shape[1] == config.inChannels else {
            throw LinearDiTInputError.invalid("latent must be [B, \(config.inChannels), h, w], got \(latent.shape)")
        }
        let b = latent.shape[0]
        if let problem = latentSizeProblem(config: config, divisor: latentSpatialDivisor, height: latent.shape[2],
                                           width: latent.shape[3]) {
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
        try context.bind()
        let out = try forward(latent: DeviceTensor(latent, on: context), timestep: timestep.scalars,
                              guidance: config.guidanceEmbeds ? guidance?.scalars : nil, text: text)
        return try out.toHost()
    }

    /// The whole forward on device tensors (no host copies but the latent's tiny timestep embedding input).
    func forward(latent: DeviceTensor, timestep: [Float], guidance: [Float]?, text: SanaPreparedTextCUDA) throws -> DeviceTensor {
        let c = config, stream = context.stream
        let b = latent.shape[0], p = c.patchSize, hp = latent.shape[2] / p, wp = latent.shape[3] / p
        let n = hp * wp, rows = b * n, d = c.innerDim, dc = crossDim, hidden = c.ffnHidden
        let l = text.length, lp = (l + 7) / 8 * 8, heads = c.numCrossAttentionHeads, hd = c.crossAttentionHeadDim
        func buffer(_ count: Int, _ dtype: DeviceDType) throws -> DeviceTensor {
            try DeviceTensor(uninitialized: [count], dtype: dtype, on: context)
        }

        // 1. Patch embedding (+ sin-cos PE for the 2K/4K models) into the fp32 residual stream.
        let patches = try buffer(rows * c.inChannels * p * p, .bf16)
        try kernels.patchify(latent.pointer, out: patches.pointer, batch: b, channels: c.inChannels,
                             height: hp * p, width: wp * p, patch: p)
        let x = try buffer(rows * d, .f32)
        try patch(patches.pointer, rows: rows, out: x.pointer, gemm: gemm, stream: stream)
        if let s = c.interpolationScale {
            let pe = try DeviceTensor(sincosPositionEmbedding(dim: d, height: hp, width: wp, baseSize: c.sampleSize / p,
                                                              interpolationScale: s), on: context)
            try kernels.addPeriodic(x.pointer, add: pe.pointer, count: rows * d, period: n * d)
        }

        // 2. adaLN-single: temb [B, D] and t6 [B, 6D], then every block's modulation at once.
        let temb = try embed(timestep, timestep1, timestep2)
        if let guidance, let g1 = guidance1, let g2 = guidance2 {
            let g = try embed(guidance, g1, g2)
            try kernels.gatedResidual(x: temb.pointer, y: g.pointer, gate: nil, gateBatchStride: 0, rows: b, dim: d,
                                      rowsPerBatch: 1)
        }
        let tembAct = try buffer(b * d, .bf16)
        try kernels.activation(.silu, x: temb.pointer, out: tembAct.pointer, count: b * d)
        let t6 = try buffer(b * 6 * d, .f32)
        try timeLinear(tembAct.pointer, rows: b, out: t6.pointer, gemm: gemm, stream: stream)
        let mods = try buffer(max(blocks.count, 1) * b * 6 * d, .f32)
        if !blocks.isEmpty {
            try kernels.addModulationTables(t: t6.pointer, tBatchStride: 6 * d, tKStride: d, tables: tables.pointer,
                                            out: mods.pointer, blocks: blocks.count, batch: b, k: 6, dim: d)
        }

        // 3. Blocks.
        let normed = try buffer(rows * d, .bf16), xb = try buffer(rows * d, .bf16)
        let qkv = try buffer(rows * 3 * d, .bf16), attn = try buffer(rows * d, .bf16)
        let proj = try buffer(rows * d, .f32)
        let cq = try buffer(rows * dc, .bf16), ca = try buffer(rows * dc, .bf16)
        let scores = try buffer(b * heads * n * lp, .f32), probs = try buffer(b * heads * n * lp, .bf16)
        let ff = try buffer(rows * 2 * hidden, .bf16), gated = try buffer(rows * hidden, .bf16)
        let scratch = try DeviceTensor(uninitialized: [NNKernels.linearAttentionScratchBytes(batch: b, heads: c.numAttentionHeads,
                                                                                             tokens: n) / 4],
                                       dtype: .f32, on: context)
        let eps = Float(c.normEps)
        let scale = 1 / Float(hd).squareRoot()
        for (i, block) in blocks.enumerated() {
            let mod = mods.pointer + DevicePointer(i * b * 6 * d * 4)
            func modPart(_ k: Int) -> DevicePointer { mod + DevicePointer(k * d * 4) }

            // Self-attention: ReLU linear attention on the modulated norm; gated residual (clamped as fp16 needs).
            try kernels.layerNormModulated(x: x.pointer, out: normed.pointer, rows: rows, dim: d, shift: modPart(0),
                                           scale: modPart(1), modBatchStride: 6 * d, rowsPerBatch: n, eps: eps)
            try block.qkv(normed.pointer, rows: rows, out: qkv.pointer, gemm: gemm, stream: stream)
            if let nq = block.normQ1, let nk = block.normK1 {
                try kernels.rmsNormInPlace(qkv.pointer, rows: rows, dim: d, ld: 3 * d, weight: nq.pointer, eps: 1e-5)
                try kernels.rmsNormInPlace(deviceAddress(qkv.pointer, element: d, .bf16), rows: rows, dim: d, ld: 3 * d, weight: nk.pointer,
                                           eps: 1e-5)
            }
            try kernels.reluLinearAttention(qkv: qkv.pointer, ld: 3 * d, qOffset: 0, kOffset: d, vOffset: 2 * d,
                                            out: attn.pointer, outLD: d, batch: b, tokens: n,
                                            heads: c.numAttentionHeads, scratch: scratch.pointer)
            try block.out1(attn.pointer, rows: rows, out: proj.pointer, gemm: gemm, stream: stream)
            try kernels.gatedResidual(x: x.pointer, y: proj.pointer, gate: modPart(2), gateBatchStride: 6 * d,
                                      rows: rows, dim: d, rowsPerBatch: n, clampMagnitude: 65_504, xBF16: xb.pointer)

            // Cross-attention (no norm, no gate): softmax(q kᵀ / √dh + mask) v per head, as two batched GEMMs.
            try block.crossQ(xb.pointer, rows: rows, out: cq.pointer, gemm: gemm, stream: stream)
            if let nq = block.normQ2 {
                try kernels.rmsNormInPlace(cq.pointer, rows: rows, dim: dc, ld: dc, weight: nq.pointer, eps: 1e-5)
            }
            let kv = text.keyValues[i]
            for bi in 0..<b {
                try gemm.run(m: n, n: l, k: hd,
                             a: GemmOperand(deviceAddress(cq.pointer, element: bi * n * dc, .bf16), ld: dc, batchStride: hd),
                             b: GemmOperand(deviceAddress(kv.pointer, element: bi * l * 2 * dc, .bf16), ld: 2 * dc, batchStride: hd),
                             bTransposed: true,
                             d: GemmOperand(deviceAddress(scores.pointer, element: bi * heads * n * lp, .f32), ld: lp, batchStride: n * lp),
                             outputF32: true, alpha: scale, batch: heads, stream: stream)
            }
            try kernels.maskedSoftmax(scores: scores.pointer, bias: text.maskBias.pointer, out: probs.pointer,
                                      rows: b * heads * n, cols: l, ld: lp, rowsPerBatch: heads * n)
            for bi in 0..<b {
                try gemm.run(m: n, n: hd, k: l,
                             a: GemmOperand(deviceAddress(probs.pointer, element: bi * heads * n * lp, .bf16), ld: lp, batchStride: n * lp),
                             b: GemmOperand(deviceAddress(kv.pointer, element: bi * l * 2 * dc + dc, .bf16), ld: 2 * dc, batchStride: hd),
                             bTransposed: false,
                             d: GemmOperand(deviceAddress(ca.pointer, element: bi * n * dc, .bf16), ld: dc, batchStride: hd),
                             outputF32: false, batch: heads, stream: stream)
            }
            try block.out2(ca.pointer, rows: rows, out: x.pointer, accumulate: true, gemm: gemm, stream: stream)

            // Mix-FFN: 1×1 → SiLU → depthwise 3×3 → GLU (one kernel) → 1×1, gated residual.
            try kernels.layerNormModulated(x: x.pointer, out: normed.pointer, rows: rows, dim: d, shift: modPart(3),
                                           scale: modPart(4), modBatchStride: 6 * d, rowsPerBatch: n, eps: eps)
            try block.ffInverted(normed.pointer, rows: rows, out: ff.pointer, gemm: gemm, stream: stream)
            try kernels.depthwiseConv3x3GLU(ff.pointer, taps: block.depthTaps.pointer, bias: block.depthBias.pointer,
                                            out: gated.pointer, batch: b, height: hp, width: wp, channels: hidden)
            try block.ffPoint(gated.pointer, rows: rows, out: proj.pointer, gemm: gemm, stream: stream)
            try kernels.gatedResidual(x: x.pointer, y: proj.pointer, gate: modPart(5), gateBatchStride: 6 * d,
                                      rows: rows, dim: d, rowsPerBatch: n)
        }

        // 4. Final modulated norm (shift/scale from temb, not t6), projection, unpatchify.
        let finalMod = try buffer(b * 2 * d, .f32)
        try kernels.addModulationTables(t: temb.pointer, tBatchStride: d, tKStride: 0, tables: finalTable.pointer,
                                        out: finalMod.pointer, blocks: 1, batch: b, k: 2, dim: d)
        try kernels.layerNormModulated(x: x.pointer, out: normed.pointer, rows: rows, dim: d, shift: finalMod.pointer,
                                       scale: finalMod.pointer + DevicePointer(d * 4), modBatchStride: 2 * d,
                                       rowsPerBatch: n, eps: 1e-6)
        let outC = c.outputChannels
        let y = try buffer(rows * p * p * outC, .f32)
        try projOut(normed.pointer, rows: rows, out: y.pointer, gemm: gemm, stream: stream)
        let velocity = try DeviceTensor(uninitialized: [b, outC, hp * p, wp * p], dtype: .f32, on: context)
        try kernels.unpatchify(y.pointer, out: velocity.pointer, batch: b, channels: outC, hp: hp, wp: wp, patch: p)
        return velocity
    }

    /// `TimestepEmbedding(sinusoid(t))`: linear_1 → SiLU → linear_2, fp32 `[B, D]`.
    private func embed(_ t: [Float], _ l1: DeviceLinear, _ l2: DeviceLinear) throws -> DeviceTensor {
        let b = t.count, d = config.innerDim
        let sin = try DeviceTensor(TimestepEmbedding.sinusoid(t), dtype: .bf16, on: context)
        let h = try DeviceTensor(uninitialized: [b, d], dtype: .f32, on: context)
        let hb = try DeviceTensor(uninitialized: [b, d], dtype: .bf16, on: context)
        try l1(sin.pointer, rows: b, out: h.pointer, gemm: gemm, stream: context.stream)
        try kernels.activation(.silu, x: h.pointer, out: hb.pointer, count: b * d)
        let out = try DeviceTensor(uninitialized: [b, d], dtype: .f32, on: context)
        try l2(hb.pointer, rows: b, out: out.pointer, gemm: gemm, stream: context.stream)
        return out
    }

    /// `predict` without the host copies: the velocity stays on the device (benchmarks, device-side pipelines).
    public func forwardOnDevice(latent: DeviceTensor, timestep: [Float], guidance: [Float]? = nil,
                                text: any PreparedText) throws -> DeviceTensor {
        guard let text = text as? SanaPreparedTextCUDA, text.context === context else {
            throw LinearDiTInputError.invalid("the prepared text was not made by this GPU Sana transformer")
        }
        try context.bind()
        return try forward(latent: latent, timestep: timestep, guidance: guidance, text: text)
    }

    /// Whether the kernels came from the on-disk kernel cache (false: NVRTC compiled them in this process).
    public var kernelsFromDiskCache: Bool { kernels.module.fromDiskCache }

    /// The full forward as diffusers' `SanaTransformer2DModel.forward` (prepare + predict).
    public func forward(hiddenStates: Tensor, encoderHiddenStates: Tensor, encoderAttentionMask: Tensor,
                        timestep: Tensor, guidance: Tensor? = nil) throws -> Tensor {
        let text = try prepare(Conditioning(embeddings: encoderHiddenStates, mask: encoderAttentionMask))
        return try predict(latent: hiddenStates, timestep: timestep, text: text, guidance: guidance)
    }
}

/// Text state on the GPU: per block the cross-attention K|V (bf16 `[B·L, 2·Dc]`) and the mask bias (fp32 `[B, L]`).
final class SanaPreparedTextCUDA: PreparedText, @unchecked Sendable {
    let keyValues: [DeviceTensor]
    let maskBias: DeviceTensor
    let batch: Int, length: Int
    let context: CUDAContext
    init(keyValues: [DeviceTensor], maskBias: DeviceTensor, batch: Int, length: Int, context: CUDAContext) {
        self.keyValues = keyValues; self.maskBias = maskBias; self.batch = batch; self.length = length
        self.context = context
    }
}
