import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// How checkpoint keys map to the model's (base-model naming, without `model.`).
enum Gemma2Keys {
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
        let model = try modelFolder(folder, variant: variant)
        return try load(model.checkpoint, config: model.config, path: model.weightsPath, precision: precision)
    }

    /// The `text_encoder/` folder's config (checked) and checkpoint, as every Gemma-2 loader (CPU or GPU) opens it.
    static func modelFolder(_ folder: String, variant: String?) throws -> ModelFolder<Gemma2Config> {
        try ModelFolder<Gemma2Config>(path: folder, role: "text_encoder/", modelName: "Gemma2Config",
                                      variant: variant) { config, json in
            // model_type first: other model types decode into Gemma2Config too, with misleading problems.
            if let type = json["model_type"]?.string, type != "gemma2" {
                return ["model_type '\(type)' is not supported (only gemma2, SANA's Gemma-2 text encoder)"]
            }
            return config.problems()
        }
    }

    /// Every checkpoint key of `config` (base-model naming) with its shape.
    public static func expectedWeightShapes(_ config: Gemma2Config) -> [String: [Int]] {
        WeightStore.expectedShapes { _ = Gemma2Model($0, config: config) }
    }

    /// A model from in-memory fp32 weights by key (base-model naming), checked as a checkpoint is.
    public convenience init(config: Gemma2Config, tensors: [String: Tensor]) throws {
        let model = try WeightStore.load(.tensors(tensors), path: "(in memory)", folder: Self.folder) {
            Gemma2Model($0, config: config)
        }
        self.init(config: model.config, embedTokens: model.embedTokens, layers: model.layers, norm: model.norm)
    }

    /// `source` checked against the declared key set (every bad key at once), as a store that a second builder of
    /// the model (the GPU port) reads by name.
    static func checkedWeights(_ source: WeightSource, config: Gemma2Config, path: String) throws -> WeightStore {
        let spec = WeightStore(collecting: .fp32)
        _ = Gemma2Model(spec, config: config)
        try spec.check(source, path: path, folder: folder)
        return WeightStore(source, path: path, expected: spec.expected)
    }

    static let folder = "a Gemma2Model text_encoder/ folder"

    /// Checks every key and shape (the set `init(_:config:)` declares), then reads the tensors as the layers are
    /// assembled.
    static func load(_ checkpoint: SafetensorsCheckpoint, config: Gemma2Config, path: String,
                     precision: Precision = .fp32) throws -> Gemma2Model {
        // Its linear layers run once per prompt: an fp32 encoder keeps a bf16 checkpoint's weights as stored.
        try WeightStore.load(WeightSource.checkpoint(checkpoint).renamed(Gemma2Keys.baseName), path: path,
                             folder: folder, precision: precision, reuse: .few) {
            Gemma2Model($0, config: config)
        }
    }

    /// Builds the model from `w`, declaring every key (base-model naming) and shape.
    convenience init(_ w: WeightStore, config c: Gemma2Config) {
        let d = c.hiddenSize, hq = c.numAttentionHeads * c.headDim, hkv = c.numKeyValueHeads * c.headDim
        let layers = (0..<c.numHiddenLayers).map { i in
            let p = "layers.\(i)."
            let attention = Gemma2Attention(
                qProj: w.linear(p + "self_attn.q_proj.weight", [hq, d]),
                kProj: w.linear(p + "self_attn.k_proj.weight", [hkv, d]),
                vProj: w.linear(p + "self_attn.v_proj.weight", [hkv, d]),
                oProj: w.linear(p + "self_attn.o_proj.weight", [d, hq]),
                heads: c.numAttentionHeads, kvHeads: c.numKeyValueHeads, headDim: c.headDim,
                scale: c.attentionScale, softcap: c.attnLogitSoftcapping.map { Float($0) })
            let mlp = Gemma2MLP(gateProj: w.linear(p + "mlp.gate_proj.weight", [c.intermediateSize, d]),
                                upProj: w.linear(p + "mlp.up_proj.weight", [c.intermediateSize, d]),
                                downProj: w.linear(p + "mlp.down_proj.weight", [d, c.intermediateSize]),
                                approximation: c.geluApproximation)
            return Gemma2DecoderLayer(
                selfAttn: attention, mlp: mlp,
                inputLayernorm: w(p + "input_layernorm.weight", [d]),
                postAttentionLayernorm: w(p + "post_attention_layernorm.weight", [d]),
                preFeedforwardLayernorm: w(p + "pre_feedforward_layernorm.weight", [d]),
                postFeedforwardLayernorm: w(p + "post_feedforward_layernorm.weight", [d]),
                eps: Float(c.rmsNormEps), slidingWindow: c.slidingWindow(layer: i))
        }
        // The embedding stays in the file's dtype, read from the mapping row by row (see `embedTokens`).
        self.init(config: c, embedTokens: w.raw("embed_tokens.weight", [c.vocabSize, d], readAhead: false), layers: layers,
                  norm: w("norm.weight", [d]))
    }
}
