import SanaGraphKit
import DiffusionModels
import Tensors

/// Which update rule a sampling run uses.
public enum FlowSolverKind: String, Sendable {
    /// Flow-DPM-Solver: `DPMSolverMultistepScheduler` as SANA ships it.
    case dpmSolver = "flow_dpm_solver"
    /// `FlowMatchEulerDiscreteScheduler`.
    case euler = "flow_euler"

    /// A fresh scheduler of this kind.
    public func makeScheduler(steps: Int, shift: Double, config: SchedulerConfig) -> any FlowScheduler {
        switch self {
        case .dpmSolver: return FlowDPMSolverMultistepScheduler(steps: steps, shift: shift, config: config)
        case .euler: return FlowMatchEulerScheduler(steps: steps, shift: shift, config: config)
        }
    }
}

/// Settings of one sampling run.
public struct SamplingOptions: Sendable {
    /// Steps N of the full schedule (≥ 1).
    public var steps: Int
    /// Classifier-free guidance scale; ≤ 1 runs the positive branch only.
    public var guidance: Double
    /// Flow shift of the sigma schedule.
    public var shift: Double
    /// img2img strength in [0, 1]: the last `round-down` share of the schedule is run (see `startIndex`).
    public var denoise: Double
    public var config: SchedulerConfig
    /// Perturbed-attention guidance (`SanaPAGPipeline`); nil or inactive = none.
    public var pag: PAGOptions?

    public init(steps: Int = 20, guidance: Double = 4.5, shift: Double = 3.0, denoise: Double = 1.0,
                config: SchedulerConfig = .sana, pag: PAGOptions? = nil) {
        self.steps = steps
        self.guidance = guidance
        self.shift = shift
        self.denoise = denoise
        self.config = config
        self.pag = pag
    }

    /// diffusers' img2img `get_timesteps`: `t_start = int(max(N − min(N·strength, N), 0))`.
    public var startIndex: Int {
        let n = Double(steps)
        let initTimestep = min(n * denoise, n)
        return Int(max(n - initTimestep, 0))
    }
}

