// Normalisation layers: LayerNorm, the three RMSNorm flavours of sana-architecture.md (§3.3.9 diffusers,
// §2.3 Gemma, §4.2 channel RMSNorm of DC-AE) and GroupNorm. Statistics are accumulated in fp32 over
// 16 lanes (a strict scalar sum cannot vectorise); variance is two-pass, as in PyTorch, for accuracy.

internal import CKernels

extension Ops {
    /// `torch.nn.functional.layer_norm` over the last dimension: `(x − mean) / √(var + eps) · weight + bias`
    /// with the biased variance. `weight` and `bias` (`[D]`) are each optional.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        let d = lastDimension(x, "layerNorm")
        checkAffine(weight, d, "layerNorm", "weight")
        checkAffine(bias, d, "layerNorm", "bias")
        let out = Tensor(uninitialized: x.shape)
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        let pw = weight.map { SendablePointer($0.storage.pointer + $0.offset) }
        let pb = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
        Parallel.forEachRange(x.count / d, minChunk: rowChunk(d)) { rows in
            for r in rows {
                let src = px.pointer + r * d, dst = po.pointer + r * d
                let mean = ReductionMath.sum(src, d) / Float(d)
                let variance = ReductionMath.sumOfSquaredDeviations(src, d, from: mean) / Float(d)
                let rstd = 1 / (variance + eps).squareRoot()
                switch (pw, pb) {
                case let (w?, b?): for i in 0..<d { dst[i] = (src[i] - mean) * rstd * w.pointer[i] + b.pointer[i] }
                case let (w?, nil): for i in 0..<d { dst[i] = (src[i] - mean) * rstd * w.pointer[i] }
                case let (nil, b?): for i in 0..<d { dst[i] = (src[i] - mean) * rstd + b.pointer[i] }
                case (nil, nil): for i in 0..<d { dst[i] = (src[i] - mean) * rstd }
                }
            }
        }
        return out
    }

    /// diffusers `RMSNorm` over the last dimension: `x · rsqrt(mean(x²) + eps) · weight` (no `1 +`; the
    /// weight is optional for `elementwise_affine = False`).
    public static func rmsNorm(_ x: Tensor, weight: Tensor?, eps: Float) -> Tensor {
        let d = lastDimension(x, "rmsNorm")
        checkAffine(weight, d, "rmsNorm", "weight")
        return rmsNormRows(x, d: d, gain: weight.map { $0.scalars }, eps: eps)
    }

    /// Gemma-2 RMSNorm over the last dimension: `x · rsqrt(mean(x²) + eps) · (1 + weight)`, all in fp32
    /// (the checkpoint stores the offset from 1).
    public static func gemmaRMSNorm(_ x: Tensor, weight: Tensor, eps: Float) -> Tensor {
        let d = lastDimension(x, "gemmaRMSNorm")
        checkAffine(weight, d, "gemmaRMSNorm", "weight")
        return rmsNormRows(x, d: d, gain: weight.scalars.map { 1 + $0 }, eps: eps)
    }

    /// DC-AE channel RMSNorm (`RMSNorm2d`) on `[N, C, *spatial]`: every pixel is normalised over its `C`
    /// channels, `x · rsqrt(mean_c(x²) + eps)`, then `· weight[c] + bias[c]`, then `+ residual` (same shape as
    /// x) when given: the blocks' norm and skip connection in one pass.
    public static func channelRMSNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float,
                                      residual: Tensor? = nil) -> Tensor {
        precondition(x.rank >= 2, "channelRMSNorm: expected [N, C, ...], got \(x.shape)")
        let n = x.shape[0], c = x.shape[1]
        let plane = x.shape.dropFirst(2).reduce(1, *)
        checkAffine(weight, c, "channelRMSNorm", "weight")
        checkAffine(bias, c, "channelRMSNorm", "bias")
        if let residual { precondition(residual.shape == x.shape, "channelRMSNorm: residual \(residual.shape) must match x \(x.shape)") }
        let out = Tensor(uninitialized: x.shape)
        guard out.count > 0 else { return out }
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        let pr = residual.map { SendablePointer($0.storage.pointer + $0.offset) }
        let isa = Kernels.selection.vectorISA
        if isa != .portable {
            // CKernels' AVX-512 / AVX2 code (this Swift is SSE2 on baseline x86-64), 512 pixels per item.
            let pw = weight.map { SendablePointer($0.storage.pointer + $0.offset) }
            let pb = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
            let tiles = (plane + 511) / 512
            Parallel.forEachRange(n * tiles, minChunk: Swift.max(1, 16_384 / (512 * c))) { items in
                for item in items {
                    let base = (item / tiles) * c * plane, p0 = (item % tiles) * 512
                    sg_channel_rms_norm(px.pointer + base, pr.map { $0.pointer + base }, pw?.pointer, pb?.pointer, c, plane,
                                        p0, Swift.min(plane, p0 + 512), eps, po.pointer + base, isa.c)
                }
            }
            withExtendedLifetime((weight, bias)) {}
            return out
        }
        let w = weight?.scalars, b = bias?.scalars
        // Pixels are processed in tiles so the per-pixel sums stay in L1 while the channels stream past.
        let tile = 512
        let tilesPerImage = (plane + tile - 1) / tile
        Parallel.forEachRange(n * tilesPerImage, minChunk: Swift.max(1, 16_384 / (tile * c))) { items in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: tile) { acc in
                for item in items {
                    let image = item / tilesPerImage
                    let p0 = (item % tilesPerImage) * tile
                    let len = Swift.min(tile, plane - p0)
                    let base = image * c * plane + p0
                    for j in 0..<len { acc[j] = 0 }
                    for ch in 0..<c {
                        let src = px.pointer + base + ch * plane
                        for j in 0..<len { acc[j] += src[j] * src[j] }
                    }
                    let invC = 1 / Float(c)
                    for j in 0..<len { acc[j] = 1 / (acc[j] * invC + eps).squareRoot() }
                    for ch in 0..<c {
                        let src = px.pointer + base + ch * plane, dst = po.pointer + base + ch * plane
                        let g = w?[ch] ?? 1, s = b?[ch] ?? 0
                        for j in 0..<len { dst[j] = src[j] * acc[j] * g + s }
                        if let pr { for j in 0..<len { dst[j] += pr.pointer[base + ch * plane + j] } }
                    }
                }
            }
        }
        return out
    }

    /// `torch.nn.functional.group_norm` on `[N, C, *spatial]`: channels split into `groups` consecutive
    /// groups, each normalised over its channels and pixels, then `· weight[c] + bias[c]`.
    public static func groupNorm(_ x: Tensor, groups: Int, weight: Tensor?, bias: Tensor?, eps: Float) -> Tensor {
        precondition(x.rank >= 2, "groupNorm: expected [N, C, ...], got \(x.shape)")
        let n = x.shape[0], c = x.shape[1]
        precondition(groups > 0 && c % groups == 0, "groupNorm: \(c) channels do not split into \(groups) groups")
        checkAffine(weight, c, "groupNorm", "weight")
        checkAffine(bias, c, "groupNorm", "bias")
        let plane = x.shape.dropFirst(2).reduce(1, *)
        let channelsPerGroup = c / groups
        let groupSize = channelsPerGroup * plane
        let out = Tensor(uninitialized: x.shape)
        guard out.count > 0 else { return out }
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        let w = weight?.scalars, b = bias?.scalars
        Parallel.forEachRange(n * groups, minChunk: Swift.max(1, 16_384 / groupSize)) { items in
            for item in items {
                let base = item * groupSize
                let src = px.pointer + base
                let mean = ReductionMath.sum(src, groupSize) / Float(groupSize)
                let variance = ReductionMath.sumOfSquaredDeviations(src, groupSize, from: mean) / Float(groupSize)
                let rstd = 1 / (variance + eps).squareRoot()
                let firstChannel = (item % groups) * channelsPerGroup
                for k in 0..<channelsPerGroup {
                    // y = (x − mean)·rstd·w + b folded into one multiply-add per element.
                    let scale = rstd * (w?[firstChannel + k] ?? 1)
                    let shift = (b?[firstChannel + k] ?? 0) - mean * scale
                    let s = src + k * plane, dst = po.pointer + base + k * plane
                    for j in 0..<plane { dst[j] = s[j] * scale + shift }
                }
            }
        }
        return out
    }

    // MARK: Implementation

    /// `x · rsqrt(mean(x²) + eps) · gain` over rows of length `d` (`gain` nil means 1).
    private static func rmsNormRows(_ x: Tensor, d: Int, gain: [Float]?, eps: Float) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(x.count / d, minChunk: rowChunk(d)) { rows in
            for r in rows {
                let src = px.pointer + r * d, dst = po.pointer + r * d
                let rs = 1 / (ReductionMath.sumOfSquares(src, d) / Float(d) + eps).squareRoot()
                if let gain {
                    gain.withUnsafeBufferPointer { g in for i in 0..<d { dst[i] = src[i] * rs * g[i] } }
                } else {
                    for i in 0..<d { dst[i] = src[i] * rs }
                }
            }
        }
        return out
    }

    private static func lastDimension(_ x: Tensor, _ kernel: String) -> Int {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] > 0, "\(kernel): expected a non-empty last dimension, got \(x.shape)")
        return x.shape[x.rank - 1]
    }

    private static func checkAffine(_ t: Tensor?, _ size: Int, _ kernel: String, _ name: String) {
        guard let t else { return }
        precondition(t.count == size, "\(kernel): \(name) \(t.shape) does not match \(size) features")
    }

    /// Rows per parallel chunk so a chunk holds about 16 Ki elements.
    static func rowChunk(_ d: Int) -> Int { Swift.max(1, 16_384 / d) }
}

