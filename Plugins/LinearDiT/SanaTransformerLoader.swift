import CUDA
import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

/// The expected checkpoint keys and shapes of a config (sana-architecture.md §3.6): what the model's building
/// code declares on a collecting pass.
enum SanaTransformerKeys {
    static func expected(_ c: SanaTransformerConfig) -> [String: [Int]] {
        WeightStore.sanaTransformerSpec(c).expected
    }

    static let folder = "a SanaTransformer2DModel transformer/ folder"
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
        let divisor = siblingVAEFactor(folder: folder) ?? 32
        return try WeightStore.load(.checkpoint(model.checkpoint), path: model.weightsPath,
                                    folder: SanaTransformerKeys.folder, precision: precision) {
            SanaTransformer2DModel(config: model.config, weights: $0, latentSpatialDivisor: divisor)
        }
    }

    /// The spatial factor of the autoencoder in a diffusers model folder's sibling `vae/` (as SanaPipeline
    /// computes it: 2^(number of encoder stages − 1)), or nil when there is none or it is unreadable.
    static func siblingVAEFactor(folder: String) -> Int? {
        let path = Paths.join(Paths.directory(of: folder), "vae/config.json")
        guard let bytes = try? BoundedFile.read(path, limit: GraphLimits.maxConfigBytes).get(),
              let object = try? JSONValue.parse(bytes),
              let stages = (object["encoder_block_out_channels"] ?? object["decoder_block_out_channels"])?.array,
              (1...12).contains(stages.count) else { return nil }
        return 1 << (stages.count - 1)
    }
}

extension WeightStore {
    /// The collecting pass of the Sana transformer: the key set of `config`.
    static func sanaTransformerSpec(_ config: SanaTransformerConfig, precision: Precision = .fp32) -> WeightStore {
        let spec = WeightStore(collecting: precision)
        _ = SanaTransformer2DModel(config: config, weights: spec)
        return spec
    }

    /// A loading store over `source` checked against `config`'s key set (every key, every shape), for a second
    /// builder that reads by name (the GPU model).
    static func sanaTransformer(_ source: WeightSource, config: SanaTransformerConfig, path: String,
                                folder: String = SanaTransformerKeys.folder, precision: Precision) throws -> WeightStore {
        let spec = sanaTransformerSpec(config, precision: precision)
        try spec.check(source, path: path, folder: folder)
        return WeightStore(source, path: path, precision: precision, expected: spec.expected)
    }

    /// In-memory fp32 weights by checkpoint key, checked against the config (extra tensors are ignored); a missing
    /// or mis-shaped key is an input error (exit 3: these weights come from the caller, not from a model file).
    static func sanaTransformer(checking tensors: [String: Tensor], config: SanaTransformerConfig,
                                precision: Precision = .fp32) throws -> WeightStore {
        if let problem = config.problems().first { throw LinearDiTInputError.invalid(problem) }
        let spec = sanaTransformerSpec(config, precision: precision)
        let (missing, _, wrong) = spec.mismatches(in: .tensors(tensors))
        let bad = (missing + wrong.map { String($0.prefix { $0 != " " }) }).sorted()
        guard bad.isEmpty else {
            throw LinearDiTInputError.invalid("missing or mis-shaped weights: \(bad.prefix(8).joined(separator: ", "))"
                                              + (bad.count > 8 ? " and \(bad.count - 8) more" : ""))
        }
        return WeightStore(.tensors(tensors), path: "", precision: precision, expected: spec.expected)
    }
}

extension SanaTransformer2DModel {
    /// A model from in-memory fp32 weights by checkpoint key (diffusers' names); throws naming missing or
    /// mis-shaped keys.
    public convenience init(config: SanaTransformerConfig, tensors: [String: Tensor]) throws {
        let weights = try WeightStore.sanaTransformer(checking: tensors, config: config)
        self.init(config: config, weights: weights)
        try weights.finish()
    }

    /// Every checkpoint key of `config` with its shape (what a transformer/ folder must hold).
    public static func expectedWeightShapes(_ config: SanaTransformerConfig) -> [String: [Int]] {
        SanaTransformerKeys.expected(config)
    }
}

extension SanaTransformerCUDA {
    /// A GPU model from in-memory fp32 weights by checkpoint key, on GPU `device`.
    public convenience init(config: SanaTransformerConfig, tensors: [String: Tensor], device: Int = 0) throws {
        let weights = try WeightStore.sanaTransformer(checking: tensors, config: config)
        try self.init(config: config, weights: weights, context: CUDAContext.open(device: device), latentSpatialDivisor: 32)
        try weights.finish()
    }
}
