import CUDA
import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// The expected checkpoint keys and shapes of a config (sana-architecture.md §3.6).
enum SanaTransformerKeys {
    static func expected(_ c: SanaTransformerConfig) -> [String: [Int]] {
        let d = c.innerDim, p = c.patchSize, h = c.ffnHidden
        let dc = c.numCrossAttentionHeads * c.crossAttentionHeadDim
        var k: [String: [Int]] = [
            "patch_embed.proj.weight": [d, c.inChannels, p, p], "patch_embed.proj.bias": [d],
            "time_embed.linear.weight": [6 * d, d], "time_embed.linear.bias": [6 * d],
            "caption_projection.linear_1.weight": [d, c.captionChannels], "caption_projection.linear_1.bias": [d],
            "caption_projection.linear_2.weight": [d, d], "caption_projection.linear_2.bias": [d],
            "caption_norm.weight": [d],
            "scale_shift_table": [2, d],
            "proj_out.weight": [p * p * c.outputChannels, d], "proj_out.bias": [p * p * c.outputChannels],
        ]
        func embedder(_ prefix: String) {
            k[prefix + ".linear_1.weight"] = [d, 256]; k[prefix + ".linear_1.bias"] = [d]
            k[prefix + ".linear_2.weight"] = [d, d]; k[prefix + ".linear_2.bias"] = [d]
        }
        if c.guidanceEmbeds {
            embedder("time_embed.timestep_embedder")
            embedder("time_embed.guidance_embedder")
        } else {
            embedder("time_embed.emb.timestep_embedder")
        }
        let cross = c.crossAttentionDim ?? d
        for i in 0..<c.numLayers {
            let b = "transformer_blocks.\(i)."
            k[b + "scale_shift_table"] = [6, d]
            for n in ["to_q", "to_k", "to_v"] {
                k[b + "attn1.\(n).weight"] = [d, d]
                if c.attentionBias { k[b + "attn1.\(n).bias"] = [d] }
            }
            k[b + "attn1.to_out.0.weight"] = [d, d]; k[b + "attn1.to_out.0.bias"] = [d]
            k[b + "attn2.to_q.weight"] = [dc, d]; k[b + "attn2.to_q.bias"] = [dc]
            k[b + "attn2.to_k.weight"] = [dc, cross]; k[b + "attn2.to_k.bias"] = [dc]
            k[b + "attn2.to_v.weight"] = [dc, cross]; k[b + "attn2.to_v.bias"] = [dc]
            k[b + "attn2.to_out.0.weight"] = [d, dc]; k[b + "attn2.to_out.0.bias"] = [d]
            if c.usesQKNorm {
                k[b + "attn1.norm_q.weight"] = [d]; k[b + "attn1.norm_k.weight"] = [d]
                k[b + "attn2.norm_q.weight"] = [dc]; k[b + "attn2.norm_k.weight"] = [dc]
            }
            k[b + "ff.conv_inverted.weight"] = [2 * h, d, 1, 1]; k[b + "ff.conv_inverted.bias"] = [2 * h]
            k[b + "ff.conv_depth.weight"] = [2 * h, 1, 3, 3]; k[b + "ff.conv_depth.bias"] = [2 * h]
            k[b + "ff.conv_point.weight"] = [d, h, 1, 1]
        }
        return k
    }
}

/// Weights by checkpoint key (checked against the config before), converted when the model asks for them: a
/// linear layer's weights go straight into their `LinearWeight` (packed for the CPU's kernels at `precision`),
/// so the load never holds a second full copy of the model.
final class SanaTransformerWeights {
    /// Where the tensors come from: a safetensors checkpoint, the raw tensors of a checkpoint file (`.pth`), or
    /// fp32 tensors already in memory.
    enum Source {
        case checkpoint(SafetensorsCheckpoint)
        case raw([String: RawTensorBytes])
        case tensors([String: Tensor])
    }

