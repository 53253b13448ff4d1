import Foundation
import SanaGraphKit
import Safetensors
import Tensors
import TorchCheckpoint

/// A SANA transformer kept as one file, as users have them: the original NVlabs `.pth` (PyTorch zip, read by
/// `TorchCheckpoint` without running anything from it) or a single safetensors file (ComfyUI-style), with either
/// the original key names (`blocks.0.attn.qkv.weight`) or diffusers' (`transformer_blocks.0.attn1.to_q.weight`),
/// under any common prefix (`state_dict.`, `model.diffusion_model.`, …). `convert` gives diffusers' keys and a
/// diffusers config inferred from the weights' shapes, with the key mapping of diffusers'
/// `scripts/convert_sana_to_diffusers.py` (sana-architecture.md §3.6).
public struct SanaCheckpointFile {
    /// The file's tensors under their stored names.
    struct Source {
        var names: [String]
        var info: (String) -> TensorInfo?
        var raw: (String) -> RawTensorBytes?
    }

    public let path: String
    let source: Source

    /// Opens `path` by content: a zip is a PyTorch checkpoint, anything else is read as safetensors.
    public init(path: String) throws {
        self.path = path
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ModelFolderError.weights(path: path, message: "cannot open the checkpoint file")
        }
        let magic = (try? handle.read(upToCount: 4)) ?? Data()
        try? handle.close()
        do {
            if magic.starts(with: [0x50, 0x4b]) {  // "PK": zip → torch.save
                let c = try TorchCheckpoint(path: path)
                source = Source(names: c.names, info: { c.info($0) }, raw: { c.rawBytes($0) })
            } else if magic.count == 4, magic[magic.startIndex] == 0x80 {
                throw ModelFolderError.weights(path: path, message: "a PyTorch checkpoint in the pre-1.6 (non-zip) "
                    + "format; re-save it with torch.save from a current PyTorch")
            } else {
                let f = try SafetensorsFile(path: path)
                source = Source(names: f.names, info: { try? f.info($0) }, raw: { try? f.rawBytes($0) })
            }
        } catch let e as TorchCheckpointError {
            throw ModelFolderError.weights(path: path, message: e.description.hasPrefix(path)
                                           ? String(e.description.dropFirst(path.count + 2)) : e.description)
        } catch let e as SafetensorsError {
            throw ModelFolderError.weights(path: path, message: "neither a PyTorch zip checkpoint nor safetensors: "
                                           + e.description)
        }
    }

    /// The transformer in diffusers form.
    public struct Converted {
        /// Diffusers-format config.json object (inferred, then `overrides` applied).
        public var configJSON: [String: Any]
        public var config: SanaTransformerConfig
        /// Diffusers key → stored bytes (qkv/kv rows split without copying).
        public var tensors: [String: RawTensorBytes]
        /// "original NVlabs keys under 'state_dict.'" etc.
        public var layout: String
    }

    /// Maps and checks every key. `imageSize` (512/1024/2048/4096) sets `sample_size` and the PE as the
    /// conversion script does (otherwise it comes from a stored `pos_embed`, else 1024 is assumed); `overrides`
    /// are diffusers config keys that win over what the shapes say (e.g. `num_cross_attention_heads` for a
    /// hidden size other than the released 1152 and 2240).
    public func convert(imageSize: Int? = nil, overrides: [String: Any] = [:]) throws -> Converted {
        let anchors = ["x_embedder.proj.weight", "patch_embed.proj.weight"]
        var candidates: [(prefix: String, original: Bool)] = []
        for name in source.names {
            for (i, anchor) in anchors.enumerated() where name.hasSuffix(anchor) {
                let prefix = String(name.dropLast(anchor.count))
                if prefix.isEmpty || prefix.hasSuffix(".") { candidates.append((prefix, i == 0)) }
            }
        }
        let preferred = ["state_dict.", "", "model.diffusion_model.", "model.", "module.", "ema."]
        guard let chosen = candidates.min(by: { a, b in
            (preferred.firstIndex(of: a.prefix) ?? 99, a.prefix.count) < (preferred.firstIndex(of: b.prefix) ?? 99, b.prefix.count)
        }) else {
            throw ModelFolderError.invalidConfig(path: path, message: "no SANA transformer weights in this file (no "
                + "x_embedder.proj.weight or patch_embed.proj.weight key); is it a VAE or text encoder?")
        }
        let prefix = chosen.prefix
        var stored: [String: String] = [:]  // name without prefix → stored name
        for name in source.names where name.hasPrefix(prefix) { stored[String(name.dropFirst(prefix.count))] = name }
        func raw(_ key: String) throws -> RawTensorBytes {
            guard let name = stored[key], let r = source.raw(name) else {
                throw ModelFolderError.invalidConfig(path: path, message: "missing tensor '\(prefix)\(key)'")
            }
            return r
        }

        var tensors: [String: RawTensorBytes] = [:]
        var storedPosEmbed: [Int]?
        if chosen.original {
            storedPosEmbed = stored["pos_embed"].flatMap { source.info($0)?.shape }
            tensors = try mapOriginal(stored: stored, raw: raw)
        } else {
            for key in stored.keys { tensors[key] = try raw(key) }
        }
        // Keys nothing maps (the diffusers-key check of unexpected names comes with the config, in validate).
        let unknown = !chosen.original ? [] : stored.keys.filter {
            !Self.droppedOriginalKeys.contains($0) && !Self.isMappedOriginalKey($0)
        }.sorted()
        guard unknown.isEmpty else {
            throw ModelFolderError.keyMismatch(path: path, folder: "a SANA transformer checkpoint", missing: [],
                                               unexpected: unknown.map { prefix + $0 }, wrongShape: [])
        }

        // The config: what the shapes say, the image size's PE, then the user's overrides.
        let size = imageSize ?? storedPosEmbed.flatMap { shape -> Int? in
            guard let n = shape.dropLast().last, let root = Int(exactly: Double(n).squareRoot()) else { return nil }
            return root * 32
        }
        var json = try inferConfig(tensors, imageSize: size ?? 1024)
        for (k, v) in overrides { json[k] = v }
        // The inferred keys and the user's overrides, read back through the strict reader like any config.json.
        let config: SanaTransformerConfig
        do {
            config = try StrictJSON.decode(SanaTransformerConfig.self, from: JSONSerialization.data(withJSONObject: json))
        } catch {
            throw ModelFolderError.invalidConfig(path: path, message: "not a valid SanaTransformer2DModel config: \(error)")
        }
        let layout = (chosen.original ? "original NVlabs keys" : "diffusers keys")
            + (prefix.isEmpty ? "" : " under '\(prefix)'")
        return Converted(configJSON: json, config: config, tensors: tensors, layout: layout)
    }

    // MARK: NVlabs → diffusers (convert_sana_to_diffusers.py)

    static let droppedOriginalKeys: Set<String> = ["y_embedder.y_embedding", "pos_embed", "logvar_linear.weight",
                                                   "logvar_linear.bias"]

    /// One-to-one renames outside the blocks.
    static let originalRenames: [String: String] = [
        "x_embedder.proj.weight": "patch_embed.proj.weight", "x_embedder.proj.bias": "patch_embed.proj.bias",
        "y_embedder.y_proj.fc1.weight": "caption_projection.linear_1.weight",
        "y_embedder.y_proj.fc1.bias": "caption_projection.linear_1.bias",
        "y_embedder.y_proj.fc2.weight": "caption_projection.linear_2.weight",
        "y_embedder.y_proj.fc2.bias": "caption_projection.linear_2.bias",
        "t_block.1.weight": "time_embed.linear.weight", "t_block.1.bias": "time_embed.linear.bias",
        "attention_y_norm.weight": "caption_norm.weight",
        "final_layer.linear.weight": "proj_out.weight", "final_layer.linear.bias": "proj_out.bias",
        "final_layer.scale_shift_table": "scale_shift_table",
    ]

    /// Per-block renames (`blocks.{i}.` + key → `transformer_blocks.{i}.` + value).
    static let blockRenames: [String: String] = [
        "scale_shift_table": "scale_shift_table",
        "attn.q_norm.weight": "attn1.norm_q.weight", "attn.k_norm.weight": "attn1.norm_k.weight",
        "attn.proj.weight": "attn1.to_out.0.weight", "attn.proj.bias": "attn1.to_out.0.bias",
        "mlp.inverted_conv.conv.weight": "ff.conv_inverted.weight", "mlp.inverted_conv.conv.bias": "ff.conv_inverted.bias",
        "mlp.depth_conv.conv.weight": "ff.conv_depth.weight", "mlp.depth_conv.conv.bias": "ff.conv_depth.bias",
        "mlp.point_conv.conv.weight": "ff.conv_point.weight",
        "cross_attn.q_linear.weight": "attn2.to_q.weight", "cross_attn.q_linear.bias": "attn2.to_q.bias",
        "cross_attn.q_norm.weight": "attn2.norm_q.weight", "cross_attn.k_norm.weight": "attn2.norm_k.weight",
        "cross_attn.proj.weight": "attn2.to_out.0.weight", "cross_attn.proj.bias": "attn2.to_out.0.bias",
    ]
    /// Fused projections split along dim 0: key → the diffusers names of its chunks.
    static let blockSplits: [String: [String]] = [
        "attn.qkv.weight": ["attn1.to_q.weight", "attn1.to_k.weight", "attn1.to_v.weight"],
        "attn.qkv.bias": ["attn1.to_q.bias", "attn1.to_k.bias", "attn1.to_v.bias"],
        "cross_attn.kv_linear.weight": ["attn2.to_k.weight", "attn2.to_v.weight"],
        "cross_attn.kv_linear.bias": ["attn2.to_k.bias", "attn2.to_v.bias"],
    ]

    static func blockParts(_ key: String) -> (index: String, rest: String)? {
        guard key.hasPrefix("blocks.") else { return nil }
        let tail = key.dropFirst("blocks.".count)
        guard let dot = tail.firstIndex(of: "."), Int(tail[..<dot]) != nil else { return nil }
        return (String(tail[..<dot]), String(tail[tail.index(after: dot)...]))
    }

    static func isMappedOriginalKey(_ key: String) -> Bool {
        if originalRenames[key] != nil { return true }
        if key.hasPrefix("t_embedder.mlp.") || key.hasPrefix("cfg_embedder.mlp.") {
            return ["0.weight", "0.bias", "2.weight", "2.bias"].contains { key.hasSuffix("mlp." + $0) }
        }
        guard let (_, rest) = blockParts(key) else { return false }
        return blockRenames[rest] != nil || blockSplits[rest] != nil
    }

    func mapOriginal(stored: [String: String], raw: (String) throws -> RawTensorBytes) throws -> [String: RawTensorBytes] {
        var out: [String: RawTensorBytes] = [:]
        let sprint = stored["cfg_embedder.mlp.0.weight"] != nil
        for key in stored.keys {
            if let target = Self.originalRenames[key] {
                out[target] = try raw(key)
            } else if key.hasPrefix("t_embedder.mlp.") || key.hasPrefix("cfg_embedder.mlp.") {
                let isTime = key.hasPrefix("t_embedder")
                let base = isTime ? (sprint ? "time_embed.timestep_embedder" : "time_embed.emb.timestep_embedder")
                    : "time_embed.guidance_embedder"
                let rest = key.dropFirst(isTime ? "t_embedder.mlp.".count : "cfg_embedder.mlp.".count)
                guard let layer = ["0": "linear_1", "2": "linear_2"][String(rest.prefix(1))] else { continue }
                out[base + "." + layer + rest.dropFirst(1)] = try raw(key)
            } else if let (i, rest) = Self.blockParts(key) {
                if let target = Self.blockRenames[rest] {
                    out["transformer_blocks.\(i).\(target)"] = try raw(key)
                } else if let targets = Self.blockSplits[rest] {
                    let chunks = try split(try raw(key), into: targets.count, name: key)
                    for (t, c) in zip(targets, chunks) { out["transformer_blocks.\(i).\(t)"] = c }
                }
            }
        }
        return out
    }


    /// Reads a JSON object of diffusers transformer config keys (for `convert(overrides:)`).
    public static func overrides(path: String) throws -> [String: Any] {
        guard let bytes = try? BoundedFile.read(path, limit: GraphLimits.maxConfigBytes).get(),
              let members = (try? JSONValue.parse(bytes))?.members else {
            throw ModelFolderError.invalidConfig(path: path, message: "not a JSON object of transformer config keys")
        }
        var object: [String: Any] = [:]
        for (key, value) in members { object[key] = value.foundationObject }
        return object
    }

    /// `torch.chunk(x, n, dim=0)` of a row-major tensor whose first dimension divides by n: n row ranges.
    func split(_ r: RawTensorBytes, into n: Int, name: String) throws -> [RawTensorBytes] {
        guard let rows = r.shape.first, rows % n == 0 else {
            throw ModelFolderError.invalidConfig(path: path, message: "'\(name)' of shape \(r.shape) does not split "
                                                 + "into \(n) equal parts along its first dimension")
        }
        var shape = r.shape
        shape[0] = rows / n
        let bytes = r.bytes.count / n
        return (0..<n).map { k in
            RawTensorBytes(info: TensorInfo(name: name, dtype: r.dtype, shape: shape, dataOffsets: 0..<bytes),
                           bytes: UnsafeRawBufferPointer(rebasing: r.bytes[(k * bytes)..<((k + 1) * bytes)]),
                           owner: r.owner)
        }
    }

    // MARK: config from shapes

    /// Cross-attention heads of the released hidden sizes (NVlabs `num_heads`; head dim 72 and 112).
    static let releasedCrossHeads = [1152: 16, 2240: 20]
    /// `convert_sana_to_diffusers.py`'s `interpolation_scale = {512: None, 1024: None, 2048: 1.0, 4096: 2.0}`.
    static let interpolationScales: [Int: Double] = [2048: 1.0, 4096: 2.0]

    func inferConfig(_ t: [String: RawTensorBytes], imageSize: Int) throws -> [String: Any] {
        func shape(_ key: String) throws -> [Int] {
            guard let s = t[key]?.shape else {
                throw ModelFolderError.invalidConfig(path: path, message: "missing tensor '\(key)' (diffusers name)")
            }
            return s
        }
        let patch = try shape("patch_embed.proj.weight")
        guard patch.count == 4 else {
            throw ModelFolderError.invalidConfig(path: path, message: "patch embedding of shape \(patch)")
        }
        let d = patch[0], p = patch[2]
        let layers = t.keys.filter { $0.hasPrefix("transformer_blocks.") && $0.hasSuffix(".scale_shift_table") }.count
        let inverted = try shape("transformer_blocks.0.ff.conv_inverted.weight")
        let cross = try shape("transformer_blocks.0.attn2.to_q.weight")[0]
        var json: [String: Any] = [
            "_class_name": "SanaTransformer2DModel",
            "in_channels": patch[1], "out_channels": try shape("proj_out.weight")[0] / (p * p),
            "num_attention_heads": d / 32, "attention_head_dim": 32, "num_layers": layers,
            "cross_attention_dim": d, "caption_channels": try shape("caption_projection.linear_1.weight")[1],
            "mlp_ratio": Double(inverted[0] / 2) / Double(d), "dropout": 0.0,
            "attention_bias": t["transformer_blocks.0.attn1.to_q.bias"] != nil,
            "sample_size": imageSize / 32, "patch_size": p, "norm_elementwise_affine": false, "norm_eps": 1e-6,
            "interpolation_scale": Self.interpolationScales[imageSize].map { $0 as Any } ?? NSNull(),
            "guidance_embeds": t["time_embed.guidance_embedder.linear_1.weight"] != nil, "guidance_embeds_scale": 0.1,
            "qk_norm": t["transformer_blocks.0.attn1.norm_q.weight"] != nil ? "rms_norm_across_heads" : NSNull(),
            "timestep_scale": 1.0,
        ]
        if let heads = Self.releasedCrossHeads[d], cross == d {
            json["num_cross_attention_heads"] = heads
            json["cross_attention_head_dim"] = d / heads
        }
        return json
    }
}

