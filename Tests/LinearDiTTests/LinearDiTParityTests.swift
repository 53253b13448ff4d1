import DiffusionModels
import Foundation
import GraphRuntime
import LinearDiT
import Safetensors
import Tensors
import TensorIO
import Testing
import TestSupport

/// Parity with diffusers' SanaTransformer2DModel on the tiny random configs of tools/reference/linear_dit.py.
@Suite struct LinearDiTParityTests {
    /// basic_f32: plain config, non-square latent, batch 2 with differently padded masks, F32 single file.
    /// qknorm_pe_f16: qk_norm across heads, sin-cos PE recomputed for a non-square grid, attention_bias, F16.
    /// guidance_bf16_sharded: Sana-Sprint guidance embeds, patch_size 2, PE with interpolation_scale 2,
    /// BF16 weights in four shards with an index.
    static let cases = ["basic_f32", "qknorm_pe_f16", "guidance_bf16_sharded"]

    static func folder(_ name: String) -> String { TestSupport.fixture("LinearDiT/\(name)/transformer") }
    static func io(_ name: String) -> String { TestSupport.fixture("LinearDiT/\(name)/io.safetensors") }

    @Test(arguments: cases)
    func forwardMatchesDiffusers(_ name: String) throws {
        let model = try SanaTransformer2DModel.load(folder: Self.folder(name))
        let io = try SafetensorsFile(path: Self.io(name))
        let guidance = io.contains("guidance") ? try io.tensor("guidance") : nil
        #expect(model.takesGuidance == (guidance != nil))
        let v = try model.forward(hiddenStates: io.tensor("hidden_states"),
                                  encoderHiddenStates: io.tensor("encoder_hidden_states"),
                                  encoderAttentionMask: io.tensor("encoder_attention_mask"),
                                  timestep: io.tensor("timestep"), guidance: guidance)
        let ref = try io.tensor("velocity")
        let err = TestSupport.relativeError(v, ref)
        print("LinearDiT parity \(name): max|Δ|/max|ref| = \(err)")
        #expect(err <= 1e-4, "\(name): max|Δ|/max|ref| = \(err)")
    }

    @Test func preparedTextIsReusedAcrossSteps() throws {
        let name = "qknorm_pe_f16"
        let model = try SanaTransformer2DModel.load(folder: Self.folder(name))
        let io = try SafetensorsFile(path: Self.io(name))
        let text = try model.prepare(Conditioning(embeddings: io.tensor("encoder_hidden_states"),
                                                  mask: io.tensor("encoder_attention_mask")))
        let latent = try io.tensor("hidden_states"), t = try io.tensor("timestep")
        let other = try model.predict(latent: Ops.mul(latent, 0.5), timestep: Ops.mul(t, 0.5), text: text, guidance: nil)
        let v = try model.predict(latent: latent, timestep: t, text: text, guidance: nil)
        #expect(TestSupport.relativeError(v, try io.tensor("velocity")) <= 1e-4)
        #expect(TestSupport.relativeError(other, v) > 1e-3, "a different step must give a different velocity")
    }

    @Test func predictNodeRunFromYAMLGraphMatchesDiffusers() throws {
        for name in Self.cases {
            let dir = TestSupport.temporaryDirectory("dit-graph")
            defer { try? FileManager.default.removeItem(at: dir) }
            let io = Self.io(name), output = dir.appendingPathComponent("v.safetensors").path
            let guided = try SafetensorsFile(path: io).contains("guidance")
            let yaml = """
            sanagraph: 1
            description: one Sana transformer forward
            nodes:
              dit: {type: dit.load, params: {path: "\(Self.folder(name))"}}
              x: {type: tensor.load, params: {path: "\(io)", name: hidden_states}}
              y: {type: tensor.load, params: {path: "\(io)", name: encoder_hidden_states}}
              m: {type: tensor.load, params: {path: "\(io)", name: encoder_attention_mask}}
              t: {type: tensor.load, params: {path: "\(io)", name: timestep}}
            \(guided ? "  g: {type: tensor.load, params: {path: \"\(io)\", name: guidance}}\n" : "")\
              v:
                type: dit.predict
                inputs: {model: dit, latent: x, encoder_hidden_states: y, encoder_attention_mask: m, timestep: t\(guided ? ", guidance: g" : "")}
              save: {type: tensor.save, inputs: {tensor: v}, params: {path: "\(output)", name: velocity}}
            """
            let registry = try NodeRegistry(packs: [TensorIOPack.self, LinearDiTPack.self])
            let graph = try GraphLoader.load(yaml: yaml, file: "dit.yaml", registry: registry)
            let summary = try Executor().run(graph, plan: Planner.plan(graph))
            #expect(summary.ok)
            let v = try SafetensorsFile(path: output).tensor("velocity")
            let err = TestSupport.relativeError(v, try SafetensorsFile(path: io).tensor("velocity"))
            #expect(err <= 1e-4, "\(name) through the graph: \(err)")
        }
    }
}
