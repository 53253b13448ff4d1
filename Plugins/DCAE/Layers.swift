import Foundation
import SanaGraphKit
import Tensors

// DC-AE building blocks (diffusers autoencoder_dc.py, SanaMultiscaleLinearAttention, GLUMBConv) on NCHW fp32
// tensors. Property names mirror the checkpoint keys.

extension WeightStore {
    /// An `nn.Linear` weight `[out, in]` as a 1×1 conv weight `[out, in, 1, 1]` (a free view), so a Linear over
    /// the channel axis (diffusers' `movedim(1, -1)` → Linear → `movedim(-1, 1)`) becomes one GEMM on NCHW.
    func linearAsConv(_ key: String, _ out: Int, _ inDim: Int) -> Tensor {
        let w = self(key, [out, inDim])
        return isCollecting ? w : w.reshaped([out, inDim, 1, 1])
    }
}

/// `nn.Conv2d` (square kernel, same stride/padding on both axes), its filter prepared for this CPU's kernels at
/// the weights' precision (nil while only collecting the key set).
struct Conv2d: Sendable {
    var conv: ConvWeight?

    init(_ w: WeightStore, _ prefix: String, _ cin: Int, _ cout: Int, kernel: Int, stride: Int = 1,
         padding: Int? = nil, groups: Int = 1, bias: Bool = true) {
        let bias = bias ? w(prefix + ".bias", [cout]) : nil
        conv = w.conv(prefix + ".weight", [cout, cin / groups, kernel, kernel], bias: bias, stride: stride,
                      padding: padding ?? kernel / 2, groups: groups)
    }

    /// A 1×1 convolution from a `[out, in, 1, 1]` weight (e.g. `WeightStore.linearAsConv`).
    init(_ w: WeightStore, weight: Tensor) {
        conv = w.isCollecting ? nil : ConvWeight(weight, bias: nil, precision: w.precision)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { Ops.conv2d(x, conv!) }
    var bytes: Int { conv?.byteCount ?? 0 }
}

/// diffusers `get_activation` (the names of `ACT2CLS`).
enum Activation: Sendable {
    case silu, relu, gelu, mish

    init(_ name: String) {
        switch name {
        case "relu": self = .relu
        case "gelu": self = .gelu
        case "mish": self = .mish
        default: self = .silu  // "silu" / "swish"; other names are rejected by the config check
        }
    }

    func apply(_ x: inout Tensor) {
        switch self {
        case .silu: Ops.siluInPlace(&x)
        case .relu: Ops.reluInPlace(&x)
        case .gelu: Ops.geluInPlace(&x)  // nn.GELU(): exact erf form
        case .mish: DCAEKernels.mishInPlace(&x)
        }
    }
}

/// The per-pixel channel norm of a block: diffusers `RMSNorm(C, 1e-5, affine, bias)` over the channel axis
/// ("rms_norm"), or `nn.BatchNorm2d(C, eps 1e-5)` in eval mode with running statistics ("batch_norm").
enum ChannelNorm: Sendable {
    case rms(weight: Tensor, bias: Tensor)
    case batch(weight: Tensor, bias: Tensor, mean: Tensor, variance: Tensor)

    static let eps: Float = 1e-5

    init(_ w: WeightStore, _ prefix: String, _ c: Int, type: String) {
        if type == "batch_norm" {
            self = .batch(weight: w(prefix + ".weight", [c]), bias: w(prefix + ".bias", [c]),
                          mean: w(prefix + ".running_mean", [c]), variance: w(prefix + ".running_var", [c]))
            w.tolerate(prefix + ".num_batches_tracked")
        } else {
            self = .rms(weight: w(prefix + ".weight", [c]), bias: w(prefix + ".bias", [c]))
        }
    }

    /// The norm of `x`, plus `residual` when given (one pass for RMSNorm).
    func callAsFunction(_ x: Tensor, residual: Tensor? = nil) -> Tensor {
        switch self {
        case .rms(let weight, let bias):
            return Ops.channelRMSNorm(x, weight: weight, bias: bias, eps: Self.eps, residual: residual)
        case .batch(let weight, let bias, let mean, let variance):
            // (x − mean) / sqrt(var + eps) · w + b  as one per-channel affine map.
            let (w, b, m, v) = (weight.scalars, bias.scalars, mean.scalars, variance.scalars)
            let scale = (0..<w.count).map { w[$0] / (v[$0] + Self.eps).squareRoot() }
            let shift = (0..<w.count).map { b[$0] - m[$0] * scale[$0] }
            var y = DCAEKernels.channelAffine(x, scale: scale, shift: shift)
            if let residual { Ops.addInPlace(&y, residual) }
            return y
        }
    }