    let source: Source
    let path: String
    let precision: Precision
    /// The first conversion error; the model is built to the end, then the loader throws it.
    private(set) var failure: ModelFolderError?

    init(_ source: Source, path: String, precision: Precision) {
        self.source = source
        self.path = path
        self.precision = precision
    }

    /// The fp32 tensor `key` (present: the key check ran before).
    func callAsFunction(_ key: String) -> Tensor { optional(key) ?? Tensor(zeros: [0]) }

    func optional(_ key: String) -> Tensor? {
        if case .tensors(let tensors) = source { return tensors[key] }
        return raw(key).map(SanaTransformer2DModel.fp32Weight)
    }

    /// The `[out, in]` (or `[out, in, 1, 1]`) weight `key` as a linear layer at the model's precision.
    func linear(_ key: String) -> LinearWeight {
        func prepared(_ t: Tensor) -> LinearWeight {
            LinearWeight(t.reshaped([t.shape[0], t.count / Swift.max(1, t.shape[0])]), precision: precision)
        }
        if case .tensors(let tensors) = source { return prepared(tensors[key] ?? Tensor(zeros: [0, 0])) }
        guard let raw = raw(key) else { return LinearWeight(Tensor(zeros: [0, 0])) }
        let weight = prepared(SanaTransformer2DModel.fp32Weight(raw))
        // Packed (a copy): the mapped source pages are no longer needed in this process.
        if weight.mode != .plain { raw.releaseSourcePages() }
        return weight
    }

    private func raw(_ key: String) -> RawTensorBytes? {
        switch source {
        case .tensors: return nil
        case .raw(let tensors): return tensors[key]
        case .checkpoint(let checkpoint):
            guard checkpoint.contains(key) else { return nil }
            do { return try checkpoint.rawBytes(key) } catch {
                if failure == nil { failure = .weights(path: path, message: error.description) }
                return nil
            }
        }
    }
}

extension SanaTransformer2DModel {
    /// Loads a diffusers `transformer/` folder: `config.json` and the weights (one file or an index with shards;
    /// F32/F16/BF16, converted to fp32 once). `variant` selects e.g. `diffusion_pytorch_model.bf16.safetensors`.
    /// Throws `ModelFolderError` (exit 4) naming the path; a key mismatch lists every bad key at once.
    public static func load(folder: String, variant: String? = nil, precision: Precision = .fp32) throws -> SanaTransformer2DModel {
        let model = try ModelFolder<SanaTransformerConfig>(path: folder, role: "transformer/",
                                                           modelName: "SanaTransformer2DModel", variant: variant) {
            config, _ in config.problems()
        }
        let config = model.config
        let weights = try loadWeights(model.checkpoint, config: config, path: model.weightsPath, precision: precision)
        let transformer = SanaTransformer2DModel(config: config, weights: weights,
                                                 latentSpatialDivisor: siblingVAEFactor(folder: folder) ?? 32)
        if let failure = weights.failure { throw failure }
        return transformer
    }

    /// The spatial factor of the autoencoder in a diffusers model folder's sibling `vae/` (as SanaPipeline
    /// computes it: 2^(number of encoder stages − 1)), or nil when there is none or it is unreadable.
    static func siblingVAEFactor(folder: String) -> Int? {
        let path = Paths.join(Paths.directory(of: folder), "vae/config.json")
        guard let bytes = try? BoundedFile.read(path, limit: GraphLimits.maxConfigBytes).get(),
              case let data = Data(bytes),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let stages = (object["encoder_block_out_channels"] ?? object["decoder_block_out_channels"]) as? [Any],
              (1...12).contains(stages.count) else { return nil }
        return 1 << (stages.count - 1)
    }

