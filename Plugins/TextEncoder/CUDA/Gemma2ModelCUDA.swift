import CUDA
import Foundation
import SanaGraphKit
import Safetensors
import Tensors

/// transformers' `Gemma2Model` (SANA's text encoder) on an NVIDIA GPU: the same function as `Gemma2Model`, with bf16
/// weights and GEMM operands, fp32 accumulation (cuBLASLt), and the residual stream, RMSNorm statistics (Gemma's
/// `1 + w`), RoPE, logit soft-capping and softmax in fp32 (`GemmaKernels`, `NNKernels`).
///
/// The embedding table stays on the host, in its file's dtype: a prompt needs a few hundred of its rows (Gemma-2-2B:
/// 256 000 × 2304, 1.2 GB in bf16), so the rows are gathered there (as the CPU model does) and the fp32 activations
/// uploaded (2.7 MB for 300 tokens). The last hidden state comes back as a host fp32 tensor, so `SanaTextEncoder`
/// drives this model unchanged.
public final class Gemma2ModelCUDA: Gemma2Decoder, @unchecked Sendable {
    public let config: Gemma2Config
    public let context: CUDAContext
    let nn: NNKernels
    let kernels: GemmaKernels
    let gemm: Gemm
    /// `embed_tokens.weight` as stored, read from the file mapping (see `Gemma2Model.embedTokens`).
    let embedTokens: RawTensorBytes
    let layers: [Layer]
    /// `1 + norm.weight` (fp32).
    let finalNorm: DeviceTensor
    /// RoPE inverse frequencies `1 / theta^(2i / head_dim)` (fp32 [head_dim / 2], as transformers computes them).
    let invFreq: DeviceTensor
    /// GPU memory the weights take.
    public let deviceBytes: Int

    struct Layer {
        /// q|k|v and gate|up stacked: one GEMM each.
        let qkv: DeviceLinear, o: DeviceLinear, gateUp: DeviceLinear, down: DeviceLinear
        /// Gemma's `1 + weight` of the four norms (fp32).
        let inputNorm, postAttentionNorm, preFeedforwardNorm, postFeedforwardNorm: DeviceTensor
        /// Sliding window of this layer (nil: global attention).
        let window: Int?
        var bytes: Int { [qkv, o, gateUp, down].reduce(0) { $0 + $1.bytes } + 4 * inputNorm.byteCount }
    }

