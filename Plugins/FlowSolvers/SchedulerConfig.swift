import Foundation
import SanaGraphKit
import Safetensors
import DiffusionModels

/// The problems of a `scheduler_config.json`, as model-folder errors (`ModelFolderError.invalidConfig`, exit 4).
public enum SchedulerFile {
    /// No config file at the path (or under `scheduler/` of a model folder).
    public static func notFound(path: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "no scheduler config here (looked for the file itself, scheduler_config.json "
            + "and scheduler/scheduler_config.json); give the path of a diffusers scheduler_config.json or of a "
            + "model folder that has one")
    }
    /// The file is not a JSON object.
    public static func malformed(path: String, message: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "not a valid scheduler config (\(message)); re-download the model's "
            + "scheduler folder")
    }
    /// A key has the wrong JSON type.
    public static func wrongType(path: String, key: String, expected: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "key '\(key)' must be \(expected)")
    }
    /// A setting SanaGraph's flow solvers do not implement.
    public static func unsupported(path: String, key: String, value: String, supported: String) -> ModelFolderError {
        .invalidConfig(path: path, message: "\(key) = \(value) is not supported by SanaGraph's flow solvers "
            + "(supported: \(supported))")
    }
}

/// The subset of a diffusers scheduler config the flow solvers use.
///
/// Defaults are SANA's shipped `DPMSolverMultistepScheduler` config (not diffusers' class defaults), so a
/// missing file or key means "as SANA ships it". `flowShift` is informational here: the sampler nodes' `shift`
/// param is what is used (see docs/solvers.md).
public struct SchedulerConfig: Sendable, Equatable {
    /// diffusers `_class_name`, if the file had one.
    public var className: String?
    public var numTrainTimesteps: Int = 1000
    /// 1 or 2 (DPM-Solver++).
    public var solverOrder: Int = 2
    /// "midpoint" or "heun" (second-order DPM-Solver++ update).
    public var solverType: String = "midpoint"
    public var lowerOrderFinal: Bool = true
    public var eulerAtFinal: Bool = false
    public var flowShift: Double = 3.0
    /// Whether the file gave `flow_shift` (else `flowShift` is SANA's 3.0 and the sampler picks by model size).
    public var flowShiftGiven = false

    /// SANA's settings.
    public static let sana = SchedulerConfig()

    public init() {}

    /// Reads `path`: a scheduler_config.json, a scheduler folder, or a model folder holding `scheduler/`.
    public static func load(path: String) throws -> SchedulerConfig {
        let (file, data) = try read(path: path)
        return try parse(data, path: file)
    }

