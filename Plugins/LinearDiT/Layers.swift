import Foundation
import SanaGraphKit
import Tensors

// Small layers whose property names mirror diffusers' module names.

/// Replaces a linear layer's prepared weights, given the module's diffusers name (`transformer_blocks.0.attn1.to_q`,
/// `transformer_blocks.0.ff.conv_inverted`) and its current weights; returns them unchanged when not patched.
typealias LinearPatch = (_ module: String, _ weight: LinearWeight) throws -> LinearWeight

/// `nn.Linear` (weights prepared for the CPU's kernels at the model's precision).
struct Linear: Sendable {
    var weight: LinearWeight
    var bias: Tensor?
    func callAsFunction(_ x: Tensor) -> Tensor { Ops.linear(x, weight: weight, bias: bias) }
    var bytes: Int { weight.byteCount + (bias?.byteCount ?? 0) }

    /// Declares `prefix.weight [out, in]` and, with `bias`, `prefix.bias [out]`.
    init(_ w: WeightStore, _ prefix: String, out: Int, in inFeatures: Int, bias: Bool = true) {
        weight = w.linear(prefix + ".weight", [out, inFeatures])
        self.bias = bias ? w(prefix + ".bias", [out]) : nil
    }

    func patched(_ module: String, _ patch: LinearPatch) rethrows -> Linear {
        var l = self
        l.weight = try patch(module, weight)
        return l
    }
}

/// diffusers `TimestepEmbedding`: linear_1 → SiLU → linear_2.
struct TimestepEmbedding: Sendable {
    var linear_1: Linear
    var linear_2: Linear
    /// `[dim, 256]` then `[dim, dim]`.
    init(_ w: WeightStore, _ prefix: String, dim: Int) {
        linear_1 = Linear(w, prefix + ".linear_1", out: dim, in: 256)
        linear_2 = Linear(w, prefix + ".linear_2", out: dim, in: dim)
    }
    func callAsFunction(_ x: Tensor) -> Tensor { linear_2(Ops.silu(linear_1(x))) }
    var bytes: Int { linear_1.bytes + linear_2.bytes }

    func patched(_ prefix: String, _ patch: LinearPatch) rethrows -> TimestepEmbedding {
        var e = self
        e.linear_1 = try linear_1.patched(prefix + ".linear_1", patch)
        e.linear_2 = try linear_2.patched(prefix + ".linear_2", patch)
        return e
    }

    /// diffusers `Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0)` in fp32: `[cos(t·f), sin(t·f)]`
    /// with `f_k = exp(−ln(10000)·k/128)`.
    static func sinusoid(_ t: [Float], channels: Int = 256) -> Tensor {
        let half = channels / 2
        let exponentScale = -Float(log(10_000.0))
        let freqs = (0..<half).map { k in Foundation.exp(exponentScale * Float(k) / Float(half)) }
        var out = [Float](repeating: 0, count: t.count * channels)
        for (b, tv) in t.enumerated() {
            for k in 0..<half {
                let a = tv * freqs[k]
                out[b * channels + k] = Foundation.cos(a)
                out[b * channels + half + k] = Foundation.sin(a)
            }
        }
        return Tensor(shape: [t.count, channels], values: out)
    }
}

/// diffusers `PixArtAlphaTextProjection` (linear_1 → GELU(tanh) → linear_2).
struct PixArtAlphaTextProjection: Sendable {
    var linear_1: Linear
    var linear_2: Linear
    init(_ w: WeightStore, _ prefix: String, in captionChannels: Int, dim: Int) {
        linear_1 = Linear(w, prefix + ".linear_1", out: dim, in: captionChannels)
        linear_2 = Linear(w, prefix + ".linear_2", out: dim, in: dim)
    }
    func callAsFunction(_ x: Tensor) -> Tensor { linear_2(Ops.gelu(linear_1(x), approximate: .tanh)) }
    var bytes: Int { linear_1.bytes + linear_2.bytes }