    var bytes: Int {
        switch self {
        case .rms(let w, let b): return w.byteCount + b.byteCount
        case .batch(let w, let b, let m, let v): return w.byteCount + b.byteCount + m.byteCount + v.byteCount
        }
    }
}

/// diffusers `ResBlock`: conv1 (3×3) → act → conv2 (3×3, no bias) → norm, plus the input.
struct ResBlock: Sendable {
    var conv1: Conv2d, conv2: Conv2d, norm: ChannelNorm
    var nonlinearity: Activation

    init(_ w: WeightStore, _ prefix: String, _ c: Int, normType: String, actFn: String) {
        conv1 = Conv2d(w, prefix + ".conv1", c, c, kernel: 3)
        conv2 = Conv2d(w, prefix + ".conv2", c, c, kernel: 3, bias: false)
        norm = ChannelNorm(w, prefix + ".norm", c, type: normType)
        nonlinearity = Activation(actFn)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var h = SectionProfile.measure("dcae ResBlock convs") { conv1(x) }
        SectionProfile.measure("dcae activations") { nonlinearity.apply(&h) }
        let c = SectionProfile.measure("dcae ResBlock convs") { conv2(h) }
        return SectionProfile.measure("dcae norms + residuals") { norm(c, residual: x) }
    }

    /// Whether this block can run in `runChannelsLast` on `batch × height × width`: SiLU and RMSNorm (as SANA's
    /// DC-AE has), channels a multiple of 16, both convolutions on oneDNN channels-last at that size.
    func runsChannelsLast(batch: Int, height: Int, width: Int) -> Bool {
        guard case .silu = nonlinearity, case .rms = norm, let c1 = conv1.conv, let c2 = conv2.conv,
              c1.inChannels % 16 == 0 else { return false }
        return c1.runsChannelsLast(batch: batch, height: height, width: width)
            && c2.runsChannelsLast(batch: batch, height: height, width: width)
    }

    /// `blocks` (each `runsChannelsLast` for `x`) in sequence with the residual stream kept channels-last: one
    /// transpose in (with a bf16 copy for the first convolution), SiLU written as the second convolution's bf16
    /// input, the norm added to the stream with the next block's bf16 input in the same pass, one transpose out.
    /// A block's NCHW path changes layout four times (oneDNN's reorders around each convolution) and runs SiLU and
    /// the norm as passes of their own. The same arithmetic but for the order of the norm's sum of squares.
    static func runChannelsLast(_ blocks: ArraySlice<ResBlock>, _ x: Tensor, cancel: () throws -> Void) rethrows -> Tensor {
        let (stream, first) = SectionProfile.measure("dcae channels-last layout") { Ops.channelsLast(x, withBF16: true) }
        var input = first  // the bf16 copy the next conv1 reads
        for (i, block) in zip(0..., blocks) {
            if i > 0 { try cancel() }
            guard case .rms(let weight, let bias) = block.norm, let c1 = block.conv1.conv, let c2 = block.conv2.conv else {
                preconditionFailure("runChannelsLast: a block that cannot run channels-last")
            }
            let a: ChannelsLastActivation
            do {  // conv1's input and output are released once SiLU has read the output
                let h = SectionProfile.measure("dcae ResBlock convs") { Ops.conv2d(input!, c1) }
                input = nil
                a = SectionProfile.measure("dcae activations") { Ops.siluBF16(h) }
            }
            let y = SectionProfile.measure("dcae ResBlock convs") { Ops.conv2d(a, c2) }
            input = SectionProfile.measure("dcae norms + residuals") {
                Ops.addChannelRMSNorm(y, weight: weight, bias: bias, eps: ChannelNorm.eps, to: stream,
                                      bf16Copy: i < blocks.count - 1)
            }
        }
        return SectionProfile.measure("dcae channels-last layout") { Ops.nchw(stream) }
    }

