import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
@testable import LinearDiT

/// precision bf16 against PyTorch's bf16 on the shipped model (tools/reference/bf16_accuracy.py).
@Suite("DiT bf16 accuracy")
struct DiTBF16AccuracyTests {
    static func forward(_ model: SanaTransformer2DModel, _ f: SafetensorsFile) throws -> Tensor {
        try model.forward(hiddenStates: f.tensor("dit.latent"), encoderHiddenStates: f.tensor("dit.text"),
                          encoderAttentionMask: f.tensor("dit.mask"), timestep: f.tensor("dit.timestep"))
    }

    @Test("the transformer forward in bf16 (each bf16 kernel here, and the AMX tiles) is no less accurate than PyTorch bf16 against fp32 (ratio ≤ 1.5)",
          arguments: BF16Accuracy.kernels)
    func transformerForward(kernel: BF16Accuracy.Kernel) throws {
        let f = try BF16Accuracy.fixture()
        let model = try kernel.with {
            try SanaTransformer2DModel.load(folder: BF16Accuracy.model + "/transformer", precision: .bf16)
        }
        #expect(model.precision == .bf16)
        if case .amxTiles = kernel {  // linear layers, the fused SiLU and the cross-attention products on tiles
            #expect(model.transformer_blocks.allSatisfy { $0.attn2.to_q.weight.mode == .amxTiles && $0.ff.conv_inverted.mode == .amxTiles })
        }
        let comparison = BF16Accuracy.Comparison(ours: try Self.forward(model, f), pytorch: try f.tensor("dit.bf16"),
                                                 reference: try f.tensor("dit.fp32"))
        print("DiT bf16 (\(kernel)): \(comparison)")
        #expect(comparison.withinRatio, "\(kernel): \(comparison)")
        #expect(comparison.ours.rms > 1e-5, "bf16 must round (\(comparison))")
    }

    @Test("the fp32 forward matches diffusers on the fixture's inputs")
    func fp32Forward() throws {
        let f = try BF16Accuracy.fixture()
        let model = try SanaTransformer2DModel.load(folder: BF16Accuracy.model + "/transformer")
        #expect(model.precision == .fp32)
        #expect(TestSupport.relativeError(try Self.forward(model, f), try f.tensor("dit.fp32")) <= 1e-4)
    }
}
