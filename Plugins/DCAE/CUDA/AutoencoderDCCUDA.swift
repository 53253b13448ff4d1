import CUDA
import DiffusionModels
import Foundation
import SanaGraphKit
import Tensors

/// diffusers `AutoencoderDC`'s decoder on an NVIDIA GPU: the same function as `DCDecoder`, bf16 weights and GEMM
/// operands with fp32 accumulation (cuBLASLt), the residual stream, channel-norm statistics, the multiscale
/// depthwise/grouped convolutions and the linear-attention core in fp32 (project kernels, `ConvKernels`).
///
/// Feature maps are channels-last (`[B·H·W, C]` rows): every dense convolution is im2col + one GEMM (a 1×1 is the
/// GEMM alone), the up blocks' nearest-×2 upsampling is folded into their filters (the conv runs at the input's
/// resolution), activations between a convolution and the next are applied on the fly. The latent crosses to the device at `decode` and the image comes back as
/// a host fp32 NCHW tensor, so `dcae.decode` and `image.save` work unchanged. Encoding runs on the CPU model only.
public final class AutoencoderDCCUDA: AutoencoderModel, @unchecked Sendable {
    public let config: AutoencoderDCConfig
    public let context: CUDAContext
    let kernels: ConvKernels
    let nn: NNKernels
    let gemm: Gemm

    let convIn: DeviceConv2d
    let inShortcutRepeats: Int?
    /// `up_blocks[i]`, run from the last stage to the first.
    let upBlocks: [[Block]]
    let normOut: Norm
    let convAct: ConvKernels.Activation
    /// conv_out `[in_channels, k·k·C]` fp32 for the direct kernel, and its bias.
    let convOutWeight: DeviceTensor, convOutBias: DeviceTensor, convOutKernel: Int

    /// GPU memory the weights take.
    public let deviceBytes: Int
    /// Host memory held: the CPU encoder's weights once an encode has converted them (the decoder lives on the GPU).
    public var residentBytes: Int { hostEncoder?.residentBytes ?? 0 }
    /// The folder's latent_preview.json projection (set once by the loader).
    public internal(set) var latentPreview: LatentPreview?
    /// The CPU autoencoder over the same weights, for `encode` (the GPU has only the decoder): its encoder half is
    /// converted on the first encode, so a text-to-image graph never pays for it. Set once by the loader.
    public internal(set) var hostEncoder: AutoencoderDC?

    /// A channel RMSNorm's fp32 weight and bias.
    struct Norm {
        let weight: DeviceTensor, bias: DeviceTensor
        var bytes: Int { weight.byteCount + bias.byteCount }
    }

    enum Block {
        /// conv1 (bf16 out, bias) → act → conv2 (fp32 out) → norm, plus the input.
        case res(conv1: DeviceConv2d, conv2: DeviceConv2d, norm: Norm, act: ConvKernels.Activation)
        case efficientViT(EfficientViT)
        /// DCUpBlock2d as conv to 4·out channels then pixel shuffle, plus the shortcut ("interpolate": the nearest ×2
        /// folded into the filter, `DeviceConv2d.foldingNearestUpsample`).
        case up(conv: DeviceConv2d, repeats: Int?, outChannels: Int)

        var bytes: Int {
            switch self {
            case .res(let c1, let c2, let n, _): return c1.bytes + c2.bytes + n.bytes
            case .efficientViT(let b): return b.bytes
            case .up(let c, _, _): return c.bytes
            }
        }
    }

