import DiffusionModels
import Foundation
import LinearDiT
import Safetensors
import Tensors
import Testing
import TestSupport

/// `SanaLoRA` reading (PEFT metadata → scale) and `applying` on the tiny pipeline's transformer; the pictures
/// against diffusers are in Tests/CLITests/ModelWorkflowTests.swift.
@Suite struct LoRATests {
    static let transformer = TestSupport.fixture("Pipeline/tiny-sana/transformer")

    /// A rank-`rank` LoRA on `transformer_blocks.0.attn1.to_q` (32 × 32) with `metadata` as lora_adapter_metadata.
    static func write(rank: Int, metadata: String?, in dir: URL, prefix: String = "transformer.") throws -> String {
        var rng = SeededRandom(seed: 5)
        func random(_ shape: [Int]) -> Tensor {
            Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -0.1...0.1, using: &rng) })
        }
        let path = dir.appendingPathComponent("l\(rank).safetensors").path
        try SafetensorsWriter.write(
            ["\(prefix)transformer_blocks.0.attn1.to_q.lora_A.weight": random([rank, 32]),
             "\(prefix)transformer_blocks.0.attn1.to_q.lora_B.weight": random([32, rank])],
            metadata: metadata.map { ["lora_adapter_metadata": $0] } ?? [:], to: path)
        return path
    }

    @Test("alpha / r comes from the metadata (prefixed as diffusers saves it), rsLoRA divides by sqrt(r), none = 1")
    func scaleFollowsMetadata() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-lora-meta")
        defer { try? FileManager.default.removeItem(at: dir) }
        let module = "transformer_blocks.0.attn1.to_q"
        let plain = try SanaLoRA.load(path: Self.write(rank: 4, metadata: nil, in: dir))
        #expect(plain.modules[module]?.scale == 1)
        let alpha = try SanaLoRA.load(path: Self.write(rank: 4, metadata: #"{"transformer.r": 4, "transformer.lora_alpha": 8}"#, in: dir))
        #expect(alpha.modules[module]?.scale == 2)
        let rs = try SanaLoRA.load(path: Self.write(rank: 16, metadata: #"{"transformer.r": 16, "transformer.lora_alpha": 8, "transformer.use_rslora": true}"#, in: dir))
        #expect(rs.modules[module]?.scale == 2)
        let pattern = try SanaLoRA.load(path: Self.write(
            rank: 8, metadata: #"{"transformer.r": 4, "transformer.lora_alpha": 4, "transformer.rank_pattern": {"attn1.to_q": 8}, "transformer.alpha_pattern": {"to_q": 2}}"#, in: dir))
        #expect(pattern.modules[module]?.scale == 0.25)
        let bare = try SanaLoRA.load(path: Self.write(rank: 4, metadata: nil, in: dir, prefix: ""))
        #expect(bare.modules[module] != nil)
    }

    @Test("Metadata whose rank disagrees with the tensors is an error naming the file and the layer")
    func metadataRankMismatchIsAnError() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-lora-meta")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.write(rank: 4, metadata: #"{"transformer.r": 16, "transformer.lora_alpha": 16}"#, in: dir)
        #expect { _ = try SanaLoRA.load(path: path) } throws: { e in
            let text = "\(e)"
            return text.contains(path) && text.contains("transformer_blocks.0.attn1.to_q") && text.contains("r = 16")
        }
    }

    @Test("Applying leaves the base model as it was; strength 0 predicts what the base does")
    func baseModelIsUnchanged() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-lora-apply")
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try SanaTransformer2DModel.load(folder: Self.transformer)
        let lora = try SanaLoRA.load(path: Self.write(rank: 4, metadata: nil, in: dir))
        var rng = SeededRandom(seed: 9)
        let latent = Tensor(shape: [1, 8, 2, 2], values: (0..<32).map { _ in Float.random(in: -1...1, using: &rng) })
        let text = Conditioning(embeddings: Tensor(shape: [1, 3, 64], values: (0..<192).map { _ in Float.random(in: -1...1, using: &rng) }),
                                mask: Tensor(shape: [1, 3], values: [1, 1, 0]))
        func predict(_ m: SanaTransformer2DModel) throws -> [Float] {
            try m.predict(latent: latent, timestep: Tensor(shape: [1], values: [500]), text: m.prepare(text), guidance: nil).scalars
        }
        let before = try predict(base)
        let patched = try base.applying(lora, strength: 1)
        let zero = try base.applying(lora, strength: 0)
        #expect(try predict(base) == before)
        #expect(try predict(zero) == before)
        let moved = zip(try predict(patched), before).map { abs($0 - $1) }.max() ?? 0
        #expect(moved > 1e-4)
    }
}
