import CUDA
import Foundation
import Tensors
import TextEncoder

/// GPU checks of the Gemma-2 text encoder: its kernels against the CPU code (outputs poisoned with NaN first) and
/// the whole GPU encoder against the CPU encoder on small random configs with a padded batch.
extension GPUChecks {
    static let gemmaChecks: [Check] = [
        ("gemma rope_split", { c, _ in try gemmaRope(c) }),
        ("gemma rope_split at positions up to 319 vs fp64 RoPE (the model's inv_freq)", { c, _ in
            try gemmaRopeLongPositions(c)
        }),
        ("gemma attention softmax (softcap, causal, padding, window)", { c, _ in try gemmaSoftmax(c) }),
        ("gemma geglu (tanh and erf)", { c, _ in try gemmaGeglu(c) }),
        ("gemma residual_norm", { c, _ in try gemmaResidualNorm(c) }),
        ("Gemma-2 encoder (small config, padded batch)", { c, _ in try gemmaEncoder(c, variant: false) }),
        ("Gemma-2 encoder (sliding window < L, 1 KV head, erf GELU, no softcap)", { c, _ in
            try gemmaEncoder(c, variant: true)
        }),
    ]

    static func gemmaRope(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 30)
        let b = 2, l = 9, heads = 4, kvHeads = 2, hd = 16, group = heads / kvHeads, width = (heads + 2 * kvHeads) * hd
        let qkv = bf16Rounded(r.tensor([b, l, width], scale: 2))
        let theta: Float = 10_000
        let invFreq = (0..<(hd / 2)).map { i in 1 / Foundation.pow(theta, Float(2 * i) / Float(hd)) }
        let q = try poisoned([b, kvHeads, l, group, hd], .bf16, on: c)
        let k = try poisoned([b, kvHeads, l, hd], .bf16, on: c), v = try poisoned([b, heads, l, hd], .bf16, on: c)
        try GemmaKernels(context: c).ropeSplit(
            qkv: DeviceTensor(qkv, dtype: .bf16, on: c).pointer,
            invFreq: DeviceTensor(Tensor(shape: [hd / 2], values: invFreq), on: c).pointer,
            q: q.pointer, k: k.pointer, v: v.pointer, batch: b, length: l, heads: heads, kvHeads: kvHeads, headDim: hd)
        let rope = Ops.rotaryCosSin(positions: Array(0..<l), headDim: hd, theta: theta)
        let cos = rope.cos.reshaped([l, 1, hd]), sin = rope.sin.reshaped([l, 1, hd])
        func part(_ from: Int, _ n: Int) -> Tensor {
            Ops.slice(qkv, axis: 2, range: (from * hd)..<((from + n) * hd)).reshaped([b, l, n, hd])
        }
        // CPU: [B, L, heads, hd] tokens-first; GPU: q [B, KV, L, group, hd], k [B, KV, L, hd], v [B, heads, L, hd]
        // (each KV head repeated for its query heads).
        let wantQ = Ops.permute(Ops.applyRotaryEmbedding(part(0, heads), cos: cos, sin: sin)
            .reshaped([b, l, kvHeads, group, hd]), [0, 2, 1, 3, 4])
        let wantK = Ops.permute(Ops.applyRotaryEmbedding(part(heads, kvHeads), cos: cos, sin: sin), [0, 2, 1, 3])
        let vKV = Ops.permute(part(heads + kvHeads, kvHeads), [0, 2, 1, 3])
        let wantV = Ops.concat((0..<b).flatMap { bi in (0..<heads).map { h in
            Ops.slice(Ops.slice(vKV, axis: 0, range: bi..<(bi + 1)), axis: 1, range: (h / group)..<(h / group + 1))
        } }, axis: 1).reshaped([b, heads, l, hd])
        let eq = try expectClose(q.toHost(), wantQ, tolerance: 5e-3, "q")
        let ek = try expectClose(k.toHost(), wantK, tolerance: 5e-3, "k")
        guard try v.toHost().scalars == wantV.scalars else { throw CheckFailure(description: "v copy is not exact") }
        return eq + ", " + ek + ", v exact"
    }

    /// RoPE far along a SANA-length prompt (positions 0..<320), with the inverse frequencies the GPU model uploads,
    /// against fp64 RoPE with transformers' fp32 `inv_freq` (as `from_pretrained` keeps it in any dtype): only the
    /// bf16 rounding of the outputs may differ. Angle errors grow with the position (a bf16-rounded inv_freq is off
    /// by up to ~0.5 rad at position 319), so the short check above cannot see them.
    static func gemmaRopeLongPositions(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 34)
        let l = 320, hd = 64, half = hd / 2, width = 3 * hd  // one query, one key and one value head
        let qkv = bf16Rounded(r.tensor([l, width], scale: 2))
        let theta = 10_000.0
        let invFreq = Gemma2ModelCUDA.ropeInverseFrequencies(headDim: hd, theta: theta)
        // transformers: 1 / theta^(arange(0, hd, 2) / hd) in fp32; the model's values must be within a few ulp.
        let fp32Want = (0..<half).map { i in Float(1 / Foundation.pow(theta, Double(2 * i) / Double(hd))) }
        let worst = zip(invFreq, fp32Want).map { abs(Double($0) - Double($1)) / Double($1) }.max() ?? 0
        guard worst <= 4e-7 else {
            throw CheckFailure(description: String(format: "inv_freq is %.2e (relative) from fp32 1/theta^(2i/d)", worst))
        }
        let q = try poisoned([l, hd], .bf16, on: c), k = try poisoned([l, hd], .bf16, on: c)
        let v = try poisoned([l, hd], .bf16, on: c)
        try GemmaKernels(context: c).ropeSplit(
            qkv: DeviceTensor(qkv, dtype: .bf16, on: c).pointer,
            invFreq: DeviceTensor(Tensor(shape: [half], values: invFreq), on: c).pointer,
            q: q.pointer, k: k.pointer, v: v.pointer, batch: 1, length: l, heads: 1, kvHeads: 1, headDim: hd)
        let x = qkv.scalars
        func want(_ slot: Int) -> Tensor {
            var out = [Float](repeating: 0, count: l * hd)
            for t in 0..<l {
                for i in 0..<half {
                    let angle = Double(t) * Double(fp32Want[i])
                    let x1 = Double(x[t * width + slot * hd + i]), x2 = Double(x[t * width + slot * hd + half + i])
                    out[t * hd + i] = Float(x1 * Foundation.cos(angle) - x2 * Foundation.sin(angle))
                    out[t * hd + half + i] = Float(x2 * Foundation.cos(angle) + x1 * Foundation.sin(angle))
                }
            }
            return Tensor(shape: [l, hd], values: out)
        }
        // Rows 256..<320 alone too: an error that grows with the position must not hide in the average.
        func far(_ t: Tensor) -> Tensor { Ops.slice(t, axis: 0, range: 256..<l) }
        let gq = try q.toHost(), gk = try k.toHost()
        return [try expectClose(gq, want(0), tolerance: 3e-3, "q"), try expectClose(gk, want(1), tolerance: 3e-3, "k"),
                try expectClose(far(gq), far(want(0)), tolerance: 3e-3, "q rows 256+"),
                try expectClose(far(gk), far(want(1)), tolerance: 3e-3, "k rows 256+")].joined(separator: ", ")
    }

    /// The kernel's probabilities against the CPU attention's (`Ops.scaledDotProductAttention` with an identity V
    /// returns P) under the CPU model's Gemma-2 mask.
    static func gemmaSoftmax(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 31)
        let b = 2, l = 13, lp = 16, heads = 4, kvHeads = 2, group = 2, hd = 8, scale: Float = 0.35, cap: Float = 5
        let q = r.tensor([b, heads, l, hd], scale: 2), k = r.tensor([b, kvHeads, l, hd], scale: 2)
        let attentionMask = [Array(repeating: 1, count: l), Array(repeating: 1, count: 6) + Array(repeating: 0, count: l - 6)]
        var checked: [String] = []
        for window in [nil, 4] as [Int?] {
            // Scores in the kernel's layout [B·KV, L·group, lp]: row (b, g, t, r) is query head g·group + r.
            var s = [Float](repeating: .nan, count: b * kvHeads * l * group * lp)
            let qs = q.scalars, ks = k.scalars
            for bi in 0..<b { for h in 0..<heads { for t in 0..<l { for j in 0..<l {
                let g = h / group, rr = h % group
                var dot: Float = 0
                for e in 0..<hd { dot += qs[((bi * heads + h) * l + t) * hd + e] * ks[((bi * kvHeads + g) * l + j) * hd + e] }
                s[(((bi * kvHeads + g) * l + t) * group + rr) * lp + j] = scale * dot
            } } } }
            let probs = try poisoned([b, heads, l, lp], .bf16, on: c)
            try GemmaKernels(context: c).attentionSoftmax(
                scores: DeviceTensor(Tensor(shape: [s.count], values: s), on: c).pointer,
                mask: DeviceTensor(Tensor(shape: [b, l], values: attentionMask.flatMap { $0.map(Float.init) }), on: c).pointer,
                probabilities: probs.pointer, batch: b, kvHeads: kvHeads, group: group, length: l, ld: lp, softcap: cap,
                window: window)
            let identity = Tensor(shape: [b, kvHeads, l, l], values: (0..<(b * kvHeads * l * l)).map { i in
                Float((i / l) % l == i % l ? 1 : 0)
            })
            let want = Ops.scaledDotProductAttention(
                query: q, key: k, value: identity, mask: Gemma2Model.additiveMask(attentionMask, length: l, window: window),
                scale: scale, softcap: cap)
            let got = try probs.toHost().scalars
            var gotOrdered: [Float] = []
            for row in 0..<(b * heads * l) {
                gotOrdered += got[(row * lp)..<(row * lp + l)]
                if got[(row * lp + l)..<(row * lp + lp)].contains(where: { $0 != 0 }) {
                    throw CheckFailure(description: "padding columns of the probabilities are not 0")
                }
            }
            checked.append(try expectClose(Tensor(shape: want.shape, values: gotOrdered), want, tolerance: 5e-3,
                                           window.map { "window \($0)" } ?? "global"))
        }
        return checked.joined(separator: ", ")
    }

    static func gemmaGeglu(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 32)
        let rows = 7, inter = 40
        let gu = r.tensor([rows, 2 * inter], scale: 2)
        let gate = Ops.slice(gu, axis: 1, range: 0..<inter), up = Ops.slice(gu, axis: 1, range: inter..<(2 * inter))
        var reports: [String] = []
        for (exact, approximation) in [(false, GELUApproximation.tanh), (true, .none)] {
            let out = try poisoned([rows, inter], .bf16, on: c)
            try GemmaKernels(context: c).geglu(DeviceTensor(gu, on: c).pointer, out: out.pointer, rows: rows,
                                               intermediate: inter, exact: exact)
            reports.append(try expectClose(out.toHost(), Ops.mul(Ops.gelu(gate, approximate: approximation), up),
                                           tolerance: 5e-3, exact ? "erf" : "tanh"))
        }
        return reports.joined(separator: ", ")
    }

    static func gemmaResidualNorm(_ c: CUDAContext) throws -> String {
        var r = Random(seed: 33)
        let rows = 5, d = 300, eps: Float = 1e-6
        let x = r.tensor([rows, d], scale: 3, offset: 0.5), y = r.tensor([rows, d], scale: 20)
        let wPost = r.tensor([d], scale: 0.1), wNext = r.tensor([d], scale: 0.1)
        func onePlus(_ w: Tensor) throws -> DeviceTensor {
            try DeviceTensor(Tensor(shape: w.shape, values: w.scalars.map { 1 + $0 }), on: c)
        }
        let k = try GemmaKernels(context: c)
        let xd = try DeviceTensor(x, on: c), post = try onePlus(wPost), next = try onePlus(wNext)
        let out = try poisoned([rows, d], .bf16, on: c)
        try k.residualNorm(x: xd.pointer, y: DeviceTensor(y, on: c).pointer, postWeight: post.pointer,
                           nextWeight: next.pointer, outBF16: out.pointer, outF32: nil, rows: rows, dim: d, eps: eps)
        let x2 = Ops.add(x, Ops.gemmaRMSNorm(y, weight: wPost, eps: eps))
        let e1 = try expectClose(xd.toHost(), x2, tolerance: 1e-5, "residual")
        let e2 = try expectClose(out.toHost(), Ops.gemmaRMSNorm(x2, weight: wNext, eps: eps), tolerance: 5e-3, "bf16 norm")
        // Norm only, fp32 out (the final norm when there are no layers); x must not change.
        let outF = try poisoned([rows, d], .f32, on: c)
        try k.residualNorm(x: xd.pointer, y: nil, postWeight: nil, nextWeight: next.pointer, outBF16: nil,
                           outF32: outF.pointer, rows: rows, dim: d, eps: eps)
        let e3 = try expectClose(outF.toHost(), Ops.gemmaRMSNorm(x2, weight: wNext, eps: eps), tolerance: 1e-5, "fp32 norm")
        return [e1, e2, e3].joined(separator: ", ")
    }

    /// A small random Gemma-2 run by the CPU model (fp32) and the GPU model (bf16) from the same weights, on a
    /// right-padded batch; compared on the rows the mask keeps.
    static func gemmaEncoder(_ c: CUDAContext, variant: Bool) throws -> String {
        var config = Gemma2Config()
        config.vocabSize = 50; config.hiddenSize = 64; config.intermediateSize = 96; config.numHiddenLayers = 3
        config.numAttentionHeads = 4; config.numKeyValueHeads = variant ? 1 : 2; config.headDim = 16
        config.queryPreAttnScalar = 16
        if variant {
            config.slidingWindow = 4
            config.hiddenActivation = "gelu"
            config.attnLogitSoftcapping = nil
        }
        var r = Random(seed: variant ? 41 : 40)
        var tensors: [String: Tensor] = [:]
        for (key, shape) in Gemma2Model.expectedWeightShapes(config).sorted(by: { $0.key < $1.key }) {
            if shape.count == 1 {
                tensors[key] = r.tensor(shape, scale: 0.1)                       // Gemma norms: 1 + w
            } else if key.hasPrefix("embed_tokens") {
                tensors[key] = r.tensor(shape, scale: 0.3)
            } else {
                tensors[key] = r.tensor(shape, scale: 1 / Float(shape[1]).squareRoot())
            }
        }
        let cpu = try Gemma2Model(config: config, tensors: tensors)
        let gpu = try Gemma2ModelCUDA(config: config, tensors: tensors, device: c.deviceIndex)
        let l = 13
        let ids = [(0..<l).map { 2 + ($0 * 7) % 48 }, [2, 9, 17, 33, 4] + Array(repeating: 0, count: l - 5)]
        let mask = [Array(repeating: 1, count: l), Array(repeating: 1, count: 5) + Array(repeating: 0, count: l - 5)]
        let want = try cpu(inputIds: ids, attentionMask: mask, afterLayer: { _ in })
        var layersSeen = 0
        let got = try gpu(inputIds: ids, attentionMask: mask, afterLayer: { _ in layersSeen += 1 })
        guard layersSeen == config.numHiddenLayers, got.shape == want.shape else {
            throw CheckFailure(description: "shape \(got.shape) vs \(want.shape), \(layersSeen) layer callbacks")
        }
        let kept = mask.flatMap { $0 }.enumerated().filter { $0.element == 1 }.map(\.offset)
        func rows(_ t: Tensor) -> Tensor {
            let d = config.hiddenSize, s = t.scalars
            return Tensor(shape: [kept.count, d], values: kept.flatMap { s[($0 * d)..<($0 * d + d)] })
        }
        return try expectClose(rows(got), rows(want), tolerance: 3e-2, "GPU bf16 vs CPU fp32 (unmasked rows)")
    }
}