    func patched(_ prefix: String, _ patch: LinearPatch) rethrows -> PixArtAlphaTextProjection {
        var e = self
        e.linear_1 = try linear_1.patched(prefix + ".linear_1", patch)
        e.linear_2 = try linear_2.patched(prefix + ".linear_2", patch)
        return e
    }
}

/// diffusers `GLUMBConv` as the Sana block uses it (no norm, no residual): 1×1 conv → SiLU → depthwise 3×3 →
/// GLU (`a · silu(gate)`) → 1×1 conv, run on tokens-first `[B, N, D]` (see `tokensFirst`).
struct GLUMBConv: Sendable {
    /// The 1×1 convs' weights as linears over tokens: `[2H, D]` and `[D, H]`.
    var conv_inverted: LinearWeight, conv_inverted_bias: Tensor
    var conv_depth_bias: Tensor
    var conv_point: LinearWeight

    /// `conv_depth.weight` tap-major `[9, 2H]` for the channels-last kernel (prepared once at load).
    var depthTaps: Tensor

    /// `dim` D, `hidden` H.
    init(_ w: WeightStore, _ prefix: String, dim d: Int, hidden h: Int) {
        conv_inverted = w.linear(prefix + ".conv_inverted.weight", [2 * h, d, 1, 1])
        conv_inverted_bias = w(prefix + ".conv_inverted.bias", [2 * h])
        conv_depth_bias = w(prefix + ".conv_depth.bias", [2 * h])
        conv_point = w.linear(prefix + ".conv_point.weight", [d, h, 1, 1])
        let depth = w(prefix + ".conv_depth.weight", [2 * h, 1, 3, 3])  // diffusers fixes kernel_size 3
        depthTaps = w.isCollecting ? depth : Ops.depthwiseTapsChannelsLast(depth)
    }

    /// The same function on tokens `[B, N, D]` of an `height × width` grid, without leaving the tokens-first
    /// layout: the 1×1 convs are linears over tokens, the depthwise conv and GLU gate one fused pass.
    func tokensFirst(_ x: Tensor, height: Int, width: Int) -> Tensor {
        let gated: Tensor
        if conv_inverted.mode == .amxTiles && Kernels.selection.fusedGLUMBConv {  // one pass, the product kept in L2
            gated = SectionProfile.measure("FFN conv_inverted + SiLU + depthwise + GLU") {
                Ops.linearSiLUDepthwiseGLU(x, weight: conv_inverted, bias: conv_inverted_bias, height: height,
                                           width: width, taps: depthTaps, depthBias: conv_depth_bias)
            }
        } else {
            let a = SectionProfile.measure("FFN conv_inverted + SiLU") {
                Ops.linear(x, weight: conv_inverted, bias: conv_inverted_bias, activation: .silu)
            }
            gated = SectionProfile.measure("FFN depthwise + GLU") {
                Ops.depthwiseConv3x3GLUChannelsLast(a, height: height, width: width, taps: depthTaps, bias: conv_depth_bias)
            }
        }
        return SectionProfile.measure("FFN conv_point") { Ops.linear(gated, weight: conv_point, bias: nil) }
    }

    /// The 1×1 convs are LoRA targets (PEFT's Conv2d LoRA, rank × in × 1 × 1); the depthwise conv is not.
    func patched(_ prefix: String, _ patch: LinearPatch) rethrows -> GLUMBConv {
        var f = self
        f.conv_inverted = try patch(prefix + ".conv_inverted", conv_inverted)
        f.conv_point = try patch(prefix + ".conv_point", conv_point)
        return f
    }

    var bytes: Int {
        conv_inverted.byteCount + conv_point.byteCount
            + [conv_inverted_bias, conv_depth_bias, depthTaps].reduce(0) { $0 + $1.byteCount }
    }
}

/// An `Attention` module's projections (and q/k RMSNorm across heads when `qk_norm` is set).
struct AttentionProjections: Sendable {
    var to_q: Linear, to_k: Linear, to_v: Linear, to_out: Linear
    var norm_q: Tensor?, norm_k: Tensor?
    var heads: Int

