import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

// Sana-Sprint's sampler: diffusers' `SCMScheduler` (TrigFlow, sCM) driven as `SanaSprintPipeline.__call__` and
// `SanaSprintImg2ImgPipeline.__call__` drive it, with the same float32 operations in the same order
// (sana-architecture.md §5.5).

/// The keys of a `SCMScheduler` `scheduler_config.json` that matter here.
public struct SCMConfig: Sendable, Equatable {
    /// σ_d: the data standard deviation TrigFlow is parameterised with (Sana-Sprint: 0.5).
    public var sigmaData: Double = 0.5
    /// Upper bound of the step count.
    public var numTrainTimesteps: Int = 1000

    /// Sana-Sprint's settings (what `convert_sana_to_diffusers.py` writes).
    public static let sprint = SCMConfig()

    public init() {}

    /// Reads `path`: a scheduler_config.json, a scheduler folder, or a model folder holding `scheduler/`.
    public static func load(path: String) throws -> SCMConfig {
        let (file, data) = try SchedulerConfig.read(path: path)
        return try parse(data, path: file)
    }

    /// Parses the JSON text of a scheduler config; a config of another scheduler is an error that says which
    /// graph to use instead.
    public static func parse(_ data: Data, path: String) throws -> SCMConfig {
        let reader = try SchedulerConfig.Reader(data, path: path)
        if let name = try reader.string("_class_name"), name != "SCMScheduler" {
            throw SchedulerFile.unsupported(
                path: path, key: "_class_name", value: name,
                supported: "SCMScheduler (Sana-Sprint); a \(name) belongs to a SANA model sampled with classifier-"
                    + "free guidance: use Graphs/text2img.yaml (sample.flow_dpm_solver)")
        }
        try reader.require("prediction_type", equals: "trigflow")
        var c = SCMConfig()
        if let v = try reader.double("sigma_data") {
            guard v > 0, v.isFinite else {
                throw SchedulerFile.unsupported(path: path, key: "sigma_data", value: String(v),
                                                 supported: "> 0")
            }
            c.sigmaData = v
        }
        if let v = try reader.int("num_train_timesteps") {
            guard v >= 1 else {
                throw SchedulerFile.unsupported(path: path, key: "num_train_timesteps", value: String(v),
                                                 supported: ">= 1")
            }
            c.numTrainTimesteps = v
        }
        return c
    }
}

/// `SCMScheduler.set_timesteps`: N + 1 TrigFlow times τ from `maxTimestep` (≈ π/2, pure noise) down to 0.
public struct SCMSchedule: Sendable, Equatable {
    /// τ_0 > τ_1 > … > τ_N = 0, float32 as torch holds them.
    public let timesteps: [Float]

    /// - Parameter intermediateTimestep: used when `steps` is 2 (`[max, intermediate, 0]`, Sana-Sprint's
    ///   default 1.3); other step counts use `linspace(max, 0, N + 1)` (the pipeline's `intermediate_timesteps=None`).
    public init(steps: Int, maxTimestep: Double = 1.57080, intermediateTimestep: Double? = 1.3) {
        precondition(steps >= 1, "SCM needs at least one step")
        if steps == 2, let mid = intermediateTimestep {
            timesteps = [Float(maxTimestep), Float(mid), 0]
            return
        }
        // torch.linspace in float32: from the start for the first half, from the end for the rest.
        let count = steps + 1
        let start = Float(maxTimestep), end = Float(0)
        let step = (end - start) / Float(steps)
        timesteps = (0..<count).map { i in
            i < count / 2 ? start + step * Float(i) : end - step * Float(count - 1 - i)
        }
    }

    public var stepCount: Int { timesteps.count - 1 }
}

/// Settings of one Sana-Sprint sampling run.
public struct SCMOptions: Sendable {
    public var steps: Int
    /// The embedded guidance scale (SanaSprintPipeline's `guidance_scale`, 4.5); the model receives it × its
    /// `guidance_embeds_scale`.
    public var guidance: Double
    public var maxTimestep: Double
    /// τ_1 for two steps.
    public var intermediateTimestep: Double
    /// img2img strength in [0, 1] (`SanaSprintImg2ImgPipeline`'s `strength`).
    public var denoise: Double
    /// The seed of the generator that drew the initial noise; the per-step noise continues its stream.
    public var seed: Int
    public var config: SCMConfig

    public init(steps: Int = 2, guidance: Double = 4.5, maxTimestep: Double = 1.57080,
                intermediateTimestep: Double = 1.3, denoise: Double = 1, seed: Int = 0, config: SCMConfig = .sprint) {
        self.steps = steps
        self.guidance = guidance
        self.maxTimestep = maxTimestep
        self.intermediateTimestep = intermediateTimestep
        self.denoise = denoise
        self.seed = seed
        self.config = config
    }

    /// diffusers' img2img `get_timesteps`: `t_start = int(max(N − min(N·strength, N), 0))`.
    public var startIndex: Int {
        let n = Double(steps)
        return Int(max(n - min(n * denoise, n), 0))
    }
}

