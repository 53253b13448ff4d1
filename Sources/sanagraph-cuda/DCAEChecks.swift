import CUDA
import DCAE
import Foundation
import SanaGraphKit
import Tensors

/// GPU checks of the convolution kernels (`ConvKernels`, `DeviceConv2d`) and of DC-AE's GPU decoder, each against
/// the CPU implementation in fp32 on fresh random inputs, outputs poisoned with NaN first.
extension GPUChecks {
    static let dcaeChecks: [Check] = [
        ("conv im2col + gemm (NCHW in, chunks, accumulate)", { c, _ in try convNCHW(c) }),
        ("conv im2col + gemm (bf16 NHWC, SiLU on the fly, chunks, bf16 out)", { c, _ in try convActivation(c) }),
        ("conv with nearest ×2 folded into 4 phases + pixel shuffle", { c, _ in try convFoldedUpsample(c) }),
        ("conv 1×1 as a GEMM on strided rows", { c, _ in try conv1x1(c) }),
        ("channel_rmsnorm (residual; ReLU to bf16)", { c, _ in try channelNorm(c) }),
        ("shuffle_shortcut (up ×2, pixel shuffle, in-shortcut)", { c, _ in try shortcuts(c) }),
        ("multiscale depthwise + grouped 1×1", { c, _ in try multiscale(c) }),
        ("grouped linear attention (DC-AE)", { c, _ in try groupedAttention(c) }),
        ("conv_direct_nchw (conv_out)", { c, _ in try convDirect(c) }),
        ("DC-AE decoder (small config)", { c, _ in try dcaeSmall(c, variant: false) }),
        ("DC-AE decoder (pixel_shuffle, two scales, GELU/Mish, batch 2)", { c, _ in try dcaeSmall(c, variant: true) }),
        ("profiler: per-launch events in decoder scopes", { c, _ in try profiledDecoder(c) }),
        ("DC-AE encode on a GPU autoencoder runs the CPU encoder", { c, _ in try encodeOnHost(c) }),
    ]

    /// NCHW → NHWC (host).
    static func channelsLast(_ t: Tensor) -> Tensor { Ops.permute(t, [0, 2, 3, 1]) }

