// Scaled dot-product attention (softmax attention) with an additive mask, GQA and Gemma-2 logit softcap.
//
// Per (batch, head): S = scale·Q Kᵀ and O = P V go through `cblas_sgemm`, called one at a time because
// OpenBLAS already uses every core; the softcap / mask / softmax pass between them is split over cores.
// Several heads are batched per pass (scores buffer capped at `attentionScoreBudget` floats) so the parallel pass
// runs once per group rather than once per head.

import CBLAS
import Foundation

/// Memory layout of the attention operands.
public enum AttentionLayout: Sendable, Equatable {
    /// `[B, H, L, D]` (PyTorch's SDPA layout).
    case headsFirst
    /// `[B, L, H, D]`, i.e. a `[B, L, H·D]` projection output reshaped without a permute.
    case tokensFirst
}

/// Where one head's `[L, D]` matrix lives inside a 4-D attention operand.
struct HeadMatrix: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let heads: Int, length: Int, dim: Int
    let layout: AttentionLayout

    init(_ t: Tensor, layout: AttentionLayout) {
        base = t.storage.pointer + t.offset
        self.layout = layout
        switch layout {
        case .headsFirst: heads = t.shape[1]; length = t.shape[2]
        case .tokensFirst: heads = t.shape[2]; length = t.shape[1]
        }
        dim = t.shape[3]
    }

    /// Pointer to row 0 of head `h` in batch `b`.
    func head(_ b: Int, _ h: Int) -> UnsafeMutablePointer<Float> {
        switch layout {
        case .headsFirst: return base + (b * heads + h) * length * dim
        case .tokensFirst: return base + b * length * heads * dim + h * dim
        }
    }

    /// Distance between consecutive rows (tokens) of one head.
    var rowStride: Int { layout == .headsFirst ? dim : heads * dim }
}

extension Ops {
    /// Largest scores buffer (floats) one group of heads may use: 1 Mi floats = 4 MiB, which stays in cache.
    static let attentionScoreBudget = 1 << 20