    var bytes: Int { conv1.bytes + conv2.bytes + norm.bytes }
}

/// diffusers `SanaMultiscaleLinearAttention` with `residual_connection=True`, as the EfficientViT block uses it.
///
/// `to_q | to_k | to_v` are fused into one 1×1 conv whose output is the concatenation diffusers builds; the
/// attention kernel then regroups those channels in blocks of `3·head_dim` exactly as diffusers' reshape does
/// (sana-architecture.md §4.2: the names q/k/v do not mean what they say).
struct SanaMultiscaleLinearAttention: Sendable {
    var to_qkv: Conv2d          // [3·inner, C, 1, 1]
    var to_qkv_multiscale: [(proj_in: Conv2d, proj_out: Conv2d)]
    var to_out: Conv2d          // [C, inner·(1+K), 1, 1]
    var norm_out: ChannelNorm
    var headDim: Int

    init(_ w: WeightStore, _ prefix: String, _ c: Int, headDim: Int, kernelSizes: [Int], normType: String) {
        let heads = c / headDim, inner = heads * headDim
        let q = w.linearAsConv(prefix + ".to_q.weight", inner, c)
        let k = w.linearAsConv(prefix + ".to_k.weight", inner, c)
        let v = w.linearAsConv(prefix + ".to_v.weight", inner, c)
        to_qkv = Conv2d(w, weight: w.isCollecting ? q : Ops.concat([q, k, v], axis: 0))
        to_qkv_multiscale = kernelSizes.enumerated().map { i, kernel in
            let p = prefix + ".to_qkv_multiscale.\(i)"
            return (Conv2d(w, p + ".proj_in", 3 * inner, 3 * inner, kernel: kernel, groups: 3 * inner, bias: false),
                    Conv2d(w, p + ".proj_out", 3 * inner, 3 * inner, kernel: 1, groups: 3 * heads, bias: false))
        }
        to_out = Conv2d(w, weight: w.linearAsConv(prefix + ".to_out.weight", c, inner * (1 + kernelSizes.count)))
        norm_out = ChannelNorm(w, prefix + ".norm_out", c, type: normType)
        self.headDim = headDim
    }

    /// `limit`: bytes of q/k/v (all branches) to hold at once; above it the heads run in groups (see `attend`).
    func callAsFunction(_ x: Tensor, limit: Int = .max) -> Tensor {
        let (b, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
        let attended = attend(x, limit: limit)
        let groups = attended.shape[1]
        let projected = SectionProfile.measure("dcae attention 1×1 convs") {
            to_out(attended.reshaped([b, groups * headDim, h, wd]))
        }
        return SectionProfile.measure("dcae norms + residuals") { norm_out(projected, residual: x) }
    }

    /// The attention output `[B, G, d, H·W]` before `to_out`. Group g of every branch depends only on channels
    /// `3d·g ..< 3d·(g+1)` of `to_qkv`'s output (the multiscale convs are depthwise and grouped within those
    /// channels), so above `limit` the heads run a few at a time: the same arithmetic on a fraction of the q/k/v
    /// memory (6C channels at the image's 1/8 resolution: ~3 GB for a 4096² dc-ae-f32c32 decode).
    func attend(_ x: Tensor, limit: Int) -> Tensor {
        let (b, h, wd) = (x.shape[0], x.shape[2], x.shape[3])
        let width = 3 * headDim, heads = to_qkv.conv!.outChannels / width, branchCount = 1 + to_qkv_multiscale.count
        let bytesPerHead = b * width * h * wd * branchCount * 4 * 2  // q/k/v of every branch + kernel scratch
        let chunk = Swift.max(1, Swift.min(heads, limit / Swift.max(1, bytesPerHead)))
        guard chunk < heads else {
            let qkv = SectionProfile.measure("dcae attention 1×1 convs") { to_qkv(x) }
            let all = SectionProfile.measure("dcae attention multiscale convs") {
                var branches = [qkv]
                for (projIn, projOut) in to_qkv_multiscale { branches.append(projOut(projIn(qkv))) }
                return branches.count == 1 ? qkv : Ops.concat(branches, axis: 1)
            }
            return SectionProfile.measure("dcae attention core") {
                Ops.sanaMultiscaleAttention(qkv: all.reshaped([b, all.shape[1] / width, width, h * wd]), headDim: headDim)
            }
        }
        // Group by group, the prepared filters are sliced in fp32 (`unpacked()`: as the layer computes with them).
        let n = h * wd
        let qkvWeight = to_qkv.conv!.unpacked()
        let multiscale = to_qkv_multiscale.map { ($0.proj_in.conv!, $0.proj_in.conv!.unpacked(), $0.proj_out.conv!.unpacked()) }
        let out = Tensor(uninitialized: [b, heads * branchCount, headDim, n])
        for g0 in stride(from: 0, to: heads, by: chunk) {
            let g1 = Swift.min(heads, g0 + chunk), rows = (g0 * width)..<(g1 * width)
            let qkv = Ops.conv2d(x, weight: Ops.slice(qkvWeight, axis: 0, range: rows), bias: nil)
            var branches = [qkv]
            for (projIn, projInWeight, projOutWeight) in multiscale {
                let local = Ops.conv2d(qkv, weight: Ops.slice(projInWeight, axis: 0, range: rows), bias: nil,
                                       padding: projIn.padding.0, groups: rows.count)
                branches.append(Ops.conv2d(local, weight: Ops.slice(projOutWeight, axis: 0, range: rows), bias: nil,
                                           groups: rows.count / headDim))
            }
            for (i, branch) in branches.enumerated() {
                let a = Ops.sanaMultiscaleAttention(qkv: branch.reshaped([b, g1 - g0, width, n]), headDim: headDim)
                DCAEKernels.copyGroups(a, into: out, at: i * heads + g0)
            }
        }
        return out
    }

    var bytes: Int {
        to_qkv.bytes + to_out.bytes + norm_out.bytes
            + to_qkv_multiscale.reduce(0) { $0 + $1.proj_in.bytes + $1.proj_out.bytes }
    }
}

/// diffusers `GLUMBConv(C, C, expand_ratio 4, norm "rms_norm", residual)`.
struct GLUMBConv: Sendable {
    var conv_inverted: Conv2d, conv_depth: Conv2d, conv_point: Conv2d
    var norm: ChannelNorm

