import Foundation
import GraphRuntime
import Safetensors
import Tensors

/// Errors loading a `vae/` folder. All are `.modelFile` (exit 4) and name the path.
public enum DCAEError: CategorizedError, Equatable {
    /// config.json missing, unreadable, or describing a model this port cannot run.
    case invalidConfig(path: String, message: String)
    /// The weights don't match the config: every missing, unexpected and wrongly shaped key at once.
    case keyMismatch(path: String, missing: [String], unexpected: [String], wrongShape: [String])
    /// The weight files could not be opened or read.
    case weights(path: String, message: String)

    public var category: ErrorCategory { .modelFile }

    public var description: String {
        switch self {
        case .invalidConfig(let path, let message): return "\(path): \(message)"
        case .weights(let path, let message): return "\(path): \(message)"
        case .keyMismatch(let path, let missing, let unexpected, let wrongShape):
            func list(_ xs: [String]) -> String {
                xs.prefix(20).joined(separator: ", ") + (xs.count > 20 ? ", … (\(xs.count) in all)" : "")
            }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) keys: \(list(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count) keys: \(list(unexpected))") }
            if !wrongShape.isEmpty { parts.append("wrongly shaped \(wrongShape.count) keys: \(list(wrongShape))") }
            return "\(path): the weights do not match config.json (is this an AutoencoderDC vae/ folder?); "
                + parts.joined(separator: "; ")
        }
    }
}

extension AutoencoderDC {
    /// Loads a diffusers `vae/` folder: `config.json` and the weights (one file or an index with shards; F32/F16/BF16,
    /// converted to fp32 once). Throws `DCAEError` (exit 4) naming the path; a key mismatch lists every bad key.
    public static func load(folder: String, variant: String? = nil) throws -> AutoencoderDC {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir) else {
            throw DCAEError.invalidConfig(path: folder, message: "no such folder; give the model's vae/ folder "
                                          + "(config.json + diffusion_pytorch_model.safetensors)")
        }
        guard isDir.boolValue else {
            throw DCAEError.invalidConfig(path: folder, message: "not a folder; give the vae/ folder holding "
                                          + "config.json and the safetensors weights")
        }
        let configPath = (folder as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw DCAEError.invalidConfig(path: configPath, message: "missing or unreadable; a diffusers vae/ folder has one")
        }
        let config: AutoencoderDCConfig
        do { config = try JSONDecoder().decode(AutoencoderDCConfig.self, from: data) } catch {
            throw DCAEError.invalidConfig(path: configPath, message: "not a valid AutoencoderDC config: \(error)")
        }
        let problems = config.problems()
        guard problems.isEmpty else {
            throw DCAEError.invalidConfig(path: configPath, message: problems.joined(separator: "; "))
        }
        let checkpoint: SafetensorsCheckpoint
        do { checkpoint = try SafetensorsCheckpoint(path: folder, variant: variant) } catch {
            throw DCAEError.weights(path: folder, message: error.description)
        }
        let weightsPath = checkpoint.indexPath ?? checkpoint.files.first?.path ?? folder
        return try load(checkpoint, config: config, path: weightsPath)
    }

    /// Checks every key and shape against the config, then reads all tensors as fp32 and builds the model.
    static func load(_ checkpoint: SafetensorsCheckpoint, config: AutoencoderDCConfig, path: String) throws -> AutoencoderDC {
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
            throw DCAEError.keyMismatch(path: path, missing: missing, unexpected: unexpected, wrongShape: wrong)
        }
        var tensors: [String: Tensor] = [:]
        for key in spec.expected.keys {
            do { tensors[key] = try checkpoint.tensor(key) } catch {
                throw DCAEError.weights(path: path, message: error.description)
            }
            // A NaN/inf weight would silently turn every decoded image black; report the file instead.
            if tensors[key]?.withUnsafeBufferPointer({ $0.contains { !$0.isFinite } }) == true {
                throw DCAEError.weights(path: path, message: "tensor \(key) holds non-finite values; the file is corrupt")
            }
        }
        return AutoencoderDC(config: config, weights: WeightStore(tensors: tensors))
    }
}
