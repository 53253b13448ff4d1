import SanaGraphKit
import DiffusionModels
import Tensors

/// Runs an RRDBNet over an image in tiles so memory stays bounded by the tile size, not the image size.
///
/// The image is cut into tiles of `tileSize` input pixels; each is run with `overlap` extra pixels of context on
/// every side (clamped at the image border) and only its core is kept, so seams see real neighbours (Real-ESRGAN's
/// `tile_pad` scheme). Images that fit in one tile run untiled. Sizes that are not multiples of the model's
/// unshuffle factor are padded by reflection and cropped back; tile and overlap are rounded up to that factor.
enum Tiling {
    static func upscale(_ image: Tensor, model: RRDBNet, tileSize: Int, overlap: Int, context: RunContext) throws -> Tensor {
        let (batch, h, w) = (image.shape[0], image.shape[2], image.shape[3])
        let s = model.scale
        let out = Tensor(uninitialized: [batch, 3, h * s, w * s])
        // Tiles must start on the model's pixel-unshuffle grid (x2: even, x1: multiples of 4) so each tile groups
        // pixels exactly as the whole image would; round tile and overlap up to that grid.
        let m = model.config.unshuffle
        let tile = tileSize <= 0 ? max(h, w) : (tileSize + m - 1) / m * m
        let overlap = (max(overlap, 0) + m - 1) / m * m
        let tilesY = (h + tile - 1) / tile, tilesX = (w + tile - 1) / tile
        let total = batch * tilesY * tilesX
        var done = 0
        for b in 0..<batch {
            let item = Tensor(storage: image.storage, shape: [1, 3, h, w], offset: image.offset + b * 3 * h * w)
            for ty in 0..<tilesY {
                for tx in 0..<tilesX {
                    try context.checkCancelled()
                    let (y0, y1) = (ty * tile, min(h, (ty + 1) * tile))
                    let (x0, x1) = (tx * tile, min(w, (tx + 1) * tile))
                    let (py0, py1) = (max(0, y0 - overlap), min(h, y1 + overlap))
                    let (px0, px1) = (max(0, x0 - overlap), min(w, x1 + overlap))
                    let input = crop(item, y: py0..<py1, x: px0..<px1)
                    let result = forwardPadded(input, model: model)
                    // Copy the core of the result into place, clamped to [0, 1] like Real-ESRGAN's output.
                    let rh = (py1 - py0) * s, rw = (px1 - px0) * s
                    let oy = (y0 - py0) * s, ox = (x0 - px0) * s
                    let ch = (y1 - y0) * s, cw = (x1 - x0) * s
                    let src = result.storage.pointer + result.offset
                    let dst = out.storage.pointer + b * 3 * h * s * w * s
                    for c in 0..<3 {
                        for yy in 0..<ch {
                            let line = src + (c * rh + oy + yy) * rw + ox
                            let o = dst + (c * h * s + y0 * s + yy) * (w * s) + x0 * s
                            for xx in 0..<cw { o[xx] = min(max(line[xx], 0), 1) }
                        }
                    }
                    done += 1
                    try context.progress(done, of: total)
                }
            }
        }
        return out
    }

    /// The model's output for any size: reflect-pads H and W to multiples of the unshuffle factor, then crops.
    static func forwardPadded(_ x: Tensor, model: RRDBNet) -> Tensor {
        let m = model.config.unshuffle
        let (h, w) = (x.shape[2], x.shape[3])
        let (ph, pw) = ((m - h % m) % m, (m - w % m) % m)
        if ph == 0 && pw == 0 { return model.forward(x) }
        let padded = Tensor(uninitialized: [1, 3, h + ph, w + pw])
        let src = x.storage.pointer + x.offset
        let dst = padded.storage.pointer
        // Reflection without repeating the edge (torch 'reflect'); falls back to the edge for 1-pixel images.
        func reflect(_ i: Int, _ n: Int) -> Int { i < n ? i : max(0, 2 * (n - 1) - i) }
        for c in 0..<3 {
            for y in 0..<(h + ph) {
                let sy = reflect(y, h)
                for xx in 0..<(w + pw) { dst[(c * (h + ph) + y) * (w + pw) + xx] = src[(c * h + sy) * w + reflect(xx, w)] }
            }
        }
        let full = model.forward(padded)
        let s = model.scale
        return crop(full, y: 0..<(h * s), x: 0..<(w * s))
    }

    /// A copy of x[:, :, y, x] for a [1, C, H, W] tensor.
    static func crop(_ t: Tensor, y: Range<Int>, x: Range<Int>) -> Tensor {
        let (c, h, w) = (t.shape[1], t.shape[2], t.shape[3])
        if y == 0..<h && x == 0..<w { return t }
        let out = Tensor(uninitialized: [1, c, y.count, x.count])
        let src = t.storage.pointer + t.offset
        let dst = out.storage.pointer
        for ch in 0..<c {
            for (i, yy) in y.enumerated() {
                (dst + (ch * y.count + i) * x.count).update(from: src + (ch * h + yy) * w + x.lowerBound, count: x.count)
            }
        }
        return out
    }
}