    /// `SanaMultiscaleLinearAttention` + `GLUMBConv`, both residual.
    struct EfficientViT {
        let qkv: DeviceConv2d                 // to_q | to_k | to_v stacked: [3C, C]
        let multiscale: [(kernel: Int, taps: DeviceTensor, groups: DeviceTensor)]
        let toOut: DeviceConv2d               // [C, C·(1 + scales)]
        let normOut: Norm
        let inverted: DeviceConv2d            // [8C, C] + bias, bf16 out
        let depthTaps: DeviceTensor, depthBias: DeviceTensor
        let point: DeviceConv2d               // [C, 4C]
        let norm: Norm
        var bytes: Int {
            qkv.bytes + toOut.bytes + normOut.bytes + inverted.bytes + point.bytes + norm.bytes + depthTaps.byteCount
                + depthBias.byteCount + multiscale.reduce(0) { $0 + $1.taps.byteCount + $1.groups.byteCount }
        }
    }

    /// Builds the decoder from checked weights (`w` reads by key: the CPU model's key set, see `load`).
    init(config c: AutoencoderDCConfig, weights w: WeightStore, context: CUDAContext) throws {
        let out = c.decoderBlockOutChannels, layers = c.decoderLayersPerBlock, n = out.count
        guard layers[0] > 0 else {
            throw CUDAError.unsupported("a DC-AE decoder whose conv_out is an up block (decoder_layers_per_block[0] = 0); "
                                        + "decode it with device: cpu")
        }
        for i in 0..<n {
            if (c.decoderNormTypes.stage(i) ?? "rms_norm") != "rms_norm" {
                throw CUDAError.unsupported("decoder norm type '\(c.decoderNormTypes.stage(i)!)' on the GPU; decode with device: cpu")
            }
            if c.decoderBlockTypes.stage(i) == "EfficientViTBlock" && c.attentionHeadDim != 32 {
                throw CUDAError.unsupported("attention_head_dim \(c.attentionHeadDim) (the GPU attention is built for 32)")
            }
        }
        config = c
        self.context = context
        try context.bind()
        kernels = try ConvKernels(context: context)
        nn = try NNKernels(context: context)
        gemm = try context.gemm()
        func conv(_ prefix: String, f32: Bool) throws -> DeviceConv2d {
            try DeviceConv2d(weight: w(prefix + ".weight"), bias: w.optional(prefix + ".bias"), outputF32: f32, on: context)
        }
        func norm(_ prefix: String) throws -> Norm {
            Norm(weight: try DeviceTensor(w(prefix + ".weight"), on: context),
                 bias: try DeviceTensor(w(prefix + ".bias"), on: context))
        }
        func activation(_ name: String) -> ConvKernels.Activation { ConvKernels.Activation(name: name) ?? .silu }

        let p = "decoder."
        convIn = try conv(p + "conv_in", f32: true)
        inShortcutRepeats = c.decoderInShortcut ? out[n - 1] / c.latentChannels : nil
        var upBlocks: [[Block]] = []
        for i in 0..<n {
            var stage: [Block] = []
            if i < n - 1 && layers[i] > 0 {
                let key = p + "up_blocks.\(i).0.conv"
                var (weight, bias) = (w(key + ".weight"), w.optional(key + ".bias"))
                if c.upsampleBlockType == "interpolate" {
                    (weight, bias) = DeviceConv2d.foldingNearestUpsample(weight: weight, bias: bias)
                }
                stage.append(.up(conv: try DeviceConv2d(weight: weight, bias: bias, outputF32: true, on: context),
                                 repeats: out[i] * 4 / out[i + 1], outChannels: out[i]))
            }
            for _ in 0..<layers[i] {
                let b = p + "up_blocks.\(i).\(stage.count)"
                if c.decoderBlockTypes.stage(i) == "EfficientViTBlock" {
                    let parts = ["to_q", "to_k", "to_v"].map { w(b + ".attn.\($0).weight") }
                    let multiscale = try c.decoderQkvMultiscales[i].enumerated().map { s, k in
                        let m = b + ".attn.to_qkv_multiscale.\(s)"
                        let taps = w(m + ".proj_in.weight"), groups = w(m + ".proj_out.weight")
                        return (kernel: k,
                                taps: try DeviceTensor(taps.reshaped([taps.shape[0], k * k]), on: context),
                                groups: try DeviceTensor(groups.reshaped([groups.shape[0], groups.shape[1]]), on: context))
                    }
                    stage.append(.efficientViT(EfficientViT(
                        qkv: try DeviceConv2d(weight: Ops.concat(parts, axis: 0), bias: nil, outputF32: false, on: context),
                        multiscale: multiscale,
                        toOut: try conv(b + ".attn.to_out", f32: true),
                        normOut: try norm(b + ".attn.norm_out"),
                        inverted: try conv(b + ".conv_out.conv_inverted", f32: false),
                        depthTaps: try DeviceTensor(Ops.depthwiseTapsChannelsLast(w(b + ".conv_out.conv_depth.weight")),
                                                    on: context),
                        depthBias: try DeviceTensor(w(b + ".conv_out.conv_depth.bias"), on: context),
                        point: try conv(b + ".conv_out.conv_point", f32: true),
                        norm: try norm(b + ".conv_out.norm"))))
                } else {
                    stage.append(.res(conv1: try conv(b + ".conv1", f32: false), conv2: try conv(b + ".conv2", f32: true),
                                      norm: try norm(b + ".norm"), act: activation(c.decoderActFns.stage(i) ?? "silu")))
                }
            }
            upBlocks.append(stage)
        }
        self.upBlocks = upBlocks
        normOut = try norm(p + "norm_out")
        convAct = activation(c.decoderConvActFn)
        let convOut = w(p + "conv_out.weight")
        convOutKernel = convOut.shape[2]
        convOutWeight = try DeviceTensor(DeviceConv2d.rows(convOut), on: context)
        convOutBias = try DeviceTensor(w(p + "conv_out.bias"), on: context)
        deviceBytes = convIn.bytes + normOut.bytes + convOutWeight.byteCount + convOutBias.byteCount
            + upBlocks.joined().reduce(0) { $0 + $1.bytes }
        try context.synchronize()
    }

