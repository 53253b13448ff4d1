import CUDA
import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// `dcae.load`: loads a diffusers `AutoencoderDC` `vae/` folder.
public struct DCAELoad: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "dcae.load", version: 1,
        summary: "Load SANA's DC-AE autoencoder from a diffusers vae/ folder (F32/F16/BF16, sharded or not)",
        outputs: [OutputSpec("vae", .autoencoderModel, doc: "the autoencoder (CPU: filters prepared for this CPU at "
                             + "`precision` on first use; CUDA: the decoder's bf16 weights on the GPU, decode only)")],
        params: [ParamSpec("path", .path, doc: "the vae/ folder holding config.json and the safetensors weights"),
                 ParamSpec("device", .string, default: .string("cpu"),
                           doc: "where the model runs: cpu, cuda or cuda:N (NVIDIA GPU N, bf16, decode only; docs/cuda.md)"),
                 .precision])

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
        try ModelFolder<AutoencoderDCConfig>.fingerprint(path: params.string("path"))
    }

    /// The weights as fp32.
    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? {
        ModelFolder<AutoencoderDCConfig>.fp32WeightBytes(path: params.string("path"))
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let path = params.string("path")
        if case .cuda(let index) = ComputeDevice(parsing: params.optionalString("device") ?? "cpu") ?? .cpu {
            let model = try AutoencoderDCCUDA.load(folder: path, device: index)
            let placement = "\(model.context.name) (cuda:\(index), \(model.deviceBytes >> 20) MiB of bf16 decoder weights)"
            context.logger.info("loaded AutoencoderDC (f\(model.downscale)c\(model.latentChannels)) from \(path) onto \(placement)")
            return ["vae": .autoencoder(model)]
        }
        let model = try AutoencoderDC.load(folder: path, precision: params.precision())
        context.logger.info("loaded AutoencoderDC (f\(model.downscale)c\(model.latentChannels)) from \(path)")
        context.notePrecision(params.precision()) { "dense convolutions on \(model.kernel)" }
        return ["vae": .autoencoder(model)]
    }
}

