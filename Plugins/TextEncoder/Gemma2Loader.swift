import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// The expected checkpoint keys and shapes of a config (base-model naming, without `model.`).
enum Gemma2Keys {
    static func expected(_ c: Gemma2Config) -> [String: [Int]] {
        let d = c.hiddenSize, hq = c.numAttentionHeads * c.headDim, hkv = c.numKeyValueHeads * c.headDim
        var k: [String: [Int]] = ["embed_tokens.weight": [c.vocabSize, d], "norm.weight": [d]]
        for i in 0..<c.numHiddenLayers {
            let p = "layers.\(i)."
            k[p + "self_attn.q_proj.weight"] = [hq, d]
            k[p + "self_attn.k_proj.weight"] = [hkv, d]
            k[p + "self_attn.v_proj.weight"] = [hkv, d]
            k[p + "self_attn.o_proj.weight"] = [d, hq]
            k[p + "mlp.gate_proj.weight"] = [c.intermediateSize, d]
            k[p + "mlp.up_proj.weight"] = [c.intermediateSize, d]
            k[p + "mlp.down_proj.weight"] = [d, c.intermediateSize]
            for n in ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                      "post_feedforward_layernorm"] {
                k[p + n + ".weight"] = [d]
            }
        }
        return k
    }

    /// Checkpoint key → base key: drops a leading `model.` (CausalLM checkpoints); nil for keys that are ignored
    /// (`lm_head.weight`, tied to the embedding and unused by the encoder).
    static func baseName(_ key: String) -> String? {
        if key == "lm_head.weight" || key == "model.lm_head.weight" { return nil }
        return key.hasPrefix("model.") ? String(key.dropFirst(6)) : key
    }
}

extension Gemma2Model {
    /// Loads a diffusers `text_encoder/` folder (transformers `Gemma2Model` or `Gemma2ForCausalLM` save):
    /// `config.json` and `model.safetensors` or `model.safetensors.index.json` with shards (`variant` picks e.g.
    /// `model.bf16.safetensors`). Keys may carry a `model.` prefix; `lm_head.weight` is ignored. F32/F16/BF16,
    /// converted to fp32 once. Throws `ModelFolderError` (exit 4); a key mismatch lists every bad key at once.
    /// `precision` is the arithmetic of the linear layers (weights packed for the CPU's kernels as they load).
    public static func load(folder: String, variant: String? = nil, precision: Precision = .fp32) throws -> Gemma2Model {
        let model = try ModelFolder<Gemma2Config>(path: folder, role: "text_encoder/", modelName: "Gemma2Config",
                                                  variant: variant) { config, json in
            // model_type first: other model types decode into Gemma2Config too, with misleading problems.
            if let object = try? JSONSerialization.jsonObject(with: json) as? [String: Any],
               let type = object["model_type"] as? String, type != "gemma2" {
                return ["model_type '\(type)' is not supported (only gemma2, SANA's Gemma-2 text encoder)"]
            }
            return config.problems()
        }
        return try load(model.checkpoint, config: model.config, path: model.weightsPath, precision: precision)
    }

    /// Checks every key and shape, then reads all tensors as fp32 and assembles the layers.
    static func load(_ checkpoint: SafetensorsCheckpoint, config: Gemma2Config, path: String,
                     precision: Precision = .fp32) throws -> Gemma2Model {
        let expected = Gemma2Keys.expected(config)
        var found: [String: String] = [:]  // base key → checkpoint key
        var unexpected: [String] = [], wrong: [String] = [], missing: [String] = []
        for key in checkpoint.names {
            guard let base = Gemma2Keys.baseName(key) else { continue }
            if expected[base] == nil || found[base] != nil { unexpected.append(key); continue }
            found[base] = key
        }
        for (base, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard let key = found[base] else { missing.append(base); continue }
            guard let info = try? checkpoint.info(key) else { wrong.append("\(key) (unsupported dtype)"); continue }
            if info.shape != shape { wrong.append("\(key) \(info.shape) (expected \(shape))") }
        }
        // Tensors in dtypes the reader can't convert are not in `names`; report them too.
        for file in checkpoint.files {
            for (key, dtype) in file.unsupportedTensors.sorted(by: { $0.key < $1.key })
            where Gemma2Keys.baseName(key) != nil {
                wrong.append("\(key) (dtype \(dtype); F32, F16 or BF16 expected)")
                if let base = Gemma2Keys.baseName(key) { missing.removeAll { $0 == base } }
            }
        }
        if !missing.isEmpty || !unexpected.isEmpty || !wrong.isEmpty {
            throw ModelFolderError.keyMismatch(path: path, folder: "a Gemma2Model text_encoder/ folder", missing: missing, unexpected: unexpected.sorted(),
                                                   wrongShape: wrong)
        }
        func read(_ base: String) throws -> Tensor {
            // Releasing each tensor's BF16/F16 source pages once converted keeps the peak near the fp32 weights.
            do { return try checkpoint.tensor(found[base]!, releasingSource: true) } catch {
                throw ModelFolderError.weights(path: path, message: error.description)
            }
        }
        func linear(_ base: String) throws -> LinearWeight { LinearWeight(try read(base), precision: precision) }
        let eps = Float(config.rmsNormEps)
        var layers: [Gemma2DecoderLayer] = []
        for i in 0..<config.numHiddenLayers {
            let p = "layers.\(i)."
            let attention = Gemma2Attention(
                qProj: try linear(p + "self_attn.q_proj.weight"), kProj: try linear(p + "self_attn.k_proj.weight"),
                vProj: try linear(p + "self_attn.v_proj.weight"), oProj: try linear(p + "self_attn.o_proj.weight"),
                heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads, headDim: config.headDim,
                scale: config.attentionScale, softcap: config.attnLogitSoftcapping.map { Float($0) })
            let mlp = Gemma2MLP(gateProj: try linear(p + "mlp.gate_proj.weight"), upProj: try linear(p + "mlp.up_proj.weight"),
                                downProj: try linear(p + "mlp.down_proj.weight"), approximation: config.geluApproximation)
            layers.append(Gemma2DecoderLayer(
                selfAttn: attention, mlp: mlp,
                inputLayernorm: try read(p + "input_layernorm.weight"),
                postAttentionLayernorm: try read(p + "post_attention_layernorm.weight"),
                preFeedforwardLayernorm: try read(p + "pre_feedforward_layernorm.weight"),
                postFeedforwardLayernorm: try read(p + "post_feedforward_layernorm.weight"),
                eps: eps, slidingWindow: config.slidingWindow(layer: i)))
        }
        let embedding: RawTensorBytes
        do { embedding = try checkpoint.rawBytes(found["embed_tokens.weight"]!) } catch {
            throw ModelFolderError.weights(path: path, message: error.description)
        }
        return Gemma2Model(config: config, embedTokens: embedding, layers: layers,
                           norm: try read("norm.weight"))
    }
}
