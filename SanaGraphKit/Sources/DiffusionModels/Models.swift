import SanaGraphKit
import Tensors

// The interfaces SANA's node packs share, so that a sampler pack can drive any denoiser pack and an encode node
// any text encoder, without packs importing each other. A third-party pack that wants to interoperate with the
// built-in SANA nodes (a new sampler, a LoRA patcher, another text encoder) depends on this module.

/// How the prompt is prefixed before encoding (SANA's "complex human instruction").
public enum PromptInstruction: Sendable, Hashable {
    /// The model's default instruction.
    case `default`
    /// No instruction (as diffusers does for negative prompts).
    case none
    /// Custom instruction lines.
    case custom(String)
}

/// A text encoder that turns prompts into conditioning.
public protocol TextEncoderModel: LoadedModel {
    /// Encodes a batch of prompts into embeddings [B, L, D] and mask [B, L]. With `skipPadding`, rows whose mask
    /// is 0 may be left as zeros instead of computed (denoisers mask them out of cross-attention).
    func encode(prompts: [String], instruction: PromptInstruction, maxSequenceLength: Int, skipPadding: Bool,
                context: RunContext) throws -> Conditioning
}

extension TextEncoderModel {
    /// Encodes with every row computed, padding included (what the reference pipelines return).
    public func encode(prompts: [String], instruction: PromptInstruction, maxSequenceLength: Int,
                       context: RunContext) throws -> Conditioning {
        try encode(prompts: prompts, instruction: instruction, maxSequenceLength: maxSequenceLength,
                   skipPadding: false, context: context)
    }
}

/// Text-dependent state a denoiser prepares once and reuses at every step (e.g. cross-attention K/V).
public protocol PreparedText: Sendable {}

/// A model that predicts the flow velocity for a noisy latent (SANA's Linear DiT, or any other).
public protocol DenoiserModel: LoadedModel {
    /// Latent channels the model takes.
    var inChannels: Int { get }
    /// Pixels per latent cell along each side (the autoencoder's downscale), for user-facing messages.
    var latentSpatialDivisor: Int { get }
    /// Whether the model takes a guidance embedding (Sana-Sprint).
    var takesGuidance: Bool { get }
    /// What a pipeline multiplies the guidance scale by before the model (diffusers' `guidance_embeds_scale`).
    var guidanceEmbedsScale: Double { get }
    /// What a flow pipeline multiplies the scheduler's timestep by before the model (diffusers' `timestep_scale`).
    var timestepScale: Double { get }
    /// Native latent size in cells per side (diffusers' transformer `sample_size`: 32 for SANA 1024 px models),
    /// or nil when unknown. Used for "auto" image sizes and to pick the resolution-binning table.
    var sampleSize: Int? { get }
    /// Latent cells per token along each side (the transformer's `patch_size`); latents must be multiples of it.
    var patchSize: Int { get }

    /// Precomputes everything that depends only on the text (constant across sampling steps).
    func prepare(_ conditioning: Conditioning) throws -> any PreparedText

    /// Velocity for `latent` [B, C, h, w] at `timestep` [B] given prepared text; `guidance` [B] if the model takes it.
    func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?) throws -> Tensor
}

extension DenoiserModel {
    /// Unknown unless the model says.
    public var sampleSize: Int? { nil }
    public var patchSize: Int { 1 }
    public var guidanceEmbedsScale: Double { 1 }
    public var timestepScale: Double { 1 }
}

/// A denoiser that can run with chosen self-attention layers perturbed (perturbed-attention guidance, PAG: the
/// attention map replaced by the identity, so each token attends only to itself: `to_out(to_v(x))`).
public protocol PerturbedAttentionDenoiser: DenoiserModel {
    /// The self-attention modules' names as the reference model names them (diffusers' `named_modules`, e.g.
    /// `transformer_blocks.3.attn1`); the index of a name is the layer number `perturbedLayers` takes.
    var selfAttentionLayerNames: [String] { get }

    /// `predict` with the self-attention of every layer in `perturbedLayers` replaced by the identity, for every
    /// batch item.
    func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?,
                 perturbedLayers: Set<Int>) throws -> Tensor
}

/// An autoencoder between images [B, 3, H, W] in [-1, 1] and latents [B, C, H/f, W/f].
public protocol AutoencoderModel: LoadedModel {
    var latentChannels: Int { get }
    /// Spatial compression factor f.
    var downscale: Int { get }
    var scalingFactor: Float { get }
    /// Decodes raw (unscaled) latents to images in [-1, 1].
    func decode(_ latent: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor
    /// Encodes images in [-1, 1] to raw (unscaled) latents.
    func encode(_ image: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor
    /// The latent → RGB projection for previews during sampling, when the model folder has one.
    var latentPreview: LatentPreview? { get }
}

extension AutoencoderModel {
    public var latentPreview: LatentPreview? { nil }
}

/// An image-to-image upscaling model (ESRGAN family).
public protocol UpscaleModel: LoadedModel {
    var scale: Int { get }
    /// Upscales images [B, 3, H, W] in [0, 1].
    func upscale(_ image: Tensor, tileSize: Int, overlap: Int, context: RunContext) throws -> Tensor
}
