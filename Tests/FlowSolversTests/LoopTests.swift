import DiffusionModels
import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

@Suite("Whole sampling loops against diffusers (stand-in denoiser)")
struct LoopTests {
    @Test("Both solvers, with and without guidance, and img2img, match pipeline_sana's loop ≤ 1e-4")
    func loopsMatchDiffusers() throws {
        let cases = try Fixtures.json("loops.json", as: [Fixtures.LoopCase].self)
        let file = try Fixtures.tensors("loops.safetensors")
        let latents = try file.tensor("latents")
        let clean = try file.tensor("clean")
        let noise = try file.tensor("noise")
        let emb = (try file.tensor("positive"), try file.tensor("negative"))
        let positive = Conditioning(embeddings: emb.0, mask: Tensor(repeating: 1, shape: Array(emb.0.shape.prefix(2))))
        let negative = Conditioning(embeddings: emb.1, mask: Tensor(repeating: 1, shape: Array(emb.1.shape.prefix(2))))
        #expect(cases.count == 20)
        for c in cases {
            let model = StandInDenoiser(inChannels: latents.shape[1])
            let options = SamplingOptions(steps: c.steps, guidance: c.guidance, shift: c.shift, denoise: c.denoise)
            let out = try FlowSampler.sample(
                kind: c.kind == "dpm" ? .dpmSolver : .euler, model: model, positive: positive, negative: negative,
                latent: c.img2img ? clean : latents, noise: c.img2img ? noise : nil, options: options,
                context: RunContext(nodeID: "sample"))
            let ref = try file.tensor(c.name)
            let err = TestSupport.relativeError(out, ref)
            #expect(err <= 1e-4, "\(c.name): relative error \(err)")
            #expect(model.predictCalls == c.model_calls, "\(c.name)")
            #expect(model.prepareCalls == 1, "\(c.name): text must be prepared once")
            #expect(Set(model.batches) == [c.guidance > 1 ? 2 * latents.shape[0] : latents.shape[0]])
        }
    }

    @Test("DPM passes integer timesteps and Euler float timesteps to the model")
    func timestepsReachModel() throws {
        let x = Tensor(repeating: 0.1, shape: [1, 4, 2, 2])
        let cond = Conditioning(embeddings: Tensor(repeating: 1, shape: [1, 3, 2]), mask: Tensor(repeating: 1, shape: [1, 3]))
        for kind in [FlowSolverKind.dpmSolver, .euler] {
            let model = StandInDenoiser()
            _ = try FlowSampler.sample(kind: kind, model: model, positive: cond, negative: nil, latent: x, noise: nil,
                                       options: SamplingOptions(steps: 20, guidance: 1), context: RunContext(nodeID: "s"))
            if kind == .dpmSolver {
                #expect(model.timesteps == FlowDPMSchedule(steps: 20, shift: 3).timesteps.map(Float.init))
            } else {
                #expect(model.timesteps == FlowEulerSchedule(steps: 20, shift: 3).timesteps)
                #expect(model.timesteps[1] != model.timesteps[1].rounded())  // float, not truncated
            }
        }
    }

    @Test("Guidance without a negative runs the positive branch only")
    func guidanceWithoutNegativeIsUnguided() throws {
        let file = try Fixtures.tensors("loops.safetensors")
        let latents = try file.tensor("latents")
        let e = try file.tensor("positive")
        let positive = Conditioning(embeddings: e, mask: Tensor(repeating: 1, shape: [e.shape[0], e.shape[1]]))
        let model = StandInDenoiser()
        let out = try FlowSampler.sample(kind: .dpmSolver, model: model, positive: positive, negative: nil,
                                         latent: latents, noise: nil, options: SamplingOptions(steps: 20, guidance: 4.5),
                                         context: RunContext(nodeID: "s"))
        #expect(TestSupport.relativeError(out, try file.tensor("dpm_20_g1.0")) <= 1e-4)
        #expect(Set(model.batches) == [latents.shape[0]])
    }

    @Test("Conditionings of batch 1 and different lengths are repeated and padded with mask 0")
    func conditioningBatchingAndPadding() throws {
        let pos = Conditioning(embeddings: Tensor(shape: [1, 2, 2], values: [1, 2, 3, 4]),
                               mask: Tensor(repeating: 1, shape: [1, 2]))
        let neg = Conditioning(embeddings: Tensor(shape: [1, 1, 2], values: [9, 8]),
                               mask: Tensor(repeating: 1, shape: [1, 1]))
        let c = try ClassifierFreeGuidance.batched(positive: pos, negative: neg, batch: 2, node: "n")
        #expect(c.embeddings.shape == [4, 2, 2])
        #expect(c.embeddings.scalars == [9, 8, 0, 0, 9, 8, 0, 0, 1, 2, 3, 4, 1, 2, 3, 4])
        #expect(c.mask.scalars == [1, 0, 1, 0, 1, 1, 1, 1])
        let bad = Conditioning(embeddings: Tensor(zeros: [3, 2, 2]), mask: Tensor(zeros: [3, 2]))
        #expect(throws: NodeError.self) {
            try ClassifierFreeGuidance.batched(positive: bad, negative: nil, batch: 2, node: "n")
        }
    }

    @Test("CFG combine is uncond + g * (cond - uncond) over [negative; positive]")
    func combineOrder() {
        let v = Tensor(shape: [2, 1, 1, 2], values: [1, 2, 3, 5])
        let out = ClassifierFreeGuidance.combine(v, scale: 4.5)
        #expect(out.shape == [1, 1, 1, 2])
        let expected: [Float] = [10, 15.5]  // 1 + 4.5·(3 − 1), 2 + 4.5·(5 − 2)
        #expect(out.scalars == expected)
    }
}