    init(_ w: WeightStore, _ prefix: String, _ c: Int) {
        let hidden = 4 * c
        conv_inverted = Conv2d(w, prefix + ".conv_inverted", c, 2 * hidden, kernel: 1)
        conv_depth = Conv2d(w, prefix + ".conv_depth", 2 * hidden, 2 * hidden, kernel: 3, groups: 2 * hidden)
        conv_point = Conv2d(w, prefix + ".conv_point", hidden, c, kernel: 1, bias: false)
        norm = ChannelNorm(w, prefix + ".norm", c, type: "rms_norm")
    }

    /// `limit`: bytes of hidden activations (8C channels, twice) to hold at once; above it the block runs in
    /// full-width row bands with a one-row margin (its only spatial op is the 3×3 depthwise conv), which gives the
    /// same result as the whole map.
    func callAsFunction(_ x: Tensor, limit: Int = .max) -> Tensor {
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let bytesPerRow = b * conv_inverted.conv!.outChannels * w * 4 * 2
        let rows = Swift.max(4, limit / Swift.max(1, bytesPerRow))
        guard rows < h else { return whole(x) }
        // Each band is a full pass (including the norm and residual, both per pixel) of its rows plus margins.
        return (try? TiledCoding.bands(x, unitsPerBand: rows, halo: 1, inRowsPerUnit: 1, outRowsPerUnit: 1,
                                       forward: { whole($0) })) ?? whole(x)
    }

    private func whole(_ x: Tensor) -> Tensor {
        var a = SectionProfile.measure("dcae GLUMBConv 1×1 convs") { conv_inverted(x) }
        SectionProfile.measure("dcae activations") { Ops.siluInPlace(&a) }
        let gated = SectionProfile.measure("dcae GLUMBConv depthwise + GLU") { DCAEKernels.gluSiLU(conv_depth(a)) }
        let p = SectionProfile.measure("dcae GLUMBConv 1×1 convs") { conv_point(gated) }
        return SectionProfile.measure("dcae norms + residuals") { norm(p, residual: x) }
    }
    var bytes: Int { conv_inverted.bytes + conv_depth.bytes + conv_point.bytes + norm.bytes }
}

/// diffusers `EfficientViTBlock`: multiscale linear attention, then GLUMBConv (both residual).
struct EfficientViTBlock: Sendable {
    var attn: SanaMultiscaleLinearAttention
    var conv_out: GLUMBConv

