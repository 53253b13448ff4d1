// Fused kernels for the DiT block: each replaces a chain of elementwise passes (and their fresh tensors)
// with one pass over memory. Every one computes exactly the fp32 operations of the chain it replaces, in
// the same order, so results match the unfused ops bit for bit — except the depthwise GLU: its 9-tap sums run
// in a different order than the NCHW depthwise path (≤ 1 ulp per tap), and on CPUs with AVX-512 or AVX2 + FMA
// it runs in CKernels (depthwise.c) with fused multiply-adds and its own exp, a few ulp from the unfused ops.
internal import CKernels

extension Ops {
    /// adaLN modulation after a LayerNorm without affine: `layerNorm(x) · (1 + scale) + shift`.
    ///
    /// `x` is `[B, N, D]`; `scale` and `shift` hold `B·D` values each (`[B, 1, D]` or `[B, D]`), broadcast over
    /// the N tokens. Same result as `Ops.add(Ops.mul(Ops.layerNorm(x, …), Ops.add(scale, 1)), shift)`.
    public static func layerNormModulated(_ x: Tensor, scale: Tensor, shift: Tensor, eps: Float) -> Tensor {
        precondition(x.rank == 3, "layerNormModulated: expected x [B, N, D], got \(x.shape)")
        let (b, n, d) = (x.shape[0], x.shape[1], x.shape[2])
        precondition(scale.count == b * d && shift.count == b * d,
                     "layerNormModulated: scale \(scale.shape) and shift \(shift.shape) must hold B·D = \(b * d) values")
        let out = Tensor(uninitialized: x.shape)
        guard out.count > 0 else { return out }
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        let ps = SendablePointer(scale.storage.pointer + scale.offset)
        let ph = SendablePointer(shift.storage.pointer + shift.offset)
        Parallel.forEachRange(b * n, minChunk: rowChunk(d)) { rows in
            for r in rows {
                let src = px.pointer + r * d, dst = po.pointer + r * d
                let sc = ps.pointer + (r / n) * d, sh = ph.pointer + (r / n) * d
                let mean = ReductionMath.sum(src, d) / Float(d)
                let variance = ReductionMath.sumOfSquaredDeviations(src, d, from: mean) / Float(d)
                let rstd = 1 / (variance + eps).squareRoot()
                for i in 0..<d { dst[i] = (src[i] - mean) * rstd * (sc[i] + 1) + sh[i] }
            }
        }
        return out
    }

    /// Gated residual add in place: `x += gate · y`, with `gate` (`B·D` values, `[B, 1, D]`) broadcast over the
    /// tokens of `x` and `y` (`[B, N, D]`). With `clampMagnitude`, `y` is first clamped to `±clampMagnitude`
    /// (diffusers' fp16 clip of the attention output). Only on a tensor you created and have not shared.
    public static func addGatedInPlace(_ x: inout Tensor, gate: Tensor, _ y: Tensor, clampMagnitude: Float? = nil) {
        precondition(x.rank == 3 && y.shape == x.shape, "addGatedInPlace: x \(x.shape) and y \(y.shape) must be equal [B, N, D]")
        let (b, n, d) = (x.shape[0], x.shape[1], x.shape[2])
        precondition(gate.count == b * d, "addGatedInPlace: gate \(gate.shape) must hold B·D = \(b * d) values")
        let px = SendablePointer(x.storage.pointer + x.offset), py = SendablePointer(y.storage.pointer + y.offset)
        let pg = SendablePointer(gate.storage.pointer + gate.offset)
        let limit = clampMagnitude
        Parallel.forEachRange(b * n, minChunk: Swift.max(1, elementwiseChunk / Swift.max(d, 1))) { rows in
            for r in rows {
                let dst = px.pointer + r * d, src = py.pointer + r * d, g = pg.pointer + (r / n) * d
                if let limit {
                    for i in 0..<d { dst[i] += g[i] * Swift.min(Swift.max(src[i], -limit), limit) }
                } else {
                    for i in 0..<d { dst[i] += g[i] * src[i] }
                }
            }
        }
    }

    /// A depthwise conv weight `[C, 1, kh, kw]` rearranged tap-major as `[kh·kw, C]` for the channels-last
    /// kernels (prepare once at load).
    public static func depthwiseTapsChannelsLast(_ weight: Tensor) -> Tensor {
        precondition(weight.rank == 4 && weight.shape[1] == 1, "depthwiseTapsChannelsLast: expected [C, 1, kh, kw], got \(weight.shape)")
        let c = weight.shape[0], taps = weight.shape[2] * weight.shape[3]
        return transpose(weight.reshaped([c, taps]), 0, 1)
    }

