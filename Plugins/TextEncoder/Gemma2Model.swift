import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

// transformers' `Gemma2Model` (decoder only, no LM head), in fp32. Property names mirror the checkpoint keys
// (`layers.{i}.self_attn.q_proj.weight`, ...). Activations are [B, L, D] row-major; attention runs in the
// tokens-first layout so projections reshape to heads without a permute.

/// `Gemma2Attention`: GQA self-attention with RoPE, `query_pre_attn_scalar` scaling and logit softcapping.
struct Gemma2Attention: Sendable {
    var qProj: LinearWeight, kProj: LinearWeight, vProj: LinearWeight, oProj: LinearWeight
    let heads: Int, kvHeads: Int, headDim: Int
    let scale: Float
    let softcap: Float?

    /// `x` [B, L, D] → [B, L, D]; `cos`/`sin` [L, 1, headDim]; `mask` additive [B, 1, L, L].
    func callAsFunction(_ x: Tensor, cos: Tensor, sin: Tensor, mask: Tensor) -> Tensor {
        let b = x.shape[0], l = x.shape[1]
        var q = Ops.linear(x, weight: qProj, bias: nil).reshaped([b, l, heads, headDim])
        var k = Ops.linear(x, weight: kProj, bias: nil).reshaped([b, l, kvHeads, headDim])
        let v = Ops.linear(x, weight: vProj, bias: nil).reshaped([b, l, kvHeads, headDim])
        q = Ops.applyRotaryEmbedding(q, cos: cos, sin: sin)
        k = Ops.applyRotaryEmbedding(k, cos: cos, sin: sin)
        let a = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: mask, scale: scale,
                                              softcap: softcap, layout: .tokensFirst)
        return Ops.linear(a.reshaped([b, l, heads * headDim]), weight: oProj, bias: nil)
    }
}

/// `Gemma2MLP`: `down(act(gate(x)) · up(x))` (GeGLU with tanh GELU for Gemma-2).
struct Gemma2MLP: Sendable {
    var gateProj: LinearWeight, upProj: LinearWeight, downProj: LinearWeight
    let approximation: GELUApproximation

    func callAsFunction(_ x: Tensor) -> Tensor {
        var gate = Ops.linear(x, weight: gateProj, bias: nil)
        Ops.geluInPlace(&gate, approximate: approximation)
        Ops.mulInPlace(&gate, Ops.linear(x, weight: upProj, bias: nil))
        return Ops.linear(gate, weight: downProj, bias: nil)
    }
}

/// `Gemma2DecoderLayer`: sandwich norms around attention and MLP (pre and post), residual adds.
struct Gemma2DecoderLayer: Sendable {
    var selfAttn: Gemma2Attention
    var mlp: Gemma2MLP
    var inputLayernorm: Tensor, postAttentionLayernorm: Tensor
    var preFeedforwardLayernorm: Tensor, postFeedforwardLayernorm: Tensor
    let eps: Float
    /// Sliding window of this layer (nil: global attention).
    let slidingWindow: Int?

    func callAsFunction(_ h: Tensor, cos: Tensor, sin: Tensor, mask: Tensor) -> Tensor {
        var out = h
        let attn = selfAttn(Ops.gemmaRMSNorm(h, weight: inputLayernorm, eps: eps), cos: cos, sin: sin, mask: mask)
        Ops.addInPlace(&out, Ops.gemmaRMSNorm(attn, weight: postAttentionLayernorm, eps: eps))
        let ff = mlp(Ops.gemmaRMSNorm(out, weight: preFeedforwardLayernorm, eps: eps))
        Ops.addInPlace(&out, Ops.gemmaRMSNorm(ff, weight: postFeedforwardLayernorm, eps: eps))
        return out
    }
}

/// transformers' `Gemma2Model` forward (fp32 activations; linear layers at the load's precision): returns `last_hidden_state` (after the final norm), which is what
/// diffusers' SanaPipeline takes (`text_encoder(ids, attention_mask=mask)[0]`).
public final class Gemma2Model: Gemma2Decoder, Sendable {
    public let config: Gemma2Config
    /// `embed_tokens.weight` as stored in the checkpoint (any supported dtype), read from the file mapping: a
    /// prompt needs a few hundred of its rows, so converting the whole table to fp32 at load (Gemma-2-2B:
    /// 256 000 × 2304, 2.4 GB, a fifth of the model) would cost time and memory for nothing.
    let embedTokens: RawTensorBytes
    let layers: [Gemma2DecoderLayer]
    let norm: Tensor
    /// The precision the linear layers compute at.
    public var precision: Precision { layers.first?.mlp.downProj.precision ?? .fp32 }
    /// The kernel running the linear layers.
    public var kernel: String { layers.first?.mlp.downProj.kernel ?? "none" }

    init(config: Gemma2Config, embedTokens: RawTensorBytes, layers: [Gemma2DecoderLayer], norm: Tensor) {
        self.config = config
        self.embedTokens = embedTokens
        self.layers = layers
        self.norm = norm
    }

    /// Bytes of weights held: the fp32 layers plus the mapped embedding table (of which only the rows of
    /// tokens seen so far are actually resident).
    public var residentBytes: Int {
        var n = embedTokens.bytes.count + norm.byteCount
        for l in layers {
            n += l.selfAttn.qProj.byteCount + l.selfAttn.kProj.byteCount + l.selfAttn.vProj.byteCount
                + l.selfAttn.oProj.byteCount + l.mlp.gateProj.byteCount + l.mlp.upProj.byteCount
                + l.mlp.downProj.byteCount + 4 * l.inputLayernorm.byteCount
        }
        return n
    }

