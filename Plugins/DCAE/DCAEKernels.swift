import Foundation
import Tensors

// DC-AE's channel shortcuts as single fused passes over NCHW tensors (each adds into a tensor the caller owns),
// parallel over output channel planes. They replace diffusers' chains of pixel (un)shuffle, repeat_interleave,
// unflatten and mean, which would each materialise a full-size temporary.

enum DCAEKernels {
    /// Planes per parallel chunk: about 32 K elements of work each.
    private static func chunk(_ plane: Int) -> Int { Swift.max(1, 32_768 / Swift.max(plane, 1)) }

    /// `out += pixel_shuffle(repeat_interleave(x, repeats, dim=1), 2)` (DCUpBlock2d shortcut):
    /// `out[c, 2Y+i, 2X+j] += x[(4c + 2i + j) / repeats, Y, X]`. `out` is `[B, C_in·repeats/4, 2H, 2W]`.
    static func addShuffledRepeat(_ out: inout Tensor, _ x: Tensor, repeats: Int) {
        let (b, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = out.shape[1]
        precondition(out.shape == [b, cin * repeats / 4, 2 * h, 2 * w] && cin * repeats == 4 * cout,
                     "DCUpBlock2d shortcut: \(x.shape) × \(repeats) does not match \(out.shape)")
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer + out.offset)
        let outPlane = 4 * h * w
        Parallel.forEachRange(b * cout, minChunk: chunk(outPlane)) { planes in
            for p in planes {
                let image = p / cout, c = p % cout
                let dst = po.pointer + p * outPlane
                for i in 0..<2 {
                    for j in 0..<2 {
                        let src = px.pointer + (image * cin + (4 * c + 2 * i + j) / repeats) * h * w
                        for y in 0..<h {
                            let s = src + y * w, d = dst + (2 * y + i) * 2 * w + j
                            for xx in 0..<w { d[2 * xx] += s[xx] }
                        }
                    }
                }
            }
        }
    }

