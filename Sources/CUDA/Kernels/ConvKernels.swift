import Tensors

/// A feature map in device memory as the convolution kernels read it: element `(b, y, x, ch)` at
/// `b·strideB + y·strideY + x·strideX + ch·strideC` elements from `pointer` (channels-last NHWC, or NCHW for a
/// latent straight from the host), fp32 or bf16.
public struct FeatureMap: Sendable {
    public var pointer: DevicePointer
    public var dtype: DeviceDType
    public var batch, height, width, channels: Int
    public var strideB, strideY, strideX, strideC: Int

    /// Channels-last `[B, H, W, C]`, pixel rows `ld` (default C) elements apart.
    public static func nhwc(_ pointer: DevicePointer, _ dtype: DeviceDType, batch: Int, height: Int, width: Int,
                            channels: Int, ld: Int? = nil) -> FeatureMap {
        let ld = ld ?? channels
        return FeatureMap(pointer: pointer, dtype: dtype, batch: batch, height: height, width: width, channels: channels,
                          strideB: height * width * ld, strideY: width * ld, strideX: ld, strideC: 1)
    }

    /// Channels-first `[B, C, H, W]` (contiguous).
    public static func nchw(_ pointer: DevicePointer, _ dtype: DeviceDType, batch: Int, channels: Int, height: Int,
                            width: Int) -> FeatureMap {
        FeatureMap(pointer: pointer, dtype: dtype, batch: batch, height: height, width: width, channels: channels,
                   strideB: channels * height * width, strideY: width, strideX: 1, strideC: height * width)
    }

    /// Pixels (`B·H·W`): the rows of a channels-last map.
    public var pixels: Int { batch * height * width }

    /// Whether pixel rows are uniformly `strideX` apart with contiguous channels (a GEMM operand as is).
    var isRowMajor: Bool { strideC == 1 && strideY == width * strideX && strideB == height * strideY }
}

/// The convolution-network kernels of `ConvKernels.source` (module "conv") on one context, with Swift signatures.
/// Pointers are raw device addresses (columns of fused buffers can be addressed); every call only queues work on
/// the context's stream. Used by DC-AE's GPU decoder; the layout is channels-last (docs/cuda.md).
public final class ConvKernels: @unchecked Sendable {
    public let context: CUDAContext
    public let module: KernelModule
    let im2colKernel, rmsNormKernel, shuffleKernel, multiscaleKernel, linAttnKV, linAttnApply,
        directKernel: KernelFunction

    public init(context: CUDAContext) throws(CUDAError) {
        self.context = context
        module = try context.module(named: "conv", source: Self.source)
        im2colKernel = try module.function("conv_im2col")
        rmsNormKernel = try module.function("channel_rmsnorm")
        shuffleKernel = try module.function("shuffle_shortcut")
        multiscaleKernel = try module.function("multiscale_dw_grouped")
        linAttnKV = try module.function("ms_linattn_kv")
        linAttnApply = try module.function("ms_linattn_apply")
        directKernel = try module.function("conv_direct_nchw")
    }

    /// Element-wise activations applied on the fly (codes of the CUDA C `act_fn`).
    public enum Activation: Int32, Sendable {
        case identity = 0, silu = 1, relu = 2, gelu = 3, mish = 4

        /// diffusers `get_activation` names ("swish" is SiLU; `nn.GELU()` is the exact erf form).
        public init?(name: String) {
            switch name {
            case "silu", "swish": self = .silu
            case "relu": self = .relu
            case "gelu": self = .gelu
            case "mish": self = .mish
            default: return nil
            }
        }
    }

    /// im2col rows `row0 ..< row0 + rows` (output pixels in `(b, y, x)` order) of a `k`×`k` convolution (stride 1,
    /// zero padding k/2) over `x` with `activation` applied to every input value: bf16 `cols [rows, k·k·C]`,
    /// columns `(ky, kx, ch)`.
    public func im2col(_ x: FeatureMap, kernel k: Int, activation: Activation, cols: DevicePointer, row0: Int,
                       rows: Int) throws(CUDAError) {
        try im2colKernel.launch(grid: ((rows + 7) / 8, 1, 1), block: (256, 1, 1),
                                bytes: rows * x.channels * (x.dtype.size + k * k * 2), [
            .pointer(x.pointer), .int(x.dtype == .f32 ? 1 : 0), .int64(Int64(x.strideB)), .int64(Int64(x.strideY)),
            .int64(Int64(x.strideX)), .int64(Int64(x.strideC)), .int(x.height), .int(x.width), .int(x.channels),
            .int(k), .int32(activation.rawValue), .pointer(cols), .int64(Int64(row0)),
            .int64(Int64(rows))])
    }