    /// Softmax attention: `softmax(scale·Q Kᵀ [softcapped] + mask) V`, like
    /// `torch.nn.functional.scaled_dot_product_attention` and transformers' Gemma-2 eager attention.
    ///
    /// - Parameters:
    ///   - query: `[B, H, Lq, D]` (or `[B, Lq, H, D]` with `layout: .tokensFirst`).
    ///   - key: `[B, Hkv, Lk, D]`; `H` must be a multiple of `Hkv` (grouped-query attention: query head `h`
    ///     reads key/value head `h / (H / Hkv)`, as `repeat_interleave` on the head axis).
    ///   - value: `[B, Hkv, Lk, Dv]`.
    ///   - mask: additive mask broadcastable to `[B, H, Lq, Lk]` (e.g. `[B, 1, 1, Lk]` key padding with
    ///     -10000, or `[B, 1, Lq, Lk]` causal with -inf / finfo.min). Always in heads-first order.
    ///   - scale: defaults to `1/sqrt(D)`.
    ///   - softcap: if set, scores become `softcap·tanh(scores/softcap)` after scaling and before the mask
    ///     (Gemma-2 `attn_logit_softcapping`).
    /// - Returns: `[B, H, Lq, Dv]` in the query's layout. A query row whose keys are all masked with -inf
    ///   returns zeros (PyTorch would return NaN).
    public static func scaledDotProductAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil, scale: Float? = nil,
        softcap: Float? = nil, layout: AttentionLayout = .headsFirst
    ) -> Tensor {
        precondition(query.rank == 4 && key.rank == 4 && value.rank == 4,
                     "Ops.scaledDotProductAttention: q/k/v must be 4-D, got \(query.shape), \(key.shape), \(value.shape)")
        let q = HeadMatrix(query, layout: layout)
        let k = HeadMatrix(key, layout: layout)
        let v = HeadMatrix(value, layout: layout)
        let batch = query.shape[0]
        let heads = q.heads, lq = q.length, d = q.dim
        let kvHeads = k.heads, lk = k.length, dv = v.dim
        precondition(key.shape[0] == batch && value.shape[0] == batch && d == k.dim && v.heads == kvHeads
                     && v.length == lk && kvHeads > 0 && heads % kvHeads == 0 && lk > 0,
                     "Ops.scaledDotProductAttention: incompatible q \(query.shape), k \(key.shape), v \(value.shape) (\(layout))")
        let outShape = layout == .headsFirst ? [batch, heads, lq, dv] : [batch, lq, heads, dv]
        let out = Tensor(uninitialized: outShape)
        guard out.count > 0 else { return out }
        let o = HeadMatrix(out, layout: layout)

        // Mask strides over [B, H, Lq, Lk].
        let maskInfo: (pointer: SendablePointer<Float>, strides: [Int])? = mask.map { mask in
            guard let s = KernelShape.broadcastStrides(mask.shape, to: [batch, heads, lq, lk]) else {
                preconditionFailure("Ops.scaledDotProductAttention: mask \(mask.shape) does not broadcast to \([batch, heads, lq, lk])")
            }
            return (SendablePointer(mask.storage.pointer + mask.offset), s)
        }
        let alpha = scale ?? 1 / Float(d).squareRoot()
        let group = heads / kvHeads
        let pairs = batch * heads
        let perGroup = Swift.max(1, Swift.min(pairs, attentionScoreBudget / Swift.max(1, lq * lk)))
        // From the buffer pool: a fresh multi-megabyte block would page-fault on every call.
        let scoreStorage = TensorStorage(uninitializedCount: perGroup * lq * lk)
        defer { withExtendedLifetime(scoreStorage) {} }
        let scores = scoreStorage.pointer
        let sp = SendablePointer(scores)
        let padding = maskInfo.flatMap { keyPadding($0.pointer.pointer, $0.strides, key: k, batch: batch, heads: heads,
                                                 group: group, lk: lk) }

        /// Mask (+ softcap) and softmax of one score row over its first `n` keys.
        @Sendable func prepareRow(_ row: UnsafeMutablePointer<Float>, pair: Int, i: Int, n: Int) {
            let b = pair / heads, h = pair % heads
            if let cap = softcap {
                let inv = 1 / cap
                for j in 0..<n { row[j] = cap * Foundation.tanh(row[j] * inv) }
            }
            if let (mp, s) = maskInfo {
                let m = mp.pointer + b * s[0] + h * s[1] + i * s[2]
                let sk = s[3]
                if sk == 1 {
                    for j in 0..<n { row[j] += m[j] }
                } else {
                    for j in 0..<n { row[j] += m[j * sk] }
                }
            }
        }

        var first = 0
        while first < pairs {
            let count = Swift.min(perGroup, pairs - first)
            let firstPair = first
            for i in 0..<count {
                let pair = first + i, b = pair / heads, h = pair % heads
                let n = padding?.kept[pair] ?? lk
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(lq), Int32(n), Int32(d), alpha,
                            q.head(b, h), Int32(q.rowStride), k.head(b, h / group), Int32(k.rowStride),
                            0, scores + i * lq * lk, Int32(lk))
            }
            // Rows whose dropped (padding) keys might not underflow to exactly 0 after all: their pair is redone
            // over every key below. One flag per row, so parallel chunks never share a write.
            let failed = UnsafeMutablePointer<Bool>.allocate(capacity: count * lq)
            defer { failed.deallocate() }
            failed.initialize(repeating: false, count: count * lq)
            let fp = SendablePointer(failed)
            Parallel.forEachRange(count * lq, minChunk: Swift.max(1, 8_192 / lk)) { rows in
                for r in rows {
                    let row = sp.pointer + r * lk
                    let pair = firstPair + r / lq, i = r % lq
                    let n = padding?.kept[pair] ?? lk
                    prepareRow(row, pair: pair, i: i, n: n)
                    if n < lk, let padding {
                        // Exact skip: every dropped key's exponent must be < −87.3, where exp gives exactly 0
                        // (SoftmaxMath.expNonPositive), so the full softmax has exact zeros there.
                        let b = pair / heads, h = pair % heads
                        var rowMax = -Float.infinity
                        for j in 0..<n where row[j] > rowMax { rowMax = row[j] }
                        let qRow = q.head(b, h) + i * q.rowStride
                        var qq: Float = 0
                        for j in 0..<d { qq += qRow[j] * qRow[j] }
                        let scoreBound = softcap.map { Swift.abs($0) } ?? alpha * qq.squareRoot() * padding.keyNorm[pair]
                        guard scoreBound + padding.maskMax[pair] - rowMax < -100 else {
                            fp.pointer[r] = true
                            continue
                        }
                    }
                    SoftmaxMath.softmaxRow(row, n, zeroIfAllMasked: true)
                }
            }
            for i in 0..<count {
                let pair = first + i, b = pair / heads, h = pair % heads
                var n = padding?.kept[pair] ?? lk
                let slot = scores + i * lq * lk
                if n < lk && (0..<lq).contains(where: { failed[i * lq + $0] }) {
                    n = lk
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(lq), Int32(lk), Int32(d), alpha,
                                q.head(b, h), Int32(q.rowStride), k.head(b, h / group), Int32(k.rowStride),
                                0, slot, Int32(lk))
                    let slotS = SendablePointer(slot)
                    Parallel.forEachRange(lq, minChunk: Swift.max(1, 8_192 / lk)) { rows in
                        for r in rows {
                            prepareRow(slotS.pointer + r * lk, pair: pair, i: r, n: lk)
                            SoftmaxMath.softmaxRow(slotS.pointer + r * lk, lk, zeroIfAllMasked: true)
                        }
                    }
                }
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(lq), Int32(dv), Int32(n), 1,
                            slot, Int32(lk), v.head(b, h / group), Int32(v.rowStride),
                            0, o.head(b, h), Int32(o.rowStride))
            }
            first += count
        }
        return out
    }
}

