import Foundation
import SanaGraphKit

/// diffusers `SanaTransformer2DModel` config (`transformer/config.json`). Every field of the constructor, with
/// diffusers' default when the file omits it (older hub configs lack `interpolation_scale`, `qk_norm`,
/// `guidance_embeds*` and `timestep_scale`).
public struct SanaTransformerConfig: Codable, Sendable, Equatable {
    public var inChannels: Int = 32
    /// `nil` in the file means "same as `in_channels`"; use `outputChannels`.
    public var outChannels: Int? = 32
    public var numAttentionHeads: Int = 70
    public var attentionHeadDim: Int = 32
    public var numLayers: Int = 20
    public var numCrossAttentionHeads: Int = 20
    public var crossAttentionHeadDim: Int = 112
    public var crossAttentionDim: Int? = 2240
    public var captionChannels: Int = 2304
    public var mlpRatio: Double = 2.5
    public var dropout: Double = 0
    public var attentionBias: Bool = false
    public var sampleSize: Int = 32
    public var patchSize: Int = 1
    public var normElementwiseAffine: Bool = false
    public var normEps: Double = 1e-6
    /// Set for the 2K/4K models: adds the 2-D sin-cos positional embedding.
    public var interpolationScale: Double? = nil
    /// Sana-Sprint: the model takes a guidance embedding.
    public var guidanceEmbeds: Bool = false
    /// Applied by the pipeline (guidance = cfg · scale), not by the model.
    public var guidanceEmbedsScale: Double = 0.1
    /// `nil` or `"rms_norm_across_heads"` (Sana 1.5 / Sprint).
    public var qkNorm: String? = nil
    /// Applied by the pipeline to the timestep before the model (diffusers' forward does not use it).
    public var timestepScale: Double = 1.0

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", outChannels = "out_channels"
        case numAttentionHeads = "num_attention_heads", attentionHeadDim = "attention_head_dim"
        case numLayers = "num_layers", numCrossAttentionHeads = "num_cross_attention_heads"
        case crossAttentionHeadDim = "cross_attention_head_dim", crossAttentionDim = "cross_attention_dim"
        case captionChannels = "caption_channels", mlpRatio = "mlp_ratio", dropout
        case attentionBias = "attention_bias", sampleSize = "sample_size", patchSize = "patch_size"
        case normElementwiseAffine = "norm_elementwise_affine", normEps = "norm_eps"
        case interpolationScale = "interpolation_scale", guidanceEmbeds = "guidance_embeds"
        case guidanceEmbedsScale = "guidance_embeds_scale", qkNorm = "qk_norm", timestepScale = "timestep_scale"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SanaTransformerConfig()
        inChannels = try c.decodeIfPresent(Int.self, forKey: .inChannels) ?? d.inChannels
        // An explicit null means "same as in_channels"; a missing key means diffusers' default 32.
        if c.contains(.outChannels) {
            outChannels = try c.decodeIfPresent(Int.self, forKey: .outChannels)
        } else {
            outChannels = d.outChannels
        }
        numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numAttentionHeads) ?? d.numAttentionHeads
        attentionHeadDim = try c.decodeIfPresent(Int.self, forKey: .attentionHeadDim) ?? d.attentionHeadDim
        numLayers = try c.decodeIfPresent(Int.self, forKey: .numLayers) ?? d.numLayers
        numCrossAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .numCrossAttentionHeads)
            ?? d.numCrossAttentionHeads
        crossAttentionHeadDim = try c.decodeIfPresent(Int.self, forKey: .crossAttentionHeadDim)
            ?? d.crossAttentionHeadDim
        if c.contains(.crossAttentionDim) {
            crossAttentionDim = try c.decodeIfPresent(Int.self, forKey: .crossAttentionDim)
        } else {
            crossAttentionDim = d.crossAttentionDim
        }
        captionChannels = try c.decodeIfPresent(Int.self, forKey: .captionChannels) ?? d.captionChannels
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio) ?? d.mlpRatio
        dropout = try c.decodeIfPresent(Double.self, forKey: .dropout) ?? d.dropout
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? d.attentionBias
        sampleSize = try c.decodeIfPresent(Int.self, forKey: .sampleSize) ?? d.sampleSize
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? d.patchSize
        normElementwiseAffine = try c.decodeIfPresent(Bool.self, forKey: .normElementwiseAffine)
            ?? d.normElementwiseAffine
        normEps = try c.decodeIfPresent(Double.self, forKey: .normEps) ?? d.normEps
        interpolationScale = try c.decodeIfPresent(Double.self, forKey: .interpolationScale)
        guidanceEmbeds = try c.decodeIfPresent(Bool.self, forKey: .guidanceEmbeds) ?? d.guidanceEmbeds
        guidanceEmbedsScale = try c.decodeIfPresent(Double.self, forKey: .guidanceEmbedsScale)
            ?? d.guidanceEmbedsScale
        qkNorm = try c.decodeIfPresent(String.self, forKey: .qkNorm)
        timestepScale = try c.decodeIfPresent(Double.self, forKey: .timestepScale) ?? d.timestepScale
    }

    /// Hidden size D = heads × head dim.
    public var innerDim: Int { numAttentionHeads * attentionHeadDim }
    /// Output channels (`out_channels or in_channels`).
    public var outputChannels: Int { outChannels ?? inChannels }
    /// Mix-FFN hidden channels, `int(mlp_ratio · D)`.
    public var ffnHidden: Int { Int(mlpRatio * Double(innerDim)) }
    /// Whether q/k RMSNorm is on.
    public var usesQKNorm: Bool { qkNorm != nil }

    /// Values far outside any SANA model's (docs/limits.md); checked before anything else.
    public func boundsProblems() -> [String] {
        var b = ConfigBounds()
        b.check("in_channels", inChannels, 1...4096)
        b.check("out_channels", outChannels, 1...4096)
        b.check("num_attention_heads", numAttentionHeads, 1...1024)
        b.check("attention_head_dim", attentionHeadDim, 1...1024)
        b.checkProduct("num_attention_heads × attention_head_dim", [numAttentionHeads, attentionHeadDim], atMost: 65536)
        b.check("num_layers", numLayers, 0...1000)
        b.check("num_cross_attention_heads", numCrossAttentionHeads, 1...1024)
        b.check("cross_attention_head_dim", crossAttentionHeadDim, 1...1024)
        b.checkProduct("num_cross_attention_heads × cross_attention_head_dim",
                       [numCrossAttentionHeads, crossAttentionHeadDim], atMost: 65536)
        b.check("cross_attention_dim", crossAttentionDim, 1...65536)
        b.check("caption_channels", captionChannels, 1...65536)
        b.check("mlp_ratio", mlpRatio, 0.01...64)
        b.check("dropout", dropout, 0...1)
        b.check("sample_size", sampleSize, 1...1024)
        b.check("patch_size", patchSize, 1...64)
        b.check("norm_eps", normEps, 0...1)
        b.check("interpolation_scale", interpolationScale, 0.001...1000)
        b.check("guidance_embeds_scale", guidanceEmbedsScale, -1e6...1e6)
        b.check("timestep_scale", timestepScale, -1e6...1e6)
        return b.problems
    }

    /// Problems that make the config unusable here (empty when fine).
    public func problems() -> [String] {
        let bounds = boundsProblems()
        guard bounds.isEmpty else { return bounds }
        var p: [String] = []
        if inChannels <= 0 || outputChannels <= 0 { p.append("in_channels/out_channels must be positive") }
        if numAttentionHeads <= 0 || attentionHeadDim <= 0 { p.append("num_attention_heads and attention_head_dim must be positive") }
        if numCrossAttentionHeads <= 0 || crossAttentionHeadDim <= 0 {
            p.append("num_cross_attention_heads and cross_attention_head_dim must be positive")
        }
        if numLayers < 0 { p.append("num_layers must not be negative") }
        if patchSize <= 0 { p.append("patch_size must be positive") }
        if sampleSize <= 0 { p.append("sample_size must be positive") }
        if captionChannels <= 0 { p.append("caption_channels must be positive") }
        if ffnHidden <= 0 { p.append("mlp_ratio gives no Mix-FFN channels") }
        if crossAttentionDim == nil {
            p.append("cross_attention_dim null (no cross-attention) is not supported by diffusers' Sana either")
        } else if crossAttentionDim != innerDim {
            p.append("cross_attention_dim \(crossAttentionDim!) must equal num_attention_heads × attention_head_dim "
                     + "= \(innerDim) (the caption projection outputs that size)")
        }
        if let q = qkNorm, q != "rms_norm_across_heads" {
            p.append("qk_norm '\(q)' is not supported (only null or 'rms_norm_across_heads')")
        }
        if normElementwiseAffine { p.append("norm_elementwise_affine true is not supported (Sana uses false)") }
        if interpolationScale != nil && innerDim % 4 != 0 {
            p.append("the sin-cos positional embedding needs a hidden size divisible by 4, got \(innerDim)")
        }
        return p
    }
}