/// `dcae.decode`: latents → images in [0, 1], as SanaPipeline does after sampling.
public struct DCAEDecode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "dcae.decode", version: 1,
        summary: "Decode latents to images with an autoencoder (optionally resized and center-cropped to width×height)",
        inputs: [
            InputSpec("vae", .autoencoderModel),
            InputSpec("latent", accepts: [.latent, .tensor], doc: "[B, C, h, w] latents (scaled, as the denoiser sees them)"),
        ],
        outputs: [OutputSpec("image", .image, doc: "[B, 3, H, W] in [0, 1]")],
        params: [
            ParamSpec("apply_scaling_factor", .bool, default: .bool(true),
                      doc: "divide the latent by the autoencoder's scaling_factor first (as SanaPipeline does)"),
            ParamSpec("tile_size", .int, default: .int(0), min: 0, max: 65536,
                      doc: "bound memory: process about N×N pixels at a time (exact result); 0 = automatic (1024)"),
            ParamSpec("width", .int, default: .int(0), min: 0, max: 65536,
                      doc: "if non-zero (with height) and different from the decoded size: bilinear resize to cover "
                        + "width×height, then center-crop (diffusers resize_and_crop_tensor, resolution binning)"),
            ParamSpec("height", .int, default: .int(0), min: 0, max: 65536, doc: "see width"),
        ])

    public init() {}

    public func validate(params: ParamValues) -> [String] {
        let w = params["width"].flatMap { if case .int(let v) = $0 { v } else { nil } } ?? 0
        let h = params["height"].flatMap { if case .int(let v) = $0 { v } else { nil } } ?? 0
        return (w == 0) != (h == 0) ? ["give both width and height (or neither)"] : []
    }

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let vae = try inputs.autoencoder("vae")
        var latent = try inputs.tensor("latent")
        guard latent.rank == 4, latent.shape[1] == vae.latentChannels else {
            throw NodeError.invalidInput(node: context.nodeID, message: "latent must be [B, \(vae.latentChannels), h, w] "
                                         + "for this autoencoder (latent_channels \(vae.latentChannels)), got \(latent.shape)")
        }
        if params.bool("apply_scaling_factor") { latent = Ops.div(latent, vae.scalingFactor) }
        var image: Tensor
        do {
            image = try vae.decode(latent, tileSize: params.int("tile_size"), context: context)
        } catch let error as DCAEInputError {
            throw NodeError.invalidInput(node: context.nodeID, message: error.description)
        }
        let (w, h) = (params.int("width"), params.int("height"))
        if w > 0 && h > 0 { image = Self.resizeAndCrop(image, width: w, height: h) }
        return ["image": .image(Self.postprocess(image))]
    }

    /// diffusers `PixArtImageProcessor.resize_and_crop_tensor`: when the size differs, bilinear-resize
    /// (align_corners False, no antialias) by `max(height/H, width/W)` to `int(H·r) × int(W·r)`, then center-crop.
    public static func resizeAndCrop(_ x: Tensor, width: Int, height: Int) -> Tensor {
        let (oh, ow) = (x.shape[2], x.shape[3])
        guard oh != height || ow != width else { return x }
        let ratio = Swift.max(Double(height) / Double(oh), Double(width) / Double(ow))
        let rw = Int(Double(ow) * ratio), rh = Int(Double(oh) * ratio)
        let resized = Ops.interpolate(x, size: (rh, rw), mode: .bilinear, alignCorners: false)
        let sx = (rw - width) / 2, sy = (rh - height) / 2
        return Ops.slice(Ops.slice(resized, axis: 2, range: sy..<(sy + height)), axis: 3, range: sx..<(sx + width))
    }

    /// `clamp(x / 2 + 0.5, 0, 1)` (diffusers `VaeImageProcessor.denormalize`).
    static func postprocess(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let src = SendablePointer(x.storage.pointer + x.offset), dst = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(x.count, minChunk: 65_536) { range in
            for i in range { dst.pointer[i] = Swift.min(Swift.max(src.pointer[i] / 2 + 0.5, 0), 1) }
        }
        return out
    }
}

/// `dcae.encode`: images in [0, 1] → latents (scaled for the denoiser).
public struct DCAEEncode: Node {
    public static let descriptor = NodeDescriptor(
        typeName: "dcae.encode", version: 1,
        summary: "Encode images to latents with an autoencoder (scaled by its scaling_factor)",
        inputs: [
            InputSpec("vae", .autoencoderModel),
            InputSpec("image", accepts: [.image, .tensor], doc: "[B, 3, H, W] in [0, 1]; H and W multiples of the autoencoder's factor"),
        ],
        outputs: [OutputSpec("latent", .latent, doc: "[B, C, H/f, W/f], multiplied by scaling_factor")],
        params: [
            ParamSpec("tile_size", .int, default: .int(0), min: 0, max: 65536,
                      doc: "bound memory: process about N×N pixels at a time (exact result); 0 = automatic (1024)"),
        ])

    public init() {}

    public func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let vae = try inputs.autoencoder("vae")
        let image = try inputs.tensor("image")
        guard image.rank == 4, image.shape[1] == 3 else {
            throw NodeError.invalidInput(node: context.nodeID, message: "image must be [B, 3, H, W], got \(image.shape)")
        }
        let scaled = Ops.sub(Ops.mul(image, 2), 1)  // [0, 1] → [-1, 1] (VaeImageProcessor.normalize)
        do {
            var latent = try vae.encode(scaled, tileSize: params.int("tile_size"), context: context)
            Ops.scaleInPlace(&latent, by: vae.scalingFactor)
            return ["latent": .latent(latent)]
        } catch let error as DCAEInputError {
            throw NodeError.invalidInput(node: context.nodeID, message: error.description)
        }
    }
}