    /// Builds the model from a checked store (`Gemma2Model.checkedWeights`), reading keys by name.
    init(config c: Gemma2Config, weights w: WeightStore, context: CUDAContext) throws {
        config = c
        self.context = context
        try context.bind()
        nn = try NNKernels(context: context)
        kernels = try GemmaKernels(context: context)
        gemm = try context.gemm()
        func norm(_ key: String) throws -> DeviceTensor {
            let weight = w(key)
            return try DeviceTensor(Tensor(shape: weight.shape, values: weight.scalars.map { 1 + $0 }), on: context)
        }
        // bf16 files go up as stored (no fp32 copy on the host).
        func linear(_ keys: [String], f32: Bool) throws -> DeviceLinear {
            try DeviceLinear(stacking: keys.map { w.raw($0, w.expected[$0] ?? [0, 0]) }, outputF32: f32, on: context)
        }
        layers = try (0..<c.numHiddenLayers).map { i in
            let p = "layers.\(i)."
            return Layer(
                qkv: try linear(["q_proj", "k_proj", "v_proj"].map { p + "self_attn.\($0).weight" }, f32: false),
                o: try linear([p + "self_attn.o_proj.weight"], f32: true),
                gateUp: try linear([p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"], f32: true),
                down: try linear([p + "mlp.down_proj.weight"], f32: true),
                inputNorm: try norm(p + "input_layernorm.weight"),
                postAttentionNorm: try norm(p + "post_attention_layernorm.weight"),
                preFeedforwardNorm: try norm(p + "pre_feedforward_layernorm.weight"),
                postFeedforwardNorm: try norm(p + "post_feedforward_layernorm.weight"),
                window: c.slidingWindow(layer: i))
        }
        finalNorm = try norm("norm.weight")
        let frequencies = Self.ropeInverseFrequencies(headDim: c.headDim, theta: c.ropeTheta)
        invFreq = try DeviceTensor(Tensor(shape: [frequencies.count], values: frequencies), on: context)
        embedTokens = w.raw("embed_tokens.weight", [c.vocabSize, c.hiddenSize], readAhead: false)
        deviceBytes = layers.reduce(0) { $0 + $1.bytes } + finalNorm.byteCount + invFreq.byteCount
        try context.synchronize()
    }

    /// RoPE inverse frequencies `1 / theta^(2i / headDim)` in fp32, as transformers computes them at init (and keeps
    /// them: `from_pretrained` in any dtype leaves this non-persistent buffer fp32). A bf16-rounded copy (what
    /// `model.to(torch.bfloat16)` leaves) moves the angles by up to ~0.4 rad at position 299.
    public static func ropeInverseFrequencies(headDim: Int, theta: Double) -> [Float] {
        let t = Float(theta)
        return (0..<(headDim / 2)).map { i in 1 / Foundation.pow(t, Float(2 * i) / Float(headDim)) }
    }

    /// Loads a diffusers `text_encoder/` folder (as `Gemma2Model.load`: same checks, every bad key at once) onto
    /// GPU `device`. bf16 checkpoints are uploaded as stored; F32/F16 are rounded to bf16 once.
    public static func load(folder: String, variant: String? = nil, device: Int = 0) throws -> Gemma2ModelCUDA {
        let context = try CUDAContext.open(device: device)
        let model = try Gemma2Model.modelFolder(folder, variant: variant)
        let weights = try Gemma2Model.checkedWeights(WeightSource.checkpoint(model.checkpoint).renamed(Gemma2Keys.baseName),
                                                     config: model.config, path: model.weightsPath)
        let encoder = try Gemma2ModelCUDA(config: model.config, weights: weights, context: context)
        try weights.finish()
        return encoder
    }

    /// A GPU model from in-memory fp32 weights by key (base-model naming), on GPU `device`.
    public convenience init(config: Gemma2Config, tensors: [String: Tensor], device: Int = 0) throws {
        let context = try CUDAContext.open(device: device)
        let weights = try Gemma2Model.checkedWeights(.tensors(tensors), config: config, path: "(in memory)")
        try self.init(config: config, weights: weights, context: context)
        try weights.finish()
    }

    /// Host memory held: the mapped embedding table (only the rows of tokens seen so far are resident).
    public var residentBytes: Int { embedTokens.bytes.count }
    public var precision: Precision { .bf16 }
    public var kernel: String { "cuBLASLt on \(context.name) (cuda:\(context.deviceIndex))" }
    /// Whether the kernels came from the on-disk kernel cache (false: NVRTC compiled them in this process).
    public var kernelsFromDiskCache: Bool { kernels.module.fromDiskCache && nn.module.fromDiskCache }

    public func callAsFunction(inputIds: [[Int]], attentionMask: [[Int]],
                               afterLayer: (Int) throws -> Void) throws -> Tensor {
        try Gemma2Model.checkBatch(inputIds, attentionMask)
        let embeddings = try self.embeddings(inputIds)
        let b = embeddings.shape[0], l = embeddings.shape[1], d = config.hiddenSize
        guard b * l > 0 else { return embeddings }
        try context.bind()
        let out = try forward(embeddings: DeviceTensor(embeddings.reshaped([b * l, d]), on: context),
                              mask: DeviceTensor(Self.maskTensor(attentionMask), on: context), batch: b, length: l,
                              afterLayer: afterLayer)
        return try out.toHost().reshaped([b, l, d])
    }

    /// `embed_tokens(ids) · sqrt(hidden)` gathered on the host: fp32 [B, L, D] (what `forwardOnDevice` takes).
    public func embeddings(_ inputIds: [[Int]]) throws -> Tensor {
        try Gemma2Model.embed(inputIds, table: embedTokens, config: config)
    }

    /// The 0/1 attention mask as fp32 [B, L].
    static func maskTensor(_ attentionMask: [[Int]]) -> Tensor {
        Tensor(shape: [attentionMask.count, attentionMask.first?.count ?? 0],
               values: attentionMask.flatMap { $0.map { $0 != 0 ? Float(1) : 0 } })
    }

    /// The forward without host copies: fp32 `embeddings` [B·L, D] (already scaled; not modified) and fp32 `mask`
    /// [B, L] on this context → fp32 last hidden state [B·L, D] on the device. Benchmarks time this.
    public func forwardOnDevice(embeddings: DeviceTensor, mask: DeviceTensor, batch: Int, length: Int) throws -> DeviceTensor {
        try context.bind()
        return try forward(embeddings: embeddings, mask: mask, batch: batch, length: length, afterLayer: { _ in })
    }

    /// Per layer: fused q|k|v GEMM → RoPE + split into attention layouts → one strided-batch GEMM for every
    /// (batch item, KV head)'s scores (its query heads stacked as rows) → causal softmax (soft-cap, mask, window) →
    /// per batch item one strided-batch GEMM for P·V over the query heads → o_proj (fp32) → post-norm + residual +
    /// pre-FFN norm (one kernel) → gate|up GEMM (fp32) → GeGLU → down (fp32) → post-norm + residual + the next
    /// layer's input norm (or the final norm, fp32 out): 10 + B launches per layer.
    func forward(embeddings: DeviceTensor, mask: DeviceTensor, batch b: Int, length l: Int,
                 afterLayer: (Int) throws -> Void) throws -> DeviceTensor {
        let c = config, stream = context.stream
        let rows = b * l, d = c.hiddenSize, hd = c.headDim, heads = c.numAttentionHeads, kvHeads = c.numKeyValueHeads
        let group = heads / kvHeads, hq = heads * hd, inter = c.intermediateSize
        let lp = (l + 7) / 8 * 8, eps = Float(c.rmsNormEps)
        let softcap = c.attnLogitSoftcapping.map { Float($0) }
        func buffer(_ count: Int, _ dtype: DeviceDType) throws -> DeviceTensor {
            try DeviceTensor(uninitialized: [count], dtype: dtype, on: context)
        }
        // The fp32 residual stream starts as a copy of the embeddings (the caller's tensor stays unchanged).
        let x = try buffer(rows * d, .f32)
        try context.copy(device: x.pointer, from: embeddings.pointer, bytes: rows * d * 4)
        let out = try DeviceTensor(uninitialized: [rows, d], dtype: .f32, on: context)
        guard let first = layers.first else {
            try kernels.residualNorm(x: x.pointer, y: nil, postWeight: nil, nextWeight: finalNorm.pointer, outBF16: nil,
                                     outF32: out.pointer, rows: rows, dim: d, eps: eps)
            return out
        }
        let normed = try buffer(rows * d, .bf16)
        let qkv = try buffer(rows * (hq + 2 * kvHeads * hd), .bf16)
        let q = try buffer(rows * hq, .bf16), k = try buffer(rows * kvHeads * hd, .bf16), v = try buffer(rows * hq, .bf16)
        let scores = try buffer(b * heads * l * lp, .f32), probs = try buffer(b * heads * l * lp, .bf16)
        let attn = try buffer(rows * hq, .bf16), y = try buffer(rows * d, .f32)
        let gateUp = try buffer(rows * 2 * inter, .f32), act = try buffer(rows * inter, .bf16)

        try nn.rmsNorm(x: x.pointer, weight: first.inputNorm.pointer, out: normed.pointer, rows: rows, dim: d, eps: eps)
        for (i, layer) in layers.enumerated() {
            // Self-attention.
            try layer.qkv(normed.pointer, rows: rows, out: qkv.pointer, gemm: gemm, stream: stream)
            try kernels.ropeSplit(qkv: qkv.pointer, invFreq: invFreq.pointer, q: q.pointer, k: k.pointer, v: v.pointer,
                                  batch: b, length: l, heads: heads, kvHeads: kvHeads, headDim: hd)
            try gemm.run(m: l * group, n: l, k: hd,
                         a: GemmOperand(q.pointer, ld: hd, batchStride: l * group * hd),
                         b: GemmOperand(k.pointer, ld: hd, batchStride: l * hd), bTransposed: true,
                         d: GemmOperand(scores.pointer, ld: lp, batchStride: l * group * lp),
                         outputF32: true, alpha: c.attentionScale, batch: b * kvHeads, stream: stream)
            try kernels.attentionSoftmax(scores: scores.pointer, mask: mask.pointer, probabilities: probs.pointer,
                                         batch: b, kvHeads: kvHeads, group: group, length: l, ld: lp, softcap: softcap,
                                         window: layer.window)
            // P·V for all query heads of a batch item (v repeated per query head), written tokens-first.
            for bi in 0..<b {
                try gemm.run(m: l, n: hd, k: l,
                             a: GemmOperand(deviceAddress(probs.pointer, element: bi * heads * l * lp, .bf16), ld: lp,
                                            batchStride: l * lp),
                             b: GemmOperand(deviceAddress(v.pointer, element: bi * heads * l * hd, .bf16), ld: hd, batchStride: l * hd),
                             bTransposed: false,
                             d: GemmOperand(deviceAddress(attn.pointer, element: bi * l * hq, .bf16), ld: hq, batchStride: hd),
                             outputF32: false, batch: heads, stream: stream)
            }
            try layer.o(attn.pointer, rows: rows, out: y.pointer, gemm: gemm, stream: stream)
            try kernels.residualNorm(x: x.pointer, y: y.pointer, postWeight: layer.postAttentionNorm.pointer,
                                     nextWeight: layer.preFeedforwardNorm.pointer, outBF16: normed.pointer, outF32: nil,
                                     rows: rows, dim: d, eps: eps)

            // Gated MLP; the closing kernel also normalises for the next layer (or the final norm, fp32 out).
            try layer.gateUp(normed.pointer, rows: rows, out: gateUp.pointer, gemm: gemm, stream: stream)
            try kernels.geglu(gateUp.pointer, out: act.pointer, rows: rows, intermediate: inter,
                              exact: c.geluApproximation == .none)
            try layer.down(act.pointer, rows: rows, out: y.pointer, gemm: gemm, stream: stream)
            let last = i + 1 == layers.count
            try kernels.residualNorm(x: x.pointer, y: y.pointer, postWeight: layer.postFeedforwardNorm.pointer,
                                     nextWeight: last ? finalNorm.pointer : layers[i + 1].inputNorm.pointer,
                                     outBF16: last ? nil : normed.pointer, outF32: last ? out.pointer : nil,
                                     rows: rows, dim: d, eps: eps)
            try afterLayer(i)
        }
        return out
    }
}
