import Foundation
import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
@testable import TextEncoder

/// Loading `text_encoder/` folders: config defaults, key checks, bad folders and files.
@Suite struct Gemma2LoaderTests {
    static let tiny = TestSupport.fixture("TextEncoder/tiny-gemma2/text_encoder")

    @Test func missingConfigFieldsTakeTransformersDefaults() throws {
        let c = try JSONDecoder().decode(Gemma2Config.self, from: Data(#"{"model_type": "gemma2"}"#.utf8))
        #expect(c.vocabSize == 256_000 && c.hiddenSize == 2304 && c.intermediateSize == 9216)
        #expect(c.numHiddenLayers == 26 && c.numAttentionHeads == 8 && c.numKeyValueHeads == 4 && c.headDim == 256)
        #expect(c.queryPreAttnScalar == 256 && c.attentionScale == 1.0 / 16)
        #expect(c.attnLogitSoftcapping == 50 && c.slidingWindow == 4096 && c.rmsNormEps == 1e-6 && c.ropeTheta == 10_000)
        #expect(c.slidingWindow(layer: 0) == 4096 && c.slidingWindow(layer: 1) == nil && c.slidingWindow(layer: 24) == 4096)
        #expect(c.problems().isEmpty)
        // Older files: top-level rope_theta; explicit null softcap.
        let old = try JSONDecoder().decode(Gemma2Config.self, from: Data(
            #"{"rope_theta": 5000.0, "attn_logit_softcapping": null, "layer_types": ["full_attention"], "num_hidden_layers": 1}"#.utf8))
        #expect(old.ropeTheta == 5000 && old.attnLogitSoftcapping == nil && old.slidingWindow(layer: 0) == nil)
    }

    @Test func unsupportedConfigValuesAreAllReported() throws {
        let c = try JSONDecoder().decode(Gemma2Config.self, from: Data(
            #"{"num_attention_heads": 3, "num_key_value_heads": 2, "rope_parameters": {"rope_type": "yarn"}, "hidden_activation": "relu"}"#.utf8))
        let p = c.problems().joined(separator: "\n")
        #expect(p.contains("num_key_value_heads") && p.contains("yarn") && p.contains("relu"), "\(p)")
    }

    /// A copy of the tiny fixture whose weights (and config) are edited.
    static func editedCopy(config: String? = nil, _ edit: (inout [String: Tensor]) -> Void = { _ in }) throws -> URL {
        let dir = TestSupport.temporaryDirectory("gemma-keys")
        let configURL = dir.appendingPathComponent("config.json")
        if let config {
            try Data(config.utf8).write(to: configURL)
        } else {
            try FileManager.default.copyItem(atPath: tiny + "/config.json", toPath: configURL.path)
        }
        let file = try SafetensorsFile(path: tiny + "/model.safetensors")
        var tensors: [String: Tensor] = [:]
        for n in file.names { tensors[n] = try file.tensor(n) }
        edit(&tensors)
        try SafetensorsWriter.write(tensors, to: dir.appendingPathComponent("model.safetensors").path)
        return dir
    }

    @Test func badKeysAreAllListedInOneModelFileError() throws {
        let dir = try Self.editedCopy { t in
            t["norm.weight"] = nil
            t["layers.1.mlp.up_proj.weight"] = nil
            t["layers.0.self_attn.q_proj.bias"] = Tensor(zeros: [64])
            t["layers.2.self_attn.k_proj.weight"] = Tensor(zeros: [16, 64])
            t["lm_head.weight"] = Tensor(zeros: [2, 64])  // ignored
        }
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try Gemma2Model.load(folder: dir.path)
            Issue.record("expected a key mismatch")
        } catch let error as ModelFolderError {
            guard case .keyMismatch(_, _, let missing, let unexpected, let wrong) = error else {
                Issue.record("wrong error \(error)"); return
            }
            #expect(missing == ["layers.1.mlp.up_proj.weight", "norm.weight"])
            #expect(unexpected == ["layers.0.self_attn.q_proj.bias"])
            #expect(wrong.count == 1 && wrong[0].hasPrefix("layers.2.self_attn.k_proj.weight [16, 64] (expected [32, 64])"))
            #expect(error.category == .modelFile && error.category.exitCode == 4)
            #expect(error.description.contains(dir.path) && error.description.contains("Gemma2Model"))
        }
    }

    @Test func missingFolderAndFileInsteadOfFolderAreModelFileErrors() throws {
        let dir = TestSupport.temporaryDirectory("gemma-missing")
        defer { try? FileManager.default.removeItem(at: dir) }
        for path in [dir.appendingPathComponent("nope").path, Self.tiny + "/config.json", dir.path] {
            do {
                _ = try Gemma2Model.load(folder: path)
                Issue.record("expected an error for \(path)")
            } catch let error as ModelFolderError {
                #expect(error.category == .modelFile)
                #expect(error.description.contains(path), "\(error)")
            }
        }
    }

    @Test func invalidOrUnsupportedConfigIsAnInvalidConfigError() throws {
        for (config, needle) in [("{not json", "not a valid Gemma2Config"),
                                 (#"{"hidden_size": "big"}"#, "not a valid Gemma2Config"),
                                 (#"{"model_type": "llama"}"#, "model_type 'llama'"),
                                 (#"{"head_dim": 15}"#, "head_dim must be positive and even")] {
            let dir = try Self.editedCopy(config: config)
            defer { try? FileManager.default.removeItem(at: dir) }
            do {
                _ = try Gemma2Model.load(folder: dir.path)
                Issue.record("expected a config error for \(config)")
            } catch let error as ModelFolderError {
                guard case .invalidConfig(let path, let message) = error else { Issue.record("\(error)"); continue }
                #expect(path.hasSuffix("config.json") && message.contains(needle), "\(message)")
            }
        }
    }

    @Test func truncatedWeightFileIsAWeightsError() throws {
        let dir = try Self.editedCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count / 2).write(to: file)
        do {
            _ = try Gemma2Model.load(folder: dir.path)
            Issue.record("expected a weights error")
        } catch let error as ModelFolderError {
            #expect(error.category == .modelFile)
            #expect(error.description.contains("model.safetensors"), "\(error)")
        }
    }

    @Test func tokenIdsBeyondTheEmbeddingTableAreReported() throws {
        // E.g. a tokenizer/ folder from another model: its ids exceed this model's embeddings.
        let model = try Gemma2Model.load(folder: Self.tiny)
        let v = model.config.vocabSize
        #expect(throws: Gemma2InputError.tokenOutOfRange(id: v + 5, vocabSize: v)) {
            _ = try model(inputIds: [[2, v + 5]], attentionMask: [[1, 1]])
        }
        #expect(Gemma2InputError.tokenOutOfRange(id: v + 5, vocabSize: v).category == .modelFile)
    }
}