    /// Channel RMSNorm (DC-AE's `RMSNorm2d`: eps inside the root, weight and bias) of fp32 rows `y [rows, C]`.
    /// With `residual`, adds the result into it in place; `outBF16` receives `activation(result)` as bf16.
    public func channelRMSNorm(_ y: DevicePointer, weight: DevicePointer, bias: DevicePointer, residual: DevicePointer?,
                               outBF16: DevicePointer?, rows: Int, channels: Int, eps: Float,
                               activation: Activation = .identity) throws(CUDAError) {
        try rmsNormKernel.launch(grid: ((rows + 7) / 8, 1, 1), block: (256, 1, 1),
                                 bytes: rows * channels * (4 + (residual == nil ? 0 : 8) + (outBF16 == nil ? 0 : 2)), [
            .pointer(y), .pointer(weight), .pointer(bias), .pointer(residual ?? 0), .pointer(outBF16 ?? 0),
            .int64(Int64(rows)), .int(channels), .float(eps), .int32(activation.rawValue)])
    }

    /// fp32 NHWC `out [B, s·H, s·W, outChannels]` = `x` repeated `repeats` times along channels (fp32, any
    /// strides; nil: no such term) plus `shuffled` (fp32 NHWC `[B, H, W, s²·outChannels]`; nil: none), both
    /// pixel-shuffled by `s` (diffusers `pixel_shuffle(repeat_interleave(x, repeats, 1), s)`; s = 1 for the
    /// decoder's in-shortcut). `height`/`width` are the input's.
    public func shuffleShortcut(x: FeatureMap?, repeats: Int, shuffled: DevicePointer?, out: DevicePointer, batch: Int,
                                height: Int, width: Int, scale s: Int, outChannels: Int) throws(CUDAError) {
        let pixels = batch * s * height * s * width, inputPixels = batch * height * width
        let reads = (x == nil ? 0 : pixels * outChannels * 4 / max(repeats, 1)) + (shuffled == nil ? 0 : pixels * outChannels * 4)
        try shuffleKernel.launch(grid: ((inputPixels + 7) / 8, 1, 1), block: (256, 1, 1),
                                 bytes: pixels * outChannels * 4 + reads, [
            .pointer(x?.pointer ?? 0), .int64(Int64(x?.strideB ?? 0)), .int64(Int64(x?.strideY ?? 0)),
            .int64(Int64(x?.strideX ?? 0)), .int64(Int64(x?.strideC ?? 0)), .int(max(repeats, 1)),
            .pointer(shuffled ?? 0), .pointer(out), .int(batch), .int(height), .int(width), .int(s), .int(outChannels)])
    }

    /// One multiscale branch of DC-AE's attention on bf16 pixel rows `ld` apart: depthwise `k`×`k` of columns
    /// `[0, c3)` (`taps [c3, k·k]` fp32) then the grouped 1×1 with 32-channel groups (`groupWeights [c3, 32]` fp32),
    /// written as bf16 at columns `dstColumn ..< dstColumn + c3` of the same rows.
    public func multiscale(_ qkv: DevicePointer, ld: Int, channels c3: Int, dstColumn: Int, taps: DevicePointer,
                           groupWeights: DevicePointer, batch: Int, height: Int, width: Int,
                           kernel k: Int) throws(CUDAError) {
        precondition(c3 % 32 == 0, "multiscale: channels \(c3) must be a multiple of 32")
        let pixels = batch * height * width
        try multiscaleKernel.launch(grid: ((pixels + 127) / 128, c3 / 32, 1), block: (256, 1, 1),
                                    bytes: pixels * c3 * 4, [
            .pointer(qkv), .pointer(qkv), .int64(Int64(ld)), .int(dstColumn), .pointer(taps), .pointer(groupWeights),
            .int(batch), .int(height), .int(width), .int(k)])
    }

    /// Tokens each block of the grouped key·value reduction covers.
    static let linearAttentionChunk = 256

    /// Bytes of fp32 scratch `groupedLinearAttention` needs.
    public static func linearAttentionScratchBytes(batch: Int, groups: Int, tokens: Int) -> Int {
        batch * groups * ((tokens + linearAttentionChunk - 1) / linearAttentionChunk) * 32 * 33 * 4
    }

