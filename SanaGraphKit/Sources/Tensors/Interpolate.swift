// torch.nn.functional.interpolate on NCHW tensors: nearest (legacy), nearest-exact, bilinear and bicubic
// (A = -0.75), with align_corners, no antialias. Index and weight arithmetic is done in Float in the same
// order as PyTorch's CPU kernels (aten/src/ATen/native/UpSample.h, cpu/UpSampleKernel.cpp), so sampling
// positions match bit for bit and values to float rounding.

import Foundation

/// Resampling filter for `Ops.interpolate`, named like PyTorch's `mode`.
public enum InterpolationMode: String, Sendable, CaseIterable {
    /// torch "nearest": `src = min(floor(dst·scale), in-1)` (the legacy, shifted rule).
    case nearest
    /// torch "nearest-exact": `src = min(floor((dst+0.5)·scale), in-1)`.
    case nearestExact = "nearest-exact"
    case bilinear
    /// Keys cubic convolution with A = -0.75, border pixels replicated.
    case bicubic
}

/// Per output coordinate: the input indices and weights of one axis.
private struct AxisTaps {
    var index: [Int]   // taps × output size, row-major by output position
    var weight: [Float]
    let taps: Int
}

extension Ops {
    /// Resizes `x` (`[B, C, H, W]`) to `size = (height, width)` like
    /// `F.interpolate(x, size=size, mode=mode, align_corners=alignCorners)`.
    public static func interpolate(
        _ x: Tensor, size: (Int, Int), mode: InterpolationMode, alignCorners: Bool = false
    ) -> Tensor {
        resample(x, size: size, scales: nil, mode: mode, alignCorners: alignCorners)
    }

    /// Resizes by `scaleFactor = (height, width)` like `F.interpolate(x, scale_factor=..., mode=...)`: the
    /// output is `floor(in·factor)` and, as in PyTorch (recompute_scale_factor unset), sampling uses
    /// `1/factor` rather than `in/out`.
    public static func interpolate(
        _ x: Tensor, scaleFactor: (Double, Double), mode: InterpolationMode, alignCorners: Bool = false
    ) -> Tensor {
        precondition(x.rank == 4 && scaleFactor.0 > 0 && scaleFactor.1 > 0,
                     "Ops.interpolate: need a [B, C, H, W] tensor and positive scale factors, got \(x.shape), \(scaleFactor)")
        let size = (Int((Double(x.shape[2]) * scaleFactor.0).rounded(.down)),
                    Int((Double(x.shape[3]) * scaleFactor.1).rounded(.down)))
        return resample(x, size: size, scales: scaleFactor, mode: mode, alignCorners: alignCorners)
    }

    /// Same factor on both axes.
    public static func interpolate(
        _ x: Tensor, scaleFactor: Double, mode: InterpolationMode, alignCorners: Bool = false
    ) -> Tensor {
        interpolate(x, scaleFactor: (scaleFactor, scaleFactor), mode: mode, alignCorners: alignCorners)
    }

    private static func resample(
        _ x: Tensor, size: (Int, Int), scales: (Double, Double)?, mode: InterpolationMode, alignCorners: Bool
    ) -> Tensor {
        precondition(x.rank == 4, "Ops.interpolate: need a [B, C, H, W] tensor, got \(x.shape)")
        precondition(size.0 > 0 && size.1 > 0, "Ops.interpolate: output size \(size) must be positive")
        precondition(!(alignCorners && (mode == .nearest || mode == .nearestExact)),
                     "Ops.interpolate: alignCorners only applies to bilinear and bicubic")
        let (b, c, hIn, wIn) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(hIn > 0 && wIn > 0, "Ops.interpolate: empty input \(x.shape)")
        let (hOut, wOut) = size
        let ty = taps(mode, inSize: hIn, outSize: hOut, scale: scales?.0, alignCorners: alignCorners)
        let tx = taps(mode, inSize: wIn, outSize: wOut, scale: scales?.1, alignCorners: alignCorners)
        let out = Tensor(uninitialized: [b, c, hOut, wOut])
        let src = SendablePointer(x.storage.pointer + x.offset)
        let dst = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(b * c * hOut, minChunk: Swift.max(1, 4_096 / (wOut * tx.taps * ty.taps))) { rows in
            ty.index.withUnsafeBufferPointer { yi in
            ty.weight.withUnsafeBufferPointer { yw in
            tx.index.withUnsafeBufferPointer { xi in
            tx.weight.withUnsafeBufferPointer { xw in
                for row in rows {
                    let oy = row % hOut, plane = row / hOut
                    let p = src.pointer + plane * hIn * wIn
                    let o = dst.pointer + row * wOut
                    if ty.taps == 1 && tx.taps == 1 {
                        let line = p + yi[oy] * wIn
                        for ox in 0..<wOut { o[ox] = line[xi[ox]] }
                        continue
                    }
                    if ty.taps == 2 && tx.taps == 2 {
                        // Bilinear, unrolled (same operations and order as the general loop below).
                        let l0 = p + yi[2 * oy] * wIn, l1 = p + yi[2 * oy + 1] * wIn
                        let wy0 = yw[2 * oy], wy1 = yw[2 * oy + 1]
                        for ox in 0..<wOut {
                            let x0 = xi[2 * ox], x1 = xi[2 * ox + 1], w0 = xw[2 * ox], w1 = xw[2 * ox + 1]
                            var t0 = l0[x0] * w0
                            t0 += l0[x1] * w1
                            var t1 = l1[x0] * w0
                            t1 += l1[x1] * w1
                            o[ox] = t0 * wy0 + t1 * wy1
                        }
                        continue
                    }
                    for ox in 0..<wOut {
                        // PyTorch order: for each y tap, t = Σ_x w_x·in (first term by product), then Σ t·w_y.
                        var acc: Float = 0
                        for jy in 0..<ty.taps {
                            let line = p + yi[oy * ty.taps + jy] * wIn
                            var t = line[xi[ox * tx.taps]] * xw[ox * tx.taps]
                            for jx in 1..<tx.taps {
                                t += line[xi[ox * tx.taps + jx]] * xw[ox * tx.taps + jx]
                            }
                            acc = jy == 0 ? t * yw[oy * ty.taps] : acc + t * yw[oy * ty.taps + jy]
                        }
                        o[ox] = acc
                    }
                }
            }}}}
        }
        return out
    }

