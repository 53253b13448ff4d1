// ReLU linear attention as SANA uses it, always in fp32:
//   transformer self-attention  — diffusers `SanaLinearAttnProcessor2_0`
//   DC-AE EfficientViT attention — diffusers `SanaMultiscaleLinearAttention.apply_linear_attention` /
//                                  `apply_quadratic_attention`
// Both compute
//   o_n = (Σ_m v_m relu(k_m)ᵀ) relu(q_n) / ((Σ_m relu(k_m))ᵀ relu(q_n) + eps)
// with heads (groups) in parallel on our workers. The transformer's heads (small: D = Dv = 32) run one pass each
// in CKernels' `sg_relu_linear_attention_head`, KV in L1 and the denominator a dot product with Σ relu(k); DC-AE's
// groups pad V with a row of ones so one single-threaded GEMM per group (Gemm.swift) yields numerator and
// denominator. Neither sums in PyTorch's order: results agree with diffusers to fp32 rounding, not bit for bit.

internal import CKernels

extension Ops {
    /// SANA ReLU linear attention (diffusers `SanaLinearAttnProcessor2_0` core).
    ///
    /// Layout `[B, H, N, D]` for `query`/`key` and `[B, H, N, Dv]` for `value` (or `[B, N, H, D]` with
    /// `layout: .tokensFirst`, i.e. the `[B, N, H·D]` projections reshaped with no permute). Returns
    /// `[B, H, N, Dv]` in the same layout. ReLU is applied to `query` and `key` here; `value` is used as is.
    /// Per head, what diffusers computes with `Vp = [V | 1]`: `O = relu(Q) (relu(K)ᵀ Vp)`, then
    /// `out = O[:, :Dv] / (O[:, Dv] + eps)`, eps added to the denominator exactly where diffusers adds its `1e-15`.
    /// No mask (SANA ignores it). Runs as one pass per head in C (`Kernels.selection.vectorISA`: AVX-512, AVX2 or
    /// portable), summing in its own order: fp32 rounding-level differences from the matmuls.
    public static func reluLinearAttention(
        query: Tensor, key: Tensor, value: Tensor, eps: Float = 1e-15, layout: AttentionLayout = .headsFirst
    ) -> Tensor {
        reluLinearAttention(query: query, key: key, value: value, eps: eps, layout: layout,
                            isa: Kernels.selection.vectorISA)
    }

