import DiffusionModels
import Foundation
import SanaGraphKit
import Safetensors
import Tensors

/// A LoRA file that is unusable for the model it is applied to (exit 4: a model-file problem).
public enum SanaLoRAError: CategorizedError, Equatable {
    case unreadable(path: String, reason: String)
    /// Keys that are not `<module>.lora_A.weight` / `<module>.lora_B.weight` (or a module missing one of them).
    case unsupportedKeys(path: String, keys: [String])
    /// Modules the LoRA patches that the transformer does not have (or cannot take a LoRA: conv_depth, patch_embed).
    case unmatchedModules(path: String, modules: [String], example: String)
    /// A module whose LoRA matrices do not fit the transformer's weight.
    case wrongShape(path: String, module: String, message: String)
    case badMetadata(path: String, message: String)

    public var category: ErrorCategory { .modelFile }

    public var description: String {
        func list(_ keys: [String]) -> String {
            keys.prefix(8).joined(separator: ", ") + (keys.count > 8 ? " and \(keys.count - 8) more" : "")
        }
        switch self {
        case .unreadable(let path, let reason): return "\(path): cannot read the LoRA: \(reason)"
        case .unsupportedKeys(let path, let keys):
            return "\(path): not a diffusers/PEFT LoRA for a SANA transformer: unsupported keys \(list(keys)) "
                + "(expected pairs [transformer.]<module>.lora_A.weight and .lora_B.weight, as "
                + "SanaPipeline.load_lora_weights reads)"
        case .unmatchedModules(let path, let modules, let example):
            return "\(path): the LoRA's keys match no linear layer of this transformer: \(list(modules)) (a layer "
                + "is named like \(example)); was it made for another model?"
        case .wrongShape(let path, let module, let message):
            return "\(path): LoRA for \(module) does not fit the transformer: \(message)"
        case .badMetadata(let path, let message): return "\(path): lora_adapter_metadata: \(message)"
        }
    }
}

/// A LoRA in the layouts `SanaPipeline.load_lora_weights` reads: safetensors keys
/// `[transformer.]<module>.lora_A.weight` `[r, in(, 1, 1)]` and `.lora_B.weight` `[out, r(, 1, 1)]`, scaled by
/// `lora_alpha / r` from the file's `lora_adapter_metadata` (PEFT's LoraConfig: `r`, `lora_alpha`,
/// `rank_pattern`, `alpha_pattern`, `use_rslora`), or by 1 without metadata (diffusers then takes alpha = rank).
public struct SanaLoRA: Sendable {
    /// One patched module: `W' = W + strength · scale · up · down`.
    public struct Module: Sendable {
        public var down: Tensor  // lora_A [r, in]
        public var up: Tensor  // lora_B [out, r]
        public var scale: Float
    }

    public let path: String
    /// By diffusers module name (`transformer_blocks.0.attn1.to_q`).
    public let modules: [String: Module]
    /// Keys for other models of the pipeline (text_encoder.*), which SanaPipeline does not load either.
    public let skippedKeys: [String]

    public static func load(path: String) throws -> SanaLoRA {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch {
            throw SanaLoRAError.unreadable(path: path, reason: error.description)
        }
        let config = try Metadata(file.metadata["lora_adapter_metadata"], path: path)
        var downs: [String: Tensor] = [:], ups: [String: Tensor] = [:]
        var unsupported: [String] = [], skipped: [String] = []
        for key in file.names + file.unsupportedTensors.keys.sorted() {
            if key.hasPrefix("text_encoder.") { skipped.append(key); continue }
            let name = key.hasPrefix("transformer.") ? String(key.dropFirst("transformer.".count)) : key
            let isDown = name.hasSuffix(".lora_A.weight"), isUp = name.hasSuffix(".lora_B.weight")
            guard isDown || isUp, file.tensors[key] != nil else { unsupported.append(key); continue }
            let module = String(name.dropLast(".lora_A.weight".count))
            let t: Tensor
            do { t = try file.tensor(key) } catch { throw SanaLoRAError.unreadable(path: path, reason: error.description) }
            if isDown { downs[module] = t } else { ups[module] = t }
        }
        for m in Set(downs.keys).symmetricDifference(ups.keys).sorted() {
            unsupported.append("\(m).\(downs[m] == nil ? "lora_B" : "lora_A").weight (without its pair)")
        }
        guard unsupported.isEmpty else { throw SanaLoRAError.unsupportedKeys(path: path, keys: unsupported) }
        guard !downs.isEmpty else {
            throw SanaLoRAError.unsupportedKeys(path: path, keys: skipped.isEmpty ? ["(no tensors)"] : skipped)
        }
        var modules: [String: Module] = [:]
        for (name, down4) in downs {
            let up4 = ups[name]!
            func matrix(_ t: Tensor, _ what: String) throws -> Tensor {
                guard t.rank == 2 || (t.rank == 4 && t.shape[2] == 1 && t.shape[3] == 1) else {
                    throw SanaLoRAError.wrongShape(path: path, module: name,
                                                   message: "\(what) has shape \(t.shape); expected 2-D (or [*, *, 1, 1])")
                }
                return t.reshaped([t.shape[0], t.shape[1]])
            }
            let down = try matrix(down4, "lora_A"), up = try matrix(up4, "lora_B")
            guard up.shape[1] == down.shape[0] else {
                throw SanaLoRAError.wrongShape(path: path, module: name,
                                               message: "lora_A \(down4.shape) and lora_B \(up4.shape) disagree on the rank")
            }
            let scale = try config.scale(module: name, rank: down.shape[0], path: path)
            modules[name] = Module(down: down, up: up, scale: scale)
        }
        return SanaLoRA(path: path, modules: modules, skippedKeys: skipped)
    }