    /// `embed_tokens(ids) · normalizer` (see `embed(_:table:config:)`).
    func embed(_ ids: [[Int]]) throws(Gemma2InputError) -> Tensor {
        try Self.embed(ids, table: embedTokens, config: config)
    }

    /// `embed_tokens(ids) · normalizer`, gathered on the host from `table` (any stored dtype) as fp32 [B, L, D].
    /// transformers builds the normalizer as `tensor(hidden_size**0.5)` cast to the activation dtype; activations
    /// here are fp32, so it is `Float(sqrt(hidden_size))` (for bf16 weights run in bf16 it would round to bf16,
    /// which leaves sqrt(2304) = 48 and sqrt(256) = 16 unchanged).
    static func embed(_ ids: [[Int]], table embedTokens: RawTensorBytes,
                      config: Gemma2Config) throws(Gemma2InputError) -> Tensor {
        let b = ids.count, l = ids.first?.count ?? 0, d = config.hiddenSize
        let out = Tensor(uninitialized: [b, l, d])
        let normalizer = Float(Double(d).squareRoot())
        guard let table = embedTokens.bytes.baseAddress else { return out }
        let rowBytes = d * embedTokens.dtype.size
        for (bi, row) in ids.enumerated() {
            guard row.count == l else { throw .raggedBatch }
            for (li, id) in row.enumerated() {
                guard id >= 0 && id < config.vocabSize else {
                    throw .tokenOutOfRange(id: id, vocabSize: config.vocabSize)
                }
                let dst = out.storage.pointer + (bi * l + li) * d
                DTypeConversion.decode(embedTokens.dtype, from: table + id * rowBytes, count: d, into: dst)
                for j in 0..<d { dst[j] *= normalizer }
            }
        }
        return out
    }

    /// Throws unless `inputIds` and `attentionMask` are [B][L] of one shape.
    static func checkBatch(_ inputIds: [[Int]], _ attentionMask: [[Int]]) throws(Gemma2InputError) {
        guard attentionMask.count == inputIds.count,
              zip(attentionMask, inputIds).allSatisfy({ $0.count == $1.count }) else {
            throw .raggedBatch
        }
    }

    /// The additive mask transformers builds for one layer type: key `j` is visible from query `i` when
    /// `j ≤ i`, `attention_mask[b][j] == 1` and (sliding layers) `i − j < window`; hidden keys get
    /// `finfo(float32).min`. Shape [B, 1, L, L].
    public static func additiveMask(_ attentionMask: [[Int]], length l: Int, window: Int?) -> Tensor {
        let b = attentionMask.count
        let mask = Tensor(uninitialized: [b, 1, l, l])
        let p = mask.storage.pointer
        let hidden = -Float.greatestFiniteMagnitude
        for bi in 0..<b {
            for i in 0..<l {
                let row = p + (bi * l + i) * l
                for j in 0..<l {
                    var visible = j <= i && attentionMask[bi][j] != 0
                    if let w = window, i - j >= w { visible = false }
                    row[j] = visible ? 0 : hidden
                }
            }
        }
        return mask
    }

    /// `last_hidden_state` [B, L, hidden] for right-padded `inputIds` [B][L] with `attentionMask` [B][L] (1 = token).
    /// Positions are `0..<L` as transformers uses when no `position_ids` are given. `afterLayer` is called after
    /// each decoder layer (progress, cancellation).
    public func callAsFunction(inputIds: [[Int]], attentionMask: [[Int]],
                               afterLayer: (Int) throws -> Void = { _ in }) throws -> Tensor {
        try Self.checkBatch(inputIds, attentionMask)
        var h = try embed(inputIds)
        let l = h.shape[1]
        guard l > 0 else { return Ops.gemmaRMSNorm(h, weight: norm, eps: Float(config.rmsNormEps)) }
        let rope = Ops.rotaryCosSin(positions: Array(0..<l), headDim: config.headDim, theta: Float(config.ropeTheta))
        let cos = rope.cos.reshaped([l, 1, config.headDim]), sin = rope.sin.reshaped([l, 1, config.headDim])
        let full = Self.additiveMask(attentionMask, length: l, window: nil)
        // A sliding window only changes the mask when the sequence is longer than the window.
        let windows = Set(layers.compactMap(\.slidingWindow).filter { $0 < l })
        var sliding: [Int: Tensor] = [:]
        for w in windows { sliding[w] = Self.additiveMask(attentionMask, length: l, window: w) }
        for (i, layer) in layers.enumerated() {
            let mask = layer.slidingWindow.flatMap { sliding[$0] } ?? full
            h = layer(h, cos: cos, sin: sin, mask: mask)
            try afterLayer(i)
        }
        return Ops.gemmaRMSNorm(h, weight: norm, eps: Float(config.rmsNormEps))
    }
}

/// Inputs the decoder cannot take (a tokenizer that does not belong to the model, or a malformed batch).
public enum Gemma2InputError: CategorizedError, Equatable {
    case tokenOutOfRange(id: Int, vocabSize: Int)
    case raggedBatch

    public var category: ErrorCategory { .modelFile }

    public var description: String {
        switch self {
        case let .tokenOutOfRange(id, vocab):
            return "the tokenizer produced token id \(id) but the text encoder has only \(vocab) embeddings; "
                + "the tokenizer/ and text_encoder/ folders do not belong together"
        case .raggedBatch:
            return "token id rows of a batch must all have the same length"
        }
    }
}