/// Trailing key padding per (batch, head): keys whose additive mask is ≤ −1000 for every query can be left out
/// of both GEMMs when their softmax weight is exactly 0 (checked per row against `keyNorm`/`maskMax`).
struct KeyPadding: Sendable {
    /// Keys computed per pair (`lk` when nothing is dropped).
    var kept: [Int]
    /// Largest mask value among the dropped keys.
    var maskMax: [Float]
    /// Largest L2 norm among the dropped keys.
    var keyNorm: [Float]
}

extension Ops {
    /// Finds droppable trailing padding keys for a query-independent mask (`strides[2] == 0`); nil otherwise.
    static func keyPadding(_ mask: UnsafeMutablePointer<Float>, _ s: [Int], key k: HeadMatrix, batch: Int, heads: Int,
                           group: Int, lk: Int) -> KeyPadding? {
        guard s[2] == 0 else { return nil }
        var p = KeyPadding(kept: [], maskMax: [], keyNorm: [])
        var any = false
        for pair in 0..<(batch * heads) {
            let b = pair / heads, h = pair % heads
            let m = mask + b * s[0] + h * s[1]
            var last = lk - 1
            while last >= 0 && m[last * s[3]] <= -1_000 { last -= 1 }
            let kept = last + 1
            guard kept > 0 && kept < lk else {
                p.kept.append(lk); p.maskMax.append(0); p.keyNorm.append(0)
                continue
            }
            any = true
            var maskMax = -Float.infinity, normMax: Float = 0
            let kh = k.head(b, h / group)
            for j in kept..<lk {
                maskMax = Swift.max(maskMax, m[j * s[3]])
                let row = kh + j * k.rowStride
                var kk: Float = 0
                for c in 0..<k.dim { kk += row[c] * row[c] }
                normMax = Swift.max(normMax, kk.squareRoot())
            }
            p.kept.append(kept); p.maskMax.append(maskMax); p.keyNorm.append(normMax)
        }
        return any ? p : nil
    }
}