    /// The config file `path` names (itself, `path/scheduler_config.json` or `path/scheduler/…`) and its bytes.
    static func read(path: String) throws -> (file: String, data: Data) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        var file = path
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            let candidates = [path + "/scheduler_config.json", path + "/scheduler/scheduler_config.json"]
            guard let found = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
                throw SchedulerFile.notFound(path: path)
            }
            file = found
        } else if !fm.fileExists(atPath: path) {
            throw SchedulerFile.notFound(path: path)
        }
        let data: Data
        switch BoundedFile.read(file, limit: GraphLimits.maxConfigBytes) {
        case .success(let bytes): data = Data(bytes)
        case .failure(let why): throw SchedulerFile.malformed(path: file, message: why.description)
        }
        return (file, data)
    }

    /// Parses the JSON text of a scheduler config. `path` is used in error messages.
    public static func parse(_ data: Data, path: String) throws -> SchedulerConfig {
        let reader = try Reader(data, path: path)
        var c = SchedulerConfig()
        c.className = try reader.string("_class_name")
        let predictionType = try reader.string("prediction_type")
        if c.className == "SCMScheduler" || predictionType == "trigflow" {
            throw SchedulerFile.unsupported(
                path: path, key: "_class_name", value: c.className ?? "a trigflow scheduler",
                supported: "DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler; this is Sana-Sprint's "
                    + "SCMScheduler: sample it with sample.scm (Graphs/sprint.yaml)")
        }

        if let v = try reader.int("num_train_timesteps") {
            guard (2...100_000).contains(v) else {
                throw SchedulerFile.unsupported(path: path, key: "num_train_timesteps", value: String(v),
                                                 supported: "2...100000")
            }
            c.numTrainTimesteps = v
        }
        if let v = try reader.double("flow_shift") ?? (try reader.double("shift")) {
            guard v > 0, v <= 1e6 else {
                throw SchedulerFile.unsupported(path: path, key: "flow_shift", value: String(v),
                                                 supported: "> 0 and <= 1e6")
            }
            c.flowShift = v
            c.flowShiftGiven = true
        }
        if let v = try reader.int("solver_order") {
            guard v == 1 || v == 2 else {
                throw SchedulerFile.unsupported(path: path, key: "solver_order", value: String(v),
                                                 supported: "1, 2")
            }
            c.solverOrder = v
        }
        if let v = try reader.string("solver_type") {
            guard v == "midpoint" || v == "heun" else {
                throw SchedulerFile.unsupported(path: path, key: "solver_type", value: v,
                                                 supported: "midpoint, heun")
            }
            c.solverType = v
        }
        if let v = try reader.bool("lower_order_final") { c.lowerOrderFinal = v }
        if let v = try reader.bool("euler_at_final") { c.eulerAtFinal = v }

        // Settings that would change the math; only SANA's values are implemented.
        try reader.require("algorithm_type", equals: "dpmsolver++")
        try reader.require("prediction_type", equals: "flow_prediction")
        try reader.require("final_sigmas_type", equals: "zero")
        for key in ["use_flow_sigmas"] {
            if let v = try reader.bool(key), v == false, c.className == "DPMSolverMultistepScheduler" {
                throw SchedulerFile.unsupported(path: path, key: key, value: "false", supported: "true")
            }
        }
        for key in ["thresholding", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
                    "use_lu_lambdas", "use_dynamic_shifting", "invert_sigmas", "stochastic_sampling"] {
            if let v = try reader.bool(key), v {
                throw SchedulerFile.unsupported(path: path, key: key, value: "true", supported: "false")
            }
        }
        if let v = try reader.double("shift_terminal"), v != 0 {
            throw SchedulerFile.unsupported(path: path, key: "shift_terminal", value: String(v),
                                             supported: "null")
        }
        return c
    }

    /// Typed access to optional keys; null counts as absent.
    struct Reader {
        let object: JSONValue
        let path: String

        /// Parses a config file's bytes (strict JSON). diffusers writes Python's non-standard `-Infinity`
        /// (lambda_min_clipped); it is read as a number (none of those keys matter here).
        init(_ data: Data, path: String) throws {
            let object: JSONValue
            do { object = try JSONValue.parse(data, nonFiniteLiterals: true) } catch {
                throw SchedulerFile.malformed(path: path, message: error.description)
            }
            guard object.members != nil else {
                throw SchedulerFile.malformed(path: path, message: "top level is not an object")
            }
            self.object = object
            self.path = path
        }

        func value(_ key: String) -> JSONValue? {
            guard let v = object[key], v != .null else { return nil }
            return v
        }

        func string(_ key: String) throws -> String? {
            guard let v = value(key) else { return nil }
            guard case .string(let s) = v else {
                throw SchedulerFile.wrongType(path: path, key: key, expected: "a string")
            }
            return s
        }

        func bool(_ key: String) throws -> Bool? {
            guard let v = value(key) else { return nil }
            guard case .bool(let b) = v else {
                throw SchedulerFile.wrongType(path: path, key: key, expected: "true or false")
            }
            return b
        }

        func double(_ key: String) throws -> Double? {
            guard let v = value(key) else { return nil }
            guard let d = v.double else {
                throw SchedulerFile.wrongType(path: path, key: key, expected: "a number")
            }
            return d
        }

        func int(_ key: String) throws -> Int? {
            guard let d = try double(key) else { return nil }
            guard d.rounded() == d, abs(d) < 1e15 else {
                throw SchedulerFile.wrongType(path: path, key: key, expected: "an integer")
            }
            return Int(d)
        }

        func require(_ key: String, equals expected: String) throws {
            if let v = try string(key), v != expected {
                throw SchedulerFile.unsupported(path: path, key: key, value: v, supported: expected)
            }
        }
    }
}
