import SanaGraphKit
import DiffusionModels
import Tensors

/// Hyper-parameters of an RRDBNet (ESRGAN / Real-ESRGAN generator), as inferred from its weights.
public struct RRDBNetConfig: Sendable, Equatable {
    /// Output pixels per input pixel along each side: 4, 2 or 1.
    public var scale: Int
    public var numFeat: Int
    public var numBlock: Int
    public var numGrowCh: Int
    public var numInCh: Int
    public var numOutCh: Int

    public init(scale: Int, numFeat: Int, numBlock: Int, numGrowCh: Int, numInCh: Int = 3, numOutCh: Int = 3) {
        self.scale = scale
        self.numFeat = numFeat
        self.numBlock = numBlock
        self.numGrowCh = numGrowCh
        self.numInCh = numInCh
        self.numOutCh = numOutCh
    }

    /// Scale 2 and 1 models see the input pixel-unshuffled by this factor (Real-ESRGAN's trick for reusing the
    /// x4 body): conv_first then takes 3·factor² channels.
    public var unshuffle: Int { scale == 4 ? 1 : 4 / scale }
}

/// A 3×3 convolution (padding 1), its filter prepared for this CPU's kernels at the load's precision.
struct Conv3x3: Sendable {
    /// nil only on a collecting store (the key set pass).
    var conv: ConvWeight!
    /// Declares `name.weight [out, in, 3, 3]` and `name.bias [out]`.
    init(_ w: WeightStore, _ name: String, in cin: Int, out cout: Int) {
        conv = w.conv(name + ".weight", [cout, cin, 3, 3], bias: w(name + ".bias", [cout]), padding: 1)
    }
}

/// RRDBNet following Real-ESRGAN's `basicsr.archs.rrdbnet_arch.RRDBNet` ("new-arch" parameter names):
///
///     feat = conv_first(pixel_unshuffle(x))            # unshuffle only for scale 2 / 1
///     feat = feat + conv_body(body(feat))              # body = num_block RRDBs
///     feat = lrelu(conv_up1(nearest2x(feat)))
///     feat = lrelu(conv_up2(nearest2x(feat)))
///     out  = conv_last(lrelu(conv_hr(feat)))
///
/// where an RRDB is three residual dense blocks (five convs with dense concatenation, output · 0.2 + input), itself
/// scaled by 0.2 and added to its input, and lrelu is LeakyReLU(0.2).
public final class RRDBNet: UpscaleModel, @unchecked Sendable {
    public let config: RRDBNetConfig
    let convFirst: Conv3x3
    /// body[block] = the 15 convs of its three dense blocks (rdb1.conv1 … rdb3.conv5)
    let body: [[Conv3x3]]
    let convBody: Conv3x3
    let convUp1: Conv3x3
    let convUp2: Conv3x3
    let convHR: Conv3x3
    let convLast: Conv3x3

    init(config: RRDBNetConfig, convFirst: Conv3x3, body: [[Conv3x3]], convBody: Conv3x3, convUp1: Conv3x3,
         convUp2: Conv3x3, convHR: Conv3x3, convLast: Conv3x3) {
        self.config = config
        self.convFirst = convFirst
        self.body = body
        self.convBody = convBody
        self.convUp1 = convUp1
        self.convUp2 = convUp2
        self.convHR = convHR
        self.convLast = convLast
    }

    public var scale: Int { config.scale }

    public var residentBytes: Int {
        var all = [convFirst, convBody, convUp1, convUp2, convHR, convLast]
        for block in body { all += block }
        return all.reduce(0) { $0 + $1.conv.byteCount }
    }

