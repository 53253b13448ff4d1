import CUDA
import DiffusionModels
import Foundation
import SanaGraphKit
import Safetensors
import Tensors

/// `dit.load`: loads a diffusers `SanaTransformer2DModel` `transformer/` folder as a denoiser.
public struct DiTLoad: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "dit.load", version: 1,
        summary: "Load SANA's Linear DiT denoiser from a diffusers transformer/ folder (F32/F16/BF16, sharded or not), "
            + "an NVlabs .pth or a single safetensors file",
        outputs: [OutputSpec("model", .denoiserModel, doc: "the denoiser (CPU: linear layers prepared for this CPU at `precision`; CUDA: bf16 weights on the GPU)")],
        params: [
            ParamSpec("path", .path, doc: "the transformer/ folder holding config.json and the safetensors weights, or "
                + "one checkpoint file (.pth as NVlabs ships it, or .safetensors; original or diffusers key names)"),
            ParamSpec("config", .path, default: .string(""),
                      doc: "checkpoint files only: a JSON of diffusers config keys that override what the weights' "
                          + "shapes say (e.g. sample_size and interpolation_scale of a 2K/4K model)"),
            ParamSpec("device", .string, default: .string("cpu"),
                      doc: "where the model runs: cpu, cuda or cuda:N (NVIDIA GPU N, bf16; docs/cuda.md)"),
            .precision,
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        var problems: [String] = []
        if params.optionalString("path") == nil { problems.append("path must not be empty") }
        let device = params.optionalString("device") ?? "cpu"
        if ComputeDevice(parsing: device) == nil {
            problems.append("device must be \(ComputeDevice.spellings), got '\(device)'")
        }
        return problems
    }

    /// Fingerprints config.json and every weight file, so edits invalidate cached results.
    public func fingerprint(params: ParamValues) throws -> String? {
        let path = params.string("path")
        guard Self.isFile(path) else { return try ModelFolder<SanaTransformerConfig>.fingerprint(path: path) }
        do {
            return try FileFingerprint.fast(path) + "\n"
                + (try params.optionalString("config").map { try FileFingerprint.fast($0) } ?? "")
        } catch {
            throw ModelFolderError.weights(path: path, message: "\(error)")
        }
    }

    static func isFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
    }

    /// The weights as fp32.
    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        ModelFolder<SanaTransformerConfig>.fp32WeightBytes(path: params.string("path"))
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = params.string("path")
        switch ComputeDevice(parsing: params.optionalString("device") ?? "cpu") ?? .cpu {
        case .cpu:
            let model = Self.isFile(path)
                ? try SanaTransformer2DModel.load(checkpoint: path, configPath: params.optionalString("config"),
                                                  precision: params.precision())
                : try SanaTransformer2DModel.load(folder: path, precision: params.precision())
            context.logger.info("loaded Sana transformer (\(model.config.numLayers) layers, D=\(model.config.innerDim)) from \(path)")
            context.notePrecision(params.precision()) { "linear layers on \(model.kernel)" }
            return ["model": .denoiser(model)]
        case .cuda(let index):
            if Self.isFile(path) {
                throw ModelFolderError.weights(path: path, message: "a checkpoint file runs on cpu only for now; "
                    + "write a diffusers folder with `sanagraph convert` and load that on the GPU")
            }
            let model = try SanaTransformerCUDA.load(folder: path, device: index)
            let placement = "\(model.context.name) (cuda:\(index), \(model.deviceBytes >> 20) MiB of bf16 weights)"
            context.logger.info("loaded Sana transformer (\(model.config.numLayers) layers, D=\(model.config.innerDim)) from \(path) onto \(placement)")
            return ["model": .denoiser(model)]
        }
    }
}

/// `dit.predict`: one denoiser forward, named as diffusers' `SanaTransformer2DModel.forward` arguments.
public struct DiTPredict: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "dit.predict", version: 1,
        summary: "Run the denoiser once: flow velocity for a latent at a timestep given text embeddings and mask",
        inputs: [
            InputSpec("model", .denoiserModel),
            InputSpec("latent", accepts: [.tensor, .latent], doc: "noisy latent [B, C, h, w]"),
            InputSpec("encoder_hidden_states", .tensor, doc: "text embeddings [B, L, D_text]"),
            InputSpec("encoder_attention_mask", .tensor, doc: "0/1 mask [B, L]"),
            InputSpec("timestep", .tensor, doc: "[B] timesteps as the model takes them (already × timestep_scale)"),
            InputSpec("guidance", .tensor, optional: true, doc: "[B] guidance (Sana-Sprint only, already × guidance_embeds_scale)"),
        ],
        outputs: [OutputSpec("velocity", .tensor, doc: "[B, C, h, w]")])

    public init() {}

    /// One forward pass's activations, when the model can say.
    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        guard let inputs, let model = try? inputs.denoiser("model") as? any ActivationEstimating,
              let latent = try? inputs.tensor("latent") else { return nil }
        return model.activationBytes(inputShape: latent.shape)
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let model = try inputs.denoiser("model")
        let latent = try inputs.tensor("latent")
        let text = try inputs.tensor("encoder_hidden_states")
        let mask = try inputs.tensor("encoder_attention_mask")
        let timestep = try inputs.tensor("timestep")
        let guidance = try inputs.optionalTensor("guidance")
        func fail(_ message: String) -> NodeError { .invalidInput(node: inputs.nodeID, message: message) }
        guard latent.rank == 4 else { throw fail("latent must be [B, C, h, w], got \(latent.shape)") }
        guard text.rank == 3, text.shape[0] == latent.shape[0] else {
            throw fail("encoder_hidden_states must be [B, L, D] with B = \(latent.shape[0]), got \(text.shape)")
        }
        if model.takesGuidance && guidance == nil {
            throw fail("this model was trained with guidance embeds (Sana-Sprint): connect 'guidance'")
        }
        do {
            let prepared = try model.prepare(Conditioning(embeddings: text, mask: mask))
            try context.checkCancelled()
            let v = try model.predict(latent: latent, timestep: timestep, text: prepared,
                                      guidance: model.takesGuidance ? guidance : nil)
            return ["velocity": .tensor(v)]
        } catch let error as LinearDiTInputError {
            throw fail(error.description)
        }
    }
}