    /// DC-AE's ReLU linear attention (fp32 inside) over `groups` groups of a bf16 pixel row (`ld` apart): group g
    /// holds q, k, v as the 32-channel blocks at `96·g`, `+32`, `+64`; bf16 output row `outLD` apart, group g at
    /// `32·g`. Needs `tokens > 32` (diffusers' linear branch; smaller maps take its quadratic form).
    public func groupedLinearAttention(_ qkv: DevicePointer, ld: Int, groups: Int, out: DevicePointer, outLD: Int,
                                       batch: Int, tokens: Int, scratch: DevicePointer,
                                       eps: Float = 1e-15) throws(CUDAError) {
        let chunks = (tokens + Self.linearAttentionChunk - 1) / Self.linearAttentionChunk
        try linAttnKV.launch(grid: (batch * groups, chunks, 1), block: (256, 1, 1), bytes: batch * tokens * groups * 128, [
            .pointer(qkv), .pointer(scratch), .int(tokens), .int(groups), .int64(Int64(ld)), .int(96),
            .int(Self.linearAttentionChunk)])
        try linAttnApply.launch(grid: (batch * groups, (tokens + 127) / 128, 1), block: (128, 1, 1),
                                bytes: batch * tokens * groups * 128, [
            .pointer(qkv), .pointer(scratch), .pointer(out), .int(tokens), .int(groups), .int64(Int64(ld)), .int(96),
            .int(chunks), .int64(Int64(outLD)), .float(eps)])
    }

    /// A `k`×`k` convolution with few output channels from bf16 NHWC `x [B, H, W, C]` straight to fp32 NCHW
    /// `out [B, outChannels, H, W]`: fp32 `weight [outChannels, k·k·C]` (`DeviceConv2d.rows` order) and `bias`.
    public func convDirectNCHW(_ x: DevicePointer, weight: DevicePointer, bias: DevicePointer?, out: DevicePointer,
                               batch: Int, height: Int, width: Int, channels: Int, outChannels: Int,
                               kernel k: Int) throws(CUDAError) {
        let pixels = batch * height * width
        try directKernel.launch(grid: (max(1, min((pixels + 7) / 8, 132 * 16)), 1, 1), block: (256, 1, 1),
                                bytes: pixels * (channels * 2 + outChannels * 4), [
            .pointer(x), .pointer(weight), .pointer(bias ?? 0), .pointer(out), .int(batch), .int(height), .int(width),
            .int(channels), .int(outChannels), .int(k)])
    }
}

/// An `nn.Conv2d` (square kernel, stride 1, padding k/2, no groups) on the GPU as im2col + one cuBLASLt GEMM:
/// bf16 filter rows `[out, k·k·in]` (columns `(ky, kx, ch)`, matching `ConvKernels.im2col`), the bias in the
/// output's type added in the GEMM's epilogue, fp32 accumulation. A 1×1 convolution on a bf16 channels-last map is
/// the GEMM alone. Output: channels-last rows `[B·H·W, out]`.
public struct DeviceConv2d: @unchecked Sendable {
    public let weight: DeviceTensor
    public let bias: DeviceTensor?
    public let outputF32: Bool
    public let inChannels, outChannels, kernel: Int
    public var bytes: Int { weight.byteCount + (bias?.byteCount ?? 0) }

    /// im2col scratch per GEMM (bytes): larger convolutions run in row chunks of at most this much. A benchmark
    /// knob (`sanagraph-cuda dcae --im2col-mb`): set it before any convolution runs, never while one does.
    nonisolated(unsafe) public static var im2colChunkBytes = 256 << 20

    /// `weight` is PyTorch's `[out, in, k, k]` (or a linear's `[out, in]`).
    public init(weight: Tensor, bias: Tensor?, outputF32: Bool, on context: CUDAContext) throws {
        kernel = weight.rank == 4 ? weight.shape[2] : 1
        outChannels = weight.shape[0]
        inChannels = weight.shape[1]
        self.weight = try DeviceTensor(Self.rows(weight), dtype: .bf16, on: context)
        self.bias = try bias.map { try DeviceTensor($0, dtype: outputF32 ? .f32 : .bf16, on: context) }
        self.outputF32 = outputF32
    }