    /// Checks every key and shape; the tensors are read as the model is built.
    static func loadWeights(_ checkpoint: SafetensorsCheckpoint, config: SanaTransformerConfig,
                            path: String, precision: Precision,
                            expected: [String: [Int]]? = nil,
                            kind: String = "a SanaTransformer2DModel transformer/ folder") throws -> SanaTransformerWeights {
        let expected = expected ?? SanaTransformerKeys.expected(config)
        var missing: [String] = [], wrong: [String] = [], unexpected: [String] = []
        for (key, shape) in expected.sorted(by: { $0.key < $1.key }) {
            guard checkpoint.contains(key) else { missing.append(key); continue }
            guard let info = try? checkpoint.info(key) else {
                wrong.append("\(key) (unsupported dtype)"); continue
            }
            if info.shape != shape { wrong.append("\(key) \(info.shape) (expected \(shape))") }
        }
        for key in checkpoint.names where expected[key] == nil { unexpected.append(key) }
        if !missing.isEmpty || !unexpected.isEmpty || !wrong.isEmpty {
            throw ModelFolderError.keyMismatch(path: path, folder: kind, missing: missing, unexpected: unexpected, wrongShape: wrong)
        }
        return SanaTransformerWeights(.checkpoint(checkpoint), path: path, precision: precision)
    }

    /// fp32 weights are used in place from the read-only file mapping (no copy, no page faults on fresh memory:
    /// loading is then free and pages come in from the page cache as the first forward reads them); F16/BF16
    /// are converted once into fresh buffers. The model never writes to its weights.
    static func fp32Weight(_ raw: RawTensorBytes) -> Tensor {
        let count = raw.shape.reduce(1, *)
        if raw.dtype == .f32, count > 0, let base = raw.bytes.baseAddress,
           Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            let pointer = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Float.self))
            return Tensor(storage: TensorStorage(borrowing: pointer, count: count, owner: raw.owner), shape: raw.shape)
        }
        let decoded = raw.decoded()
        // The converted copy is what the model keeps: drop the source pages from this process (the page cache
        // keeps them), or the mapped F16 file would count in RSS on top of the fp32 weights until the end of
        // the load (peak 3.3 GiB instead of 2.3 for Sana-600M).
        raw.releaseSourcePages()
        return decoded
    }
}

extension SanaTransformerWeights {
    /// In-memory fp32 weights by checkpoint key, checked against the config (every key, every shape).
    convenience init(checking tensors: [String: Tensor], config: SanaTransformerConfig,
                     precision: Precision = .fp32) throws {
        if let problem = config.problems().first { throw LinearDiTInputError.invalid(problem) }
        let expected = SanaTransformerKeys.expected(config)
        let bad = expected.filter { tensors[$0.key]?.shape != $0.value }.keys.sorted()
        guard bad.isEmpty else {
            throw LinearDiTInputError.invalid("missing or mis-shaped weights: \(bad.prefix(8).joined(separator: ", "))"
                                              + (bad.count > 8 ? " and \(bad.count - 8) more" : ""))
        }
        self.init(.tensors(tensors), path: "", precision: precision)
    }
}

extension SanaTransformer2DModel {
    /// A model from in-memory fp32 weights by checkpoint key (diffusers' names); throws naming missing or
    /// mis-shaped keys.
    public convenience init(config: SanaTransformerConfig, tensors: [String: Tensor]) throws {
        self.init(config: config, weights: try SanaTransformerWeights(checking: tensors, config: config))
    }

    /// Every checkpoint key of `config` with its shape (what a transformer/ folder must hold).
    public static func expectedWeightShapes(_ config: SanaTransformerConfig) -> [String: [Int]] {
        SanaTransformerKeys.expected(config)
    }
}

extension SanaTransformerCUDA {
    /// A GPU model from in-memory fp32 weights by checkpoint key, on GPU `device`.
    public convenience init(config: SanaTransformerConfig, tensors: [String: Tensor], device: Int = 0) throws {
        try self.init(config: config, weights: SanaTransformerWeights(checking: tensors, config: config),
                      context: CUDAContext.open(device: device), latentSpatialDivisor: 32)
    }
}