    /// Queries from `dim`-wide tokens, keys and values from `kvDim`-wide ones, `inner` = heads × head dim;
    /// `qkvBias`: whether q/k/v have biases (to_out always has one); `qkNorm`: RMSNorm weights on q and k.
    init(_ w: WeightStore, _ prefix: String, heads: Int, dim: Int, kvDim: Int, inner: Int, qkvBias: Bool,
         qkNorm: Bool) {
        to_q = Linear(w, prefix + ".to_q", out: inner, in: dim, bias: qkvBias)
        to_k = Linear(w, prefix + ".to_k", out: inner, in: kvDim, bias: qkvBias)
        to_v = Linear(w, prefix + ".to_v", out: inner, in: kvDim, bias: qkvBias)
        to_out = Linear(w, prefix + ".to_out.0", out: dim, in: inner)
        norm_q = qkNorm ? w(prefix + ".norm_q.weight", [inner]) : nil
        norm_k = qkNorm ? w(prefix + ".norm_k.weight", [inner]) : nil
        self.heads = heads
    }

    func patched(_ prefix: String, _ patch: LinearPatch) rethrows -> AttentionProjections {
        var a = self
        a.to_q = try to_q.patched(prefix + ".to_q", patch)
        a.to_k = try to_k.patched(prefix + ".to_k", patch)
        a.to_v = try to_v.patched(prefix + ".to_v", patch)
        a.to_out = try to_out.patched(prefix + ".to_out.0", patch)
        return a
    }

    func query(_ x: Tensor) -> Tensor {
        let q = to_q(x)
        return norm_q.map { Ops.rmsNorm(q, weight: $0, eps: 1e-5) } ?? q
    }
    func key(_ x: Tensor) -> Tensor {
        let k = to_k(x)
        return norm_k.map { Ops.rmsNorm(k, weight: $0, eps: 1e-5) } ?? k
    }
    var bytes: Int {
        to_q.bytes + to_k.bytes + to_v.bytes + to_out.bytes + (norm_q?.byteCount ?? 0) + (norm_k?.byteCount ?? 0)
    }
}

/// `[B, N, H·d]` → `[B, N, H, d]` (a free reshape: attention kernels take this tokens-first layout).
func splitHeads(_ x: Tensor, _ heads: Int) -> Tensor {
    x.reshaped([x.shape[0], x.shape[1], heads, x.shape[2] / heads])
}

/// 2-D sin-cos positional embedding `[h·w, D]` (diffusers `get_2d_sincos_pos_embed`, column coordinate first):
/// grid coordinates in fp32 as torch computes them, the sinusoids in fp64, the result fp32.
func sincosPositionEmbedding(dim: Int, height h: Int, width w: Int, baseSize: Int, interpolationScale s: Double) -> Tensor {
    let quarter = dim / 4
    let omega = (0..<quarter).map { k in 1.0 / Foundation.pow(10_000.0, Double(k) / Double(quarter)) }
    let gh = (0..<h).map { i in Double(Float(i) / Float(Double(h) / Double(baseSize)) / Float(s)) }
    let gw = (0..<w).map { j in Double(Float(j) / Float(Double(w) / Double(baseSize)) / Float(s)) }
    var out = [Float](repeating: 0, count: h * w * dim)
    for i in 0..<h {
        for j in 0..<w {
            let row = (i * w + j) * dim
            for k in 0..<quarter {
                out[row + k] = Float(Foundation.sin(gw[j] * omega[k]))
                out[row + quarter + k] = Float(Foundation.cos(gw[j] * omega[k]))
                out[row + 2 * quarter + k] = Float(Foundation.sin(gh[i] * omega[k]))
                out[row + 3 * quarter + k] = Float(Foundation.cos(gh[i] * omega[k]))
            }
        }
    }
    return Tensor(shape: [h * w, dim], values: out)
}
