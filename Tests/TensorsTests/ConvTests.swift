import Foundation
@testable import Tensors
import Testing
import TestSupport

@Suite("Conv2d")
struct ConvTests {
    @Test("conv2d matches F.conv2d on every path: im2col, pointwise, grouped, depthwise, Winograd, few output channels, strides, padding, dilation")
    func matchesTorch() throws {
        let (f, cases) = try CoreFixtures.load("conv2d")
        #expect(cases.count == 25)
        for c in cases {
            let stride = try #require(c.pair("stride")), padding = try #require(c.pair("padding"))
            let dilation = try #require(c.pair("dilation")), groups = try #require(c.int("groups"))
            let ref = try f.tensor("\(c.name).out")
            let y = Ops.conv2d(try f.tensor("\(c.name).x"), weight: try f.tensor("\(c.name).weight"),
                               bias: try CoreFixtures.optional(f, "\(c.name).bias"),
                               stride: stride, padding: padding, dilation: dilation, groups: groups)
            #expect(y.shape == ref.shape, "\(c.name)")
            if y.shape == ref.shape {
                #expect(TestSupport.relativeError(y, ref) <= CoreFixtures.tolerance, "\(c.name)")
            }
        }
    }

    @Test("the scalar stride/padding overload equals the per-axis one")
    func scalarOverloadMatchesTupleOverload() throws {
        let (f, _) = try CoreFixtures.load("conv2d")
        let x = try f.tensor("k3stride2.x"), w = try f.tensor("k3stride2.weight")
        let a = Ops.conv2d(x, weight: w, bias: nil, stride: 2, padding: 1)
        let b = Ops.conv2d(x, weight: w, bias: nil, stride: (2, 2), padding: (1, 1))
        #expect(a.scalars == b.scalars)
        #expect(TestSupport.relativeError(a, try f.tensor("k3stride2.out")) <= CoreFixtures.tolerance)
    }

    @Test("im2col tiling over output rows gives the same result as one untiled pass")
    func im2colTilingIsExact() {
        var rng = SeededValues(seed: 21)
        let x = rng.tensor([2, 6, 23, 17]), w = rng.tensor([10, 3, 3, 3]), b = rng.tensor([10])
        let g = geometry(x, w, stride: (2, 1), padding: (1, 1), groups: 2)
        let untiled = Tensor(uninitialized: [2, 10, g.hout, g.wout])
        let tiled = Tensor(uninitialized: [2, 10, g.hout, g.wout])
        Ops.im2colConv(x, w, b, g, into: untiled)
        Ops.im2colConv(x, w, b, g, into: tiled, maxColumnFloats: 1)  // one output row per tile
        #expect(TestSupport.relativeError(tiled, untiled) <= 1e-6)
        #expect(TestSupport.relativeError(Ops.conv2d(x, weight: w, bias: b, stride: (2, 1), padding: (1, 1), groups: 2), untiled) <= 1e-6)
    }

    @Test("depthwise 3×3 and 5×5 fast paths agree with im2col on large multi-chunk inputs", arguments: [3, 5])
    func depthwiseAgreesWithIm2col(kernel: Int) {
        var rng = SeededValues(seed: UInt64(30 + kernel))
        let channels = 48
        let x = rng.tensor([2, channels, 37, 45]), w = rng.tensor([channels, 1, kernel, kernel]), b = rng.tensor([channels])
        let pad = kernel / 2
        let fast = Ops.conv2d(x, weight: w, bias: b, padding: pad, groups: channels)
        let g = geometry(x, w, stride: (1, 1), padding: (pad, pad), groups: channels)
        let reference = Tensor(uninitialized: fast.shape)
        Ops.im2colConv(x, w, b, g, into: reference)
        #expect(fast.shape == [2, channels, 37, 45])
        #expect(TestSupport.relativeError(fast, reference) <= 1e-6)
    }

    @Test("Winograd F(2×2, 3×3) agrees with im2col in one band and in bands of one tile row",
          arguments: [(1, 1), (0, 0), (2, 1)])
    func winogradAgreesWithIm2col(padding: (Int, Int)) {
        var rng = SeededValues(seed: 50 + UInt64(padding.0))
        let x = rng.tensor([2, 19, 35, 41]), w = rng.tensor([23, 19, 3, 3]), b = rng.tensor([23])
        let g = geometry(x, w, stride: (1, 1), padding: padding, groups: 1)
        #expect(Winograd3x3.isWorthwhile(g))
        let reference = Tensor(uninitialized: [2, 23, g.hout, g.wout])
        Ops.im2colConv(x, w, b, g, into: reference)
        let whole = Tensor(uninitialized: reference.shape), banded = Tensor(uninitialized: reference.shape)
        Winograd3x3.conv(x, w, b, g, into: whole)
        Winograd3x3.conv(x, w, b, g, into: banded, maxBandFloats: 1)
        // Bands change the GEMM shapes, so the summation order may differ with the BLAS kernel: same tolerance.
        #expect(TestSupport.relativeError(whole, reference) <= 2e-6)
        #expect(TestSupport.relativeError(banded, reference) <= 2e-6)
        let noBias = Tensor(uninitialized: reference.shape), referenceNoBias = Tensor(uninitialized: reference.shape)
        Winograd3x3.conv(x, w, nil, g, into: noBias)
        Ops.im2colConv(x, w, nil, g, into: referenceNoBias)
        #expect(TestSupport.relativeError(noBias, referenceNoBias) <= 2e-6)
    }