    /// The raw network output for `x` [1, 3, H, W] (H and W multiples of `config.unshuffle`), unclamped.
    public func forward(_ x: Tensor) -> Tensor {
        precondition(x.rank == 4 && x.shape[0] == 1 && x.shape[1] == config.numInCh,
                     "RRDBNet.forward: expected [1, \(config.numInCh), H, W], got \(x.shape)")
        let input = config.unshuffle > 1 ? Ops.pixelUnshuffle(x, downscale: config.unshuffle) : x
        let feat = conv(input, convFirst)
        var trunk = feat
        for block in body { trunk = rrdb(trunk, block) }
        var f = conv(trunk, convBody)
        addScaled(into: f, f, 1, feat)  // feat + conv_body(body(feat)), in place
        f = Ops.leakyReLU(conv(Self.upsampleNearest2x(f), convUp1), negativeSlope: 0.2)
        f = Ops.leakyReLU(conv(Self.upsampleNearest2x(f), convUp2), negativeSlope: 0.2)
        return conv(Ops.leakyReLU(conv(f, convHR), negativeSlope: 0.2), convLast)
    }

    public func upscale(_ image: Tensor, tileSize: Int, overlap: Int, context: RunContext) throws -> Tensor {
        try Tiling.upscale(image, model: self, tileSize: tileSize, overlap: overlap, context: context)
    }

    private func conv(_ x: Tensor, _ c: Conv3x3) -> Tensor { Ops.conv2d(x, c.conv) }

    /// The precision the convolutions compute at.
    public var precision: Precision { convFirst.conv.precision }
    /// The kernel running them.
    public var kernel: String { convBody.conv.kernel }

    /// RRDB: three dense blocks, then out · 0.2 + x.
    private func rrdb(_ x: Tensor, _ rdbs: [Conv3x3]) -> Tensor {
        var out = x
        for r in 0..<3 { out = denseBlock(out, Array(rdbs[(r * 5)..<(r * 5 + 5)])) }
        let result = Tensor(uninitialized: x.shape)
        addScaled(into: result, out, 0.2, x)
        return result
    }

    /// Residual dense block. The concatenations cat(x, x1, …) are prefixes of one buffer [1, nf + 4·gc, H, W],
    /// so each conv reads a contiguous view instead of a fresh copy.
    private func denseBlock(_ x: Tensor, _ convs: [Conv3x3]) -> Tensor {
        let (h, w) = (x.shape[2], x.shape[3])
        let nf = config.numFeat, gc = config.numGrowCh
        let plane = h * w
        let dense = Tensor(uninitialized: [1, nf + 4 * gc, h, w])
        dense.storage.pointer.update(from: x.storage.pointer + x.offset, count: nf * plane)
        for i in 0..<4 {
            let view = Tensor(storage: dense.storage, shape: [1, nf + i * gc, h, w])
            let y = Ops.leakyReLU(conv(view, convs[i]), negativeSlope: 0.2)
            (dense.storage.pointer + (nf + i * gc) * plane).update(from: y.storage.pointer + y.offset, count: gc * plane)
        }
        let x5 = conv(dense, convs[4])
        let out = Tensor(uninitialized: x.shape)
        addScaled(into: out, x5, 0.2, x)
        return out
    }

    /// out = a · s + b (elementwise; `out` may alias `a`).
    private func addScaled(into out: Tensor, _ a: Tensor, _ s: Float, _ b: Tensor) {
        let n = a.count
        let pa = SendablePointer(a.storage.pointer + a.offset)
        let pb = SendablePointer(b.storage.pointer + b.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(n, minChunk: 65_536) { range in
            for i in range { po.pointer[i] = pa.pointer[i] * s + pb.pointer[i] }
        }
    }

    /// `F.interpolate(x, scale_factor=2, mode="nearest")`.
    static func upsampleNearest2x(_ x: Tensor) -> Tensor {
        let (b, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let out = Tensor(uninitialized: [b, c, 2 * h, 2 * w])
        let src = SendablePointer(x.storage.pointer + x.offset)
        let dst = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(b * c * h, minChunk: 64) { rows in
            for row in rows {
                let line = src.pointer + row * w
                let o0 = dst.pointer + row * 4 * w
                for j in 0..<w {
                    let v = line[j]
                    o0[2 * j] = v
                    o0[2 * j + 1] = v
                }
                (o0 + 2 * w).update(from: o0, count: 2 * w)
            }
        }
        return out
    }
}
