import Foundation
import LinearDiT
import Testing

/// Family detection from transformer config keys, on the configs of the released checkpoints
/// (sana-architecture.md §3.1, which also gives each one's parameter count computed from its shapes).
@Suite struct SanaVariantTests {
    struct Released: Sendable, CustomTestStringConvertible {
        var name: String
        var json: String
        var family: SanaVariant.Family
        var label: String
        var parameters: Int
        var graph: String
        var bins: String?
        var shift: Double?
        var testDescription: String { name }
    }

    static func config(d: Int, layers: Int, cross: (Int, Int), sample: Int, extra: String = "") -> String {
        #"{"num_attention_heads": \#(d / 32), "attention_head_dim": 32, "num_layers": \#(layers), "# +
            #""num_cross_attention_heads": \#(cross.0), "cross_attention_head_dim": \#(cross.1), "# +
            #""cross_attention_dim": \#(d), "sample_size": \#(sample)\#(extra)}"#
    }

    static let released: [Released] = [
        Released(name: "Sana_600M_1024px", json: config(d: 1152, layers: 28, cross: (16, 72), sample: 32),
                 family: .sana, label: "SANA 1.0 0.6B", parameters: 591_747_872, graph: "Graphs/text2img.yaml",
                 bins: "ASPECT_RATIO_1024_BIN", shift: 3),
        Released(name: "Sana_1600M_512px", json: config(d: 2240, layers: 20, cross: (20, 112), sample: 16),
                 family: .sana, label: "SANA 1.0 1.6B", parameters: 1_604_462_752, graph: "Graphs/text2img.yaml",
                 bins: "ASPECT_RATIO_512_BIN", shift: 3),
        Released(name: "Sana_1600M_2Kpx_BF16",
                 json: config(d: 2240, layers: 20, cross: (20, 112), sample: 64, extra: #", "interpolation_scale": 1.0"#),
                 family: .sanaHighResolution, label: "SANA 2K 1.6B", parameters: 1_604_462_752,
                 graph: "Graphs/text2img.yaml", bins: "ASPECT_RATIO_2048_BIN", shift: 3),
        Released(name: "Sana_1600M_4Kpx_BF16",
                 json: config(d: 2240, layers: 20, cross: (20, 112), sample: 128, extra: #", "interpolation_scale": 2.0"#),
                 family: .sanaHighResolution, label: "SANA 4K 1.6B", parameters: 1_604_462_752,
                 graph: "Graphs/text2img.yaml", bins: "ASPECT_RATIO_4096_BIN", shift: 6),
        Released(name: "SANA1.5_1.6B_1024px",
                 json: config(d: 2240, layers: 20, cross: (20, 112), sample: 32, extra: #", "qk_norm": "rms_norm_across_heads""#),
                 family: .sana15, label: "SANA 1.5 1.6B", parameters: 1_604_641_952, graph: "Graphs/text2img.yaml",
                 bins: "ASPECT_RATIO_1024_BIN", shift: 3),
        Released(name: "SANA1.5_4.8B_1024px",
                 json: config(d: 2240, layers: 60, cross: (20, 112), sample: 32, extra: #", "qk_norm": "rms_norm_across_heads""#),
                 family: .sana15, label: "SANA 1.5 4.8B", parameters: 4_721_825_952, graph: "Graphs/text2img.yaml",
                 bins: "ASPECT_RATIO_1024_BIN", shift: 3),
        Released(name: "Sana_Sprint_0.6B_1024px",
                 json: config(d: 1152, layers: 28, cross: (16, 72), sample: 32,
                              extra: #", "qk_norm": "rms_norm_across_heads", "guidance_embeds": true"#),
                 family: .sprint, label: "Sana-Sprint 0.6B", parameters: 593_501_216, graph: "Graphs/sprint.yaml",
                 bins: "ASPECT_RATIO_1024_BIN", shift: nil),
        Released(name: "Sana_Sprint_1.6B_1024px",
                 json: config(d: 2240, layers: 20, cross: (20, 112), sample: 32,
                              extra: #", "qk_norm": "rms_norm_across_heads", "guidance_embeds": true"#),
                 family: .sprint, label: "Sana-Sprint 1.6B", parameters: 1_610_237_472, graph: "Graphs/sprint.yaml",
                 bins: "ASPECT_RATIO_1024_BIN", shift: nil),
    ]

    @Test("Each released checkpoint's config is classified from its keys, with the right graph, bins and shift",
          arguments: released)
    func releasedConfigsAreRecognised(_ r: Released) throws {
        let config = try JSONDecoder().decode(SanaTransformerConfig.self, from: Data(r.json.utf8))
        let v = SanaVariant(config: config)
        #expect(v.family == r.family)
        #expect(v.name == r.label)
        #expect(v.parameters == r.parameters)
        #expect(v.graph == r.graph)
        #expect(v.binTable == r.bins)
        #expect(v.defaultFlowShift == r.shift)
        #expect(v.nativePixels == config.sampleSize * 32)
    }

    @Test("Bins are not offered when the VAE is not 32x (the tables are in pixels for DC-AE f32)")
    func noBinsForOtherVAEFactors() throws {
        let config = try JSONDecoder().decode(SanaTransformerConfig.self, from: Data(Self.released[0].json.utf8))
        let v = SanaVariant(config: config, vaeFactor: 16)
        #expect(v.binTable == nil && v.nativePixels == 512)
    }
}
