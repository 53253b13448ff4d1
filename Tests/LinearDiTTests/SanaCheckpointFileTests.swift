import Foundation
import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
@testable import LinearDiT

/// SANA transformers kept as one file (tools/reference/sana_checkpoint_files.py): NVlabs .pth, ComfyUI-style
/// safetensors with original keys under a prefix, diffusers keys without config.json. Each must give diffusers'
/// forward of the same weights (Tests/Fixtures/LinearDiT/<case>/io.safetensors).
@Suite struct SanaCheckpointFileTests {
    static func file(_ name: String) -> String { TestSupport.fixture("LinearDiT/checkpoints/\(name)") }

    static func expectForwardMatches(_ model: SanaTransformer2DModel, _ fixtureCase: String) throws {
        let io = try SafetensorsFile(path: TestSupport.fixture("LinearDiT/\(fixtureCase)/io.safetensors"))
        let v = try model.forward(hiddenStates: io.tensor("hidden_states"),
                                  encoderHiddenStates: io.tensor("encoder_hidden_states"),
                                  encoderAttentionMask: io.tensor("encoder_attention_mask"),
                                  timestep: io.tensor("timestep"),
                                  guidance: io.contains("guidance") ? try io.tensor("guidance") : nil)
        let err = TestSupport.relativeError(v, try io.tensor("velocity"))
        #expect(err <= 1e-4, "\(fixtureCase): max|Δ|/max|ref| = \(err)")
    }

    @Test("NVlabs .pth checkpoints (fused qkv/kv, original names, dropped keys) give diffusers' forward",
          arguments: ["sprint_bf16", "sana15_bf16", "pe4k_f16", "qknorm_pe_f16"])
    func pthMatchesDiffusers(_ name: String) throws {
        let model = try SanaTransformer2DModel.load(checkpoint: Self.file("\(name).pth"),
                                                    configPath: Self.file("\(name).config.json"))
        let reference = try SanaTransformer2DModel.load(folder: TestSupport.fixture("LinearDiT/\(name)/transformer"))
        #expect(model.config == reference.config)
        try Self.expectForwardMatches(model, name)
    }

    @Test("A ComfyUI-style safetensors file (original keys under model.diffusion_model.) and a diffusers-key file load")
    func singleSafetensorsFiles() throws {
        let comfy = try SanaTransformer2DModel.load(checkpoint: Self.file("sprint_bf16_comfy.safetensors"),
                                                    configPath: Self.file("sprint_bf16.config.json"))
        try Self.expectForwardMatches(comfy, "sprint_bf16")
        let converted = try SanaCheckpointFile(path: Self.file("sprint_bf16_comfy.safetensors")).convert()
        #expect(converted.layout.contains("model.diffusion_model."))
        let diffusers = try SanaTransformer2DModel.load(checkpoint: Self.file("sana15_bf16_diffusers.safetensors"),
                                                        configPath: Self.file("sana15_bf16.config.json"))
        try Self.expectForwardMatches(diffusers, "sana15_bf16")
    }

    @Test("Without the cross-attention heads for a non-released hidden size, loading says what to give")
    func unknownHiddenSizeNeedsAConfig() throws {
        #expect {
            _ = try SanaTransformer2DModel.load(checkpoint: Self.file("sana15_bf16.pth"))
        } throws: { "\($0)".contains("num_cross_attention_heads") && "\($0)".contains("sana15_bf16.pth") }
    }

    @Test("A hostile .pth is refused as a model-file error naming the file")
    func hostilePthIsAModelFileError() throws {
        let path = TestSupport.fixture("TorchCheckpoint/hostile_global.pth")
        #expect {
            _ = try SanaTransformer2DModel.load(checkpoint: path)
        } throws: { error in
            (error as? any CategorizedError)?.category == .modelFile && "\(error)".contains(path)
                && "\(error)".contains("refused")
        }
    }

    /// Empty-bodied tensors of the given shapes, for config inference.
    static func shapes(_ config: SanaTransformerConfig) -> [String: RawTensorBytes] {
        SanaTransformerKeys.expected(config).mapValues { shape in
            RawTensorBytes(info: TensorInfo(name: "", dtype: .bf16, shape: shape, dataOffsets: 0..<0),
                           bytes: UnsafeRawBufferPointer(start: nil, count: 0), owner: NSObject())
        }
    }

    @Test("The config inferred from the released checkpoints' shapes and image size is their diffusers config",
          arguments: SanaVariantTests.released)
    func configIsInferredFromShapes(_ r: SanaVariantTests.Released) throws {
        let config = try JSONDecoder().decode(SanaTransformerConfig.self, from: Data(r.json.utf8))
        let file = try SanaCheckpointFile(path: TestSupport.fixture("TorchCheckpoint/state_dict.pth"))
        let json = try file.inferConfig(Self.shapes(config), imageSize: config.sampleSize * 32)
        let inferred = try JSONDecoder().decode(SanaTransformerConfig.self,
                                                from: JSONSerialization.data(withJSONObject: json))
        #expect(inferred == config, "\(r.name)")
    }
}
