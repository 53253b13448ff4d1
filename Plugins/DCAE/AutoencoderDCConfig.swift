import Foundation
import SanaGraphKit

/// A config value diffusers accepts as either one string for every stage or one string per stage
/// (`decoder_block_types: "ResBlock"` or `["ResBlock", "EfficientViTBlock", …]`).
public enum PerStage: Codable, Sendable, Equatable {
    case all(String)
    case each([String])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .all(s) } else { self = .each(try c.decode([String].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .all(let s): try c.encode(s)
        case .each(let xs): try c.encode(xs)
        }
    }

    /// The value of stage `i` of `count` (nil when a list is too short).
    func stage(_ i: Int) -> String? {
        switch self {
        case .all(let s): return s
        case .each(let xs): return i < xs.count ? xs[i] : nil
        }
    }

    func count(matches n: Int) -> Bool {
        if case .each(let xs) = self { return xs.count == n }
        return true
    }
}

/// diffusers `AutoencoderDC` config (`vae/config.json`). Every constructor argument, with diffusers' default
/// (which is the dc-ae-f32c32-sana-1.0 architecture apart from the block/sampler types) when the file omits it.
public struct AutoencoderDCConfig: Codable, Sendable, Equatable {
    public var inChannels: Int = 3
    public var latentChannels: Int = 32
    public var attentionHeadDim: Int = 32
    public var encoderBlockTypes: PerStage = .all("ResBlock")
    public var decoderBlockTypes: PerStage = .all("ResBlock")
    public var encoderBlockOutChannels: [Int] = [128, 256, 512, 512, 1024, 1024]
    public var decoderBlockOutChannels: [Int] = [128, 256, 512, 512, 1024, 1024]
    public var encoderLayersPerBlock: [Int] = [2, 2, 2, 3, 3, 3]
    public var decoderLayersPerBlock: [Int] = [3, 3, 3, 3, 3, 3]
    public var encoderQkvMultiscales: [[Int]] = [[], [], [], [5], [5], [5]]
    public var decoderQkvMultiscales: [[Int]] = [[], [], [], [5], [5], [5]]
    /// "pixel_shuffle" (conv then pixel shuffle) or "interpolate" (nearest ×2 then conv).
    public var upsampleBlockType: String = "pixel_shuffle"
    /// "pixel_unshuffle" (conv then pixel unshuffle) or anything else, e.g. "Conv" (stride-2 conv).
    public var downsampleBlockType: String = "pixel_unshuffle"
    public var decoderNormTypes: PerStage = .all("rms_norm")
    public var decoderActFns: PerStage = .all("silu")
    public var encoderOutShortcut: Bool = true
    public var decoderInShortcut: Bool = true
    public var decoderConvActFn: String = "relu"
    /// Latents are `encode(x) · scaling_factor` for the denoiser; decode divides it back out.
    public var scalingFactor: Double = 1.0

