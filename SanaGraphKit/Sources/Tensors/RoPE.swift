// Rotary position embedding, "half rotation" convention of transformers' Llama/Gemma/Gemma-2:
//   x' = x·cos + rotate_half(x)·sin,  rotate_half(x) = cat(-x[D/2:], x[:D/2]).

import Foundation

extension Ops {
    /// cos/sin tables `[L, headDim]` for the given positions, as transformers' default RoPE builds them:
    /// `inv_freq[i] = 1 / theta^(2i/headDim)` (fp32), `freqs = pos·inv_freq`, `emb = cat(freqs, freqs)`.
    public static func rotaryCosSin(positions: [Int], headDim: Int, theta: Float = 10_000) -> (cos: Tensor, sin: Tensor) {
        precondition(headDim > 0 && headDim % 2 == 0, "Ops.rotaryCosSin: headDim \(headDim) must be even")
        let half = headDim / 2
        let invFreq = (0..<half).map { i in 1 / Foundation.pow(theta, Float(2 * i) / Float(headDim)) }
        let cosT = Tensor(uninitialized: [positions.count, headDim])
        let sinT = Tensor(uninitialized: [positions.count, headDim])
        let c = cosT.storage.pointer, s = sinT.storage.pointer
        for (l, p) in positions.enumerated() {
            for i in 0..<half {
                let f = Float(p) * invFreq[i]
                let (cv, sv) = (Foundation.cos(f), Foundation.sin(f))
                c[l * headDim + i] = cv; c[l * headDim + half + i] = cv
                s[l * headDim + i] = sv; s[l * headDim + half + i] = sv
            }
        }
        return (cosT, sinT)
    }

    /// Applies rotary embedding to `x` (`[..., L, D]`, typically `[B, H, L, D]`) with `cos`/`sin` tables
    /// broadcastable to it (`[L, D]`, `[B, 1, L, D]`, or transformers' `[B, L, D]` after `unsqueeze(1)`):
    /// `x·cos + rotate_half(x)·sin` (transformers `apply_rotary_pos_emb`).
    public static func applyRotaryEmbedding(_ x: Tensor, cos: Tensor, sin: Tensor) -> Tensor {
        precondition(x.rank >= 1 && x.shape[x.rank - 1] % 2 == 0,
                     "Ops.applyRotaryEmbedding: last dimension of \(x.shape) must be even")
        guard let cs = KernelShape.broadcastStrides(cos.shape, to: x.shape),
              let ss = KernelShape.broadcastStrides(sin.shape, to: x.shape), cs == ss else {
            preconditionFailure("Ops.applyRotaryEmbedding: cos \(cos.shape) / sin \(sin.shape) do not broadcast to \(x.shape)")
        }
        let d = x.shape[x.rank - 1], half = d / 2
        precondition(cs[x.rank - 1] == 1, "Ops.applyRotaryEmbedding: cos/sin must span the last dimension (\(d))")
        let out = Tensor(uninitialized: x.shape)
        guard out.count > 0 else { return out }
        let rows = x.count / d
        let outer = Array(x.shape.dropLast())
        let rowStrides = Array(cs.dropLast())
        let src = SendablePointer(x.storage.pointer + x.offset)
        let dst = SendablePointer(out.storage.pointer)
        let cp = SendablePointer(cos.storage.pointer + cos.offset)
        let sp = SendablePointer(sin.storage.pointer + sin.offset)
        Parallel.forEachRange(rows, minChunk: Swift.max(1, 16_384 / d)) { range in
            for r in range {
                var rem = r, off = 0
                for k in stride(from: outer.count - 1, through: 0, by: -1) {
                    off += (rem % outer[k]) * rowStrides[k]
                    rem /= outer[k]
                }
                let xr = src.pointer + r * d, yr = dst.pointer + r * d
                let c = cp.pointer + off, s = sp.pointer + off
                for i in 0..<half {
                    yr[i] = xr[i] * c[i] + (-xr[half + i]) * s[i]
                    yr[half + i] = xr[half + i] * c[half + i] + xr[i] * s[half + i]
                }
            }
        }
        return out
    }
}