    static func convNCHW(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 30)
        let (b, cin, h, w, cout) = (2, 6, 5, 7, 10)
        let x = r.tensor([b, cin, h, w]), weight = r.tensor([cout, cin, 3, 3], scale: 0.2), bias = r.tensor([cout])
        let start = r.tensor([b * h * w, cout])
        let kernels = try ConvKernels(context: c)
        let conv = try DeviceConv2d(weight: weight, bias: bias, outputF32: true, on: c)
        let xd = try DeviceTensor(x, on: c), out = try DeviceTensor(start, on: c)
        // 100 bytes of scratch: 1 im2col row (54 columns) per GEMM, so every row is its own chunk.
        try conv(.nchw(xd.pointer, .f32, batch: b, channels: cin, height: h, width: w), out: out.pointer,
                 accumulate: true, kernels: kernels, gemm: c.gemm(), chunkBytes: 100)
        let want = Ops.add(start, channelsLast(Ops.conv2d(bf16Rounded(x), weight: bf16Rounded(weight), bias: bias,
                                                          padding: 1)).reshaped([b * h * w, cout]))
        return try expectClose(out.toHost(), want, tolerance: 1e-4, "rel err")
    }

    static func convActivation(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 31)
        let (b, cin, h, w, cout) = (1, 16, 6, 8, 8)
        let x = bf16Rounded(r.tensor([b, cin, h, w], scale: 2))
        let weight = r.tensor([cout, cin, 3, 3], scale: 0.1), bias = bf16Rounded(r.tensor([cout]))
        let kernels = try ConvKernels(context: c)
        let conv = try DeviceConv2d(weight: weight, bias: bias, outputF32: false, on: c)
        let xd = try DeviceTensor(channelsLast(x), dtype: .bf16, on: c)
        let out = try poisoned([b * h * w, cout], .bf16, on: c)
        try conv(.nhwc(xd.pointer, .bf16, batch: b, height: h, width: w, channels: cin), activation: .silu,
                 out: out.pointer, kernels: kernels, gemm: c.gemm(), chunkBytes: 5 * 9 * cin * 2)
        let want = channelsLast(Ops.conv2d(bf16Rounded(Ops.silu(x)), weight: bf16Rounded(weight), bias: bias, padding: 1))
        return try expectClose(out.toHost(), want.reshaped([b * h * w, cout]), tolerance: 5e-3, "rel err")
    }

    /// DCUpBlock2d "interpolate" without the ×2 map: the folded 4-phase filter at the input's resolution, then the
    /// pixel shuffle, against conv(nearest ×2(x)) on the CPU; 3×3 and 5×5 kernels.
    static func convFoldedUpsample(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 38)
        let (b, cin, h, w, cout) = (2, 8, 3, 4, 6)
        let x = bf16Rounded(r.tensor([b, cin, h, w]))
        let kernels = try ConvKernels(context: c)
        let xd = try DeviceTensor(channelsLast(x), on: c)
        var reports: [String] = []
        for k in [3, 5] {
            let weight = r.tensor([cout, cin, k, k], scale: 0.2), bias = r.tensor([cout])
            let (fw, fb) = DeviceConv2d.foldingNearestUpsample(weight: weight, bias: bias)
            let conv = try DeviceConv2d(weight: fw, bias: fb, outputF32: true, on: c)
            let t = try poisoned([b * h * w, 4 * cout], .f32, on: c)
            try conv(.nhwc(xd.pointer, .f32, batch: b, height: h, width: w, channels: cin), out: t.pointer,
                     kernels: kernels, gemm: c.gemm())
            let out = try poisoned([b * 4 * h * w, cout], .f32, on: c)
            try kernels.shuffleShortcut(x: nil, repeats: 1, shuffled: t.pointer, out: out.pointer, batch: b, height: h,
                                        width: w, scale: 2, outChannels: cout)
            let up = Ops.interpolate(x, scaleFactor: 2, mode: .nearest)
            let want = channelsLast(Ops.conv2d(up, weight: weight, bias: bias, padding: k / 2))
            // The folded filter is rounded to bf16 after summing taps: bf16-operand tolerance.
            reports.append(try expectClose(out.toHost(), want.reshaped([b * 4 * h * w, cout]), tolerance: 5e-3, "\(k)×\(k)"))
        }
        return reports.joined(separator: ", ")
    }

    static func conv1x1(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 32)
        let (rows, cin, ld, cout, ldOut) = (21, 24, 40, 16, 24)
        let x = bf16Rounded(r.tensor([rows, ld])), weight = r.tensor([cout, cin]), bias = r.tensor([cout])
        let kernels = try ConvKernels(context: c)
        let conv = try DeviceConv2d(weight: weight, bias: bias, outputF32: true, on: c)
        let out = try poisoned([rows, ldOut], .f32, on: c)
        let xd = try DeviceTensor(x, dtype: .bf16, on: c)
        try conv(.nhwc(xd.pointer, .bf16, batch: 1, height: 3, width: 7, channels: cin,
                       ld: ld), out: out.pointer, ldOut: ldOut, kernels: kernels, gemm: c.gemm())
        let want = Ops.linear(Ops.slice(x, axis: 1, range: 0..<cin), weight: bf16Rounded(weight), bias: bias)
        return try expectClose(Ops.slice(out.toHost(), axis: 1, range: 0..<cout), want, tolerance: 1e-4, "rel err")
    }

    static func channelNorm(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 33)
        let (rows, ch) = (19, 72)
        let y = r.tensor([rows, ch], scale: 3), x = r.tensor([rows, ch])
        let weight = r.tensor([ch], scale: 0.1, offset: 1), bias = r.tensor([ch], scale: 0.1)
        let kernels = try ConvKernels(context: c)
        let yd = try DeviceTensor(y, on: c), xd = try DeviceTensor(x, on: c)
        let wd = try DeviceTensor(weight, on: c), bd = try DeviceTensor(bias, on: c)
        let xb = try poisoned([rows, ch], .bf16, on: c)
        try kernels.channelRMSNorm(yd.pointer, weight: wd.pointer, bias: bd.pointer, residual: xd.pointer,
                                   outBF16: xb.pointer, rows: rows, channels: ch, eps: 1e-5)
        // Rows of channels are the [1, C, rows] channel norm of the CPU (pixels along the last axis).
        let normed = Ops.permute(Ops.channelRMSNorm(Ops.permute(y.reshaped([1, rows, ch]), [0, 2, 1]), weight: weight,
                                                    bias: bias, eps: 1e-5), [0, 2, 1]).reshaped([rows, ch])
        let sum = Ops.add(x, normed)
        let a = try expectClose(xd.toHost(), sum, tolerance: 1e-5, "residual")
        let e = try expectClose(xb.toHost(), sum, tolerance: 5e-3, "bf16 copy")
        let relu = try poisoned([rows, ch], .bf16, on: c)
        try kernels.channelRMSNorm(yd.pointer, weight: wd.pointer, bias: bd.pointer, residual: nil, outBF16: relu.pointer,
                                   rows: rows, channels: ch, eps: 1e-5, activation: .relu)
        let n = try expectClose(relu.toHost(), Ops.relu(normed), tolerance: 5e-3, "ReLU bf16")
        return [a, e, n].joined(separator: ", ")
    }

    static func shortcuts(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 34)
        let kernels = try ConvKernels(context: c)
        // Up ×2 with repeats 2: 8 → 4 channels; NHWC input.
        let (b, h, w, cin, cout) = (2, 3, 5, 8, 4)
        let x = r.tensor([b, cin, h, w])
        let xd = try DeviceTensor(channelsLast(x), on: c)
        let out = try poisoned([b * 4 * h * w, cout], .f32, on: c)
        try kernels.shuffleShortcut(x: .nhwc(xd.pointer, .f32, batch: b, height: h, width: w, channels: cin), repeats: 2,
                                    shuffled: nil, out: out.pointer, batch: b, height: h, width: w, scale: 2,
                                    outChannels: cout)
        let repeated = Ops.concat((0..<(4 * cout)).map { Ops.slice(x, axis: 1, range: ($0 / 2)..<($0 / 2 + 1)) }, axis: 1)
        let up = channelsLast(Ops.pixelShuffle(repeated, upscale: 2))
        let a = try expectClose(out.toHost(), up, tolerance: 0, "up shortcut")
        // Pixel shuffle of a conv output plus the shortcut.
        let t = r.tensor([b, h, w, 4 * cout])
        let td = try DeviceTensor(t, on: c)
        try kernels.shuffleShortcut(x: .nhwc(xd.pointer, .f32, batch: b, height: h, width: w, channels: cin), repeats: 2,
                                    shuffled: td.pointer, out: out.pointer, batch: b, height: h,
                                    width: w, scale: 2, outChannels: cout)
        let shuffled = channelsLast(Ops.pixelShuffle(Ops.permute(t, [0, 3, 1, 2]), upscale: 2))
        let s = try expectClose(out.toHost(), Ops.add(up, shuffled), tolerance: 1e-7, "pixel shuffle")
        // In-shortcut from an NCHW latent: out[c] = z[c / 3].
        let z = r.tensor([b, 2, h, w])
        let zd = try DeviceTensor(z, on: c)
        let inOut = try poisoned([b * h * w, 6], .f32, on: c)
        try kernels.shuffleShortcut(x: .nchw(zd.pointer, .f32, batch: b, channels: 2, height: h, width: w), repeats: 3,
                                    shuffled: nil, out: inOut.pointer, batch: b, height: h, width: w, scale: 1,
                                    outChannels: 6)
        let zr = Ops.concat((0..<6).map { Ops.slice(z, axis: 1, range: ($0 / 3)..<($0 / 3 + 1)) }, axis: 1)
        let i = try expectClose(inOut.toHost(), channelsLast(zr), tolerance: 0, "in-shortcut")
        return [a, s, i].joined(separator: ", ")
    }

    static func multiscale(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 35)
        let (b, h, w, c3, k) = (2, 5, 6, 64, 5)
        let ld = 2 * c3 + 8
        let rowsT = bf16Rounded(r.tensor([b * h * w, ld]))
        let taps = r.tensor([c3, 1, k, k], scale: 0.2), groups = r.tensor([c3, 32, 1, 1], scale: 0.2)
        let kernels = try ConvKernels(context: c)
        let qkv = try DeviceTensor(rowsT, dtype: .bf16, on: c)
        let td = try DeviceTensor(taps, on: c), gd = try DeviceTensor(groups, on: c)
        try kernels.multiscale(qkv.pointer, ld: ld, channels: c3, dstColumn: c3, taps: td.pointer,
                               groupWeights: gd.pointer, batch: b, height: h, width: w, kernel: k)
        let got = try qkv.toHost()
        let src = Ops.permute(Ops.slice(rowsT, axis: 1, range: 0..<c3).reshaped([b, h, w, c3]), [0, 3, 1, 2])
        let dw = Ops.conv2d(src, weight: taps, bias: nil, padding: k / 2, groups: c3)
        let want = channelsLast(Ops.conv2d(dw, weight: groups, bias: nil, groups: c3 / 32)).reshaped([b * h * w, c3])
        guard Ops.slice(got, axis: 1, range: 0..<c3).scalars == Ops.slice(rowsT, axis: 1, range: 0..<c3).scalars,
              Ops.slice(got, axis: 1, range: (2 * c3)..<ld).scalars == Ops.slice(rowsT, axis: 1, range: (2 * c3)..<ld).scalars
        else { throw CheckFailure(description: "the multiscale kernel wrote outside its columns") }
        return try expectClose(Ops.slice(got, axis: 1, range: c3..<(2 * c3)), want, tolerance: 5e-3, "rel err")
    }

    static func groupedAttention(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 36)
        let (b, n, groups) = (2, 300, 3)
        let ld = 96 * groups
        let qkv = bf16Rounded(r.tensor([b * n, ld]))
        let kernels = try ConvKernels(context: c)
        let scratch = try DeviceTensor(uninitialized: [ConvKernels.linearAttentionScratchBytes(batch: b, groups: groups,
                                                                                                tokens: n) / 4],
                                       dtype: .f32, on: c)
        let out = try poisoned([b * n, 32 * groups], .bf16, on: c)
        let qd = try DeviceTensor(qkv, dtype: .bf16, on: c)
        try kernels.groupedLinearAttention(qd.pointer, ld: ld, groups: groups,
                                           out: out.pointer, outLD: 32 * groups, batch: b, tokens: n,
                                           scratch: scratch.pointer)
        // The CPU core takes [B, G, 96, N] and returns [B, G, 32, N].
        let cpu = Ops.sanaMultiscaleAttention(qkv: Ops.permute(qkv.reshaped([b, n, groups, 96]), [0, 2, 3, 1]), headDim: 32)
        let want = Ops.permute(cpu, [0, 3, 1, 2]).reshaped([b * n, 32 * groups])
        return try expectClose(out.toHost(), want, tolerance: 5e-3, "rel err")
    }

    /// conv_out's shape (3 outputs, fewer channels than a warp) and one with two passes of outputs, more channels
    /// than lanes and a 5×5 kernel.
    static func convDirect(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 37)
        let kernels = try ConvKernels(context: c)
        var reports: [String] = []
        for (b, cin, h, w, cout, k) in [(2, 24, 6, 5, 3, 3), (1, 40, 4, 7, 6, 5)] {
            let x = bf16Rounded(r.tensor([b, cin, h, w])), weight = r.tensor([cout, cin, k, k], scale: 0.1)
            let bias = r.tensor([cout])
            let out = try poisoned([b, cout, h, w], .f32, on: c)
            // Device tensors held in locals: one freed inside an argument list could be reused by the next upload.
            let xd = try DeviceTensor(channelsLast(x), dtype: .bf16, on: c)
            let wd = try DeviceTensor(DeviceConv2d.rows(weight), on: c), bd = try DeviceTensor(bias, on: c)
            try kernels.convDirectNCHW(xd.pointer, weight: wd.pointer, bias: bd.pointer, out: out.pointer, batch: b,
                                       height: h, width: w, channels: cin, outChannels: cout, kernel: k)
            reports.append(try expectClose(out.toHost(), Ops.conv2d(x, weight: weight, bias: bias, padding: k / 2),
                                           tolerance: 1e-5, "\(cout) out \(k)×\(k)"))
        }
        return reports.joined(separator: ", ")
    }

    /// The profiler on the small decoder: every launch lands in a decoder scope, the GEMMs carry FLOPs, and the
    /// result is the unprofiled decoder's (events only bracket launches).
    static func profiledDecoder(_ c: CUDAContext) throws -> String {
        let (_, gpu, latent) = try smallDecoderPair(c, variant: false)
        let plain = try gpu.decoderForward(latent)
        let profiler = c.attachProfiler()
        defer { c.profiler = nil }
        try profiler.reset()
        let profiled = try gpu.decoderForward(latent)
        try profiler.flush()
        guard profiled.scalars == plain.scalars else {
            throw CheckFailure(description: "the profiled decode differs from the plain one")
        }
        let scopes = Set(profiler.byScope.keys)
        for want in ["conv_in", "stage 2/EfficientViT 1", "stage 1/up", "stage 0/ResBlock 1", "norm_out+conv_out"] {
            guard scopes.contains(want) else {
                throw CheckFailure(description: "profiler scope '\(want)' missing; got \(scopes.sorted())")
            }
        }
        guard scopes.allSatisfy({ !$0.isEmpty }) else {
            throw CheckFailure(description: "a launch outside the decoder's scopes: \(scopes.sorted())")
        }
        let gemms = profiler.byKernel.filter { $0.key.hasPrefix("gemm") }
        guard profiler.byKernel["conv_direct_nchw"]?.calls == 1, !gemms.isEmpty,
              gemms.values.allSatisfy({ $0.flops > 0 && $0.bytes > 0 }) else {
            throw CheckFailure(description: "profiler kernels: \(profiler.byKernel.keys.sorted())")
        }
        let report = try profiler.report()
        guard report.contains("conv_direct_nchw"), report.contains("stage 0") else {
            throw CheckFailure(description: "profiler report:\n\(report)")
        }
        let launches = profiler.byKernel.values.reduce(0) { $0 + $1.calls }
        return "\(launches) launches in \(scopes.count) scopes, \(profiler.byKernel.count) kernels"
    }

    /// A small random DC-AE (3 stages: ResBlock, EfficientViT, EfficientViT) as the CPU model and the GPU decoder
    /// from the same weights, and a latent. `variant`: pixel_shuffle up blocks, two multiscale kernels,
    /// GELU blocks with a Mish conv_act, batch 2 and a non-square latent.
    static func smallDecoderPair(_ c: CUDAContext,
                                 variant: Bool) throws -> (AutoencoderDC, AutoencoderDCCUDA, Tensor) {
        var config = AutoencoderDCConfig()
        config.latentChannels = 8
        config.encoderBlockTypes = .each(["ResBlock", "EfficientViTBlock", "EfficientViTBlock"])
        config.decoderBlockTypes = config.encoderBlockTypes
        config.encoderBlockOutChannels = [16, 32, 64]
        config.decoderBlockOutChannels = [16, 32, 64]
        config.encoderLayersPerBlock = [1, 1, 1]
        config.decoderLayersPerBlock = [1, 1, 2]
        config.encoderQkvMultiscales = [[], [3], [5]]
        config.decoderQkvMultiscales = variant ? [[], [3, 5], [5]] : [[], [3], [5]]
        config.upsampleBlockType = variant ? "pixel_shuffle" : "interpolate"
        config.downsampleBlockType = "Conv"
        config.scalingFactor = 0.41407
        if variant {
            config.decoderActFns = .all("gelu")
            config.decoderConvActFn = "mish"
        }
        var r = Random(seed: variant ? 41 : 40)
        var tensors: [String: Tensor] = [:]
        for (key, shape) in AutoencoderDC.expectedWeightShapes(config).sorted(by: { $0.key < $1.key }) {
            let fanIn = shape.dropFirst().reduce(1, *)
            if key.contains("norm") && key.hasSuffix(".weight") {
                tensors[key] = r.tensor(shape, scale: 0.1, offset: 1)
            } else if shape.count == 1 {
                tensors[key] = r.tensor(shape, scale: 0.1)
            } else {
                tensors[key] = r.tensor(shape, scale: 1 / Float(fanIn).squareRoot())
            }
        }
        let cpu = try AutoencoderDC(config: config, tensors: tensors)
        let gpu = try AutoencoderDCCUDA(config: config, tensors: tensors, device: c.deviceIndex)
        let latent = variant ? r.tensor([2, 8, 6, 7]) : r.tensor([1, 8, 6, 6])
        return (cpu, gpu, latent)
    }

    /// `encode` of the GPU autoencoder is the CPU encoder's (the GPU has only the decoder): same result as the CPU
    /// model's, and the encoder's weights are converted only then.
    static func encodeOnHost(_ c: CUDAContext) throws -> String {
        let (cpu, gpu, _) = try smallDecoderPair(c, variant: false)
        var r = Random(seed: 42)
        let image = r.tensor([1, 3, 6 * gpu.downscale, 5 * gpu.downscale], scale: 0.5, offset: 0.5)
        let context = RunContext(nodeID: "encode")
        let want = try cpu.encode(image, tileSize: nil, context: context)
        let got = try gpu.encode(image, tileSize: nil, context: context)
        guard got.shape == want.shape, gpu.residentBytes > 0 else {
            throw CheckFailure(description: "GPU autoencoder encode: shape \(got.shape) vs \(want.shape), "
                               + "host bytes \(gpu.residentBytes)")
        }
        return try expectClose(got, want, tolerance: 1e-6, "GPU autoencoder's encode vs the CPU model's")
    }

    /// The small decoder on the CPU (fp32) and the GPU (bf16), same latent.
    static func dcaeSmall(_ c: CUDAContext, variant: Bool) throws -> String {
        let (cpu, gpu, latent) = try smallDecoderPair(c, variant: variant)
        let want = try cpu.decoderForward(latent)
        let got = try gpu.decoderForward(latent)
        guard got.shape == want.shape else {
            throw CheckFailure(description: "GPU decoder shape \(got.shape) vs CPU \(want.shape)")
        }
        return try expectClose(got, want, tolerance: 3e-2, "GPU bf16 vs CPU fp32")
    }
}
