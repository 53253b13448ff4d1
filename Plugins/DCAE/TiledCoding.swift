import Foundation
import SanaGraphKit
import DiffusionModels
import Tensors

/// Memory-bounded coding of large images.
///
/// - `bands`: exact banding of the local (attention-free) stages, used by `decode`/`encode` (docs/nodes-dcae.md).
/// - `run`: diffusers' `AutoencoderDC.tiled_decode` / `tiled_encode`: overlapping tiles run separately, each blended
///   linearly with the (already blended) tile above and to its left over `blend` output pixels (`blend_v` /
///   `blend_h`), keeping the top-left `strideOut × strideOut` of each. Only the previous row of tiles is held.
enum TiledCoding {
    /// `tile_size` 0 means this: images up to 1024² pixels run whole (≈ 3 GB peak for the f32c32 decoder).
    static let autoTile = 1024

    /// Band height in image pixels (a multiple of `ratio`) for the memory-bounded path, or nil to run whole.
    /// `tileSize` N (0 = automatic = 1024) means "about N×N pixels at a time": images larger than N² pixels are
    /// processed in full-width bands of about N²/width rows.
    static func plan(height: Int, width: Int, tileSize: Int, ratio: Int) -> Int? {
        let n = tileSize > 0 ? tileSize : autoTile
        guard height * width > n * n else { return nil }
        let rows = Swift.max(ratio, (n * n / Swift.max(width, 1)) / ratio * ratio)
        return rows >= height ? nil : rows
    }

    /// Runs a purely local computation (convolutions, per-pixel norms, up/down sampling — no attention) over
    /// horizontal bands of `x`, each with `halo` extra units of context above and below, and keeps each band's core:
    /// the result equals `forward(x)` exactly, while memory is bounded by the band. Rows are counted in units of the
    /// coarser grid: `inRowsPerUnit` input rows and `outRowsPerUnit` output rows per unit (bands start on unit
    /// boundaries so strided/pixel-unshuffle steps sample the same pixels as the whole image would).
    static func bands(_ x: Tensor, unitsPerBand: Int, halo: Int, inRowsPerUnit: Int, outRowsPerUnit: Int,
                      cancel: () throws -> Void = {}, forward: (Tensor) throws -> Tensor) throws -> Tensor {
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let units = h / inRowsPerUnit
        guard unitsPerBand < units else { return try forward(x) }
        var out: Tensor? = nil
        var u0 = 0
        while u0 < units {
            try cancel()
            let u1 = Swift.min(units, u0 + unitsPerBand)
            let (r0, r1) = (Swift.max(0, u0 - halo), Swift.min(units, u1 + halo))
            let band = try forward(crop(x, y: (r0 * inRowsPerUnit)..<(r1 * inRowsPerUnit), x: 0..<w, padTo: 1))
            if out == nil { out = Tensor(uninitialized: [b, band.shape[1], units * outRowsPerUnit, band.shape[3]]) }
            let o = out!
            let (bh, bw, oh) = (band.shape[2], band.shape[3], o.shape[2])
            let skip = (u0 - r0) * outRowsPerUnit, rows = (u1 - u0) * outRowsPerUnit
            let src = SendablePointer(band.storage.pointer + band.offset), dst = SendablePointer(o.storage.pointer)
            let dstRow0 = u0 * outRowsPerUnit
            Parallel.forEachRange(b * band.shape[1], minChunk: Swift.max(1, 32_768 / Swift.max(1, rows * bw))) { planes in
                for p in planes {
                    (dst.pointer + (p * oh + dstRow0) * bw).update(from: src.pointer + (p * bh + skip) * bw, count: rows * bw)
                }
            }
            u0 = u1
        }
        return out!
    }

    /// Runs `forward` over tiles of `x` (`[B, C, H, W]`): tiles of `tileIn` start every `strideIn` input pixels,
    /// are zero-padded at the bottom/right to multiples of `padTo`, and their outputs are blended over `blend`
    /// pixels; the result is cropped to `outSize`.
    static func run(_ x: Tensor, tileIn: Int, strideIn: Int, blend: Int, strideOut: Int, padTo: Int,
                    outSize: (Int, Int), context: RunContext?, forward: (Tensor) throws -> Tensor) throws -> Tensor {
        precondition(tileIn > 0 && strideIn > 0 && strideOut > 0, "tiling: empty tile or stride")
        let (b, h, w) = (x.shape[0], x.shape[2], x.shape[3])
        let rowStarts = Array(stride(from: 0, to: h, by: strideIn))
        let colStarts = Array(stride(from: 0, to: w, by: strideIn))
        let total = rowStarts.count * colStarts.count
        var out: Tensor? = nil
        var previousRow: [Tensor] = []
        var done = 0
        for (ti, y0) in rowStarts.enumerated() {
            var row: [Tensor] = []
            for (tj, x0) in colStarts.enumerated() {
                try context?.checkCancelled()
                var tile = crop(x, y: y0..<Swift.min(h, y0 + tileIn), x: x0..<Swift.min(w, x0 + tileIn), padTo: padTo)
                tile = try forward(tile)
                if out == nil { out = Tensor(zeros: [b, tile.shape[1], outSize.0, outSize.1]) }
                if ti > 0 { blendVertical(previousRow[tj], into: tile, extent: blend) }
                if tj > 0 { blendHorizontal(row[tj - 1], into: tile, extent: blend) }
                place(tile, into: out!, y: ti * strideOut, x: tj * strideOut, maxSize: strideOut)
                row.append(tile)
                done += 1
                try context?.progress(done, of: total)
            }
            previousRow = row
        }
        return out ?? Tensor(zeros: [b, 0, outSize.0, outSize.1])
    }