/// The sampling loop of `SanaPipeline.__call__`, independent of the denoiser.
public enum FlowSampler {
    /// Samples latents.
    ///
    /// - Parameters:
    ///   - latent: without `noise`, the initial noise (text-to-image, `denoise` must be 1); with `noise`, the
    ///     clean latent to re-noise at the first used sigma: x = (1 − σ)·latent + σ·noise (img2img).
    ///   - negative: the unconditional branch of classifier-free guidance (used when guidance > 1).
    ///   - mask: inpainting (needs `noise`): [1 or B, 1, h, w] in [0, 1], 1 = repaint. After every step the latent
    ///     becomes m·x + (1 − m)·((1 − σ')·latent + σ'·noise) at the next sigma σ' (the clean latent after the
    ///     last step), as diffusers' SD3/Flux inpaint loops blend.
    ///   - preview: the autoencoder's latent → RGB projection, for the run's `--preview` pictures.
    /// - Returns: latents [B, C, h, w] after the last step.
    public static func sample(kind: FlowSolverKind, model: any DenoiserModel, positive: Conditioning,
                              negative: Conditioning?, latent: Tensor, noise: Tensor?, options: SamplingOptions,
                              context: RunContext, mask: Tensor? = nil,
                              preview: LatentPreview? = nil) throws -> Tensor {
        let node = context.nodeID
        guard latent.rank == 4, latent.shape.allSatisfy({ $0 > 0 }) else {
            throw NodeError.invalidInput(node: node, message: "latent has shape \(latent.shape); expected [B, C, h, w]")
        }
        guard latent.shape[1] == model.inChannels else {
            throw NodeError.invalidInput(
                node: node,
                message: "latent has \(latent.shape[1]) channels but the model takes \(model.inChannels); set "
                    + "latent.noise's channels to \(model.inChannels)")
        }
        if let noise, noise.shape != latent.shape {
            throw NodeError.invalidInput(
                node: node, message: "noise has shape \(noise.shape) but latent has \(latent.shape); they must match")
        }
        guard !model.takesGuidance else {
            throw NodeError.invalidInput(
                node: node,
                message: "the model takes an embedded guidance scale (a Sana-Sprint transformer); this sampler "
                    + "drives classifier-free-guidance models: use sample.scm (Graphs/sprint.yaml)")
        }
        guard options.steps >= 1 else {
            throw NodeError.invalidParam(node: node, param: "steps", message: "must be at least 1")
        }
        guard options.denoise >= 0, options.denoise <= 1 else {
            throw NodeError.invalidParam(node: node, param: "denoise", message: "must be in [0, 1]")
        }
        guard options.shift > 0 else {
            throw NodeError.invalidParam(node: node, param: "shift", message: "must be greater than 0")
        }
        if noise == nil && options.denoise < 1 {
            throw NodeError.invalidParam(
                node: node, param: "denoise",
                message: "denoise < 1 re-noises a clean latent: connect the clean latent to 'latent' and a "
                    + "latent.noise node to 'noise'")
        }

        if let mask {
            guard noise != nil else {
                throw NodeError.invalidInput(node: node, message: "a mask inpaints a clean latent: connect the source's "
                    + "latent (dcae.encode) to 'latent' and a latent.noise node to 'noise'")
            }
            let s = mask.shape
            guard s.count == 4, s[0] == 1 || s[0] == latent.shape[0], s[1] == 1,
                  s[2] == latent.shape[2], s[3] == latent.shape[3] else {
                throw NodeError.invalidInput(node: node, message: "mask has shape \(s) but the latent is \(latent.shape); "
                    + "make the mask with latent.mask from the same latent")
            }
        }

        var scheduler = kind.makeScheduler(steps: options.steps, shift: options.shift, config: options.config)
        let start = noise == nil ? 0 : options.startIndex
        let count = scheduler.stepCount - start
        // Nothing to run (denoise 0): the clean latent is the result.
        guard count > 0 else { return latent.copy() }
        scheduler.setBeginIndex(start)

        var x: Tensor
        if let noise {
            // add_noise / scale_noise at σ of the first used step: (1 − σ)·x0 + σ·ε
            let sigma = scheduler.sigmas[start]
            let alpha = 1 - sigma
            x = Elementwise.map2(latent, noise) { x0, e in alpha * x0 + sigma * e }
        } else {
            x = latent.copy()
        }

        let batch = latent.shape[0]
        let guided = options.guidance > 1 && negative != nil
        if options.guidance > 1 && negative == nil {
            let message = "\(node): guidance \(options.guidance) but no negative conditioning; sampling "
                + "without classifier-free guidance"
            context.logger.warning("\(message)")
        }
        // Text-dependent state (cross-attention K/V) is computed once for all steps.
        let conditioning = try ClassifierFreeGuidance.batched(positive: positive, negative: guided ? negative : nil,
                                                              batch: batch, node: node)
        let text = try model.prepare(conditioning)
        let modelBatch = guided ? 2 * batch : batch
        let scale = Float(options.guidance)
        // SanaPipeline: `timestep = t.expand(2B) * transformer.config.timestep_scale` (float32; 1 for SANA).
        let timestepScale = Float(model.timestepScale)
        let pag = try PerturbedAttentionGuidance.Run(options.pag, model: model, positive: positive, batch: batch,
                                                     guided: guided, text: text, node: node)
        if let pag {
            context.logger.info("\(node): perturbed-attention guidance in \(pag.layerNames.joined(separator: ", "))")
        }

        for i in start..<scheduler.stepCount {
            try context.checkCancelled()
            let input = guided ? ClassifierFreeGuidance.concatenateBatch(x, x) : x
            let t = scheduler.modelTimestep(at: i)
            let timestep = Tensor(repeating: t * timestepScale, shape: [modelBatch])
            var v = try model.predict(latent: input, timestep: timestep, text: text, guidance: nil)
            guard v.shape == input.shape else {
                throw NodeError.failed(
                    node: node, message: "the model returned a prediction of shape \(v.shape) for a latent of "
                        + "shape \(input.shape)")
            }
            if let pag {
                // The perturbed branch runs the positive rows again with identity self-attention in PAG's layers.
                v = try pag.guided(v, latent: x, timestep: t * timestepScale, schedulerTimestep: Double(t),
                                   guidance: scale, batch: batch)
            } else if guided {
                v = ClassifierFreeGuidance.combine(v, scale: scale)
            }
            x = scheduler.step(modelOutput: v, sample: x)
            if let mask, let noise {
                x = blendKept(x, clean: latent, noise: noise, mask: mask, sigma: scheduler.sigmas[i + 1])
            }
            try context.progress(i - start + 1, of: count)
            if context.wantsPreview(step: i - start + 1) {
                if let preview, preview.channels == x.shape[1] {
                    context.preview(preview.rgb(x), step: i - start + 1, of: count)
                } else {
                    context.noteNoPreview(preview == nil
                        ? "connect the autoencoder (dcae.load) to the sampler's 'vae' input, and give it a "
                            + "latent_preview.json (tools/fit_latent_preview.py)"
                        : "the autoencoder's latent_preview.json projects \(preview!.channels) channels, the latent has "
                            + "\(x.shape[1])")
                }
            }
        }
        return x
    }

    /// m·x + (1 − m)·((1 − σ)·clean + σ·noise), the mask broadcast over channels (and batch when it has one).
    static func blendKept(_ x: Tensor, clean: Tensor, noise: Tensor, mask: Tensor, sigma: Float) -> Tensor {
        var out = Tensor(uninitialized: x.shape)
        let (b, c) = (x.shape[0], x.shape[1])
        let plane = x.shape[2] * x.shape[3]
        let maskBatch = mask.shape[0]
        x.withUnsafeBufferPointer { xs in
            clean.withUnsafeBufferPointer { x0 in
                noise.withUnsafeBufferPointer { e in
                    mask.withUnsafeBufferPointer { m in
                        out.withUnsafeMutableBufferPointer { o in
                            for n in 0..<b {
                                let mb = (maskBatch == 1 ? 0 : n) * plane
                                for ch in 0..<c {
                                    let base = (n * c + ch) * plane
                                    for p in 0..<plane {
                                        let k = m[mb + p], i = base + p
                                        let kept = (1 - sigma) * x0[i] + sigma * e[i]
                                        o[i] = k * xs[i] + (1 - k) * kept
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
