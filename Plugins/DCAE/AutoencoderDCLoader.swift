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
        let folder = try ModelFolder<AutoencoderDCConfig>(path: folder, role: "vae/", modelName: "AutoencoderDC",
                                                          variant: variant) { config, _ in config.problems() }
        let model = try load(folder.checkpoint, config: folder.config, path: folder.weightsPath, precision: precision)
        try model.attachLatentPreview(folder: previewPath)
        return model
    }

    /// Reads the folder's latent_preview.json (for `run --preview`), if there is one, checking its channels.
    func attachLatentPreview(folder: String) throws {
        latentPreview = try LatentPreview.load(folder: folder)
        if let p = latentPreview, p.channels != latentChannels {
            throw LatentPreviewError.malformed(path: folder + "/" + LatentPreview.fileName, reason: "it projects "
                + "\(p.channels) channels but the autoencoder makes \(latentChannels)-channel latents")
        }
    }

    /// Checks every key and shape against the config; the model reads each half's tensors as fp32 when first used.
    static func load(_ checkpoint: SafetensorsCheckpoint, config: AutoencoderDCConfig, path: String,
                     precision: Precision = .fp32) throws -> AutoencoderDC {
        let spec = WeightStore(tensors: nil)
        _ = AutoencoderDC(config: config, weights: spec)
        var missing: [String] = [], wrong: [String] = [], unexpected: [String] = []
        for (key, shape) in spec.expected.sorted(by: { $0.key < $1.key }) {
            guard checkpoint.contains(key) else { missing.append(key); continue }
            guard let info = try? checkpoint.info(key) else { wrong.append("\(key) (unsupported dtype)"); continue }
            if info.shape != shape { wrong.append("\(key) \(info.shape) (expected \(shape))") }
        }
        for key in checkpoint.names where spec.expected[key] == nil && !spec.tolerated.contains(key) {
            unexpected.append(key)
        }
        if !missing.isEmpty || !unexpected.isEmpty || !wrong.isEmpty {
            throw ModelFolderError.keyMismatch(path: path, folder: "an AutoencoderDC vae/ folder", missing: missing, unexpected: unexpected, wrongShape: wrong)
        }
        let keys = Array(spec.expected.keys)
        return AutoencoderDC(config: config, precision: Kernels.effectivePrecision(precision).0) { prefix in
            var tensors: [String: Tensor] = [:]
            for key in keys where key.hasPrefix(prefix) {
                // Releasing each tensor's source pages once converted keeps the peak near the fp32 weights.
                do { tensors[key] = try checkpoint.tensor(key, releasingSource: true) } catch {
                    throw ModelFolderError.weights(path: path, message: String(describing: error))
                }
                // A NaN/inf weight would silently turn every decoded image black; report the file instead.
                if tensors[key]?.withUnsafeBufferPointer({ $0.contains { !$0.isFinite } }) == true {
                    throw ModelFolderError.weights(path: path, message: "tensor \(key) holds non-finite values; the file is corrupt")
                }
            }
            return WeightStore(tensors: tensors, precision: precision)
        }
    }
}