/// The denoising loop of `SanaSprintPipeline` / `SanaSprintImg2ImgPipeline`.
public enum SCMSampler {
    /// Samples latents with a guidance-embedding model (Sana-Sprint).
    ///
    /// - Parameters:
    ///   - latent: without `noise`, the initial noise `randn` (text-to-image); with `noise`, the clean latent
    ///     (`vae.encode · scaling_factor`) that img2img mixes with `noise` at the first used time.
    ///   - noise: img2img's `randn`, drawn from the same generator first.
    /// - Returns: the last denoised latent / σ_d, ready for `dcae.decode` (which divides by the VAE's scaling
    ///   factor), as the pipelines' `latents = denoised / sigma_data`.
    public static func sample(model: any DenoiserModel, positive: Conditioning, latent: Tensor, noise: Tensor?,
                              options: SCMOptions, context: RunContext) throws -> Tensor {
        let node = context.nodeID
        guard latent.rank == 4, latent.shape.allSatisfy({ $0 > 0 }) else {
            throw NodeError.invalidInput(node: node, message: "latent has shape \(latent.shape); expected [B, C, h, w]")
        }
        guard latent.shape[1] == model.inChannels else {
            throw NodeError.invalidInput(
                node: node, message: "latent has \(latent.shape[1]) channels but the model takes \(model.inChannels)")
        }
        guard model.takesGuidance else {
            throw NodeError.invalidInput(
                node: node,
                message: "the model has no guidance embedding, so it is not a Sana-Sprint transformer; sample it "
                    + "with classifier-free guidance: Graphs/text2img.yaml (sample.flow_dpm_solver)")
        }
        if let noise, noise.shape != latent.shape {
            throw NodeError.invalidInput(
                node: node, message: "noise has shape \(noise.shape) but latent has \(latent.shape); they must match")
        }
        guard options.steps >= 1, options.steps <= options.config.numTrainTimesteps else {
            throw NodeError.invalidParam(node: node, param: "steps",
                                         message: "must be in 1…\(options.config.numTrainTimesteps)")
        }
        guard options.denoise >= 0, options.denoise <= 1 else {
            throw NodeError.invalidParam(node: node, param: "denoise", message: "must be in [0, 1]")
        }
        if noise == nil && options.denoise < 1 {
            throw NodeError.invalidParam(
                node: node, param: "denoise",
                message: "denoise < 1 re-noises a clean latent: connect the encoded image to 'latent' and a "
                    + "latent.noise node (same seed) to 'noise'")
        }

        let schedule = SCMSchedule(steps: options.steps, maxTimestep: options.maxTimestep,
                                   intermediateTimestep: options.intermediateTimestep)
        let tau = schedule.timesteps
        let start = noise == nil ? 0 : options.startIndex
        let count = schedule.stepCount - start
        guard count >= 1 else {
            // SanaSprintImg2ImgPipeline raises here ("the number of pipeline steps is 0").
            throw NodeError.invalidParam(
                node: node, param: "denoise",
                message: "denoise \(options.denoise) with \(options.steps) steps leaves no step to run; raise "
                    + "denoise or steps")
        }
        let sigmaData = Float(options.config.sigmaData)

        // The pipeline's one generator: its first draw was the initial noise (latent.noise with this seed).
        var generator = TorchGenerator(seed: options.seed)
        _ = generator.randn(count: latent.count)

        var x: Tensor
        if let noise {
            // prepare_latents: cos(τ)·(latent·σ_d) + sin(τ)·(noise·σ_d) at the first used time.
            let c = Foundation.cos(tau[start]), s = Foundation.sin(tau[start])
            x = Elementwise.map2(latent, noise) { x0, e in c * (x0 * sigmaData) + s * (e * sigmaData) }
        } else {
            x = Ops.mul(latent, sigmaData)
        }

        let batch = latent.shape[0]
        let text = try model.prepare(try ClassifierFreeGuidance.batched(positive: positive, negative: nil,
                                                                         batch: batch, node: node))
        let g = Float(options.guidance) * Float(model.guidanceEmbedsScale)
        let guidance = Tensor(repeating: g, shape: [batch])
        var denoised = x

        for i in start..<schedule.stepCount {
            try context.checkCancelled()
            let s = tau[i], t = tau[i + 1]
            // TrigFlow time → flow time u ∈ [0, 1], and the flow model's input scale.
            let u = Foundation.sin(s) / (Foundation.cos(s) + Foundation.sin(s))
            let norm = (u * u + (1 - u) * (1 - u)).squareRoot()
            let input = Ops.mul(Ops.div(x, sigmaData), norm)
            let v = try model.predict(latent: input, timestep: Tensor(repeating: u, shape: [batch]), text: text,
                                      guidance: guidance)
            guard v.shape == input.shape else {
                throw NodeError.failed(node: node, message: "the model returned a prediction of shape \(v.shape) "
                    + "for a latent of shape \(input.shape)")
            }
            // Flow velocity → TrigFlow output F, then SCMScheduler.step: x0 = cos(s)·x − sin(s)·F.
            let a = 1 - 2 * u, b = 1 - 2 * u + 2 * (u * u)
            let cs = Foundation.cos(s), sn = Foundation.sin(s)
            let xs = x
            denoised = Elementwise.map3(xs, input, v) { xv, xin, vv in
                let f = ((a * xin + b * vv) / norm) * sigmaData
                return cs * xv - sn * f
            }
            if i + 1 < schedule.stepCount {
                // Fresh noise for the next time: x = cos(t)·x0 + sin(t)·σ_d·ε.
                let e = generator.randn(shape: denoised.shape)
                let ct = Foundation.cos(t), st = Foundation.sin(t)
                x = Elementwise.map2(denoised, e) { x0, n in ct * x0 + st * (n * sigmaData) }
            }
            try context.progress(i - start + 1, of: count)
        }
        return Ops.div(denoised, sigmaData)
    }
}
