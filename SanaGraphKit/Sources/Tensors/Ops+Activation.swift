// Pointwise activations. SiLU and GELU run 8 lanes at a time on the polynomial exp in `SoftmaxMath`
// (libm's expf is scalar and about 4× slower); ReLU and LeakyReLU are plain loops the compiler vectorises. SiLU,
// the models' most frequent one, runs on CKernels' AVX-512 / AVX2 code where the CPU has it.

internal import CKernels

/// The GELU formula, as `approximate` in `torch.nn.functional.gelu`.
public enum GELUApproximation: String, Sendable, CaseIterable {
    /// Exact: `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))`.
    case none
    /// `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))` (`gelu_pytorch_tanh` in transformers).
    case tanh
}

extension Ops {
    /// `torch.nn.functional.silu`: `x · sigmoid(x)`.
    public static func silu(_ x: Tensor) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        siluLoop(x, into: out)
        return out
    }

    /// `torch.nn.functional.gelu` with `approximate = "none"` or `"tanh"`.
    public static func gelu(_ x: Tensor, approximate: GELUApproximation = .none) -> Tensor {
        switch approximate {
        case .none: return unary(x, GELUErfOp.self)
        case .tanh: return unary(x, GELUTanhOp.self)
        }
    }

    /// `torch.nn.functional.relu`: `max(x, 0)` (NaN stays NaN).
    public static func relu(_ x: Tensor) -> Tensor { unary(x, ReLUOp.self) }

    /// `torch.nn.functional.leaky_relu`: `x` where `x > 0`, else `negativeSlope · x`.
    public static func leakyReLU(_ x: Tensor, negativeSlope: Float = 0.01) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        leakyReLULoop(x, negativeSlope, into: out)
        return out
    }

    /// SiLU in place (only on a tensor you created and have not shared).
    public static func siluInPlace(_ x: inout Tensor) { siluLoop(x, into: x) }

    /// GELU in place (only on a tensor you created and have not shared).
    public static func geluInPlace(_ x: inout Tensor, approximate: GELUApproximation = .none) {
        switch approximate {
        case .none: unaryLoop(x, GELUErfOp.self, into: x)
        case .tanh: unaryLoop(x, GELUTanhOp.self, into: x)
        }
    }

    /// ReLU in place (only on a tensor you created and have not shared).
    public static func reluInPlace(_ x: inout Tensor) { unaryLoop(x, ReLUOp.self, into: x) }

    // MARK: Implementation

    /// Elements per parallel chunk for transcendental activations (~15 µs at ~1 Gelem/s).
    private static let activationChunk = 16_384

    /// SiLU on CKernels' AVX-512 / AVX2 code where the CPU has it (this Swift is SSE2 on baseline x86-64).
    private static func siluLoop(_ x: Tensor, into out: Tensor) {
        let isa = Kernels.selection.vectorISA
        guard isa != .portable else { return unaryLoop(x, SiLUOp.self, into: out) }
        let px = SendablePointer(x.storage.pointer + x.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(x.count, minChunk: activationChunk) { r in
            sg_silu(px.pointer + r.lowerBound, po.pointer + r.lowerBound, r.count, isa.c)
        }
    }

    private static func unary<Op: VectorUnaryOp>(_ x: Tensor, _ op: Op.Type) -> Tensor {
        let out = Tensor(uninitialized: x.shape)
        unaryLoop(x, op, into: out)
        return out
    }

    /// `out = op(x)` over 8-lane vectors; the tail goes through one zero-padded vector. `out` may alias `x`.
    private static func unaryLoop<Op: VectorUnaryOp>(_ x: Tensor, _: Op.Type, into out: Tensor) {
        typealias V = SoftmaxMath.V
        let px = SendablePointer(x.storage.pointer + x.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        let count = x.count
        // Ranges start on multiples of 8 so only the last chunk has a tail.
        let blocks = (count + 7) / 8
        Parallel.forEachRange(blocks, minChunk: activationChunk / 8) { range in
            let start = range.lowerBound * 8
            let end = Swift.min(range.upperBound * 8, count)
            let src = UnsafeRawPointer(px.pointer), dst = UnsafeMutableRawPointer(po.pointer)
            var i = start
            while i + 8 <= end {
                let v = src.loadUnaligned(fromByteOffset: i * 4, as: V.self)
                dst.storeBytes(of: Op.apply(v), toByteOffset: i * 4, as: V.self)
                i += 8
            }
            if i < end {
                let r = Op.apply(SoftmaxMath.loadPartial(px.pointer + i, end - i, fill: 0))
                for j in 0..<(end - i) { po.pointer[i + j] = r[j] }
            }
        }
    }

    private static func leakyReLULoop(_ x: Tensor, _ slope: Float, into out: Tensor) {
        let px = SendablePointer(x.storage.pointer + x.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(x.count, minChunk: elementwiseChunk) { range in
            let s = px.pointer, d = po.pointer
            for i in range { let v = s[i]; d[i] = v > 0 ? v : v * slope }
        }
    }
}

/// An activation evaluated on a whole vector.
private protocol VectorUnaryOp: Sendable {
    static func apply(_ x: SoftmaxMath.V) -> SoftmaxMath.V
}

/// `x / (1 + e^{-x})`. Large negative x gives e^{-x} = inf and a (signed) zero, as in PyTorch.
private enum SiLUOp: VectorUnaryOp {
    @inline(__always) static func apply(_ x: SoftmaxMath.V) -> SoftmaxMath.V {
        x / (1 + SoftmaxMath.exp(-x))
    }
}

/// tanh GELU rewritten as `x · sigmoid(2u)` with `u = √(2/π)(x + 0.044715x³)`, since 0.5(1 + tanh u) = σ(2u).
private enum GELUTanhOp: VectorUnaryOp {
    @inline(__always) static func apply(_ x: SoftmaxMath.V) -> SoftmaxMath.V {
        let twoU = x * (1.595_769_1 + 0.071_354_816 * (x * x))  // 2·√(2/π) = 1.5957691, ·0.044715 = 0.0713548
        return x / (1 + SoftmaxMath.exp(-twoU))
    }
}

/// Exact GELU through erfc of |x|/√2 (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7):
/// for x ≥ 0, `x (1 − erfc(z)/2)`; for x < 0, `x · erfc(z)/2`, which avoids cancelling 1 + erf(x/√2).
private enum GELUErfOp: VectorUnaryOp {
    @inline(__always) static func apply(_ x: SoftmaxMath.V) -> SoftmaxMath.V {
        let negative = x .< 0
        let z = x.replacing(with: -x, where: negative) * 0.707_106_78
        let t = 1 / (1 + 0.327_591_1 * z)
        var p = SoftmaxMath.V(repeating: 1.061_405_429)
        p = p * t - 1.453_152_027
        p = p * t + 1.421_413_741
        p = p * t - 0.284_496_736
        p = p * t + 0.254_829_592
        let halfErfc = 0.5 * (p * t) * SoftmaxMath.exp(-(z * z))
        let positive = x - x * halfErfc
        return positive.replacing(with: x * halfErfc, where: negative)
    }
}

/// `x < 0 ? 0 : x`, so NaN propagates like torch.relu.
private enum ReLUOp: VectorUnaryOp {
    @inline(__always) static func apply(_ x: SoftmaxMath.V) -> SoftmaxMath.V {
        x.replacing(with: 0, where: x .< 0)
    }
}