    /// PEFT's LoraConfig fields diffusers stores under `lora_adapter_metadata` (keys prefixed `transformer.`).
    struct Metadata {
        var rank: Int?
        var alpha: Double?
        var rankPattern: [String: Int] = [:]
        var alphaPattern: [String: Double] = [:]
        var rsLoRA = false

        init(_ json: String?, path: String) throws {
            guard let json else { return }
            guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any] else {
                throw SanaLoRAError.badMetadata(path: path, message: "not a JSON object")
            }
            func field(_ name: String) -> Any? { object["transformer." + name] ?? object[name] }
            rank = (field("r") as? NSNumber)?.intValue
            alpha = (field("lora_alpha") as? NSNumber)?.doubleValue
            rankPattern = ((field("rank_pattern") as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
            alphaPattern = ((field("alpha_pattern") as? [String: Any]) ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
            rsLoRA = (field("use_rslora") as? Bool) ?? false
        }

        /// PEFT's `get_pattern_key`: the first pattern `p` with `^(.*\.)?(p)$` matching the module name.
        static func lookup<V>(_ patterns: [String: V], _ module: String) -> V? {
            for (pattern, value) in patterns.sorted(by: { $0.key < $1.key }) {
                guard let re = try? NSRegularExpression(pattern: "^(.*\\.)?(\(pattern))$") else { continue }
                if re.firstMatch(in: module, range: NSRange(module.startIndex..., in: module)) != nil { return value }
            }
            return nil
        }

        /// `alpha / r` (or `alpha / √r` with rsLoRA); 1 when the file has no metadata (alpha = rank).
        func scale(module: String, rank tensorRank: Int, path: String) throws -> Float {
            guard let r = Self.lookup(rankPattern, module) ?? rank else { return 1 }
            guard r == tensorRank else {
                throw SanaLoRAError.badMetadata(path: path, message: "\(module) has rank \(tensorRank) but the "
                                                + "metadata says r = \(r)")
            }
            let a = Self.lookup(alphaPattern, module) ?? alpha ?? Double(r)
            return Float(rsLoRA ? a / Double(r).squareRoot() : a / Double(r))
        }
    }
}

extension SanaTransformer2DModel {
    /// A new model whose linear layers carry `lora` at `strength` (the fp32 weights plus the low-rank update,
    /// prepared again at this model's precision); this model and the files on disk are unchanged. Throws naming
    /// the LoRA file and the modules that match nothing or do not fit.
    public func applying(_ lora: SanaLoRA, strength: Float) throws -> SanaTransformer2DModel {
        var used = Set<String>()
        let patched = try SanaTransformer2DModel(patching: self) { module, weight in
            guard let m = lora.modules[module] else { return weight }
            used.insert(module)
            guard m.up.shape[0] == weight.outFeatures, m.down.shape[1] == weight.inFeatures else {
                throw SanaLoRAError.wrongShape(
                    path: lora.path, module: module,
                    message: "lora_B·lora_A is [\(m.up.shape[0]), \(m.down.shape[1])] but the weight is "
                        + "[\(weight.outFeatures), \(weight.inFeatures)]")
            }
            var w = Ops.matmul(m.up, m.down)
            Ops.scaleInPlace(&w, by: strength * m.scale)
            Ops.addInPlace(&w, weight.unpacked())
            return LinearWeight(w, precision: weight.precision)
        }
        let unmatched = Set(lora.modules.keys).subtracting(used).sorted()
        guard unmatched.isEmpty else {
            throw SanaLoRAError.unmatchedModules(path: lora.path, modules: unmatched,
                                                 example: "transformer_blocks.0.attn1.to_q")
        }
        return patched
    }
}