    /// `x[:, :, y, x]` copied out, zero-padded at the bottom/right to multiples of `padTo` (diffusers' `F.pad`).
    static func crop(_ x: Tensor, y: Range<Int>, x xr: Range<Int>, padTo: Int) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let th = (y.count + padTo - 1) / padTo * padTo, tw = (xr.count + padTo - 1) / padTo * padTo
        let out = th == y.count && tw == xr.count ? Tensor(uninitialized: [b, c, th, tw]) : Tensor(zeros: [b, c, th, tw])
        let src = SendablePointer(x.storage.pointer + x.offset), dst = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(b * c, minChunk: Swift.max(1, 32_768 / Swift.max(1, y.count * xr.count))) { planes in
            for p in planes {
                for r in 0..<y.count {
                    (dst.pointer + (p * th + r) * tw).update(from: src.pointer + (p * h + y.lowerBound + r) * w + xr.lowerBound,
                                                             count: xr.count)
                }
            }
        }
        return out
    }

    /// diffusers `blend_v`: rows `0..<e` of `b` become `a[last e rows][y]·(1 − y/e) + b[y]·(y/e)`.
    static func blendVertical(_ a: Tensor, into b: Tensor, extent: Int) {
        let e = Swift.min(a.shape[2], b.shape[2], extent)
        guard e > 0 else { return }
        let (planes, ah, bh, w) = (b.shape[0] * b.shape[1], a.shape[2], b.shape[2], b.shape[3])
        precondition(a.shape[3] == w, "blend_v: tile widths differ")
        let pa = SendablePointer(a.storage.pointer + a.offset), pb = SendablePointer(b.storage.pointer + b.offset)
        let weights = (0..<e).map { Float(Double($0) / Double(e)) }
        let keep = (0..<e).map { Float(1 - Double($0) / Double(e)) }
        Parallel.forEachRange(planes, minChunk: Swift.max(1, 32_768 / (e * w))) { range in
            for p in range {
                for y in 0..<e {
                    let sa = pa.pointer + (p * ah + ah - e + y) * w, sb = pb.pointer + (p * bh + y) * w
                    let (k, t) = (keep[y], weights[y])
                    for x in 0..<w { sb[x] = sa[x] * k + sb[x] * t }
                }
            }
        }
    }

    /// diffusers `blend_h`: columns `0..<e` of `b` become `a[last e columns][x]·(1 − x/e) + b[x]·(x/e)`.
    static func blendHorizontal(_ a: Tensor, into b: Tensor, extent: Int) {
        let e = Swift.min(a.shape[3], b.shape[3], extent)
        guard e > 0 else { return }
        let (planes, h, aw, bw) = (b.shape[0] * b.shape[1], b.shape[2], a.shape[3], b.shape[3])
        precondition(a.shape[2] == h, "blend_h: tile heights differ")
        let pa = SendablePointer(a.storage.pointer + a.offset), pb = SendablePointer(b.storage.pointer + b.offset)
        let weights = (0..<e).map { Float(Double($0) / Double(e)) }
        let keep = (0..<e).map { Float(1 - Double($0) / Double(e)) }
        Parallel.forEachRange(planes, minChunk: Swift.max(1, 32_768 / (e * h))) { range in
            for p in range {
                for y in 0..<h {
                    let sa = pa.pointer + (p * h + y) * aw + aw - e, sb = pb.pointer + (p * h + y) * bw
                    for x in 0..<e { sb[x] = sa[x] * keep[x] + sb[x] * weights[x] }
                }
            }
        }
    }

    /// Copies the top-left `maxSize × maxSize` of `tile` into `out` at (y, x), clipped to `out`.
    static func place(_ tile: Tensor, into out: Tensor, y: Int, x: Int, maxSize: Int) {
        let (planes, th, tw) = (tile.shape[0] * tile.shape[1], tile.shape[2], tile.shape[3])
        let (oh, ow) = (out.shape[2], out.shape[3])
        let rows = Swift.min(th, maxSize, oh - y), cols = Swift.min(tw, maxSize, ow - x)
        guard rows > 0 && cols > 0 else { return }
        let src = SendablePointer(tile.storage.pointer + tile.offset), dst = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(planes, minChunk: Swift.max(1, 32_768 / (rows * cols))) { range in
            for p in range {
                for r in 0..<rows {
                    (dst.pointer + (p * oh + y + r) * ow + x).update(from: src.pointer + (p * th + r) * tw, count: cols)
                }
            }
        }
    }
}