    init(_ w: WeightStore, _ prefix: String, _ c: Int, headDim: Int, kernelSizes: [Int], normType: String) {
        attn = SanaMultiscaleLinearAttention(w, prefix + ".attn", c, headDim: headDim, kernelSizes: kernelSizes,
                                             normType: normType)
        conv_out = GLUMBConv(w, prefix + ".conv_out", c)
    }

    /// `limit`: working memory (bytes) each half may hold beyond its input and output; see the halves.
    func callAsFunction(_ x: Tensor, limit: Int = .max) -> Tensor { conv_out(attn(x, limit: limit), limit: limit) }
    var bytes: Int { attn.bytes + conv_out.bytes }
}

/// diffusers `DCDownBlock2d`: halves H and W. "Conv" type: stride-2 3×3 conv; "pixel_unshuffle" type: 3×3 conv to
/// Cout/4 then pixel unshuffle. The shortcut adds the pixel-unshuffled input averaged over channel groups.
struct DCDownBlock2d: Sendable {
    var conv: Conv2d
    var downsample: Bool
    var shortcut: Bool
    var groupSize: Int

    init(_ w: WeightStore, _ prefix: String, _ cin: Int, _ cout: Int, downsample: Bool, shortcut: Bool) {
        conv = Conv2d(w, prefix + ".conv", cin, downsample ? cout / 4 : cout, kernel: 3, stride: downsample ? 1 : 2)
        self.downsample = downsample
        self.shortcut = shortcut
        groupSize = cin * 4 / cout
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var y = conv(x)
        if downsample { y = Ops.pixelUnshuffle(y, downscale: 2) }
        if shortcut { DCAEKernels.addUnshuffledGroupMean(&y, x, groupSize: groupSize) }
        return y
    }
    var bytes: Int { conv.bytes }
}

/// A 3×3 convolution (padding 1) of a nearest ×2 upsampled input, computed from the input itself.
///
/// Each output pixel's parity (row and column even or odd) sees the upsampled input's 3×3 window cover only
/// 2×2 input pixels, the filter's taps on the same input pixel summed: rows {0 | 1, 2} for even rows, {0, 1 | 2}
/// for odd ones (columns alike). The four parities' 2×2 filters run as one 2×2 convolution with 4·C outputs
/// (padding 1, so both offsets are there), interleaved after: 4/9 of the products of the convolution of the
/// upsampled input, and no 4× upsampled tensor. Summing taps before the products changes only fp32 rounding.
struct NearestUpsampleConv: Sendable {
    var conv: ConvWeight?

    init(_ w: WeightStore, _ prefix: String, _ cin: Int, _ cout: Int) {
        let weight = w(prefix + ".weight", [cout, cin, 3, 3])
        let bias = w(prefix + ".bias", [cout])
        guard !w.isCollecting else { return }
        let taps = [[[0], [1, 2]], [[0, 1], [2]]]  // [parity][2×2 tap] → the 3×3 filter rows (or columns) summed
        var parts = Tensor(zeros: [4 * cout, cin, 2, 2])
        let src = weight.storage.pointer + weight.offset
        parts.withUnsafeMutableBufferPointer { dst in
            for i in 0..<2 {
                for j in 0..<2 {
                    for o in 0..<cout {
                        for c in 0..<cin {
                            let from = src + (o * cin + c) * 9
                            let to = (((2 * i + j) * cout + o) * cin + c) * 4
                            for a in 0..<2 {
                                for b in 0..<2 {
                                    var sum: Float = 0
                                    for dy in taps[i][a] { for dx in taps[j][b] { sum += from[dy * 3 + dx] } }
                                    dst[to + a * 2 + b] = sum
                                }
                            }
                        }
                    }
                }
            }
        }
        let biases = Tensor(shape: [4 * cout], values: Array([[Float]](repeating: bias.scalars, count: 4).joined()))
        conv = ConvWeight(parts, bias: biases, stride: 1, padding: 1, precision: w.precision)
    }