    enum CodingKeys: String, CodingKey {
        case inChannels = "in_channels", latentChannels = "latent_channels", attentionHeadDim = "attention_head_dim"
        case encoderBlockTypes = "encoder_block_types", decoderBlockTypes = "decoder_block_types"
        case encoderBlockOutChannels = "encoder_block_out_channels", decoderBlockOutChannels = "decoder_block_out_channels"
        case encoderLayersPerBlock = "encoder_layers_per_block", decoderLayersPerBlock = "decoder_layers_per_block"
        case encoderQkvMultiscales = "encoder_qkv_multiscales", decoderQkvMultiscales = "decoder_qkv_multiscales"
        case upsampleBlockType = "upsample_block_type", downsampleBlockType = "downsample_block_type"
        case decoderNormTypes = "decoder_norm_types", decoderActFns = "decoder_act_fns"
        case encoderOutShortcut = "encoder_out_shortcut", decoderInShortcut = "decoder_in_shortcut"
        case decoderConvActFn = "decoder_conv_act_fn", scalingFactor = "scaling_factor"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AutoencoderDCConfig()
        func get<T: Decodable>(_ key: CodingKeys, _ fallback: T) throws -> T {
            try c.decodeIfPresent(T.self, forKey: key) ?? fallback
        }
        inChannels = try get(.inChannels, d.inChannels)
        latentChannels = try get(.latentChannels, d.latentChannels)
        attentionHeadDim = try get(.attentionHeadDim, d.attentionHeadDim)
        encoderBlockTypes = try get(.encoderBlockTypes, d.encoderBlockTypes)
        decoderBlockTypes = try get(.decoderBlockTypes, d.decoderBlockTypes)
        encoderBlockOutChannels = try get(.encoderBlockOutChannels, d.encoderBlockOutChannels)
        decoderBlockOutChannels = try get(.decoderBlockOutChannels, d.decoderBlockOutChannels)
        encoderLayersPerBlock = try get(.encoderLayersPerBlock, d.encoderLayersPerBlock)
        decoderLayersPerBlock = try get(.decoderLayersPerBlock, d.decoderLayersPerBlock)
        encoderQkvMultiscales = try get(.encoderQkvMultiscales, d.encoderQkvMultiscales)
        decoderQkvMultiscales = try get(.decoderQkvMultiscales, d.decoderQkvMultiscales)
        upsampleBlockType = try get(.upsampleBlockType, d.upsampleBlockType)
        downsampleBlockType = try get(.downsampleBlockType, d.downsampleBlockType)
        decoderNormTypes = try get(.decoderNormTypes, d.decoderNormTypes)
        decoderActFns = try get(.decoderActFns, d.decoderActFns)
        encoderOutShortcut = try get(.encoderOutShortcut, d.encoderOutShortcut)
        decoderInShortcut = try get(.decoderInShortcut, d.decoderInShortcut)
        decoderConvActFn = try get(.decoderConvActFn, d.decoderConvActFn)
        scalingFactor = try get(.scalingFactor, d.scalingFactor)
    }

    /// Spatial compression `2^(stages − 1)` (diffusers `spatial_compression_ratio`).
    public var spatialCompressionRatio: Int { 1 << max(0, encoderBlockOutChannels.count - 1) }

    static let blockTypes = ["ResBlock", "EfficientViTBlock"]
    static let normTypes = ["rms_norm", "batch_norm"]
    static let activations = ["silu", "swish", "relu", "gelu", "mish"]

    /// Values far outside any DC-AE's (docs/limits.md); checked before anything else.
    public func boundsProblems() -> [String] {
        var b = ConfigBounds()
        b.check("in_channels", inChannels, 1...64)
        b.check("latent_channels", latentChannels, 1...1024)
        b.check("attention_head_dim", attentionHeadDim, 1...4096)
        for (side, out, layers, ms) in [("encoder", encoderBlockOutChannels, encoderLayersPerBlock, encoderQkvMultiscales),
                                        ("decoder", decoderBlockOutChannels, decoderLayersPerBlock, decoderQkvMultiscales)] {
            b.check("\(side)_block_out_channels", out, count: 12, each: 1...16384)
            b.check("\(side)_layers_per_block", layers, count: 12, each: 0...64)
            if ms.count > 12 { b.check("\(side)_qkv_multiscales", ms.map(\.count), count: 12, each: 0...8) }
            for (i, scales) in ms.enumerated().prefix(12) {
                b.check("\(side)_qkv_multiscales[\(i)]", scales, count: 8, each: 1...63)
            }
        }
        b.check("scaling_factor", scalingFactor, -1e6...1e6)
        return b.problems
    }