    @Test("conv2d takes the Winograd path only for dense 3×3 stride-1 convolutions with enough tiles and channels")
    func winogradPathSelection() {
        func accepts(_ x: [Int], _ w: [Int], stride: Int = 1, groups: Int = 1) -> Bool {
            Winograd3x3.isWorthwhile(geometry(Tensor(zeros: x), Tensor(zeros: w), stride: (stride, stride),
                                              padding: (1, 1), groups: groups))
        }
        #expect(accepts([1, 128, 64, 64], [128, 128, 3, 3]))
        #expect(!accepts([1, 128, 64, 64], [128, 128, 3, 3], stride: 2))
        #expect(!accepts([1, 128, 64, 64], [128, 64, 3, 3], groups: 2))
        #expect(!accepts([1, 128, 64, 64], [3, 128, 3, 3]))      // DC-AE conv_out: 3 output channels
        #expect(!accepts([1, 3, 64, 64], [64, 3, 3, 3]))         // RGB input
        #expect(!accepts([1, 512, 16, 16], [512, 512, 3, 3]))    // 64 tiles: transform cost not repaid
        #expect(!accepts([1, 128, 64, 64], [128, 128, 5, 5]))
    }

    @Test("the few-output-channels path agrees with im2col across row bands, batches, padding and dilation")
    func fewOutputChannelsAgreeWithIm2col() {
        var rng = SeededValues(seed: 60)
        let x = rng.tensor([2, 9, 29, 37]), w = rng.tensor([3, 9, 3, 3]), b = rng.tensor([3])
        for (padding, dilation) in [((1, 1), 1), ((0, 2), 1), ((2, 2), 2)] {
            var g = geometry(x, w, stride: (1, 1), padding: padding, groups: 1)
            g.dilationH = dilation; g.dilationW = dilation
            g.hout = x.shape[2] + 2 * padding.0 - dilation * 2
            g.wout = x.shape[3] + 2 * padding.1 - dilation * 2
            #expect(g.fitsFewOutputChannels && !Winograd3x3.isWorthwhile(g))
            let direct = Tensor(uninitialized: [2, 3, g.hout, g.wout]), reference = Tensor(uninitialized: direct.shape)
            Ops.fewOutputChannelsConv(x, w, b, g, into: direct)
            Ops.im2colConv(x, w, b, g, into: reference)
            #expect(TestSupport.relativeError(direct, reference) <= 1e-6, "padding \(padding) dilation \(dilation)")
        }
    }

    @Test("pointwise GEMM path agrees with a direct per-pixel sum on a grouped 1×1 convolution")
    func pointwiseAgreesWithDirectSum() {
        var rng = SeededValues(seed: 40)
        let (n, cin, cout, groups, h, w) = (2, 96, 48, 3, 9, 14)
        let x = rng.tensor([n, cin, h, w]), wt = rng.tensor([cout, cin / groups, 1, 1]), b = rng.tensor([cout])
        let y = Ops.conv2d(x, weight: wt, bias: b, groups: groups)
        var ref = [Float](repeating: 0, count: n * cout * h * w)
        let (ci, co) = (cin / groups, cout / groups)
        let xs = x.scalars, ws = wt.scalars, bs = b.scalars
        for i in 0..<n { for o in 0..<cout { for p in 0..<(h * w) {
            var s = Double(bs[o])
            let g = o / co
            for k in 0..<ci { s += Double(ws[o * ci + k]) * Double(xs[((i * cin) + g * ci + k) * h * w + p]) }
            ref[(i * cout + o) * h * w + p] = Float(s)
        } } }
        #expect(TestSupport.relativeError(y, Tensor(shape: y.shape, values: ref)) <= CoreFixtures.tolerance)
    }

    private func geometry(_ x: Tensor, _ w: Tensor, stride: (Int, Int), padding: (Int, Int), groups: Int) -> ConvGeometry {
        let (kh, kw) = (w.shape[2], w.shape[3])
        return ConvGeometry(n: x.shape[0], cin: x.shape[1], h: x.shape[2], w: x.shape[3], cout: w.shape[0], kh: kh, kw: kw,
                            hout: (x.shape[2] + 2 * padding.0 - kh) / stride.0 + 1,
                            wout: (x.shape[3] + 2 * padding.1 - kw) / stride.1 + 1,
                            strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
                            dilationH: 1, dilationW: 1, groups: groups)
    }
}