    /// With `shortcutRepeats`, DCUpBlock2d's shortcut (`x`'s channels repeated that many times, pixel-shuffled)
    /// is added in the same pass.
    func callAsFunction(_ x: Tensor, shortcutRepeats: Int? = nil) -> Tensor {
        let parts = SectionProfile.measure("dcae up-block convs") { Ops.conv2d(x, conv!) }
        return SectionProfile.measure("dcae upsampling + shortcuts") {
            DCAEKernels.interleaveParities(parts, shortcut: shortcutRepeats == nil ? nil : x, repeats: shortcutRepeats ?? 1)
        }
    }
    var bytes: Int { conv?.byteCount ?? 0 }
}

/// diffusers `DCUpBlock2d`: doubles H and W. "interpolate" type: nearest ×2 then 3×3 conv (`NearestUpsampleConv`);
/// "pixel_shuffle" type: 3×3 conv to 4·Cout then pixel shuffle. The shortcut adds the input's channels repeated and
/// pixel-shuffled.
struct DCUpBlock2d: Sendable {
    enum Conv: Sendable {
        case upsampled(NearestUpsampleConv)
        case shuffled(Conv2d)
    }
    var conv: Conv
    var shortcut: Bool
    var repeats: Int
    var interpolate: Bool {
        if case .upsampled = conv { return true }
        return false
    }

    init(_ w: WeightStore, _ prefix: String, _ cin: Int, _ cout: Int, interpolate: Bool, shortcut: Bool) {
        conv = interpolate ? .upsampled(NearestUpsampleConv(w, prefix + ".conv", cin, cout))
                           : .shuffled(Conv2d(w, prefix + ".conv", cin, cout * 4, kernel: 3))
        self.shortcut = shortcut
        repeats = cout * 4 / cin
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        switch conv {
        case .upsampled(let conv):
            return conv(x, shortcutRepeats: shortcut ? repeats : nil)
        case .shuffled(let conv):
            let c = SectionProfile.measure("dcae up-block convs") { conv(x) }
            var y = SectionProfile.measure("dcae upsampling + shortcuts") { Ops.pixelShuffle(c, upscale: 2) }
            if shortcut { SectionProfile.measure("dcae upsampling + shortcuts") { DCAEKernels.addShuffledRepeat(&y, x, repeats: repeats) } }
            return y
        }
    }
    var bytes: Int {
        switch conv {
        case .upsampled(let c): return c.bytes
        case .shuffled(let c): return c.bytes
        }
    }
}

/// One entry of an encoder/decoder stage (an `nn.Sequential` element).
enum StageBlock: Sendable {
    case res(ResBlock)
    case efficientViT(EfficientViTBlock)
    case down(DCDownBlock2d)
    case up(DCUpBlock2d)

    static func make(_ w: WeightStore, _ prefix: String, type: String, _ c: Int, headDim: Int, kernelSizes: [Int],
                     normType: String, actFn: String) -> StageBlock {
        type == "EfficientViTBlock"
            ? .efficientViT(EfficientViTBlock(w, prefix, c, headDim: headDim, kernelSizes: kernelSizes, normType: normType))
            : .res(ResBlock(w, prefix, c, normType: normType, actFn: actFn))
    }

    /// `limit`: working memory for the blocks that can bound it (EfficientViT); the others ignore it.
    func callAsFunction(_ x: Tensor, limit: Int = .max) -> Tensor {
        switch self {
        case .res(let b): return b(x)
        case .efficientViT(let b): return b(x, limit: limit)
        case .down(let b): return b(x)
        case .up(let b): return b(x)
        }
    }

    /// `blocks` in order, `cancel` before each; runs of two or more ResBlocks go channels-last where they can
    /// (`ResBlock.runChannelsLast`).
    static func run(_ blocks: [StageBlock], _ x: Tensor, limit: Int = .max, cancel: () throws -> Void) rethrows -> Tensor {
        var h = x, i = 0
        while i < blocks.count {
            try cancel()
            var run: [ResBlock] = []
            while i + run.count < blocks.count, case .res(let b) = blocks[i + run.count], h.rank == 4,
                  b.runsChannelsLast(batch: h.shape[0], height: h.shape[2], width: h.shape[3]) { run.append(b) }
            if run.count >= 2 {
                h = try ResBlock.runChannelsLast(run[...], h, cancel: cancel)
                i += run.count
            } else {
                h = blocks[i](h, limit: limit)
                i += 1
            }
        }
        return h
    }

    var bytes: Int {
        switch self {
        case .res(let b): return b.bytes
        case .efficientViT(let b): return b.bytes
        case .down(let b): return b.bytes
        case .up(let b): return b.bytes
        }
    }
}