    /// Problems that make the config unusable here (empty when fine).
    public func problems() -> [String] {
        let bounds = boundsProblems()
        guard bounds.isEmpty else { return bounds }
        var p: [String] = []
        if inChannels <= 0 || latentChannels <= 0 { p.append("in_channels and latent_channels must be positive") }
        if attentionHeadDim <= 0 { p.append("attention_head_dim must be positive") }
        for (side, out, layers, ms, types) in [
            ("encoder", encoderBlockOutChannels, encoderLayersPerBlock, encoderQkvMultiscales, encoderBlockTypes),
            ("decoder", decoderBlockOutChannels, decoderLayersPerBlock, decoderQkvMultiscales, decoderBlockTypes),
        ] {
            let n = out.count
            if n == 0 { p.append("\(side)_block_out_channels is empty"); continue }
            if out.contains(where: { $0 <= 0 }) { p.append("\(side)_block_out_channels must be positive") }
            if layers.count != n || ms.count != n || !types.count(matches: n) {
                p.append("\(side): block_out_channels, layers_per_block, qkv_multiscales and block_types need one entry per stage (\(n))")
                continue
            }
            if layers.contains(where: { $0 < 0 }) { p.append("\(side)_layers_per_block must not be negative") }
            if layers[0] == 0 && n < 2 { p.append("\(side): layers_per_block[0] = 0 needs at least two stages") }
            for i in 0..<n {
                let t = types.stage(i) ?? ""
                if !Self.blockTypes.contains(t) { p.append("\(side) block type '\(t)' is not supported (\(Self.blockTypes.joined(separator: ", ")))") }
                if ms[i].contains(where: { $0 <= 0 || $0 % 2 == 0 }) {
                    p.append("\(side) qkv_multiscales[\(i)] \(ms[i]): kernel sizes must be odd and positive")
                }
            }
            if out.count > 1 {
                for i in 0..<(n - 1) where layers[i] > 0 && (out[i] * 4) % out[i + 1] != 0 {
                    p.append("\(side) stages \(i)→\(i + 1): channels \(out[i]) and \(out[i + 1]) do not divide the ×4 shortcut")
                }
            }
        }
        if encoderBlockOutChannels.count != decoderBlockOutChannels.count {
            p.append("encoder and decoder must have the same number of stages")
        }
        if let last = encoderBlockOutChannels.last, encoderOutShortcut, latentChannels > 0, last % latentChannels != 0 {
            p.append("encoder_out_shortcut needs encoder_block_out_channels[-1] (\(last)) divisible by latent_channels")
        }
        if let last = decoderBlockOutChannels.last, decoderInShortcut, latentChannels > 0, last % latentChannels != 0 {
            p.append("decoder_in_shortcut needs decoder_block_out_channels[-1] (\(last)) divisible by latent_channels")
        }
        if downsampleBlockType == "pixel_unshuffle" {
            for c in encoderBlockOutChannels.dropFirst() where c % 4 != 0 {
                p.append("downsample_block_type pixel_unshuffle needs output channels divisible by 4, got \(c)")
            }
        }
        for i in 0..<decoderBlockOutChannels.count {
            if let t = decoderNormTypes.stage(i), !Self.normTypes.contains(t) {
                p.append("decoder norm type '\(t)' is not supported (\(Self.normTypes.joined(separator: ", ")))")
            }
            if let a = decoderActFns.stage(i), !Self.activations.contains(a) {
                p.append("decoder activation '\(a)' is not supported (\(Self.activations.joined(separator: ", ")))")
            }
        }
        if !decoderNormTypes.count(matches: decoderBlockOutChannels.count)
            || !decoderActFns.count(matches: decoderBlockOutChannels.count) {
            p.append("decoder_norm_types and decoder_act_fns need one entry per stage")
        }
        if !Self.activations.contains(decoderConvActFn) {
            p.append("decoder_conv_act_fn '\(decoderConvActFn)' is not supported (\(Self.activations.joined(separator: ", ")))")
        }
        if !scalingFactor.isFinite || scalingFactor == 0 { p.append("scaling_factor must be finite and non-zero") }
        return Array(Set(p)).sorted()
    }
}