    public var latentChannels: Int { config.latentChannels }
    public var downscale: Int { config.spatialCompressionRatio }
    public var scalingFactor: Float { Float(config.scalingFactor) }

    /// Whether the kernels came from the on-disk kernel cache (false: NVRTC compiled them in this process).
    public var kernelsFromDiskCache: Bool { kernels.module.fromDiskCache }

    /// Decodes raw latents on the GPU (the whole image at once: `tileSize` is ignored, GPU memory is ample for the
    /// sizes SANA makes; see docs/cuda.md).
    public func decode(_ latent: Tensor, tileSize: Int?, context run: RunContext) throws -> Tensor {
        try decoderForward(latent, cancel: run.checkCancelled)
    }

    /// diffusers `decoder(z)` on the GPU; the result comes back to the host.
    public func decoderForward(_ latent: Tensor, cancel: () throws -> Void = {}) throws -> Tensor {
        try checkLatent(latent)
        try context.bind()
        return try forward(DeviceTensor(latent, on: context), cancel: cancel).toHost()
    }

    /// Encodes on the CPU (fp32, `hostEncoder`): the GPU has no DC-AE encoder yet. Said once per model in the log.
    public func encode(_ image: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor {
        guard let hostEncoder else {
            throw DCAEInputError(description: "this GPU autoencoder has no encoder (built without its weights); "
                                 + "load the autoencoder with device: cpu to encode")
        }
        if !hostEncoder.encoderIsLoaded {
            context.logger.info("encoding on the CPU: the GPU autoencoder has only the decoder")
        }
        return try hostEncoder.encode(image, tileSize: tileSize, context: context)
    }

    func checkLatent(_ z: Tensor) throws {
        guard z.rank == 4, z.shape[1] == latentChannels, z.shape[0] > 0, z.shape[2] > 0, z.shape[3] > 0 else {
            throw DCAEInputError(description: "latent must be [B, \(latentChannels), h, w] for this autoencoder "
                                 + "(latent_channels \(latentChannels)), got \(z.shape)")
        }
        // diffusers switches to quadratic attention on maps of at most head_dim pixels; the GPU has only the
        // linear form, so the smallest attention map (the latent's) must be larger.
        let attends = upBlocks.contains { $0.contains { if case .efficientViT = $0 { true } else { false } } }
        if attends && z.shape[2] * z.shape[3] <= config.attentionHeadDim {
            throw DCAEInputError(description: "the GPU decoder needs latents of more than \(config.attentionHeadDim) "
                                 + "cells (got \(z.shape[2])×\(z.shape[3])); decode this one with device: cpu")
        }
    }

    /// The decoder on a device latent `[B, C, h, w]` fp32 (NCHW); returns fp32 NCHW `[B, in_channels, H, W]`.
    /// `cancel` runs on the host before every block (work already queued finishes).
    public func forward(_ z: DeviceTensor, cancel: () throws -> Void = {}) throws -> DeviceTensor {
        let b = z.shape[0], lc = z.shape[1]
        var (h, w) = (z.shape[2], z.shape[3])
        var c = convIn.outChannels
        var x = try DeviceTensor(uninitialized: [b * h * w, c], dtype: .f32, on: context)
        let latent = FeatureMap.nchw(z.pointer, .f32, batch: b, channels: lc, height: h, width: w)
        // Profiler scopes (`CUDAContext.profileScope`; free without a profiler): conv_in, "stage i/<block> j" as
        // diffusers numbers up_blocks, norm_out+conv_out.
        try context.profileScope("conv_in") {
            if let r = inShortcutRepeats {
                try kernels.shuffleShortcut(x: latent, repeats: r, shuffled: nil, out: x.pointer, batch: b, height: h,
                                            width: w, scale: 1, outChannels: c)
            }
            try convIn(latent, out: x.pointer, accumulate: inShortcutRepeats != nil, kernels: kernels, gemm: gemm)
        }
        for (i, stage) in upBlocks.enumerated().reversed() {
            for (j, block) in stage.enumerated() {
                try cancel()
                switch block {
                case .res(let conv1, let conv2, let norm, let act):
                    try context.profileScope("stage \(i)/ResBlock \(j)") {
                        try resBlock(x, batch: b, height: h, width: w, channels: c, conv1, conv2, norm, act)
                    }
                case .efficientViT(let block):
                    try context.profileScope("stage \(i)/EfficientViT \(j)") {
                        try efficientViT(x, batch: b, height: h, width: w, channels: c, block)
                    }
                case .up(let conv, let repeats, let outChannels):
                    x = try context.profileScope("stage \(i)/up") {
                        try up(x, batch: b, height: h, width: w, channels: c, conv: conv, repeats: repeats,
                                   outChannels: outChannels)
                    }
                    (h, w, c) = (2 * h, 2 * w, outChannels)
                }
            }
        }
        try cancel()
        return try context.profileScope("norm_out+conv_out") {
            let rows = b * h * w
            let normed = try DeviceTensor(uninitialized: [rows, c], dtype: .bf16, on: context)
            try kernels.channelRMSNorm(x.pointer, weight: normOut.weight.pointer, bias: normOut.bias.pointer,
                                       residual: nil, outBF16: normed.pointer, rows: rows, channels: c, eps: 1e-5,
                                       activation: convAct)
            let image = try DeviceTensor(uninitialized: [b, config.inChannels, h, w], dtype: .f32, on: context)
            try kernels.convDirectNCHW(normed.pointer, weight: convOutWeight.pointer, bias: convOutBias.pointer,
                                       out: image.pointer, batch: b, height: h, width: w, channels: c,
                                       outChannels: config.inChannels, kernel: convOutKernel)
            return image
        }
    }

    /// ResBlock in place on the fp32 stream `x [B·H·W, C]`.
    private func resBlock(_ x: DeviceTensor, batch b: Int, height h: Int, width w: Int, channels c: Int,
                          _ conv1: DeviceConv2d, _ conv2: DeviceConv2d, _ norm: Norm,
                          _ act: ConvKernels.Activation) throws {
        let rows = b * h * w
        let t = try DeviceTensor(uninitialized: [rows, c], dtype: .bf16, on: context)
        try conv1(.nhwc(x.pointer, .f32, batch: b, height: h, width: w, channels: c), out: t.pointer, kernels: kernels,
                  gemm: gemm)
        let y = try DeviceTensor(uninitialized: [rows, c], dtype: .f32, on: context)
        try conv2(.nhwc(t.pointer, .bf16, batch: b, height: h, width: w, channels: c), activation: act, out: y.pointer,
                  kernels: kernels, gemm: gemm)
        try kernels.channelRMSNorm(y.pointer, weight: norm.weight.pointer, bias: norm.bias.pointer, residual: x.pointer,
                                   outBF16: nil, rows: rows, channels: c, eps: 1e-5)
    }

    /// EfficientViT block in place on the fp32 stream `x [B·H·W, C]`.
    private func efficientViT(_ x: DeviceTensor, batch b: Int, height h: Int, width w: Int, channels c: Int,
                              _ block: EfficientViT) throws {
        let rows = b * h * w, n = h * w
        let inner = block.qkv.outChannels / 3  // heads · 32 (C when 32 divides C)
        let groups = (inner / 32) * (1 + block.multiscale.count), ld = 96 * groups
        let xb = try DeviceTensor(uninitialized: [rows, c], dtype: .bf16, on: context)
        try nn.activation(.identity, x: x.pointer, out: xb.pointer, count: rows * c)
        let map = FeatureMap.nhwc(xb.pointer, .bf16, batch: b, height: h, width: w, channels: c)

        // Attention: q|k|v for the raw branch, then each multiscale branch beside it in the same rows (groups of 96
        // consecutive channels are one head's q, k, v: sana-architecture.md §4.2).
        let qkv = try DeviceTensor(uninitialized: [rows, ld], dtype: .bf16, on: context)
        try block.qkv(map, out: qkv.pointer, ldOut: ld, kernels: kernels, gemm: gemm)
        for (s, branch) in block.multiscale.enumerated() {
            try kernels.multiscale(qkv.pointer, ld: ld, channels: 3 * inner, dstColumn: 3 * inner * (s + 1),
                                   taps: branch.taps.pointer, groupWeights: branch.groups.pointer, batch: b, height: h,
                                   width: w, kernel: branch.kernel)
        }
        let attended = try DeviceTensor(uninitialized: [rows, 32 * groups], dtype: .bf16, on: context)
        let scratch = try DeviceTensor(uninitialized: [ConvKernels.linearAttentionScratchBytes(batch: b, groups: groups,
                                                                                                tokens: n) / 4],
                                       dtype: .f32, on: context)
        try kernels.groupedLinearAttention(qkv.pointer, ld: ld, groups: groups, out: attended.pointer,
                                           outLD: 32 * groups, batch: b, tokens: n, scratch: scratch.pointer)
        let y = try DeviceTensor(uninitialized: [rows, c], dtype: .f32, on: context)
        try block.toOut(.nhwc(attended.pointer, .bf16, batch: b, height: h, width: w, channels: 32 * groups),
                        out: y.pointer, kernels: kernels, gemm: gemm)
        try kernels.channelRMSNorm(y.pointer, weight: block.normOut.weight.pointer, bias: block.normOut.bias.pointer,
                                   residual: x.pointer, outBF16: xb.pointer, rows: rows, channels: c, eps: 1e-5)

        // GLUMBConv: 1×1 → SiLU → depthwise 3×3 → GLU (one kernel) → 1×1, norm, residual.
        let hidden = block.point.inChannels
        let ff = try DeviceTensor(uninitialized: [rows, 2 * hidden], dtype: .bf16, on: context)
        try block.inverted(map, out: ff.pointer, kernels: kernels, gemm: gemm)
        let gated = try DeviceTensor(uninitialized: [rows, hidden], dtype: .bf16, on: context)
        try nn.depthwiseConv3x3GLU(ff.pointer, taps: block.depthTaps.pointer, bias: block.depthBias.pointer,
                                   out: gated.pointer, batch: b, height: h, width: w, channels: hidden)
        try block.point(.nhwc(gated.pointer, .bf16, batch: b, height: h, width: w, channels: hidden), out: y.pointer,
                        kernels: kernels, gemm: gemm)
        try kernels.channelRMSNorm(y.pointer, weight: block.norm.weight.pointer, bias: block.norm.bias.pointer,
                                   residual: x.pointer, outBF16: nil, rows: rows, channels: c, eps: 1e-5)
    }

    /// DCUpBlock2d: `x [B·H·W, C]` → fp32 `[B·2H·2W, outChannels]`: the conv at the input's resolution to 4·out
    /// channels, then one kernel pixel-shuffles it and adds the shortcut.
    private func up(_ x: DeviceTensor, batch b: Int, height h: Int, width w: Int, channels c: Int, conv: DeviceConv2d,
                    repeats: Int?, outChannels: Int) throws -> DeviceTensor {
        let input = FeatureMap.nhwc(x.pointer, .f32, batch: b, height: h, width: w, channels: c)
        let t = try DeviceTensor(uninitialized: [b * h * w, 4 * outChannels], dtype: .f32, on: context)
        try conv(input, out: t.pointer, kernels: kernels, gemm: gemm)
        let out = try DeviceTensor(uninitialized: [b * 4 * h * w, outChannels], dtype: .f32, on: context)
        try kernels.shuffleShortcut(x: repeats == nil ? nil : input, repeats: repeats ?? 1, shuffled: t.pointer,
                                    out: out.pointer, batch: b, height: h, width: w, scale: 2, outChannels: outChannels)
        return out
    }
}

extension AutoencoderDCCUDA {
    /// Loads a diffusers `vae/` folder's decoder onto GPU `device`: the same key and shape checks as
    /// `AutoencoderDC.load` (the CPU model's key set, encoder included), then the decoder's weights as bf16 (norms,
    /// depthwise and grouped filters fp32). Opens the GPU first, so a machine without a driver fails before reading.
    public static func load(folder path: String, variant: String? = nil, device: Int = 0) throws -> AutoencoderDCCUDA {
        let context = try CUDAContext.open(device: device)
        let folder = try AutoencoderDC.modelFolder(path, variant: variant)
        let source = try AutoencoderDC.checkedSource(folder.checkpoint, config: folder.config, path: folder.weightsPath)
        let weights = source()
        let model = try AutoencoderDCCUDA(config: folder.config, weights: weights, context: context)
        try weights.finish()
        model.latentPreview = try AutoencoderDC.latentPreview(folder: path, latentChannels: model.latentChannels)
        model.hostEncoder = AutoencoderDC(config: folder.config, source: source)
        return model
    }

    /// A GPU decoder from in-memory fp32 weights by checkpoint key (the whole model's key set), on GPU `device`.
    public convenience init(config: AutoencoderDCConfig, tensors: [String: Tensor], device: Int = 0) throws {
        let weights = try WeightStore.autoencoderDC(checking: tensors, config: config)
        try self.init(config: config, weights: weights, context: CUDAContext.open(device: device))
        try weights.finish()
        // The CPU model reads its encoder's tensors on the first encode only (its decoder half is never built).
        let expected = AutoencoderDC.expectedWeightShapes(config)
        hostEncoder = AutoencoderDC(config: config, source: { WeightStore(.tensors(tensors), path: "", expected: expected) })
    }
}