    /// `reluLinearAttention` on the C kernel path `isa` (which this CPU must run): tests compare the paths.
    static func reluLinearAttention(
        query: Tensor, key: Tensor, value: Tensor, eps: Float, layout: AttentionLayout, isa: KernelSelection.VectorISA
    ) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && value.rank == 4,
                     "Ops.reluLinearAttention: q/k/v must be 4-D, got \(query.shape), \(key.shape), \(value.shape)")
        let q = HeadMatrix(query, layout: layout)
        let k = HeadMatrix(key, layout: layout)
        let v = HeadMatrix(value, layout: layout)
        let batch = query.shape[0], heads = q.heads, n = q.length, d = q.dim, dv = v.dim
        precondition(key.shape[0] == batch && value.shape[0] == batch && k.heads == heads && v.heads == heads
                     && k.length == n && v.length == n && k.dim == d,
                     "Ops.reluLinearAttention: incompatible q \(query.shape), k \(key.shape), v \(value.shape) (\(layout))")
        let outShape = layout == .headsFirst ? [batch, heads, n, dv] : [batch, n, heads, dv]
        let out = Tensor(uninitialized: outShape)
        guard out.count > 0 else { return out }
        let o = HeadMatrix(out, layout: layout)
        let pairs = batch * heads
        let c = isa.c
        // One pass per (batch, head) in CKernels (linear_attention.c): KV and ksum in an L1 workspace, q/k/v read
        // in place with their row strides, the output written once. ~64 kFLOP per token-head, so one pair per chunk.
        Parallel.forEachRange(pairs, minChunk: 1) { range in
            for pair in range {
                let b = pair / heads, h = pair % heads
                sg_relu_linear_attention_head(q.head(b, h), q.rowStride, k.head(b, h), k.rowStride, v.head(b, h),
                                              v.rowStride, n, d, dv, eps, o.head(b, h), o.rowStride, c)
            }
        }
        return out
    }

    /// The attention core of DC-AE's EfficientViT block (diffusers `SanaMultiscaleAttnProcessor2_0` after the
    /// reshape): `qkv` is `[B, G, 3·d, N]` — each group holds q, k, v as consecutive `d`-row blocks over the
    /// `N = H·W` pixels — and the result is `[B, G, d, N]` (reshape to `[B, G·d, H, W]`).
    ///
    /// Like diffusers, `N > headDim` (diffusers compares H·W with `attention_head_dim`) uses linear attention
    /// `O = ([V; 1] relu(K)ᵀ) relu(Q)`, `out = O[:d] / (O[d] + eps)`; otherwise the quadratic form
    /// `S = relu(K)ᵀ relu(Q)`, `S /= (Σ_keys S + eps)`, `out = V S`. `headDim` is d.
    public static func sanaMultiscaleAttention(qkv: Tensor, headDim d: Int, eps: Float = 1e-15) -> Tensor {
        precondition(qkv.rank == 4 && d > 0 && qkv.shape[2] == 3 * d,
                     "Ops.sanaMultiscaleAttention: qkv must be [B, G, 3·\(d), N], got \(qkv.shape)")
        let batch = qkv.shape[0], groups = qkv.shape[1], n = qkv.shape[3]
        let out = Tensor(uninitialized: [batch, groups, d, n])
        guard out.count > 0 else { return out }
        let pairs = batch * groups
        let dp = d + 1
        let src = SendablePointer(qkv.storage.pointer + qkv.offset)
        let dst = SendablePointer(out.storage.pointer)
        // relu(Q), relu(K) [d, N] per group, and (linear path) Vp = [V; 1] [d+1, N].
        let linear = n > d
        let scratch = TensorStorage(uninitializedCount: pairs * d * n * 2 + (linear ? pairs * dp * n : 0))
        defer { withExtendedLifetime(scratch) {} }
        let qr = scratch.pointer, kr = qr + pairs * d * n, vp = kr + pairs * d * n
        let (qrS, krS, vpS) = (SendablePointer(qr), SendablePointer(kr), SendablePointer(vp))
        Parallel.forEachRange(pairs * d, minChunk: Swift.max(1, 8_192 / n)) { rows in
            for r in rows {
                let pair = r / d, c = r % d
                let qs = src.pointer + (pair * 3 * d + c) * n
                let ks = qs + d * n
                let qd = qrS.pointer + r * n, kd = krS.pointer + r * n
                for j in 0..<n {
                    qd[j] = qs[j] > 0 ? qs[j] : 0
                    kd[j] = ks[j] > 0 ? ks[j] : 0
                }
                if linear {
                    (vpS.pointer + (pair * dp + c) * n).update(from: ks + d * n, count: n)
                    if c == d - 1 { (vpS.pointer + (pair * dp + d) * n).update(repeating: 1, count: n) }
                }
            }
        }
        if linear {
            Parallel.forEachRange(pairs, minChunk: 1) { range in
                let kv = UnsafeMutablePointer<Float>.allocate(capacity: dp * d)
                defer { kv.deallocate() }
                for pair in range {
                    let vHead = vpS.pointer + pair * dp * n
                    // KV [d+1, d] = Vp relu(K)ᵀ ; O [d+1, N] = KV relu(Q), over this group's Vp.
                    Ops.sgemm(transposeA: false, transposeB: true, m: dp, n: d, k: n, a: vHead, lda: n,
                              b: krS.pointer + pair * d * n, ldb: n, beta: 0, c: kv, ldc: d)
                    Ops.sgemm(transposeA: false, transposeB: false, m: dp, n: n, k: d, a: kv, lda: d,
                              b: qrS.pointer + pair * d * n, ldb: n, beta: 0, c: vHead, ldc: n)
                    let o = vHead
                    let den = o + d * n
                    let y = dst.pointer + pair * d * n
                    for c in 0..<d {
                        for j in 0..<n { y[c * n + j] = o[c * n + j] / (den[j] + eps) }
                    }
                }
            }
        } else {
            // Tiny maps (N ≤ d): quadratic attention normalised over keys.
            Parallel.forEachRange(pairs, minChunk: 1) { range in
                let s = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
                defer { s.deallocate() }
                for pair in range {
                    Ops.sgemm(transposeA: true, transposeB: false, m: n, n: n, k: d, a: krS.pointer + pair * d * n,
                              lda: n, b: qrS.pointer + pair * d * n, ldb: n, beta: 0, c: s, ldc: n)
                    for qi in 0..<n {
                        var sum: Float = 0
                        for ki in 0..<n { sum += s[ki * n + qi] }
                        let den = sum + eps
                        for ki in 0..<n { s[ki * n + qi] /= den }
                    }
                    let vHead = src.pointer + (pair * 3 + 2) * d * n
                    Ops.sgemm(transposeA: false, transposeB: false, m: d, n: n, k: n, a: vHead, lda: n, b: s, ldb: n,
                              beta: 0, c: dst.pointer + pair * d * n, ldc: n)
                }
            }
        }
        return out
    }
}
