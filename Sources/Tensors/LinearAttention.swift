// ReLU linear attention as SANA uses it, always in fp32:
//   transformer self-attention  — diffusers `SanaLinearAttnProcessor2_0`
//   DC-AE EfficientViT attention — diffusers `SanaMultiscaleLinearAttention.apply_linear_attention` /
//                                  `apply_quadratic_attention`
// Both pad V with a row of ones so one product yields numerator and denominator:
//   o_n = (Σ_m v_m relu(k_m)ᵀ) relu(q_n) / ((Σ_m relu(k_m))ᵀ relu(q_n) + eps).
// The elementwise passes (ReLU, padding, division) run over cores; the two small GEMMs per head go to
// `cblas_sgemm` one head at a time (OpenBLAS owns the cores during a GEMM).

import CBLAS

extension Ops {
    /// SANA ReLU linear attention (diffusers `SanaLinearAttnProcessor2_0` core).
    ///
    /// Layout `[B, H, N, D]` for `query`/`key` and `[B, H, N, Dv]` for `value` (or `[B, N, H, D]` with
    /// `layout: .tokensFirst`, i.e. the `[B, N, H·D]` projections reshaped with no permute). Returns
    /// `[B, H, N, Dv]` in the same layout. ReLU is applied to `query` and `key` here; `value` is used as is.
    /// Per head, with `Vp = [V | 1]`: `O = relu(Q) (relu(K)ᵀ Vp)`, then `out = O[:, :Dv] / (O[:, Dv] + eps)`,
    /// eps added to the denominator exactly where diffusers adds its `1e-15`. No mask (SANA ignores it).
    public static func reluLinearAttention(
        query: Tensor, key: Tensor, value: Tensor, eps: Float = 1e-15, layout: AttentionLayout = .headsFirst
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
        let dp = dv + 1

        // Contiguous per-head copies: relu(Q), relu(K) [N, D] and Vp = [V | 1] [N, Dv+1].
        // Scratch from the buffer pool (fresh multi-megabyte blocks would page-fault on every call).
        let scratch = TensorStorage(uninitializedCount: pairs * n * (2 * d + dp) + d * dp)
        defer { withExtendedLifetime(scratch) {} }
        let qr = scratch.pointer, kr = qr + pairs * n * d, vp = kr + pairs * n * d, kv = vp + pairs * n * dp
        let (qrS, krS, vpS) = (SendablePointer(qr), SendablePointer(kr), SendablePointer(vp))
        Parallel.forEachRange(pairs * n, minChunk: Swift.max(1, 4_096 / (2 * d + dp))) { rows in
            for r in rows {
                let pair = r / n, t = r % n
                let b = pair / heads, h = pair % heads
                let qs = q.head(b, h) + t * q.rowStride, ks = k.head(b, h) + t * k.rowStride
                let vs = v.head(b, h) + t * v.rowStride
                let qd = qrS.pointer + r * d, kd = krS.pointer + r * d, vd = vpS.pointer + r * dp
                for j in 0..<d {
                    qd[j] = qs[j] > 0 ? qs[j] : 0
                    kd[j] = ks[j] > 0 ? ks[j] : 0
                }
                for j in 0..<dv { vd[j] = vs[j] }
                vd[dv] = 1
            }
        }
        for pair in 0..<pairs {
            let kHead = kr + pair * n * d, qHead = qr + pair * n * d, vHead = vp + pair * n * dp
            // KV [D, Dv+1] = relu(K)ᵀ Vp
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(dp), Int32(n), 1,
                        kHead, Int32(d), vHead, Int32(dp), 0, kv, Int32(dp))
            // O [N, Dv+1] = relu(Q) KV, written over this head's Vp (no longer needed).
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(n), Int32(dp), Int32(d), 1,
                        qHead, Int32(d), kv, Int32(dp), 0, vHead, Int32(dp))
        }
        Parallel.forEachRange(pairs * n, minChunk: Swift.max(1, 8_192 / dp)) { rows in
            for r in rows {
                let pair = r / n, t = r % n
                let src = vpS.pointer + r * dp
                let dst = o.head(pair / heads, pair % heads) + t * o.rowStride
                let denominator = src[dv] + eps
                for j in 0..<dv { dst[j] = src[j] / denominator }
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
            let kv = UnsafeMutablePointer<Float>.allocate(capacity: dp * d)
            defer { kv.deallocate() }
            for pair in 0..<pairs {
                let vHead = vp + pair * dp * n
                // KV [d+1, d] = Vp relu(K)ᵀ ; O [d+1, N] = KV relu(Q), over this group's Vp.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(dp), Int32(d), Int32(n), 1,
                            vHead, Int32(n), kr + pair * d * n, Int32(n), 0, kv, Int32(d))
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(dp), Int32(n), Int32(d), 1,
                            kv, Int32(d), qr + pair * d * n, Int32(n), 0, vHead, Int32(n))
            }
            Parallel.forEachRange(pairs, minChunk: 1) { range in
                for pair in range {
                    let o = vpS.pointer + pair * dp * n
                    let den = o + d * n
                    let y = dst.pointer + pair * d * n
                    for c in 0..<d {
                        for j in 0..<n { y[c * n + j] = o[c * n + j] / (den[j] + eps) }
                    }
                }
            }
        } else {
            // Tiny maps (N ≤ d): quadratic attention normalised over keys.
            let s = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
            defer { s.deallocate() }
            for pair in 0..<pairs {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(n), Int32(n), Int32(d), 1,
                            kr + pair * d * n, Int32(n), qr + pair * d * n, Int32(n), 0, s, Int32(n))
                for qi in 0..<n {
                    var sum: Float = 0
                    for ki in 0..<n { sum += s[ki * n + qi] }
                    let den = sum + eps
                    for ki in 0..<n { s[ki * n + qi] /= den }
                }
                let vHead = src.pointer + (pair * 3 + 2) * d * n
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(d), Int32(n), Int32(n), 1,
                            vHead, Int32(n), s, Int32(n), 0, dst.pointer + pair * d * n, Int32(n))
            }
        }
        return out
    }
}
