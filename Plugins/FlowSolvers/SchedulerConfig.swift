import Foundation
import SanaGraphKit
import DiffusionModels

/// Errors reading or applying a `scheduler_config.json`.
public enum SchedulerConfigError: CategorizedError, Equatable {
    /// No config file at the path (or under `scheduler/` of a model folder).
    case notFound(path: String)
    /// The file is not a JSON object.
    case malformed(path: String, message: String)
    /// A key has the wrong JSON type.
    case wrongType(path: String, key: String, expected: String)
    /// A setting SanaGraph's flow solvers do not implement.
    case unsupported(path: String, key: String, value: String, supported: String)

    public var category: ErrorCategory { .modelFile }

    public var description: String {
        switch self {
        case .notFound(let path):
            return "\(path): no scheduler config here (looked for the file itself, scheduler_config.json and "
                + "scheduler/scheduler_config.json); give the path of a diffusers scheduler_config.json or of a "
                + "model folder that has one"
        case .malformed(let path, let message):
            return "\(path): not a valid scheduler config (\(message)); re-download the model's scheduler folder"
        case .wrongType(let path, let key, let expected):
            return "\(path): key '\(key)' must be \(expected)"
        case .unsupported(let path, let key, let value, let supported):
            return "\(path): \(key) = \(value) is not supported by SanaGraph's flow solvers (supported: \(supported))"
        }
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

    /// SANA's settings.
    public static let sana = SchedulerConfig()

    public init() {}

    /// Reads `path`: a scheduler_config.json, a scheduler folder, or a model folder holding `scheduler/`.
    public static func load(path: String) throws -> SchedulerConfig {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        var file = path
        if fm.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
            let candidates = [path + "/scheduler_config.json", path + "/scheduler/scheduler_config.json"]
            guard let found = candidates.first(where: { fm.fileExists(atPath: $0) }) else {
                throw SchedulerConfigError.notFound(path: path)
            }
            file = found
        } else if !fm.fileExists(atPath: path) {
            throw SchedulerConfigError.notFound(path: path)
        }
        guard let data = fm.contents(atPath: file) else {
            throw SchedulerConfigError.malformed(path: file, message: "file is unreadable")
        }
        return try parse(data, path: file)
    }

    /// Parses the JSON text of a scheduler config. `path` is used in error messages.
    public static func parse(_ data: Data, path: String) throws -> SchedulerConfig {
        // diffusers writes Python's non-standard `-Infinity` (lambda_min_clipped); none of those keys matter
        // to us, so such tokens become null before parsing.
        let text = String(decoding: data, as: UTF8.self)
        let cleaned = Data(replacingNonFiniteLiterals(text).utf8)
        let object: JSONValue
        do {
            object = try JSONDecoder().decode(JSONValue.self, from: cleaned)
        } catch {
            throw SchedulerConfigError.malformed(path: path, message: "invalid JSON")
        }
        guard case .object(let dict) = object else {
            throw SchedulerConfigError.malformed(path: path, message: "top level is not an object")
        }
        let reader = Reader(dict: dict, path: path)
        var c = SchedulerConfig()
        c.className = try reader.string("_class_name")

        if let v = try reader.int("num_train_timesteps") {
            guard v >= 2 else {
                throw SchedulerConfigError.unsupported(path: path, key: "num_train_timesteps", value: String(v),
                                                       supported: ">= 2")
            }
            c.numTrainTimesteps = v
        }
        if let v = try reader.double("flow_shift") ?? (try reader.double("shift")) {
            guard v > 0 else {
                throw SchedulerConfigError.unsupported(path: path, key: "flow_shift", value: String(v),
                                                       supported: "> 0")
            }
            c.flowShift = v
        }
        if let v = try reader.int("solver_order") {
            guard v == 1 || v == 2 else {
                throw SchedulerConfigError.unsupported(path: path, key: "solver_order", value: String(v),
                                                       supported: "1, 2")
            }
            c.solverOrder = v
        }
        if let v = try reader.string("solver_type") {
            guard v == "midpoint" || v == "heun" else {
                throw SchedulerConfigError.unsupported(path: path, key: "solver_type", value: v,
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
                throw SchedulerConfigError.unsupported(path: path, key: key, value: "false", supported: "true")
            }
        }
        for key in ["thresholding", "use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas",
                    "use_lu_lambdas", "use_dynamic_shifting", "invert_sigmas", "stochastic_sampling"] {
            if let v = try reader.bool(key), v {
                throw SchedulerConfigError.unsupported(path: path, key: key, value: "true", supported: "false")
            }
        }
        if let v = try reader.double("shift_terminal"), v != 0 {
            throw SchedulerConfigError.unsupported(path: path, key: "shift_terminal", value: String(v),
                                                   supported: "null")
        }
        return c
    }

    /// Typed access to optional keys; null counts as absent.
    private struct Reader {
        let dict: [String: JSONValue]
        let path: String

        func value(_ key: String) -> JSONValue? {
            guard let v = dict[key], v != .null else { return nil }
            return v
        }

        func string(_ key: String) throws -> String? {
            guard let v = value(key) else { return nil }
            guard case .string(let s) = v else {
                throw SchedulerConfigError.wrongType(path: path, key: key, expected: "a string")
            }
            return s
        }

        func bool(_ key: String) throws -> Bool? {
            guard let v = value(key) else { return nil }
            guard case .bool(let b) = v else {
                throw SchedulerConfigError.wrongType(path: path, key: key, expected: "true or false")
            }
            return b
        }

        func double(_ key: String) throws -> Double? {
            guard let v = value(key) else { return nil }
            guard case .number(let d) = v else {
                throw SchedulerConfigError.wrongType(path: path, key: key, expected: "a number")
            }
            return d
        }

        func int(_ key: String) throws -> Int? {
            guard let d = try double(key) else { return nil }
            guard d.rounded() == d, abs(d) < 1e15 else {
                throw SchedulerConfigError.wrongType(path: path, key: key, expected: "an integer")
            }
            return Int(d)
        }

        func require(_ key: String, equals expected: String) throws {
            if let v = try string(key), v != expected {
                throw SchedulerConfigError.unsupported(path: path, key: key, value: v, supported: expected)
            }
        }
    }
}

/// A parsed JSON value (numbers as Double).
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let d = try? c.decode(Double.self) { self = .number(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }
}

/// Replaces the bare tokens `Infinity`, `-Infinity` and `NaN` outside strings with `null`.
func replacingNonFiniteLiterals(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.utf8.count)
    var inString = false
    var escaped = false
    var i = text.startIndex
    while i < text.endIndex {
        let ch = text[i]
        if inString {
            out.append(ch)
            if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == "\"" { inString = false }
            i = text.index(after: i)
            continue
        }
        if ch == "\"" {
            inString = true
            out.append(ch)
            i = text.index(after: i)
            continue
        }
        var matched = false
        for token in ["-Infinity", "Infinity", "NaN"] where text[i...].hasPrefix(token) {
            out += "null"
            i = text.index(i, offsetBy: token.count)
            matched = true
            break
        }
        if !matched {
            out.append(ch)
            i = text.index(after: i)
        }
    }
    return out
}
