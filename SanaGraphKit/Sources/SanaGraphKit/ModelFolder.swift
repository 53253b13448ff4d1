import Foundation
import Safetensors

/// Errors loading a diffusers model folder (`transformer/`, `vae/`, `text_encoder/`). All are `.modelFile` (exit 4)
/// and name the path.
public enum ModelFolderError: CategorizedError, Equatable {
    /// A file that describes the model — config.json, tokenizer.json, scheduler_config.json, … — is missing,
    /// unreadable or malformed, or describes a model the port cannot run (also: the folder itself is missing).
    case invalidConfig(path: String, message: String)
    /// The weights don't match the config: every missing, unexpected and wrongly shaped key at once.
    /// `folder` says what the folder should have been (e.g. "an AutoencoderDC vae/ folder").
    case keyMismatch(path: String, folder: String, missing: [String], unexpected: [String], wrongShape: [String])
    /// The weight files could not be opened or read, or hold corrupt values.
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
    /// The parsed config.json (strict JSON), for fields a loader checks beyond `Config`.
    public let configJSON: JSONValue
    public let config: Config
    public let checkpoint: SafetensorsCheckpoint

    /// - Parameters:
    ///   - role: the folder's name in a diffusers pipeline, for messages (`"vae/"`).
    ///   - modelName: the diffusers/transformers class (`"AutoencoderDC"`).
    ///   - problems: what in the decoded config (or its parsed JSON) this port cannot run; empty when fine.
    ///     Checked before the weights are opened.
    public init(path: String, role: String, modelName: String, variant: String? = nil,
                problems: (Config, JSONValue) -> [String]) throws {
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
        configPath = Paths.join(path, "config.json")
        let bytes: [UInt8]
        switch BoundedFile.read(configPath, limit: GraphLimits.maxConfigBytes) {
        case .success(let read): bytes = read
        case .failure(.missing):
            throw ModelFolderError.invalidConfig(path: configPath, message: "missing; a diffusers \(role) folder has one")
        case .failure(let why):
            throw ModelFolderError.invalidConfig(path: configPath, message: "\(why); a diffusers \(role) folder has a "
                                                 + "config.json file")
        }
        do {
            configJSON = try JSONValue.parse(bytes)
            config = try configJSON.decode(Config.self)
        } catch {
            throw ModelFolderError.invalidConfig(path: configPath, message: "not a valid \(modelName) config: \(error)")
        }
        let found = problems(config, configJSON)
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

    /// Bytes the folder's weights take once converted to fp32, from the safetensors headers (nothing else is
    /// read), or nil when the folder can't be opened (loading then says why). For `Node.estimateMemory`.
    public static func fp32WeightBytes(path: String) -> Int? {
        guard let checkpoint = try? SafetensorsCheckpoint(path: path) else { return nil }
        return MachineMemory.fp32WeightBytes(shapes: checkpoint.names.compactMap { try? checkpoint.info($0).shape })
    }

    /// The weights' path for messages: the shard index, else the single file.
    public var weightsPath: String { checkpoint.indexPath ?? checkpoint.files.first?.path ?? path }
}
