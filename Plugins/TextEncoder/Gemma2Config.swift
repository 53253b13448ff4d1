import Foundation
import SanaGraphKit
import Tensors

/// transformers `Gemma2Config` (`text_encoder/config.json`): the fields the decoder uses, with transformers'
/// defaults (those of google/gemma-2-2b) when the file omits them.
public struct Gemma2Config: Codable, Sendable, Equatable {
    public var vocabSize: Int = 256_000
    public var hiddenSize: Int = 2304
    public var intermediateSize: Int = 9216
    public var numHiddenLayers: Int = 26
    public var numAttentionHeads: Int = 8
    public var numKeyValueHeads: Int = 4
    public var headDim: Int = 256
    public var hiddenActivation: String = "gelu_pytorch_tanh"
    public var maxPositionEmbeddings: Int = 8192
    public var rmsNormEps: Double = 1e-6
    public var padTokenId: Int? = 0
    public var bosTokenId: Int? = 2
    public var attentionBias: Bool = false
    /// Attention scale is `query_pre_attn_scalar^-0.5` (not `head_dim^-0.5`).
    public var queryPreAttnScalar: Double = 256
    public var slidingWindow: Int? = 4096
    /// Per layer `"sliding_attention"` or `"full_attention"`; transformers' default makes even layers sliding.
    public var layerTypes: [String]? = nil
    public var finalLogitSoftcapping: Double? = 30
    public var attnLogitSoftcapping: Double? = 50
    /// RoPE base; from `rope_parameters.rope_theta` (transformers 5) or top-level `rope_theta` (older files).
    public var ropeTheta: Double = 10_000
    /// `rope_parameters.rope_type`; only `"default"` is supported.
    public var ropeType: String = "default"
    public var useBidirectionalAttention: Bool? = nil

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers", numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads", headDim = "head_dim", hiddenActivation = "hidden_activation"
        case maxPositionEmbeddings = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        case padTokenId = "pad_token_id", bosTokenId = "bos_token_id", attentionBias = "attention_bias"
        case queryPreAttnScalar = "query_pre_attn_scalar", slidingWindow = "sliding_window"
        case layerTypes = "layer_types", finalLogitSoftcapping = "final_logit_softcapping"
        case attnLogitSoftcapping = "attn_logit_softcapping", ropeTheta = "rope_theta", ropeType = "rope_type"
        case ropeParameters = "rope_parameters", useBidirectionalAttention = "use_bidirectional_attention"
        case hiddenAct = "hidden_act"
    }

    struct RopeParameters: Codable {
        var ropeTheta: Double?
        var ropeType: String?
        enum CodingKeys: String, CodingKey { case ropeTheta = "rope_theta", ropeType = "rope_type" }
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = Gemma2Config()
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? d.vocabSize
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? d.hiddenSize
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? d.intermediateSize
        numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .numHiddenLayers) ?? d.numHiddenLayers
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? d.numKeyValueHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? d.headDim
        // Old Gemma configs carried `hidden_act`; Gemma-2 uses `hidden_activation`.
        hiddenActivation = try c.decodeIfPresent(String.self, forKey: .hiddenActivation)
            ?? c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? d.hiddenActivation
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings)
            ?? d.maxPositionEmbeddings
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? d.rmsNormEps
        padTokenId = c.contains(.padTokenId) ? try c.decodeIfPresent(Int.self, forKey: .padTokenId) : d.padTokenId
        bosTokenId = c.contains(.bosTokenId) ? try c.decodeIfPresent(Int.self, forKey: .bosTokenId) : d.bosTokenId
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? d.attentionBias
        queryPreAttnScalar = try c.decodeIfPresent(Double.self, forKey: .queryPreAttnScalar) ?? d.queryPreAttnScalar
        slidingWindow = c.contains(.slidingWindow)
            ? try c.decodeIfPresent(Int.self, forKey: .slidingWindow) : d.slidingWindow
        layerTypes = try c.decodeIfPresent([String].self, forKey: .layerTypes)
        finalLogitSoftcapping = c.contains(.finalLogitSoftcapping)
            ? try c.decodeIfPresent(Double.self, forKey: .finalLogitSoftcapping) : d.finalLogitSoftcapping
        attnLogitSoftcapping = c.contains(.attnLogitSoftcapping)
            ? try c.decodeIfPresent(Double.self, forKey: .attnLogitSoftcapping) : d.attnLogitSoftcapping
        let rope = try c.decodeIfPresent(RopeParameters.self, forKey: .ropeParameters)
        ropeTheta = try rope?.ropeTheta ?? c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? d.ropeTheta
        ropeType = try rope?.ropeType ?? c.decodeIfPresent(String.self, forKey: .ropeType) ?? d.ropeType
        useBidirectionalAttention = try c.decodeIfPresent(Bool.self, forKey: .useBidirectionalAttention)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(hiddenActivation, forKey: .hiddenActivation)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(padTokenId, forKey: .padTokenId)
        try c.encode(bosTokenId, forKey: .bosTokenId)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(queryPreAttnScalar, forKey: .queryPreAttnScalar)
        try c.encode(slidingWindow, forKey: .slidingWindow)
        try c.encode(resolvedLayerTypes, forKey: .layerTypes)
        try c.encode(finalLogitSoftcapping, forKey: .finalLogitSoftcapping)
        try c.encode(attnLogitSoftcapping, forKey: .attnLogitSoftcapping)
        try c.encode(RopeParameters(ropeTheta: ropeTheta, ropeType: ropeType), forKey: .ropeParameters)
        try c.encode(useBidirectionalAttention, forKey: .useBidirectionalAttention)
    }

    /// Layer types with transformers' default (`sliding_attention` when `(i + 1) % 2 == 1`, i.e. even layers).
    public var resolvedLayerTypes: [String] {
        layerTypes ?? (0..<max(0, numHiddenLayers)).map { ($0 + 1) % 2 == 1 ? "sliding_attention" : "full_attention" }
    }

    /// The sliding window of layer `i`, or nil for global attention.
    public func slidingWindow(layer i: Int) -> Int? {
        resolvedLayerTypes[i] == "sliding_attention" ? slidingWindow : nil
    }

    /// Attention logit scale `query_pre_attn_scalar^-0.5`.
    public var attentionScale: Float { Float(1 / queryPreAttnScalar.squareRoot()) }

    /// Values far outside any Gemma-2's (docs/limits.md); checked before anything else.
    public func boundsProblems() -> [String] {
        var b = ConfigBounds()
        b.check("vocab_size", vocabSize, 1...4_000_000)
        b.check("hidden_size", hiddenSize, 1...65536)
        b.checkProduct("vocab_size × hidden_size", [vocabSize, hiddenSize], atMost: 1 << 33)
        b.check("intermediate_size", intermediateSize, 1...262_144)
        b.check("num_hidden_layers", numHiddenLayers, 0...1000)
        b.check("num_attention_heads", numAttentionHeads, 1...1024)
        b.check("num_key_value_heads", numKeyValueHeads, 1...1024)
        b.check("head_dim", headDim, 1...4096)
        b.checkProduct("num_attention_heads × head_dim", [numAttentionHeads, headDim], atMost: 262_144)
        b.check("max_position_embeddings", maxPositionEmbeddings, 1...(1 << 24))
        b.check("rms_norm_eps", rmsNormEps, 0...1)
        b.check("pad_token_id", padTokenId, 0...max(0, vocabSize - 1))
        b.check("bos_token_id", bosTokenId, 0...max(0, vocabSize - 1))
        b.check("query_pre_attn_scalar", queryPreAttnScalar, 1e-6...1e9)
        b.check("sliding_window", slidingWindow, 1...(1 << 24))
        b.check("final_logit_softcapping", finalLogitSoftcapping, 1e-6...1e9)
        b.check("attn_logit_softcapping", attnLogitSoftcapping, 1e-6...1e9)
        b.check("rope_theta", ropeTheta, 1e-6...1e12)
        if let t = layerTypes, t.count > 1000 { b.check("layer_types", t.count, 0...1000) }
        return b.problems
    }

    /// Problems that make the config unusable here (empty when fine).
    public func problems() -> [String] {
        let bounds = boundsProblems()
        guard bounds.isEmpty else { return bounds }
        var p: [String] = []
        if vocabSize <= 0 || hiddenSize <= 0 || intermediateSize <= 0 {
            p.append("vocab_size, hidden_size and intermediate_size must be positive")
        }
        if numHiddenLayers < 0 { p.append("num_hidden_layers must not be negative") }
        if numAttentionHeads <= 0 || numKeyValueHeads <= 0 || numAttentionHeads % max(1, numKeyValueHeads) != 0 {
            p.append("num_attention_heads (\(numAttentionHeads)) must be a positive multiple of num_key_value_heads "
                     + "(\(numKeyValueHeads))")
        }
        if headDim <= 0 || headDim % 2 != 0 { p.append("head_dim must be positive and even (RoPE), got \(headDim)") }
        if queryPreAttnScalar <= 0 { p.append("query_pre_attn_scalar must be positive") }
        if hiddenActivation != "gelu_pytorch_tanh" && hiddenActivation != "gelu_tanh"
            && hiddenActivation != "gelu" {
            p.append("hidden_activation '\(hiddenActivation)' is not supported (gelu_pytorch_tanh, gelu)")
        }
        if ropeType != "default" { p.append("rope_type '\(ropeType)' is not supported (only 'default')") }
        if let t = layerTypes {
            if t.count != numHiddenLayers {
                p.append("layer_types has \(t.count) entries for \(numHiddenLayers) layers")
            }
            let bad = Set(t).subtracting(["sliding_attention", "full_attention"])
            if !bad.isEmpty { p.append("layer_types holds unknown types \(bad.sorted())") }
        }
        if let w = slidingWindow, w <= 0 { p.append("sliding_window must be positive") }
        if useBidirectionalAttention == true {
            p.append("use_bidirectional_attention true is not supported (Gemma-2 text encoders are causal)")
        }
        if attentionBias { p.append("attention_bias true is not supported (Gemma-2 has no attention biases)") }
        return p
    }

    /// GELU flavour of the MLP (`gelu_pytorch_tanh` → tanh approximation; `gelu` → exact erf).
    var geluApproximation: GELUApproximation { hiddenActivation == "gelu" ? .none : .tanh }
}