    /// `conv(nearest_upsample_×2(x))` as one convolution of `x` itself: for output phase (i, j) (pixel (2Y+i, 2X+j))
    /// the k×k taps land on low-resolution offsets `⌊(i + ky − k/2) / 2⌋`, so they sum into a `k'`×`k'` filter
    /// (k' = 2·⌊(k/2 + 1)/2⌋ + 1: 3 for k = 3 or 5) with the same zero padding. `weight [out, in, k, k]` → `[4·out, in, k', k']`
    /// with output channel `4c + 2i + j`, the order `pixel_shuffle` reads; `bias` is repeated 4× to match. The
    /// convolution then runs at a quarter of the pixels (im2col moves 4× less) for the same arithmetic.
    public static func foldingNearestUpsample(weight: Tensor, bias: Tensor?) -> (weight: Tensor, bias: Tensor?) {
        let (o, i, k) = (weight.shape[0], weight.shape[1], weight.shape[2])
        let p = k / 2, lo = (-p) >> 1, kl = ((1 + p) >> 1) - lo + 1
        let w = weight.scalars
        var folded = [Float](repeating: 0, count: 4 * o * i * kl * kl)
        for c in 0..<o {
            for pi in 0..<2 {
                for pj in 0..<2 {
                    let oc = 4 * c + 2 * pi + pj
                    for ci in 0..<i {
                        for ky in 0..<k {
                            let dy = ((pi + ky - p) >> 1) - lo
                            for kx in 0..<k {
                                let dx = ((pj + kx - p) >> 1) - lo
                                folded[((oc * i + ci) * kl + dy) * kl + dx] += w[((c * i + ci) * k + ky) * k + kx]
                            }
                        }
                    }
                }
            }
        }
        let b = bias.map { t in Tensor(shape: [4 * o], values: t.scalars.flatMap { [$0, $0, $0, $0] }) }
        return (Tensor(shape: [4 * o, i, kl, kl], values: folded), b)
    }

    /// `[out, in, k, k]` → `[out, k·k·in]` with columns `(ky, kx, ch)` (a `[out, in]` weight is unchanged).
    public static func rows(_ weight: Tensor) -> Tensor {
        guard weight.rank == 4 else { return weight }
        let (o, i, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        return Ops.permute(weight, [0, 2, 3, 1]).reshaped([o, kh * kw * i])
    }

    /// `out` (rows `ldOut` apart, default out channels) `(+)=` conv(activation(x)) + bias. With `accumulate` the
    /// result is added to what `out` holds (β = 1). `chunkBytes` bounds the im2col scratch (checks make it tiny to
    /// cover the chunking).
    public func callAsFunction(_ x: FeatureMap, activation: ConvKernels.Activation = .identity,
                               out: DevicePointer, ldOut: Int? = nil, accumulate: Bool = false, kernels: ConvKernels,
                               gemm: Gemm, chunkBytes: Int = im2colChunkBytes) throws {
        precondition(x.channels == inChannels, "DeviceConv2d: input has \(x.channels) channels, filter takes \(inChannels)")
        let rows = x.pixels, ldOut = ldOut ?? outChannels
        let stream = kernels.context.stream
        if kernel == 1 && activation == .identity && x.dtype == .bf16 && x.isRowMajor {
            try gemm.run(m: rows, n: outChannels, k: inChannels, a: GemmOperand(x.pointer, ld: x.strideX),
                         b: GemmOperand(weight.pointer, ld: inChannels), bTransposed: true,
                         d: GemmOperand(out, ld: ldOut), outputF32: outputF32, bias: bias?.pointer,
                         accumulate: accumulate, stream: stream)
            return
        }
        let kc = kernel * kernel * inChannels
        let chunk = max(1, min(rows, chunkBytes / (kc * 2)))
        let cols = try DeviceTensor(uninitialized: [chunk * kc], dtype: .bf16, on: kernels.context)
        let outSize = outputF32 ? 4 : 2
        for row0 in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - row0)
            try kernels.im2col(x, kernel: kernel, activation: activation, cols: cols.pointer, row0: row0, rows: n)
            try gemm.run(m: n, n: outChannels, k: kc, a: GemmOperand(cols.pointer, ld: kc),
                         b: GemmOperand(weight.pointer, ld: kc), bTransposed: true,
                         d: GemmOperand(out + DevicePointer(row0 * ldOut * outSize), ld: ldOut), outputF32: outputF32,
                         bias: bias?.pointer, accumulate: accumulate, stream: stream)
        }
    }
}
