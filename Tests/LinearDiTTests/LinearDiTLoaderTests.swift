import DiffusionModels
import Foundation
import GraphRuntime
import LinearDiT
import Safetensors
import Tensors
import Testing
import TestSupport

/// Loading: config defaults, key checks, bad folders, unusable latent sizes.
@Suite struct LinearDiTLoaderTests {
    static let basic = TestSupport.fixture("LinearDiT/basic_f32/transformer")

    @Test func missingConfigFieldsTakeDiffusersDefaults() throws {
        let json = #"{"_class_name": "SanaTransformer2DModel", "num_layers": 28, "num_attention_heads": 36}"#
        let c = try JSONDecoder().decode(SanaTransformerConfig.self, from: Data(json.utf8))
        #expect(c.numLayers == 28 && c.innerDim == 36 * 32 && c.inChannels == 32 && c.outputChannels == 32)
        #expect(c.captionChannels == 2304 && c.mlpRatio == 2.5 && c.patchSize == 1 && c.sampleSize == 32)
        #expect(c.interpolationScale == nil && c.qkNorm == nil && !c.guidanceEmbeds && c.guidanceEmbedsScale == 0.1)
        #expect(c.timestepScale == 1.0 && c.normEps == 1e-6 && !c.attentionBias && c.crossAttentionHeadDim == 112)
        let nullOut = try JSONDecoder().decode(SanaTransformerConfig.self,
                                               from: Data(#"{"in_channels": 8, "out_channels": null}"#.utf8))
        #expect(nullOut.outputChannels == 8)
    }

    /// Copies the basic fixture with its weights edited by `edit`.
    static func editedCopy(_ edit: (inout [String: Tensor]) -> Void) throws -> URL {
        let dir = TestSupport.temporaryDirectory("dit-keys")
        try FileManager.default.copyItem(atPath: basic + "/config.json", toPath: dir.appendingPathComponent("config.json").path)
        let file = try SafetensorsFile(path: basic + "/diffusion_pytorch_model.safetensors")
        var tensors: [String: Tensor] = [:]
        for n in file.names { tensors[n] = try file.tensor(n) }
        edit(&tensors)
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("diffusion_pytorch_model.safetensors").path)
        return dir
    }

    @Test func badKeysAreAllListedInOneModelFileError() throws {
        let dir = try Self.editedCopy { t in
            t["caption_norm.weight"] = nil
            t["transformer_blocks.1.attn2.to_k.bias"] = nil
            t["transformer_blocks.0.attn1.to_q.bias"] = Tensor(zeros: [16])
            t["proj_out.weight"] = Tensor(zeros: [4, 15])
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try SanaTransformer2DModel.load(folder: dir.path)
            Issue.record("expected a key mismatch")
        } catch let error as ModelFolderError {
            guard case .keyMismatch(_, _, let missing, let unexpected, let wrong) = error else {
                Issue.record("wrong error \(error)"); return
            }
            #expect(missing == ["caption_norm.weight", "transformer_blocks.1.attn2.to_k.bias"])
            #expect(unexpected == ["transformer_blocks.0.attn1.to_q.bias"])
            #expect(wrong.count == 1 && wrong[0].hasPrefix("proj_out.weight [4, 15]"))
            #expect(error.category == .modelFile && "\(error)".contains(dir.path))
        }
    }

    @Test func missingFolderOrConfigGivesModelFileError() throws {
        let dir = TestSupport.temporaryDirectory("dit-empty")
        defer { try? FileManager.default.removeItem(at: dir) }
        for path in [dir.appendingPathComponent("nope").path, dir.path] {
            do {
                _ = try SanaTransformer2DModel.load(folder: path)
                Issue.record("expected an error for \(path)")
            } catch {
                #expect(error.exitCategory == .modelFile && "\(error)".contains(path), "\(error)")
            }
        }
        // An unsupported qk_norm flavour is refused with the field named.
        try #"{"qk_norm": "layer_norm"}"#.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        do {
            _ = try SanaTransformer2DModel.load(folder: dir.path)
            Issue.record("expected a config error")
        } catch {
            #expect("\(error)".contains("qk_norm 'layer_norm'"), "\(error)")
        }
    }

    @Test func latentSizesThePatchSizeCannotTakeAreRejectedInPixels() throws {
        let model = try SanaTransformer2DModel.load(folder: TestSupport.fixture("LinearDiT/guidance_bf16_sharded/transformer"))
        #expect(model.latentSizeProblem(height: 4, width: 8) == nil)
        let problem = try #require(model.latentSizeProblem(height: 3, width: 8))
        #expect(problem.contains("96×256 px") && problem.contains("multiples of 64 px"), "\(problem)")
        let io = try SafetensorsFile(path: TestSupport.fixture("LinearDiT/guidance_bf16_sharded/io.safetensors"))
        let text = try model.prepare(Conditioning(embeddings: io.tensor("encoder_hidden_states"),
                                                  mask: io.tensor("encoder_attention_mask")))
        #expect(throws: LinearDiTInputError.self) {
            _ = try model.predict(latent: Tensor(zeros: [2, 4, 3, 8]), timestep: io.tensor("timestep"), text: text,
                                  guidance: io.tensor("guidance"))
        }
        // Sana-Sprint without guidance is an input error, not a crash.
        #expect(throws: LinearDiTInputError.self) {
            _ = try model.predict(latent: io.tensor("hidden_states"), timestep: io.tensor("timestep"), text: text,
                                  guidance: nil)
        }
    }

    @Test func loadNodeFingerprintChangesWithTheWeights() throws {
        let dir = try Self.editedCopy { _ in }
        defer { try? FileManager.default.removeItem(at: dir) }
        let params = ParamValues(["path": .string(dir.path)])
        let first = try DiTLoad().fingerprint(params: params)
        let weights = dir.appendingPathComponent("diffusion_pytorch_model.safetensors").path
        Thread.sleep(forTimeInterval: 0.01)
        try SafetensorsWriter.write(["x": Tensor(zeros: [1])], to: weights)
        #expect(try DiTLoad().fingerprint(params: params) != first)
    }
}