    /// Source indices and weights along one axis.
    private static func taps(
        _ mode: InterpolationMode, inSize: Int, outSize: Int, scale: Double?, alignCorners: Bool
    ) -> AxisTaps {
        // compute_scales_value: 1/scale_factor when given, else in/out (in Float).
        let plainScale: Float = scale.map { Float(1.0 / $0) } ?? (Float(inSize) / Float(outSize))
        // area_pixel_compute_scale for the linear modes.
        let areaScale: Float = alignCorners
            ? (outSize > 1 ? Float(inSize - 1) / Float(outSize - 1) : 0)
            : plainScale
        func sourceIndex(_ i: Int, cubic: Bool) -> Float {
            if alignCorners { return areaScale * Float(i) }
            let s = areaScale * (Float(i) + 0.5) - 0.5
            return (!cubic && s < 0) ? 0 : s
        }
        switch mode {
        case .nearest, .nearestExact:
            var index = [Int](repeating: 0, count: outSize)
            for i in 0..<outSize {
                if mode == .nearest && outSize == inSize {
                    index[i] = i
                } else if mode == .nearest && outSize == 2 * inSize {
                    index[i] = i >> 1
                } else if mode == .nearest {
                    index[i] = Swift.min(Int(Foundation.floor(Float(i) * plainScale)), inSize - 1)
                } else {
                    let f = Float((Double(i) + 0.5) * Double(plainScale))
                    index[i] = Swift.min(Int(Foundation.floor(f)), inSize - 1)
                }
            }
            return AxisTaps(index: index, weight: [Float](repeating: 1, count: outSize), taps: 1)
        case .bilinear:
            var index = [Int](repeating: 0, count: 2 * outSize)
            var weight = [Float](repeating: 0, count: 2 * outSize)
            for i in 0..<outSize {
                if outSize == inSize {
                    index[2 * i] = i; index[2 * i + 1] = i
                    weight[2 * i] = 1; weight[2 * i + 1] = 0
                    continue
                }
                let real = sourceIndex(i, cubic: false)
                let i0 = Swift.min(Int(Foundation.floor(real)), inSize - 1)
                let l1 = Swift.min(Swift.max(real - Float(i0), 0), 1)
                index[2 * i] = i0
                index[2 * i + 1] = i0 + (i0 < inSize - 1 ? 1 : 0)
                weight[2 * i] = 1 - l1
                weight[2 * i + 1] = l1
            }
            return AxisTaps(index: index, weight: weight, taps: 2)
        case .bicubic:
            let a: Float = -0.75
            func conv1(_ x: Float) -> Float { ((a + 2) * x - (a + 3)) * x * x + 1 }
            func conv2(_ x: Float) -> Float { ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            var index = [Int](repeating: 0, count: 4 * outSize)
            var weight = [Float](repeating: 0, count: 4 * outSize)
            for i in 0..<outSize {
                let real = sourceIndex(i, cubic: true)
                let i0 = Swift.min(Int(Foundation.floor(real)), inSize - 1)
                let t = Swift.min(Swift.max(real - Float(i0), 0), 1)
                let w: [Float] = [conv2(t + 1), conv1(t), conv1(1 - t), conv2(1 - t + 1)]
                for j in 0..<4 {
                    index[4 * i + j] = Swift.max(Swift.min(i0 + j - 1, inSize - 1), 0)
                    weight[4 * i + j] = w[j]
                }
            }
            return AxisTaps(index: index, weight: weight, taps: 4)
        }
    }
}
