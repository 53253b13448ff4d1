// ReLU linear attention as SANA uses it, always in fp32:
//   transformer self-attention  — diffusers `SanaLinearAttnProcessor2_0`
//   DC-AE EfficientViT attention — diffusers `SanaMultiscaleLinearAttention.apply_linear_attention` /
//                                  `apply_quadratic_attention`
// Both pad V with a row of ones so one product yields numerator and denominator:
//   o_n = (Σ_m v_m relu(k_m)ᵀ) relu(q_n) / ((Σ_m relu(k_m))ᵀ relu(q_n) + eps).
// Transformer path: heads run in parallel on our workers, each calling `cblas_sgemm` with pieces small enough
// that OpenBLAS runs them on the calling thread (the one exception to "never call BLAS inside a Parallel loop",
// see Ops+Matmul.swift: below OpenBLAS's multithreading threshold the calls do not touch its thread pool).
// DC-AE path: the elementwise passes run over cores and the GEMMs go to OpenBLAS one group at a time.

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

        // Heads run in parallel on our workers, each head start to finish in the worker's own scratch (relu(K),
        // Vp = [V | 1], relu(Q): ~0.9 MB at N = 1024, cache-resident): one read of q/k/v and one write of the
        // output. Each head's GEMMs are small (D × Dv+1 over N); handed to OpenBLAS whole they would wake its
        // threads for microseconds of work, so they are cut into pieces below its multithreading threshold
        // (m·n·k ≤ 262 144), which it runs on the calling thread.
        let perWorker = n * (2 * d + dp) + d * dp
        let workers = Swift.min(Parallel.workerCount, pairs)
        let scratch = TensorStorage(uninitializedCount: workers * perWorker)  // pool-backed when large
        defer { withExtendedLifetime(scratch) {} }
        let base = SendablePointer(scratch.pointer)
        let piece = Swift.max(1, 240_000 / (d * dp))
        Parallel.forEachRange(workers, minChunk: 1) { ws in
            for w in ws {
                let kr = base.pointer + w * perWorker, vp = kr + n * d, qr = vp + n * dp, kv = qr + n * d
                for pair in stride(from: w, to: pairs, by: workers) {
                    let b = pair / heads, h = pair % heads
                    let qs = q.head(b, h), ks = k.head(b, h), vs = v.head(b, h)
                    for t in 0..<n {
                        let kRow = ks + t * k.rowStride, kd = kr + t * d
                        for j in 0..<d { kd[j] = kRow[j] > 0 ? kRow[j] : 0 }
                        let vd = vp + t * dp
                        vd.update(from: vs + t * v.rowStride, count: dv)
                        vd[dv] = 1
                    }
                    // KV [D, Dv+1] = relu(K)ᵀ Vp, accumulated over pieces of the N rows.
                    var n0 = 0
                    while n0 < n {
                        let c = Swift.min(piece, n - n0)
                        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(d), Int32(dp), Int32(c), 1,
                                    kr + n0 * d, Int32(d), vp + n0 * dp, Int32(dp), n0 == 0 ? 0 : 1, kv, Int32(dp))
                        n0 += c
                    }
                    for t in 0..<n {
                        let qRow = qs + t * q.rowStride, qd = qr + t * d
                        for j in 0..<d { qd[j] = qRow[j] > 0 ? qRow[j] : 0 }
                    }
                    // O [N, Dv+1] = relu(Q) KV in row pieces, over Vp (no longer needed); then out = O / O[:, Dv].
                    var m0 = 0
                    while m0 < n {
                        let c = Swift.min(piece, n - m0)
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(c), Int32(dp), Int32(d), 1,
                                    qr + m0 * d, Int32(d), kv, Int32(dp), 0, vp + m0 * dp, Int32(dp))
                        m0 += c
                    }
                    let os = o.head(b, h)
                    for t in 0..<n {
                        let src = vp + t * dp, dst = os + t * o.rowStride
                        let denominator = src[dv] + eps
                        for j in 0..<dv { dst[j] = src[j] / denominator }
                    }
                }
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
