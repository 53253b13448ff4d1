// Scaled dot-product attention (softmax attention) with an additive mask, GQA and Gemma-2 logit softcap.
//
// Work items are blocks of query rows of one (batch, head), run in parallel on our workers, each start to finish
// in the worker's own scores buffer: S = scale·Q Kᵀ (single-threaded GEMM), softcap / mask / softmax per row,
// then O = P V (single-threaded GEMM). Heads are plentiful in SANA's models (16 × batch 2, Gemma-2: 8), so the
// workers stay busy without splitting a GEMM. With `.bf16Tiles` the two products run on the AMX kernel instead
// (operands rounded to bf16 per item: q rows, keys and values packed into tiles, probabilities).

internal import CKernels
import Foundation

/// Memory layout of the attention operands.
public enum AttentionLayout: Sendable, Equatable {
    /// `[B, H, L, D]` (PyTorch's SDPA layout).
    case headsFirst
    /// `[B, L, H, D]`, i.e. a `[B, L, H·D]` projection output reshaped without a permute.
    case tokensFirst
}

/// How the two products of softmax attention (`Q Kᵀ`, `P V`) are computed.
public enum AttentionProducts: Sendable, Equatable {
    /// fp32 operands (SanaGraph's GEMM on OpenBLAS).
    case fp32
    /// q, k, the probabilities and v rounded to bf16, products summed in fp32 on the AMX kernel, as PyTorch's bf16
    /// attention does; scaling, mask, softmax stay fp32. For models whose linear layers run there
    /// (`WeightKernel.amxTiles`); on a CPU without AMX the tile instructions are emulated (tests only: slow).
    case bf16Tiles
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
    /// Largest scores buffer (floats) one work item may use: 1 Mi floats = 4 MiB, which stays in cache.
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
    ///   - products: fp32, or bf16 on AMX tiles (`AttentionProducts`).
    ///   - keyPadding: `AttentionKeyPadding(key: key, mask: mask, …)` made once for these same keys and mask,
    ///     when many calls share them; nil: found here (a read of every padding key).
    /// - Returns: `[B, H, Lq, Dv]` in the query's layout. A query row whose keys are all masked with -inf
    ///   returns zeros (PyTorch would return NaN).
    public static func scaledDotProductAttention(
        query: Tensor, key: Tensor, value: Tensor, mask: Tensor? = nil, scale: Float? = nil,
        softcap: Float? = nil, layout: AttentionLayout = .headsFirst, products: AttentionProducts = .fp32,
        keyPadding known: AttentionKeyPadding? = nil
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
        if let known {
            precondition(mask != nil && known.shape == [batch, heads, lk],
                         "Ops.scaledDotProductAttention: keyPadding was made for [B, H, Lk] = \(known.shape), not \([batch, heads, lk]) with a mask")
        }
        let padding = known.map(\.padding) ?? maskInfo.flatMap {
            keyPadding($0.pointer.pointer, $0.strides, key: k, batch: batch, heads: heads, group: group, lk: lk)
        }
        // Query rows per item: within the scores budget, and split further when there are fewer heads than
        // workers to keep busy.
        let workers = Parallel.workerCount
        let fitting = Swift.max(1, Swift.min(lq, attentionScoreBudget / lk))
        let rowsPerItem = pairs < 2 * workers ? Swift.min(fitting, Swift.max(16, lq * pairs / (2 * workers))) : fitting
        let blocks = (lq + rowsPerItem - 1) / rowsPerItem

        let tiles = products == .bf16Tiles
        /// Scale (the tile products leave it out), mask and softcap of one score row over its first `n` keys.
        @Sendable func prepareRow(_ row: UnsafeMutablePointer<Float>, pair: Int, i: Int, n: Int) {
            let b = pair / heads, h = pair % heads
            if tiles { for j in 0..<n { row[j] *= alpha } }
            if let cap = softcap {
                let inv = 1 / cap
                var j = 0
                while j + 8 <= n {
                    SoftmaxMath.store(cap * SoftmaxMath.tanh(SoftmaxMath.load(row + j) * inv), row + j)
                    j += 8
                }
                if j < n {
                    let t = cap * SoftmaxMath.tanh(SoftmaxMath.loadPartial(row + j, n - j, fill: 0) * inv)
                    for r in 0..<(n - j) { row[j + r] = t[r] }
                }
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

        /// Whether row `i` of `pair`, computed over its first `n` keys, may leave out the dropped padding keys:
        /// every dropped key's exponent must be < −87.3, where exp gives exactly 0 (SoftmaxMath.expNonPositive),
        /// so the full softmax has exact zeros there.
        @Sendable func paddingIsExact(_ row: UnsafeMutablePointer<Float>, pair: Int, i: Int, n: Int, _ p: KeyPadding) -> Bool {
            let b = pair / heads, h = pair % heads
            var rowMax = -Float.infinity
            for j in 0..<n where row[j] > rowMax { rowMax = row[j] }
            let qq = ReductionMath.sumOfSquaredDeviations(q.head(b, h) + i * q.rowStride, d, from: 0)
            // bf16 operands can raise a score by their rounding, (1 + 2⁻⁸)² at most.
            let scoreBound = softcap.map { Swift.abs($0) } ?? alpha * qq.squareRoot() * p.keyNorm[pair] * (tiles ? 1.01 : 1)
            return scoreBound + p.maskMax[pair] - rowMax < -100
        }

        // bf16 operands of one work item for the tile products: q rows, packed keys, probabilities, packed values.
        let tileBuffers = tiles ? (q: sg_amx_src_bytes(rowsPerItem, d), k: sg_amx_packed_bytes(lk, d),
                                   p: sg_amx_src_bytes(rowsPerItem, lk), v: sg_amx_packed_bytes(dv, lk)) : (q: 0, k: 0, p: 0, v: 0)

        // A few keys (a short caption once its padding is dropped): each row start to finish in registers
        // (attention.c: AVX-512 with `products`' rounding — bf16 operands for `.bf16Tiles` —, AVX2 in fp32).
        let fewKeysISA = Kernels.selection.vectorISA
        let fewKeys = softcap == nil && (maskInfo.map { $0.strides[2] == 0 } ?? true)
            && (fewKeysISA == .avx512 || (fewKeysISA == .avx2 && !tiles))

        Parallel.forEachRange(pairs * blocks, minChunk: 1) { items in
            let fewScratch = fewKeys ? TensorStorage(uninitializedCount: sg_attention_few_keys_scratch(d)) : nil
            defer { withExtendedLifetime(fewScratch) {} }
            // From the buffer pool when large: a fresh multi-megabyte block would page-fault on every call.
            let scratch = TensorStorage(uninitializedCount: rowsPerItem * lk)
            let scores = scratch.pointer
            let bf16Bytes = tileBuffers.q + tileBuffers.k + tileBuffers.p + tileBuffers.v
            let bf16Scratch = tiles ? TensorStorage(uninitializedCount: (bf16Bytes + 3) / 4) : scratch  // fp32: unused
            let qa = UnsafeMutableRawPointer(bf16Scratch.pointer).assumingMemoryBound(to: UInt16.self)
            let (kt, pa) = (qa + tileBuffers.q / 2, qa + (tileBuffers.q + tileBuffers.k) / 2)
            let vt = pa + tileBuffers.p / 2
            for item in items {
                let pair = item / blocks, b = pair / heads, h = pair % heads
                let i0 = (item % blocks) * rowsPerItem, rows = Swift.min(rowsPerItem, lq - i0)
                let qh = q.head(b, h) + i0 * q.rowStride, kh = k.head(b, h / group), vh = v.head(b, h / group)
                let oh = o.head(b, h) + i0 * o.rowStride
                var n = padding?.kept[pair] ?? lk
                if let fewScratch, n <= 64 {
                    let m = maskInfo.map { $0.pointer.pointer + b * $0.strides[0] + h * $0.strides[1] }
                    let dropped = n < lk ? padding : nil
                    if sg_attention_few_keys(qh, q.rowStride, rows, d, kh, k.rowStride, vh, v.rowStride, n, dv, alpha,
                                             m, maskInfo?.strides[3] ?? 0, dropped == nil ? 0 : 1,
                                             dropped?.keyNorm[pair] ?? 0, dropped?.maskMax[pair] ?? 0, oh,
                                             o.rowStride, fewScratch.pointer, tiles ? 1 : 0, fewKeysISA.c) == 1 {
                        continue
                    }
                }
                if tiles { sg_amx_convert(qh, q.rowStride, 0, rows, rows, d, qa) }
                while true {
                    if tiles {
                        sg_amx_pack_strided(kh, k.rowStride, 1, n, d, kt, 0, (n + 31) / 32)
                        amxGEMM(qa, rows, d, kt, n, nil, scores, lk, 0, (n + 31) / 32, 0)
                    } else {
                        Ops.sgemm(transposeA: false, transposeB: true, m: rows, n: n, k: d, a: qh, lda: q.rowStride,
                                  b: kh, ldb: k.rowStride, beta: 0, c: scores, ldc: lk, alpha: alpha)
                    }
                    var exact = true
                    for r in 0..<rows {
                        let row = scores + r * lk
                        prepareRow(row, pair: pair, i: i0 + r, n: n)
                        if n < lk, let padding, !paddingIsExact(row, pair: pair, i: i0 + r, n: n, padding) {
                            exact = false
                            break
                        }
                        SoftmaxMath.softmaxRow(row, n, zeroIfAllMasked: true)
                    }
                    if exact { break }
                    n = lk  // a dropped key could matter for some row: redo this block over every key
                }
                if tiles {
                    sg_amx_convert(scores, lk, 0, rows, rows, n, pa)
                    sg_amx_pack_strided(vh, 1, v.rowStride, dv, n, vt, 0, (dv + 31) / 32)
                    amxGEMM(pa, rows, n, vt, dv, nil, oh, o.rowStride, 0, (dv + 31) / 32, 0)
                } else {
                    Ops.sgemm(transposeA: false, transposeB: false, m: rows, n: dv, k: n, a: scores, lda: lk,
                              b: vh, ldb: v.rowStride, beta: 0, c: oh, ldc: o.rowStride)
                }
            }
            withExtendedLifetime((scratch, bf16Scratch)) {}
        }
        return out
    }
}

/// The trailing padding keys `Ops.scaledDotProductAttention` may leave out for one key tensor and a
/// query-independent mask, found once for calls that share them: a DiT's cross-attention reads the same prompt
/// keys at every step, and finding the padding reads every padding key (from memory: as long as the rest of the
/// call for a short prompt). Whether leaving them out is exact is still checked per query row.
public struct AttentionKeyPadding: Sendable {
    let padding: KeyPadding?
    /// [B, H, Lk] it was made for (H: query heads).
    let shape: [Int]

    /// - Parameters: `key` and `mask` as they will be passed to `scaledDotProductAttention` (a mask that varies
    ///   along the query axis has no droppable keys); `queryHeads`: H of the queries.
    public init(key: Tensor, mask: Tensor, queryHeads: Int, layout: AttentionLayout) {
        let k = HeadMatrix(key, layout: layout)
        let batch = key.shape[0]
        precondition(key.rank == 4 && k.heads > 0 && queryHeads % k.heads == 0,
                     "AttentionKeyPadding: key \(key.shape) does not fit \(queryHeads) query heads")
        shape = [batch, queryHeads, k.length]
        // Strides over [B, H, Lq, Lk] for one query row; a mask that varies along Lq has none to drop.
        guard mask.rank < 2 || mask.shape[mask.rank - 2] == 1,
              let s = KernelShape.broadcastStrides(mask.shape, to: [batch, queryHeads, 1, k.length]) else {
            padding = nil
            return
        }
        padding = Ops.keyPadding(mask.storage.pointer + mask.offset, [s[0], s[1], 0, s[3]], key: k, batch: batch,
                                 heads: queryHeads, group: queryHeads / k.heads, lk: k.length)
        withExtendedLifetime((key, mask)) {}
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
                // 16 lanes (a scalar sum does not vectorise): every call meets ~300 keys × heads of them.
                let kk = ReductionMath.sumOfSquaredDeviations(kh + j * k.rowStride, k.dim, from: 0)
                normMax = Swift.max(normMax, kk.squareRoot())
            }
            p.kept.append(kept); p.maskMax.append(maskMax); p.keyNorm.append(normMax)
        }
        return any ? p : nil
    }
}
