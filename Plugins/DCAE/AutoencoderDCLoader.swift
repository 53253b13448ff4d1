import Foundation
import SanaGraphKit
import DiffusionModels
import Safetensors
import Tensors

extension AutoencoderDC {
    /// Loads a diffusers `vae/` folder: `config.json` and the weights (one file or an index with shards; F32/F16/BF16).
    /// Every key and shape is checked now; each half's weights are converted to fp32 on its first use. Throws
    /// `ModelFolderError` (exit 4) naming the path — a key mismatch lists every bad key — here, or from the first
    /// decode/encode for a tensor that cannot be read or holds non-finite values.
    /// `precision` is the arithmetic of the dense convolutions (filters packed for the CPU's kernels when built).
    public static func load(folder: String, variant: String? = nil, precision: Precision = .fp32) throws -> AutoencoderDC {
        let previewPath = folder
        let folder = try modelFolder(folder, variant: variant)
        let model = try load(folder.checkpoint, config: folder.config, path: folder.weightsPath, precision: precision)
        try model.attachLatentPreview(folder: previewPath)
        return model
    }

    /// The folder's config (checked: `problems()`) and weight files.
    static func modelFolder(_ path: String, variant: String?) throws -> ModelFolder<AutoencoderDCConfig> {
        try ModelFolder<AutoencoderDCConfig>(path: path, role: "vae/", modelName: "AutoencoderDC",
                                             variant: variant) { config, _ in config.problems() }
    }

    /// Reads the folder's latent_preview.json (for `run --preview`), if there is one, checking its channels.
    func attachLatentPreview(folder: String) throws {
        latentPreview = try Self.latentPreview(folder: folder, latentChannels: latentChannels)
    }

    /// The folder's latent_preview.json, if there is one, checked against the autoencoder's latent channels.
    static func latentPreview(folder: String, latentChannels: Int) throws -> LatentPreview? {
        let preview = try LatentPreview.load(folder: folder)
        if let p = preview, p.channels != latentChannels {
            throw LatentPreviewError.malformed(path: folder + "/" + LatentPreview.fileName, reason: "it projects "
                + "\(p.channels) channels but the autoencoder makes \(latentChannels)-channel latents")
        }
        return preview
    }

    /// Every weight key of `config` with its shape (encoder and decoder).
    public static func expectedWeightShapes(_ config: AutoencoderDCConfig) -> [String: [Int]] {
        WeightStore.expectedShapes { _ = AutoencoderDC(config: config, weights: $0) }
    }

    /// A model from in-memory fp32 weights by checkpoint key (diffusers' names); throws naming missing or
    /// mis-shaped keys.
    public convenience init(config: AutoencoderDCConfig, tensors: [String: Tensor]) throws {
        self.init(config: config, weights: try WeightStore.autoencoderDC(checking: tensors, config: config))
    }

    /// Checks every key and shape against the config (the key set the model's building code declares); the model
    /// reads each half's tensors as fp32 when first used.
    static func load(_ checkpoint: SafetensorsCheckpoint, config: AutoencoderDCConfig, path: String,
                     precision: Precision = .fp32) throws -> AutoencoderDC {
        AutoencoderDC(config: config, precision: Kernels.effectivePrecision(precision).0,
                      source: try checkedSource(checkpoint, config: config, path: path, precision: precision))
    }

    /// Checks every key and shape of `checkpoint` against the config now; returns a maker of fresh loading stores
    /// over it (each reads by key, the GPU decoder included).
    static func checkedSource(_ checkpoint: SafetensorsCheckpoint, config: AutoencoderDCConfig, path: String,
                              precision: Precision = .fp32) throws -> @Sendable () -> WeightStore {
        let spec = WeightStore(collecting: precision)
        _ = AutoencoderDC(config: config, weights: spec)
        try spec.check(.checkpoint(checkpoint), path: path, folder: "an AutoencoderDC vae/ folder")
        let expected = spec.expected
        return {
            // A NaN/inf weight would silently turn every decoded image black: reported as a corrupt file.
            WeightStore(.checkpoint(checkpoint), path: path, precision: precision, expected: expected,
                        rejectsNonFinite: true)
        }
    }
}

extension WeightStore {
    /// In-memory fp32 weights by checkpoint key checked against `config`'s key set (extra tensors are ignored); a
    /// bad config, a missing or a mis-shaped key is a `DCAEInputError` (the weights come from the caller).
    static func autoencoderDC(checking tensors: [String: Tensor], config: AutoencoderDCConfig) throws -> WeightStore {
        if let problem = config.problems().first { throw DCAEInputError(description: problem) }
        let expected = AutoencoderDC.expectedWeightShapes(config)
        let bad = expected.keys.filter { tensors[$0]?.shape != expected[$0] }.sorted()
        guard bad.isEmpty else {
            throw DCAEInputError(description: "missing or mis-shaped weights: \(bad.prefix(8).joined(separator: ", "))"
                                 + (bad.count > 8 ? " and \(bad.count - 8) more" : ""))
        }
        return WeightStore(.tensors(tensors), path: "", expected: expected)
    }
}
