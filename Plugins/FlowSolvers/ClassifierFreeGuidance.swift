import SanaGraphKit
import DiffusionModels
import Tensors

/// Classifier-free guidance as `SanaPipeline` does it: one model call on the batch [negative; positive],
/// then `v = v_uncond + g·(v_text − v_uncond)`.
public enum ClassifierFreeGuidance {
    /// Conditioning for a latent batch of `batch`: `positive` alone, or [negative; positive] when `negative`
    /// is given. A conditioning of batch 1 is repeated to `batch`. Sequences of different lengths are padded
    /// at the end with zero embeddings and mask 0 (masked tokens take no part in cross-attention).
    public static func batched(positive: Conditioning, negative: Conditioning?, batch: Int,
                               node: String) throws -> Conditioning {
        let pos = try repeated(positive, to: batch, name: "positive", node: node)
        guard let negative else { return pos }
        let neg = try repeated(negative, to: batch, name: "negative", node: node)
        guard neg.embeddings.shape[2] == pos.embeddings.shape[2] else {
            throw NodeError.invalidInput(
                node: node,
                message: "negative embeddings have width \(neg.embeddings.shape[2]) but positive have "
                    + "\(pos.embeddings.shape[2]); encode both prompts with the same text encoder")
        }
        let length = max(neg.embeddings.shape[1], pos.embeddings.shape[1])
        let a = padded(neg, to: length)
        let b = padded(pos, to: length)
        return Conditioning(embeddings: concatenateBatch(a.embeddings, b.embeddings),
                            mask: concatenateBatch(a.mask, b.mask))
    }

    /// `v_uncond + g·(v_text − v_uncond)` for a prediction over [negative; positive] (batch 2B → B).
    public static func combine(_ prediction: Tensor, scale: Float) -> Tensor {
        let half = prediction.count / 2
        var shape = prediction.shape
        shape[0] /= 2
        var out = Tensor(uninitialized: shape)
        prediction.withUnsafeBufferPointer { p in
            out.withUnsafeMutableBufferPointer { o in
                for i in 0..<half {
                    let u = p[i]
                    let c = p[half + i]
                    o[i] = u + scale * (c - u)
                }
            }
        }
        return out
    }

    /// Checks ranks ([B, L, D] and [B, L]) and repeats a batch of 1 to `batch`.
    static func repeated(_ c: Conditioning, to batch: Int, name: String, node: String) throws -> Conditioning {
        let e = c.embeddings.shape
        let m = c.mask.shape
        guard e.count == 3, m.count == 2, m[0] == e[0], m[1] == e[1], e[0] >= 1 else {
            throw NodeError.invalidInput(
                node: node,
                message: "\(name) conditioning has embeddings \(e) and mask \(m); expected [B, L, D] and [B, L] "
                    + "(connect the output of a text.encode node)")
        }
        if e[0] == batch { return c }
        guard e[0] == 1 else {
            throw NodeError.invalidInput(
                node: node,
                message: "\(name) conditioning has batch \(e[0]) but the latent has batch \(batch); use one prompt "
                    + "per latent or a single prompt")
        }
        return Conditioning(embeddings: repeatBatch(c.embeddings, batch), mask: repeatBatch(c.mask, batch))
    }

    /// Pads the sequence axis of embeddings [B, L, D] and mask [B, L] to `length` with zeros.
    static func padded(_ c: Conditioning, to length: Int) -> Conditioning {
        let (b, l, d) = (c.embeddings.shape[0], c.embeddings.shape[1], c.embeddings.shape[2])
        guard l < length else { return c }
        var e = Tensor(zeros: [b, length, d])
        var m = Tensor(zeros: [b, length])
        c.embeddings.withUnsafeBufferPointer { src in
            e.withUnsafeMutableBufferPointer { dst in
                for i in 0..<b {
                    for j in 0..<(l * d) { dst[i * length * d + j] = src[i * l * d + j] }
                }
            }
        }
        c.mask.withUnsafeBufferPointer { src in
            m.withUnsafeMutableBufferPointer { dst in
                for i in 0..<b {
                    for j in 0..<l { dst[i * length + j] = src[i * l + j] }
                }
            }
        }
        return Conditioning(embeddings: e, mask: m)
    }

    /// Concatenates two tensors along axis 0 (same trailing shape).
    static func concatenateBatch(_ a: Tensor, _ b: Tensor) -> Tensor {
        var shape = a.shape
        shape[0] += b.shape[0]
        var out = Tensor(uninitialized: shape)
        out.withUnsafeMutableBufferPointer { dst in
            a.withUnsafeBufferPointer { src in
                for i in 0..<src.count { dst[i] = src[i] }
            }
            b.withUnsafeBufferPointer { src in
                for i in 0..<src.count { dst[a.count + i] = src[i] }
            }
        }
        return out
    }

    /// Repeats a batch-1 tensor `count` times along axis 0.
    static func repeatBatch(_ t: Tensor, _ count: Int) -> Tensor {
        var shape = t.shape
        shape[0] = count
        var out = Tensor(uninitialized: shape)
        let n = t.count
        t.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for k in 0..<count {
                    for i in 0..<n { dst[k * n + i] = src[i] }
                }
            }
        }
        return out
    }
}
