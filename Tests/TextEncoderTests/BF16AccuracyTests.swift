import DiffusionModels
import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
@testable import TextEncoder

/// precision bf16 against PyTorch's bf16 on the shipped model's Gemma-2 (tools/reference/bf16_accuracy.py).
@Suite("Gemma-2 bf16 accuracy")
struct GemmaBF16AccuracyTests {
    static let prompt = "a red circle above a blue square on a white background"

    static func embed(_ encoder: SanaTextEncoder) throws -> Conditioning {
        try encoder.encode(prompts: [prompt], instruction: .default, maxSequenceLength: 300,
                           context: RunContext(nodeID: "test"))
    }

    @Test("encoding in bf16 (each bf16 kernel here, and the AMX tiles) is no less accurate than PyTorch bf16 against fp32 (ratio ≤ 1.5)",
          arguments: BF16Accuracy.kernels)
    func encode(kernel: BF16Accuracy.Kernel) throws {
        let f = try BF16Accuracy.fixture()
        let encoder = try kernel.with {
            try SanaTextEncoder.load(textEncoder: BF16Accuracy.model + "/text_encoder",
                                     tokenizer: BF16Accuracy.model + "/tokenizer", precision: .bf16)
        }
        #expect(encoder.model.precision == .bf16)
        let out = try Self.embed(encoder)
        #expect(out.mask.scalars == (try f.tensor("gemma.mask")).scalars)
        let comparison = BF16Accuracy.Comparison(ours: out.embeddings, pytorch: try f.tensor("gemma.bf16"),
                                                 reference: try f.tensor("gemma.fp32"))
        print("Gemma-2 bf16 (\(kernel)): \(comparison)")
        #expect(comparison.withinRatio, "\(kernel): \(comparison)")
        #expect(comparison.ours.rms > 1e-5, "bf16 must round (\(comparison))")
    }

    @Test("the fp32 encoding matches diffusers on the fixture's prompt")
    func fp32Encode() throws {
        let f = try BF16Accuracy.fixture()
        let encoder = try SanaTextEncoder.load(textEncoder: BF16Accuracy.model + "/text_encoder",
                                               tokenizer: BF16Accuracy.model + "/tokenizer")
        #expect(TestSupport.relativeError(try Self.embed(encoder).embeddings, try f.tensor("gemma.fp32")) <= 1e-4)
    }
}
