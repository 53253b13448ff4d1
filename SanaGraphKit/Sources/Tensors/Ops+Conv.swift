// 2-D convolution (NCHW, PyTorch weight layout [out, in/groups, kh, kw]). Three paths:
// - depthwise (groups == in == out channels): direct loops over zero-padded planes, parallel over planes,
//   with unrolled 3×3 and 5×5 windows for stride 1;
// - pointwise 1×1, stride 1, no padding: one GEMM per image (per group when grouped) straight on the input;
// - dense 3×3 stride 1 over enough pixels: Winograd F(2×2, 3×3) (Ops+Winograd.swift);
// - stride 1 with at most 4 output channels (an image head such as DC-AE's conv_out): direct loops, since a GEMM
//   with m ≤ 4 runs at memory speed over a 9× larger im2col matrix;
// - everything else: im2col over tiles of output rows + one GEMM per tile and group.
// The output is pre-filled with the bias and GEMMs accumulate onto it (beta = 1), so the bias add is free.

extension Ops {
    /// `torch.nn.functional.conv2d` on `x [N, C_in, H, W]` with `weight [C_out, C_in/groups, kh, kw]` and
    /// `bias [C_out]`; the same `stride`, `padding` and `dilation` on both axes.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0,
                              dilation: Int = 1, groups: Int = 1) -> Tensor {
        conv2d(x, weight: weight, bias: bias, stride: (stride, stride), padding: (padding, padding),
               dilation: (dilation, dilation), groups: groups)
    }

    /// `torch.nn.functional.conv2d` with per-axis `(height, width)` stride, padding and dilation.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: (Int, Int),
                              dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
        precondition(x.rank == 4 && weight.rank == 4, "conv2d: expected x [N, C, H, W] and weight [O, C/groups, kh, kw], got \(x.shape) and \(weight.shape)")
        let (n, cin, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, cinPerGroup, kh, kw) = (weight.shape[0], weight.shape[1], weight.shape[2], weight.shape[3])
        precondition(groups > 0 && cin % groups == 0 && cout % groups == 0,
                     "conv2d: \(cin) input and \(cout) output channels must both divide into \(groups) groups")
        precondition(cinPerGroup * groups == cin, "conv2d: weight \(weight.shape) expects \(cinPerGroup * groups) input channels, x \(x.shape) has \(cin)")
        precondition(kh > 0 && kw > 0, "conv2d: empty kernel in weight \(weight.shape)")
        precondition(stride.0 > 0 && stride.1 > 0 && dilation.0 > 0 && dilation.1 > 0 && padding.0 >= 0 && padding.1 >= 0,
                     "conv2d: stride and dilation must be positive and padding non-negative")
        if let bias { precondition(bias.count == cout, "conv2d: bias \(bias.shape) does not match \(cout) output channels") }
        // Span of the input (with padding) past the first kernel window; negative means the kernel does not fit.
        let spanH = h + 2 * padding.0 - dilation.0 * (kh - 1) - 1
        let spanW = w + 2 * padding.1 - dilation.1 * (kw - 1) - 1
        let hout = spanH / stride.0 + 1, wout = spanW / stride.1 + 1
        precondition(spanH >= 0 && spanW >= 0, "conv2d: kernel \(kh)×\(kw) (dilation \(dilation)) does not fit input \(h)×\(w) with padding \(padding)")

        let geometry = ConvGeometry(n: n, cin: cin, h: h, w: w, cout: cout, kh: kh, kw: kw, hout: hout, wout: wout,
                                    strideH: stride.0, strideW: stride.1, padH: padding.0, padW: padding.1,
                                    dilationH: dilation.0, dilationW: dilation.1, groups: groups)
        let out = Tensor(uninitialized: [n, cout, hout, wout])
        if groups == cin && cout == cin {
            depthwiseConv(x, weight, bias, geometry, into: out)
        } else if kh == 1 && kw == 1 && stride == (1, 1) && padding == (0, 0) {
            pointwiseConv(x, weight, bias, geometry, into: out)
        } else if Winograd3x3.isWorthwhile(geometry) {
            Winograd3x3.conv(x, weight, bias, geometry, into: out)
        } else if geometry.fitsFewOutputChannels {
            fewOutputChannelsConv(x, weight, bias, geometry, into: out)
        } else {
            im2colConv(x, weight, bias, geometry, into: out)
        }
        return out
    }

    // MARK: Paths

    /// 1×1 convolution: per image and group, `out[Cout/g, HW] = W[Cout/g, Cin/g] · x[Cin/g, HW]`.
    private static func pointwiseConv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, into out: Tensor) {
        fillChannels(out, bias: bias)
        let plane = g.h * g.w
        let cinG = g.cin / g.groups, coutG = g.cout / g.groups
        let px = x.storage.pointer + x.offset, pw = weight.storage.pointer + weight.offset, po = out.storage.pointer
        for image in 0..<g.n {
            for group in 0..<g.groups {
                parallelSgemm(transposeA: false, transposeB: false, m: coutG, n: plane, k: cinG,
                              a: pw + group * coutG * cinG, lda: cinG,
                              b: px + (image * g.cin + group * cinG) * plane, ldb: plane, beta: 1,
                              c: po + (image * g.cout + group * coutG) * plane, ldc: plane)
            }
        }
    }

    /// General convolution: im2col of a tile of output rows into `[Cin/g·kh·kw, rows·W_out]`, then a GEMM per
    /// group. Tiles bound the column buffer to about `maxColumnFloats` (a full 3×3 im2col of a 1024² image
    /// with 128 channels would need 4.5 GiB). 8 Mi floats (32 MiB): with 2 Mi, a 1024-wide 128-channel 3×3 conv ran one
    /// output row per GEMM and DC-AE decode at 1024 px took 81 s instead of 60–66 s.
    static func im2colConv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, into out: Tensor,
                           maxColumnFloats: Int = 1 << 23) {
        fillChannels(out, bias: bias)
        let cinG = g.cin / g.groups, coutG = g.cout / g.groups
        let kDim = cinG * g.kh * g.kw
        let outPlane = g.hout * g.wout
        let rowsPerTile = Swift.max(1, Swift.min(g.hout, maxColumnFloats / Swift.max(1, kDim * g.wout)))
        let columns = TensorStorage(uninitializedCount: kDim * rowsPerTile * g.wout)
        let px = x.storage.pointer + x.offset, pw = weight.storage.pointer + weight.offset, po = out.storage.pointer
        let input = SendablePointer(px), col = SendablePointer(columns.pointer)
        for image in 0..<g.n {
            for group in 0..<g.groups {
                var oy0 = 0
                while oy0 < g.hout {
                    let rows = Swift.min(rowsPerTile, g.hout - oy0)
                    let tileWidth = rows * g.wout
                    let firstChannel = image * g.cin + group * cinG
                    let tileStart = oy0
                    Parallel.forEachRange(kDim, minChunk: Swift.max(1, 8_192 / tileWidth)) { kRange in
                        for k in kRange {
                            let kx = k % g.kw, ky = (k / g.kw) % g.kh, ci = k / (g.kw * g.kh)
                            let plane = input.pointer + (firstChannel + ci) * g.h * g.w
                            im2colRow(plane, g, ky: ky, kx: kx, firstOutputRow: tileStart, rows: rows,
                                      into: col.pointer + k * tileWidth)
                        }
                    }
                    parallelSgemm(transposeA: false, transposeB: false, m: coutG, n: tileWidth, k: kDim,
                                  a: pw + group * coutG * kDim, lda: kDim, b: columns.pointer, ldb: tileWidth, beta: 1,
                                  c: po + (image * g.cout + group * coutG) * outPlane + oy0 * g.wout, ldc: outPlane)
                    oy0 += rows
                }
            }
        }
        withExtendedLifetime(columns) {}
    }

    /// One im2col row: for kernel tap (ky, kx) of one input plane, the input value under every output pixel
    /// of the tile (zero where the tap falls in the padding).
    @inline(__always)
    private static func im2colRow(_ plane: UnsafePointer<Float>, _ g: ConvGeometry, ky: Int, kx: Int,
                                  firstOutputRow: Int, rows: Int, into dst: UnsafeMutablePointer<Float>) {
        let (lo, hi) = g.validOutputColumns(kx: kx)
        let xOffset = kx * g.dilationW - g.padW
        for r in 0..<rows {
            let d = dst + r * g.wout
            let iy = (firstOutputRow + r) * g.strideH - g.padH + ky * g.dilationH
            guard iy >= 0 && iy < g.h && lo < hi else {
                d.update(repeating: 0, count: g.wout)
                continue
            }
            let src = plane + iy * g.w
            for ox in 0..<lo { d[ox] = 0 }
            if g.strideW == 1 {
                (d + lo).update(from: src + lo + xOffset, count: hi - lo)
            } else {
                for ox in lo..<hi { d[ox] = src[ox * g.strideW + xOffset] }
            }
            for ox in hi..<g.wout { d[ox] = 0 }
        }
    }

    /// Depthwise convolution (one filter per channel), parallel over the N·C channel planes. Each plane is
    /// first copied into a zero-padded scratch plane so the inner loops need no bounds checks; 3×3 and 5×5
    /// with stride 1 then compute every output pixel in one pass over its kernel window.
    static func depthwiseConv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, into out: Tensor) {
        let px = SendablePointer(x.storage.pointer + x.offset)
        let pw = SendablePointer(weight.storage.pointer + weight.offset)
        let po = SendablePointer(out.storage.pointer)
        let b = bias?.scalars
        let taps = g.kh * g.kw
        let inPlane = g.h * g.w, outPlane = g.hout * g.wout
        // Padded rows must reach the last tap of the last output (padding may exceed what is read).
        let paddedH = Swift.max(g.h + 2 * g.padH, (g.hout - 1) * g.strideH + (g.kh - 1) * g.dilationH + 1)
        let paddedW = Swift.max(g.w + 2 * g.padW, (g.wout - 1) * g.strideW + (g.kw - 1) * g.dilationW + 1)
        Parallel.forEachRange(g.n * g.cin, minChunk: Swift.max(1, 8_192 / (outPlane * taps))) { planes in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: paddedH * paddedW) { scratch in
                let padded = scratch.baseAddress!
                padded.update(repeating: 0, count: paddedH * paddedW)  // borders stay zero for every plane
                for p in planes {
                    let src = px.pointer + p * inPlane
                    for y in 0..<g.h { (padded + (y + g.padH) * paddedW + g.padW).update(from: src + y * g.w, count: g.w) }
                    let channel = p % g.cin
                    depthwisePlane(padded, width: paddedW, weights: pw.pointer + channel * taps,
                                   bias: b?[channel] ?? 0, g, into: po.pointer + p * outPlane)
                }
            }
        }
    }

    @inline(__always)
    private static func depthwisePlane(_ padded: UnsafePointer<Float>, width pw: Int, weights k: UnsafePointer<Float>,
                                       bias: Float, _ g: ConvGeometry, into dst: UnsafeMutablePointer<Float>) {
        let unitStep = g.strideW == 1 && g.dilationH == 1 && g.dilationW == 1
        for oy in 0..<g.hout {
            let o = dst + oy * g.wout
            let r0 = padded + oy * g.strideH * pw
            if unitStep && g.kh == 3 && g.kw == 3 {
                let r1 = r0 + pw, r2 = r1 + pw
                let (a0, a1, a2, b0, b1, b2, c0, c1, c2) = (k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8])
                for x in 0..<g.wout {
                    var s = bias + a0 * r0[x] + a1 * r0[x + 1] + a2 * r0[x + 2]
                    s += b0 * r1[x] + b1 * r1[x + 1] + b2 * r1[x + 2]
                    s += c0 * r2[x] + c1 * r2[x + 1] + c2 * r2[x + 2]
                    o[x] = s
                }
            } else if unitStep && g.kh == 5 && g.kw == 5 {
                o.update(repeating: bias, count: g.wout)
                for ky in 0..<5 {
                    let r = r0 + ky * pw, w = k + ky * 5
                    let (w0, w1, w2, w3, w4) = (w[0], w[1], w[2], w[3], w[4])
                    for x in 0..<g.wout {
                        o[x] += w0 * r[x] + w1 * r[x + 1] + w2 * r[x + 2] + w3 * r[x + 3] + w4 * r[x + 4]
                    }
                }
            } else {
                o.update(repeating: bias, count: g.wout)
                for ky in 0..<g.kh {
                    let r = r0 + ky * g.dilationH * pw
                    for kx in 0..<g.kw {
                        let wv = k[ky * g.kw + kx], off = kx * g.dilationW
                        if g.strideW == 1 {
                            for x in 0..<g.wout { o[x] += wv * r[x + off] }
                        } else {
                            for x in 0..<g.wout { o[x] += wv * r[x * g.strideW + off] }
                        }
                    }
                }
            }
        }
    }

    /// Stride-1, ungrouped convolution to at most 4 output channels, parallel over bands of output rows: per
    /// input channel, the band's input rows are copied into a zero-padded scratch and every output channel
    /// accumulates its kh·kw taps along whole rows (the accumulating output rows stay in cache).
    static func fewOutputChannelsConv(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ g: ConvGeometry, into out: Tensor) {
        fillChannels(out, bias: bias)
        let px = SendablePointer(x.storage.pointer + x.offset)
        let pw = SendablePointer(weight.storage.pointer + weight.offset)
        let po = SendablePointer(out.storage.pointer)
        let taps = g.kh * g.kw, inPlane = g.h * g.w, outPlane = g.hout * g.wout
        let paddedW = g.wout + (g.kw - 1) * g.dilationW
        let bandRows = 8
        let bands = (g.hout + bandRows - 1) / bandRows
        Parallel.forEachRange(g.n * bands, minChunk: 1) { work in
            let scratchRows = bandRows + (g.kh - 1) * g.dilationH
            withUnsafeTemporaryAllocation(of: Float.self, capacity: scratchRows * paddedW) { scratch in
                let padded = scratch.baseAddress!
                for item in work {
                    let image = item / bands, oy0 = (item % bands) * bandRows
                    let rows = Swift.min(bandRows, g.hout - oy0)
                    let inputRows = rows + (g.kh - 1) * g.dilationH
                    for ci in 0..<g.cin {
                        let plane = px.pointer + (image * g.cin + ci) * inPlane
                        for r in 0..<inputRows {
                            let iy = oy0 + r - g.padH, dst = padded + r * paddedW
                            dst.update(repeating: 0, count: paddedW)
                            // paddedW = w + 2·padW: the row sits at column padW.
                            if iy >= 0 && iy < g.h { (dst + g.padW).update(from: plane + iy * g.w, count: g.w) }
                        }
                        for co in 0..<g.cout {
                            let k = pw.pointer + (co * g.cin + ci) * taps
                            let o = po.pointer + (image * g.cout + co) * outPlane + oy0 * g.wout
                            for r in 0..<rows {
                                let dst = o + r * g.wout
                                for ky in 0..<g.kh {
                                    let src = padded + (r + ky * g.dilationH) * paddedW
                                    if g.kw == 3 && g.dilationW == 1 {
                                        let (a, b, c) = (k[ky * 3], k[ky * 3 + 1], k[ky * 3 + 2])
                                        for xx in 0..<g.wout { dst[xx] += a * src[xx] + b * src[xx + 1] + c * src[xx + 2] }
                                    } else {
                                        for kx in 0..<g.kw {
                                            let wv = k[ky * g.kw + kx], s = src + kx * g.dilationW
                                            for xx in 0..<g.wout { dst[xx] += wv * s[xx] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes `bias[c]` (or 0) into every output plane.
    private static func fillChannels(_ out: Tensor, bias: Tensor?) {
        let channels = out.shape[1], plane = out.shape[2] * out.shape[3]
        let po = SendablePointer(out.storage.pointer + out.offset)
        let b = bias?.scalars
        Parallel.forEachRange(out.shape[0] * channels, minChunk: Swift.max(1, 32_768 / Swift.max(plane, 1))) { planes in
            for p in planes { (po.pointer + p * plane).update(repeating: b?[p % channels] ?? 0, count: plane) }
        }
    }
}

/// Sizes of one conv2d call.
struct ConvGeometry: Sendable {
    var n, cin, h, w, cout, kh, kw, hout, wout: Int
    var strideH, strideW, padH, padW, dilationH, dilationW, groups: Int

    /// Whether `fewOutputChannelsConv` applies: stride 1, one group, at most 4 output channels.
    var fitsFewOutputChannels: Bool { strideH == 1 && strideW == 1 && groups == 1 && cout <= 4 }

    /// Output columns `lo..<hi` for which kernel column `kx` reads inside the input row.
    @inline(__always)
    func validOutputColumns(kx: Int) -> (Int, Int) {
        let offset = kx * dilationW - padW  // input column = ox·stride + offset
        let lo = offset >= 0 ? 0 : (-offset + strideW - 1) / strideW
        let last = w - 1 - offset  // ox·stride ≤ last
        let hi = last < 0 ? 0 : Swift.min(wout, last / strideW + 1)
        return (Swift.min(lo, hi), hi)
    }
}