    /// GLUMBConv's middle on channels-last tokens: a depthwise 3×3 conv (stride 1, padding 1) over the
    /// `height × width` grid of `x [B, H·W, 2C]`, then the GLU `a · silu(g)` with `a, g` the first and second C
    /// channels. `taps` is `[9, 2C]` (`depthwiseTapsChannelsLast` of the `[2C, 1, 3, 3]` weight), `bias` `[2C]`.
    /// Returns `[B, H·W, C]`: the same values as `conv2d(groups: 2C)` → `chunk(2)` → `a · silu(g)` on NCHW, with
    /// no layout change and no intermediate tensor.
    ///
    /// Where CKernels has a vector path for this CPU (`KernelSelection.vectorISA`: AVX-512 or AVX2 + FMA, not with
    /// `SANAGRAPH_CPU=generic`) it runs there: this module is built for baseline x86-64, where the loop below gets
    /// neither FMA nor wide vectors.
    public static func depthwiseConv3x3GLUChannelsLast(_ x: Tensor, height: Int, width: Int, taps: Tensor,
                                                       bias: Tensor?) -> Tensor {
        let isa = Kernels.selection.vectorISA
        return depthwiseConv3x3GLUChannelsLast(x, height: height, width: width, taps: taps, bias: bias,
                                               isa: isa == .portable ? nil : isa)
    }

    /// `depthwiseConv3x3GLUChannelsLast` on a chosen kernel: the Swift loop (`isa` nil) or CKernels' code for
    /// `isa` (the caller checks the CPU has it), so tests can compare them.
    static func depthwiseConv3x3GLUChannelsLast(_ x: Tensor, height: Int, width: Int, taps: Tensor, bias: Tensor?,
                                                isa: KernelSelection.VectorISA?) -> Tensor {
        precondition(x.rank == 3 && x.shape[1] == height * width && x.shape[2] % 2 == 0,
                     "depthwiseConv3x3GLUChannelsLast: expected x [B, \(height)·\(width), 2C], got \(x.shape)")
        let (b, c2) = (x.shape[0], x.shape[2])
        let c = c2 / 2
        precondition(taps.shape == [9, c2], "depthwiseConv3x3GLUChannelsLast: taps must be [9, \(c2)], got \(taps.shape)")
        if let bias { precondition(bias.count == c2, "depthwiseConv3x3GLUChannelsLast: bias \(bias.shape) must hold \(c2) values") }
        let out = Tensor(uninitialized: [b, height * width, c])
        guard out.count > 0 else { return out }
        let px = SendablePointer(x.storage.pointer + x.offset), po = SendablePointer(out.storage.pointer)
        let pw = SendablePointer(taps.storage.pointer + taps.offset)
        let pb = bias.map { SendablePointer($0.storage.pointer + $0.offset) }
        if let isa {
            Parallel.forEachRange(b * height * width, minChunk: Swift.max(1, 4_096 / Swift.max(c, 1))) { pixels in
                sg_depthwise3x3_glu_rows(px.pointer, c2, pw.pointer, pb?.pointer, height, width, c, pixels.lowerBound,
                                         pixels.upperBound, po.pointer, c, isa.c)
            }
            return out
        }
        // Channel blocks keep both accumulators (a and gate halves) in L1 while the 9 taps stream past.
        let block = 256
        Parallel.forEachRange(b * height * width, minChunk: Swift.max(1, 4_096 / Swift.max(c, 1))) { pixels in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * block) { acc in
                let accA = acc.baseAddress!, accG = accA + block
                for p in pixels {
                    let image = p / (height * width), yx = p % (height * width)
                    let y = yx / width, xx = yx % width
                    let dst = po.pointer + p * c
                    var c0 = 0
                    while c0 < c {
                        let len = Swift.min(block, c - c0)
                        if let pb {
                            accA.update(from: pb.pointer + c0, count: len)
                            accG.update(from: pb.pointer + c + c0, count: len)
                        } else {
                            accA.update(repeating: 0, count: len)
                            accG.update(repeating: 0, count: len)
                        }
                        for dy in -1...1 {
                            let sy = y + dy
                            if sy < 0 || sy >= height { continue }
                            for dx in -1...1 {
                                let sx = xx + dx
                                if sx < 0 || sx >= width { continue }
                                let src = px.pointer + ((image * height + sy) * width + sx) * c2 + c0
                                let w = pw.pointer + ((dy + 1) * 3 + dx + 1) * c2 + c0
                                for i in 0..<len { accA[i] += src[i] * w[i] }
                                let srcG = src + c, wG = w + c
                                for i in 0..<len { accG[i] += srcG[i] * wG[i] }
                            }
                        }
                        gluStore(accA, accG, len, into: dst + c0)
                        c0 += len
                    }
                }
            }
        }
        return out
    }

    /// `dst = a · silu(g)` over `n` values, 8 lanes at a time (silu as `Ops.silu`: `g / (1 + e^{−g})`).
    @inline(__always)
    private static func gluStore(_ a: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ n: Int,
                                 into dst: UnsafeMutablePointer<Float>) {
        typealias V = SoftmaxMath.V
        var i = 0
        while i + 8 <= n {
            let gv = SoftmaxMath.load(g + i)
            SoftmaxMath.store(SoftmaxMath.load(a + i) * (gv / (1 + SoftmaxMath.exp(-gv))), dst + i)
            i += 8
        }
        if i < n {
            let gv = SoftmaxMath.loadPartial(g + i, n - i, fill: 0)
            let r = SoftmaxMath.loadPartial(a + i, n - i, fill: 0) * (gv / (1 + SoftmaxMath.exp(-gv)))
            for j in 0..<(n - i) { dst[i + j] = r[j] }
        }
    }
}
