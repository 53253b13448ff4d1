import Foundation
import Safetensors

/// Errors loading a diffusers model folder (`transformer/`, `vae/`, `text_encoder/`). All are `.modelFile` (exit 4)
/// and name the path.
public enum ModelFolderError: CategorizedError, Equatable {
    /// The folder or its config.json is missing or unreadable, or describes a model the port cannot run.
    case invalidConfig(path: String, message: String)
    /// The weights don't match the config: every missing, unexpected and wrongly shaped key at once.
    /// `folder` says what the folder should have been (e.g. "an AutoencoderDC vae/ folder").
    case keyMismatch(path: String, folder: String, missing: [String], unexpected: [String], wrongShape: [String])
    /// The weight files could not be opened or read.
    case weights(path: String, message: String)

    public var category: ErrorCategory { .modelFile }

    public var description: String {
        switch self {
        case .invalidConfig(let path, let message), .weights(let path, let message):
            return "\(path): \(message)"
        case .keyMismatch(let path, let folder, let missing, let unexpected, let wrongShape):
            func list(_ xs: [String]) -> String {
                xs.prefix(20).joined(separator: ", ") + (xs.count > 20 ? ", … (\(xs.count) in all)" : "")
            }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.count) keys: \(list(missing))") }
            if !unexpected.isEmpty { parts.append("unexpected \(unexpected.count) keys: \(list(unexpected))") }
            if !wrongShape.isEmpty { parts.append("wrongly shaped \(wrongShape.count) keys: \(list(wrongShape))") }
            return "\(path): the weights do not match config.json (is this \(folder)?); " + parts.joined(separator: "; ")
        }
    }
}

/// A diffusers model folder opened for loading: `config.json` decoded and checked, the safetensors checkpoint
/// (one file or an index with shards, optionally a `variant` such as `bf16`) opened. Model loaders build on it so
/// every model reports a bad folder the same way.
public struct ModelFolder<Config: Decodable> {
    public let path: String
    public let configPath: String
    /// The raw config.json, for fields a loader checks beyond `Config`.
    public let configData: Data
    public let config: Config
    public let checkpoint: SafetensorsCheckpoint

    /// - Parameters:
    ///   - role: the folder's name in a diffusers pipeline, for messages (`"vae/"`).
    ///   - modelName: the diffusers/transformers class (`"AutoencoderDC"`).
    ///   - problems: what in the decoded config (or its raw JSON) this port cannot run; empty when fine. Checked
    ///     before the weights are opened.
    public init(path: String, role: String, modelName: String, variant: String? = nil,
                problems: (Config, Data) -> [String]) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw ModelFolderError.invalidConfig(path: path, message: "no such folder; give the model's \(role) folder "
                                                 + "(config.json + safetensors weights)")
        }
        guard isDir.boolValue else {
            throw ModelFolderError.invalidConfig(path: path, message: "not a folder; give the \(role) folder holding "
                                                 + "config.json and the safetensors weights")
        }
        self.path = path
        configPath = (path as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw ModelFolderError.invalidConfig(path: configPath, message: "missing or unreadable; a diffusers "
                                                 + "\(role) folder has one")
        }
        configData = data
        do { config = try JSONDecoder().decode(Config.self, from: data) } catch {
            throw ModelFolderError.invalidConfig(path: configPath, message: "not a valid \(modelName) config: \(error)")
        }
        let found = problems(config, data)
        guard found.isEmpty else {
            throw ModelFolderError.invalidConfig(path: configPath, message: found.joined(separator: "; "))
        }
        do { checkpoint = try SafetensorsCheckpoint(path: path, variant: variant) } catch {
            throw ModelFolderError.weights(path: path, message: error.description)
        }
    }

    /// The cache fingerprint of a model folder: its config.json and every weight file (path, size, mtime, inode), so
    /// editing either invalidates cached results. Cheap: nothing is read or decoded.
    public static func fingerprint(path: String) throws -> String {
        do {
            return try FileFingerprint.fast(path + "/config.json") + "\n"
                + (try SafetensorsCheckpoint(path: path).fingerprint())
        } catch {
            throw ModelFolderError.weights(path: path, message: "\(error)")
        }
    }

    /// The weights' path for messages: the shard index, else the single file.
    public var weightsPath: String { checkpoint.indexPath ?? checkpoint.files.first?.path ?? path }
}