extension SanaCheckpointFile.Converted {
    /// Checks the config and every key and shape (as for a diffusers folder); nothing is converted.
    public func validate(path: String) throws {
        guard configJSON["num_cross_attention_heads"] != nil else {
            throw ModelFolderError.invalidConfig(
                path: path, message: "hidden size \(config.innerDim) is not a released SANA size (1152, 2240): give "
                    + "the cross-attention heads in a config file (dit.load's config param, or 'sanagraph convert "
                    + "--config'): {\"num_cross_attention_heads\": N, \"cross_attention_head_dim\": D/N}")
        }
        if let problem = config.problems().first {
            throw ModelFolderError.invalidConfig(path: path, message: problem)
        }
        try WeightStore.sanaTransformerSpec(config).check(.raw(tensors), path: path, folder: "a SANA transformer checkpoint "
                                                  + "(after mapping to diffusers names)")
    }

    /// The weights the model is built from (linear layers prepared at `precision`), after `validate`.
    func weights(path: String, precision: Precision) throws -> WeightStore {
        try validate(path: path)
        return WeightStore(.raw(tensors), path: path, precision: precision,
                           expected: SanaTransformerKeys.expected(config))
    }
}

extension SanaTransformer2DModel {
    /// Loads a transformer kept as one file (`.pth` or single safetensors; see `SanaCheckpointFile`).
    /// `configPath`: an optional JSON file of diffusers config keys that override what the weights' shapes say.
    public static func load(checkpoint path: String, configPath: String? = nil,
                            precision: Precision = .fp32) throws -> SanaTransformer2DModel {
        let overrides = try configPath.map(SanaCheckpointFile.overrides(path:)) ?? [:]
        let converted = try SanaCheckpointFile(path: path).convert(imageSize: nil, overrides: overrides)
        let weights = try converted.weights(path: path, precision: precision)
        let model = SanaTransformer2DModel(config: converted.config, weights: weights)
        try weights.finish()
        return model
    }
}

extension JSONValue {
    /// The value as JSONSerialization objects (for config dictionaries written back out).
    var foundationObject: Any {
        switch self {
        case .object(let members):
            var d: [String: Any] = [:]
            for (k, v) in members { d[k] = v.foundationObject }
            return d
        case .array(let items): return items.map(\.foundationObject)
        case .string(let s): return s
        case .integer(let i): return i
        case .number(let d): return d
        case .bool(let b): return b
        case .null: return NSNull()
        }
    }
}