    /// `out += pixel_unshuffle(x, 2).unflatten(1, (-1, groupSize)).mean(2)` (DCDownBlock2d shortcut):
    /// `out[o, Y, X] += mean over k < groupSize of u[o·groupSize + k, Y, X]` with `u[4c + 2i + j, Y, X] = x[c, 2Y+i, 2X+j]`.
    static func addUnshuffledGroupMean(_ out: inout Tensor, _ x: Tensor, groupSize g: Int) {
        let (b, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h / 2, w / 2)
        let cout = out.shape[1]
        precondition(h % 2 == 0 && w % 2 == 0 && out.shape == [b, cout, oh, ow] && cout * g == 4 * cin,
                     "DCDownBlock2d shortcut: \(x.shape) with groups of \(g) does not match \(out.shape)")
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer + out.offset)
        let outPlane = oh * ow
        let inv = 1 / Float(g)
        Parallel.forEachRange(b * cout, minChunk: chunk(outPlane * g)) { planes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: outPlane) { acc in
                for p in planes {
                    let image = p / cout, o = p % cout
                    acc.initialize(repeating: 0)
                    for k in 0..<g {
                        let u = o * g + k
                        let c = u / 4, i = (u % 4) / 2, j = u % 2
                        let src = px.pointer + (image * cin + c) * h * w
                        for y in 0..<oh {
                            let s = src + (2 * y + i) * w + j, a = acc.baseAddress! + y * ow
                            for xx in 0..<ow { a[xx] += s[2 * xx] }
                        }
                    }
                    let dst = po.pointer + p * outPlane
                    for q in 0..<outPlane { dst[q] += acc[q] * inv }
                }
            }
        }
    }

    /// The output of a 3×3 convolution (padding 1) of a nearest ×2 upsampled input, from `parts`, the 2×2
    /// convolution (padding 1) of the input itself to the four parities' filters (`NearestUpsampleConv`):
    /// `out[c, 2Y+i, 2X+j] = parts[(2i + j)·C + c, Y+i, X+j]`. `parts` is `[B, 4C, H+1, W+1]`, `out` `[B, C, 2H, 2W]`.
    /// With `shortcut` (`[B, C_in, H, W]`), DCUpBlock2d's shortcut is added in the same pass, as
    /// `addShuffledRepeat` would: `+ shortcut[(4c + 2i + j) / repeats, Y, X]`.
    static func interleaveParities(_ parts: Tensor, shortcut: Tensor? = nil, repeats: Int = 1) -> Tensor {
        let (b, c4, hp, wp) = (parts.shape[0], parts.shape[1], parts.shape[2], parts.shape[3])
        let (c, h, w) = (c4 / 4, hp - 1, wp - 1)
        let cin = shortcut?.shape[1] ?? 0
        if let shortcut {
            precondition(shortcut.shape == [b, cin, h, w] && cin * repeats == 4 * c,
                         "DCUpBlock2d shortcut: \(shortcut.shape) × \(repeats) does not match \(parts.shape)")
        }
        let out = Tensor(uninitialized: [b, c, 2 * h, 2 * w])
        let src = SendablePointer(parts.storage.pointer + parts.offset), dst = SendablePointer(out.storage.pointer)
        let skip = shortcut.map { SendablePointer($0.storage.pointer + $0.offset) }
        Parallel.forEachRange(b * c, minChunk: chunk(4 * h * w)) { planes in
            for p in planes {
                let image = p / c, channel = p % c
                let d = dst.pointer + p * 4 * h * w
                for i in 0..<2 {
                    let even = src.pointer + (image * c4 + (2 * i) * c + channel) * hp * wp
                    let odd = src.pointer + (image * c4 + (2 * i + 1) * c + channel) * hp * wp
                    for y in 0..<h {
                        let row = d + (2 * y + i) * 2 * w, e = even + (y + i) * wp, o = odd + (y + i) * wp + 1
                        if let skip {
                            let s0 = skip.pointer + (image * cin + (4 * channel + 2 * i) / repeats) * h * w + y * w
                            let s1 = skip.pointer + (image * cin + (4 * channel + 2 * i + 1) / repeats) * h * w + y * w
                            for x in 0..<w {
                                row[2 * x] = e[x] + s0[x]
                                row[2 * x + 1] = o[x] + s1[x]
                            }
                        } else {
                            for x in 0..<w {
                                row[2 * x] = e[x]
                                row[2 * x + 1] = o[x]
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `out += x.repeat_interleave(repeats, dim=1)` (Decoder in-shortcut): `out[c] += x[c / repeats]`.
    static func addRepeatedChannels(_ out: inout Tensor, _ x: Tensor, repeats: Int) {
        let (b, cin) = (x.shape[0], x.shape[1])
        let plane = x.count / Swift.max(1, b * cin)
        let cout = cin * repeats
        precondition(out.shape[0] == b && out.shape[1] == cout && out.count == b * cout * plane,
                     "decoder in-shortcut: \(x.shape) × \(repeats) does not match \(out.shape)")
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(b * cout, minChunk: chunk(plane)) { planes in
            for p in planes {
                let src = px.pointer + ((p / cout) * cin + (p % cout) / repeats) * plane
                let dst = po.pointer + p * plane
                for q in 0..<plane { dst[q] += src[q] }
            }
        }
    }

    /// `out += x.unflatten(1, (-1, groupSize)).mean(2)` (Encoder out-shortcut): `out[o] += mean(x[o·g ..< o·g+g])`.
    static func addGroupMean(_ out: inout Tensor, _ x: Tensor, groupSize g: Int) {
        let (b, cin) = (x.shape[0], x.shape[1])
        let plane = x.count / Swift.max(1, b * cin)
        let cout = cin / g
        precondition(cin % g == 0 && out.shape[0] == b && out.shape[1] == cout && out.count == b * cout * plane,
                     "encoder out-shortcut: \(x.shape) in groups of \(g) does not match \(out.shape)")
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer + out.offset)
        let inv = 1 / Float(g)
        Parallel.forEachRange(b * cout, minChunk: chunk(plane * g)) { planes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: plane) { acc in
                for p in planes {
                    acc.initialize(repeating: 0)
                    let src = px.pointer + ((p / cout) * cin + (p % cout) * g) * plane
                    for k in 0..<g {
                        let s = src + k * plane
                        for q in 0..<plane { acc[q] += s[q] }
                    }
                    let dst = po.pointer + p * plane
                    for q in 0..<plane { dst[q] += acc[q] * inv }
                }
            }
        }
    }

    /// `x · scale[c] + shift[c]` per channel (BatchNorm2d in eval mode).
    static func channelAffine(_ x: Tensor, scale: [Float], shift: [Float]) -> Tensor {
        let (b, c) = (x.shape[0], x.shape[1])
        let plane = x.count / Swift.max(1, b * c)
        let out = Tensor(uninitialized: x.shape)
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(b * c, minChunk: chunk(plane)) { planes in
            for p in planes {
                let (s, t) = (scale[p % c], shift[p % c])
                let src = px.pointer + p * plane, dst = po.pointer + p * plane
                for q in 0..<plane { dst[q] = src[q] * s + t }
            }
        }
        return out
    }

    /// Copies `part` `[B, g, …]` into groups `at ..< at + g` of `whole` `[B, G, …]` (same trailing shape).
    static func copyGroups(_ part: Tensor, into whole: Tensor, at group: Int) {
        let b = part.shape[0], inner = part.count / Swift.max(1, b), stride = whole.count / Swift.max(1, b)
        let per = inner / Swift.max(1, part.shape[1])
        let src = SendablePointer(part.storage.pointer + part.offset), dst = SendablePointer(whole.storage.pointer + whole.offset)
        for i in 0..<b { (dst.pointer + i * stride + group * per).update(from: src.pointer + i * inner, count: inner) }
    }

    /// GLU with SiLU gate over channels: `[B, 2C, …] → a[:, :C] · silu(a[:, C:])`.
    static func gluSiLU(_ a: Tensor) -> Tensor {
        let parts = Ops.chunk(a, 2, axis: 1)
        var gate = Ops.silu(parts[1])
        Ops.mulInPlace(&gate, parts[0])
        return gate
    }

    /// Mish in place: `x · tanh(softplus(x))`, softplus linear above 20 as in PyTorch.
    static func mishInPlace(_ x: inout Tensor) {
        let px = SendablePointer(x.storage.pointer + x.offset)
        Parallel.forEachRange(x.count, minChunk: 16_384) { range in
            for i in range {
                let v = px.pointer[i]
                let sp = v > 20 ? v : Foundation.log1p(Foundation.exp(v))
                px.pointer[i] = v * Foundation.tanh(sp)
            }
        }
    }
}
