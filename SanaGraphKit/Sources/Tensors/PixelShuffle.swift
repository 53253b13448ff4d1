// torch.nn.functional.pixel_shuffle / pixel_unshuffle on NCHW tensors (DC-AE up/down shortcuts).

extension Ops {
    /// `[B, C·r², H, W]` → `[B, C, H·r, W·r]` with `out[b, c, h·r+i, w·r+j] = x[b, c·r² + i·r + j, h, w]`.
    public static func pixelShuffle(_ x: Tensor, upscale r: Int) -> Tensor {
        precondition(x.rank == 4 && r > 0 && x.shape[1] % (r * r) == 0,
                     "Ops.pixelShuffle: need [B, C·\(r)², H, W], got \(x.shape)")
        let (b, cIn, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let c = cIn / (r * r)
        let out = Tensor(uninitialized: [b, c, h * r, w * r])
        guard out.count > 0 else { return out }
        let src = SendablePointer(x.storage.pointer + x.offset)
        let dst = SendablePointer(out.storage.pointer)
        let outW = w * r
        // One output row per item: (b, c, y) with y = h·r + i.
        Parallel.forEachRange(b * c * h * r, minChunk: Swift.max(1, 8_192 / outW)) { rows in
            for row in rows {
                let y = row % (h * r), bc = row / (h * r)
                let hh = y / r, i = y % r
                let o = dst.pointer + row * outW
                for j in 0..<r {
                    let plane = src.pointer + ((bc * r * r + i * r + j) * h + hh) * w
                    for ww in 0..<w { o[ww * r + j] = plane[ww] }
                }
            }
        }
        return out
    }

    /// `[B, C, H·r, W·r]` → `[B, C·r², H, W]` with `out[b, c·r² + i·r + j, h, w] = x[b, c, h·r+i, w·r+j]`.
    public static func pixelUnshuffle(_ x: Tensor, downscale r: Int) -> Tensor {
        precondition(x.rank == 4 && r > 0 && x.shape[2] % r == 0 && x.shape[3] % r == 0,
                     "Ops.pixelUnshuffle: height and width of \(x.shape) must be multiples of \(r)")
        let (b, c, hIn, wIn) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (h, w) = (hIn / r, wIn / r)
        let out = Tensor(uninitialized: [b, c * r * r, h, w])
        guard out.count > 0 else { return out }
        let src = SendablePointer(x.storage.pointer + x.offset)
        let dst = SendablePointer(out.storage.pointer)
        // One output row per item: (b, c·r² + i·r + j, hh).
        Parallel.forEachRange(b * c * r * r * h, minChunk: Swift.max(1, 8_192 / Swift.max(1, w))) { rows in
            for row in rows {
                let hh = row % h, plane = row / h
                let j = plane % r, i = (plane / r) % r, bc = plane / (r * r)
                let s = src.pointer + (bc * hIn + hh * r + i) * wIn + j
                let o = dst.pointer + row * w
                for ww in 0..<w { o[ww] = s[ww * r] }
            }
        }
        return out
    }
}
