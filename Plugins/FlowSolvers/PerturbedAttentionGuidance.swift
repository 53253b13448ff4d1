import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// Perturbed-attention guidance (PAG) settings as `SanaPAGPipeline` takes them.
public struct PAGOptions: Sendable, Equatable {
    /// `pag_scale`: weight of `v_text − v_perturbed`; 0 turns PAG off.
    public var scale: Double
    /// `pag_adaptive_scale`: the scale used at scheduler timestep t is `max(scale − adaptive·(1000 − t), 0)`.
    public var adaptiveScale: Double
    /// `pag_applied_layers`: regular expressions searched in the model's self-attention module names.
    public var appliedLayers: [String]

    public init(scale: Double, adaptiveScale: Double = 0, appliedLayers: [String]) {
        self.scale = scale
        self.adaptiveScale = adaptiveScale
        self.appliedLayers = appliedLayers
    }

    /// Whether PAG runs (diffusers' `do_perturbed_attention_guidance`).
    public var isActive: Bool { scale > 0 && !appliedLayers.isEmpty }

    /// The scale at scheduler timestep `t` (diffusers' `_get_pag_scale`; t in [0, 1000]).
    public func scale(atTimestep t: Double) -> Float {
        guard adaptiveScale > 0 else { return Float(scale) }
        return Float(max(scale - adaptiveScale * (1000 - t), 0))
    }

    /// Splits a `pag_applied_layers` param at commas outside `{…}` (so `blocks\.{1,2}` stays one pattern).
    public static func patterns(_ text: String) -> [String] {
        var out: [String] = [], current = "", depth = 0
        for ch in text {
            if ch == "{" { depth += 1 } else if ch == "}" { depth = max(0, depth - 1) }
            if ch == ",", depth == 0 { out.append(current); current = ""; continue }
            current.append(ch)
        }
        out.append(current)
        return out.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// Perturbed-attention guidance as diffusers' `PAGMixin` does it for SANA.
public enum PerturbedAttentionGuidance {
    /// The layers of `names` that `patterns` select, as `PAGMixin._set_pag_attn_processor` does: a name is
    /// chosen when a pattern is found in it (`re.search`). Throws naming the pattern that matches nothing.
    public static func layers(matching patterns: [String], in names: [String], node: String) throws -> Set<Int> {
        var chosen = Set<Int>()
        for pattern in patterns {
            let regex: NSRegularExpression
            do { regex = try NSRegularExpression(pattern: pattern) } catch {
                throw NodeError.invalidParam(node: node, param: "pag_applied_layers",
                                             message: "'\(pattern)' is not a regular expression")
            }
            let hits = names.indices.filter { i in
                regex.firstMatch(in: names[i], range: NSRange(names[i].startIndex..., in: names[i])) != nil
            }
            guard !hits.isEmpty else {
                let sample = names.prefix(3).joined(separator: ", ")
                throw NodeError.invalidParam(
                    node: node, param: "pag_applied_layers",
                    message: "'\(pattern)' matches no self-attention layer of the model (\(names.count) layers: "
                        + "\(sample)\(names.count > 3 ? ", …" : ""))")
            }
            chosen.formUnion(hits)
        }
        return chosen
    }

    /// `v + s·(v − v_perturbed)` (no classifier-free guidance), or, with `uncond`,
    /// `v_uncond + g·(v − v_uncond) + s·(v − v_perturbed)` (`_apply_perturbed_attention_guidance`).
    public static func combine(text: Tensor, uncond: Tensor?, perturbed: Tensor, guidance: Float,
                               pagScale: Float) -> Tensor {
        var out = Tensor(uninitialized: text.shape)
        text.withUnsafeBufferPointer { c in
            perturbed.withUnsafeBufferPointer { p in
                out.withUnsafeMutableBufferPointer { o in
                    if let uncond {
                        uncond.withUnsafeBufferPointer { u in
                            for i in 0..<o.count { o[i] = u[i] + guidance * (c[i] - u[i]) + pagScale * (c[i] - p[i]) }
                        }
                    } else {
                        for i in 0..<o.count { o[i] = c[i] + pagScale * (c[i] - p[i]) }
                    }
                }
            }
        }
        return out
    }

    /// One sampling run's PAG state: the model, its chosen layers and the positive-only prepared text.
    struct Run {
        let model: any PerturbedAttentionDenoiser
        let layers: Set<Int>
        let layerNames: [String]
        /// Prepared text of the positive rows alone (the perturbed branch's conditioning).
        let positiveText: any PreparedText
        let options: PAGOptions
        let guided: Bool

        /// nil when PAG is off; throws when it is asked of a model that cannot perturb its attention.
        init?(_ options: PAGOptions?, model: any DenoiserModel, positive: Conditioning, batch: Int, guided: Bool,
              text: any PreparedText, node: String) throws {
            guard let options, options.isActive else { return nil }
            guard let model = model as? any PerturbedAttentionDenoiser else {
                throw NodeError.invalidInput(
                    node: node, message: "pag_scale > 0 needs a model that supports perturbed-attention guidance "
                        + "(SANA's CPU transformer); this denoiser does not: set pag_scale 0")
            }
            let names = model.selfAttentionLayerNames
            layers = try PerturbedAttentionGuidance.layers(matching: options.appliedLayers, in: names, node: node)
            layerNames = layers.sorted().map { names[$0] }
            self.model = model
            self.options = options
            self.guided = guided
            positiveText = guided
                ? try model.prepare(ClassifierFreeGuidance.batched(positive: positive, negative: nil, batch: batch,
                                                                   node: node))
                : text
        }

        /// The guided velocity from the model's prediction `v` ([uncond; text] when guided, else text) and a
        /// perturbed forward of `latent`.
        func guided(_ v: Tensor, latent: Tensor, timestep: Float, schedulerTimestep: Double, guidance: Float,
                    batch: Int) throws -> Tensor {
            let perturbed = try model.predict(latent: latent, timestep: Tensor(repeating: timestep, shape: [batch]),
                                              text: positiveText, guidance: nil, perturbedLayers: layers)
            let s = options.scale(atTimestep: schedulerTimestep)
            guard guided else {
                return PerturbedAttentionGuidance.combine(text: v, uncond: nil, perturbed: perturbed,
                                                          guidance: guidance, pagScale: s)
            }
            let halves = Ops.split(v, sizes: [batch, batch], axis: 0)
            return PerturbedAttentionGuidance.combine(text: halves[1], uncond: halves[0], perturbed: perturbed,
                                                      guidance: guidance, pagScale: s)
        }
    }
}