/// Vectorised fp32 reductions (16 lanes of partial sums, then one horizontal sum).
enum ReductionMath {
    typealias V = SIMD16<Float>

    /// Σ p[i].
    @inline(__always)
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(), i = 0
        let raw = UnsafeRawPointer(p)
        while i + 16 <= n { acc += raw.loadUnaligned(fromByteOffset: i * 4, as: V.self); i += 16 }
        var s = acc.sum()
        while i < n { s += p[i]; i += 1 }
        return s
    }

    /// Σ p[i]².
    @inline(__always)
    static func sumOfSquares(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = V(), i = 0
        let raw = UnsafeRawPointer(p)
        while i + 16 <= n { let v = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self); acc += v * v; i += 16 }
        var s = acc.sum()
        while i < n { s += p[i] * p[i]; i += 1 }
        return s
    }

    /// Σ (p[i] − mean)².
    @inline(__always)
    static func sumOfSquaredDeviations(_ p: UnsafePointer<Float>, _ n: Int, from mean: Float) -> Float {
        var acc = V(), i = 0
        let raw = UnsafeRawPointer(p)
        let m = V(repeating: mean)
        while i + 16 <= n { let v = raw.loadUnaligned(fromByteOffset: i * 4, as: V.self) - m; acc += v * v; i += 16 }
        var s = acc.sum()
        while i < n { let v = p[i] - mean; s += v * v; i += 1 }
        return s
    }
}
