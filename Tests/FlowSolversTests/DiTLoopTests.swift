import DiffusionModels
import Foundation
import GraphRuntime
import LinearDiT
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

/// Whole sampling loops with the real Linear DiT (the tiny random basic_f32 model of
/// tools/reference/linear_dit.py) against pipeline_sana's loop in diffusers
/// (tools/reference/dit_sampling_loop.py).
@Suite("Whole sampling loops against diffusers (tiny random Sana DiT)")
struct DiTLoopTests {
    @Test("DPM-Solver++ and Euler, with and without guidance, match SanaPipeline's final latents ≤ 1e-4",
          arguments: [(FlowSolverKind.dpmSolver, "dpm"), (.euler, "euler")], [4.5, 1.0])
    func ditLoopMatchesDiffusers(_ solver: (FlowSolverKind, String), _ guidance: Double) throws {
        let model = try SanaTransformer2DModel.load(folder: TestSupport.fixture("LinearDiT/basic_f32/transformer"))
        let file = try Fixtures.tensors("dit_loop.safetensors")
        let positive = Conditioning(embeddings: try file.tensor("positive"), mask: try file.tensor("positive_mask"))
        let negative = Conditioning(embeddings: try file.tensor("negative"), mask: try file.tensor("negative_mask"))
        let out = try FlowSampler.sample(
            kind: solver.0, model: model, positive: positive, negative: negative,
            latent: try file.tensor("latents"), noise: nil,
            options: SamplingOptions(steps: 6, guidance: guidance, shift: 3, denoise: 1),
            context: RunContext(nodeID: "sample"))
        let name = "\(solver.1)_6_g\(guidance)"
        let ref = try file.tensor(name)
        #expect(out.shape == ref.shape)
        let err = TestSupport.relativeError(out, ref)
        print("DiT sampling loop \(name): relative error \(err)")
        #expect(err <= 1e-4, "\(name): relative error \(err)")
    }
}
