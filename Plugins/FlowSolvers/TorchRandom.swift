import Foundation
import Tensors

// Bit-exact reproduction of `torch.randn(shape, generator=torch.Generator("cpu").manual_seed(seed))` in
// float32, so a seed gives the same initial latents (and picture) as diffusers. docs/solvers.md describes
// the algorithm; references: PyTorch aten/src/ATen/core/MT19937RNGEngine.h, CPUGeneratorImpl.cpp,
// core/DistributionsHelper.h, core/TransformationHelper.h, native/cpu/DistributionTemplates.h,
// native/cpu/avx_mathfun.h (torch 2.15, x86-64).

/// PyTorch's CPU generator engine: the 32-bit Mersenne Twister (MT19937), seeded from the low 32 bits.
public struct MT19937: Sendable {
    private static let n = 624
    private static let m = 397
    private var state = [UInt32](repeating: 0, count: 624)
    private var left = 1
    private var next = 0

    /// `torch.Generator().manual_seed(seed)`: any 64-bit seed; only its low 32 bits reach the engine
    /// (so negative seeds behave as their two's-complement value, as in torch).
    public init(seed: UInt64) {
        state[0] = UInt32(truncatingIfNeeded: seed)
        for j in 1..<Self.n {
            state[j] = 1_812_433_253 &* (state[j - 1] ^ (state[j - 1] >> 30)) &+ UInt32(j)
        }
    }

    @inline(__always)
    private static func twist(_ u: UInt32, _ v: UInt32) -> UInt32 {
        (((u & 0x8000_0000) | (v & 0x7fff_ffff)) >> 1) ^ ((v & 1) != 0 ? 0x9908_b0df : 0)
    }

    private mutating func nextState() {
        let n = Self.n, m = Self.m
        for i in 0..<(n - m) { state[i] = state[i + m] ^ Self.twist(state[i], state[i + 1]) }
        for i in (n - m)..<(n - 1) { state[i] = state[i + m - n] ^ Self.twist(state[i], state[i + 1]) }
        state[n - 1] = state[m - 1] ^ Self.twist(state[n - 1], state[0])
        left = n
        next = 0
    }

    /// The next 32-bit output (`CPUGeneratorImpl::random`).
    public mutating func next32() -> UInt32 {
        left -= 1
        if left == 0 { nextState() }
        var y = state[next]
        next += 1
        y ^= y >> 11
        y ^= (y << 7) & 0x9d2c_5680
        y ^= (y << 15) & 0xefc6_0000
        y ^= y >> 18
        return y
    }

    /// `CPUGeneratorImpl::random64`: the first draw is the high half.
    public mutating func next64() -> UInt64 {
        let hi = UInt64(next32())
        let lo = UInt64(next32())
        return (hi << 32) | lo
    }
}

/// A seeded `torch.Generator("cpu")` drawn from several times, as a pipeline that passes one generator to
/// `prepare_latents` and then to `scheduler.step` does (Sana-Sprint's SCMScheduler draws fresh noise per step).
public struct TorchGenerator: Sendable {
    private var engine: MT19937

    /// `torch.Generator("cpu").manual_seed(seed)`.
    public init(seed: Int) { engine = MT19937(seed: UInt64(bitPattern: Int64(seed))) }

    /// The next `torch.randn(count, generator=self)`, float32, bit for bit.
    public mutating func randn(count: Int) -> [Float] { TorchRandom.randn(count: count, engine: &engine) }

    /// The next `torch.randn(shape, generator=self)`.
    public mutating func randn(shape: [Int]) -> Tensor {
        Tensor(shape: shape, values: randn(count: shape.reduce(1, *)))
    }
}

/// `torch.randn` on the CPU generator.
public enum TorchRandom {
    /// `torch.randn(count, generator=torch.Generator("cpu").manual_seed(seed))`, float32, bit for bit.
    ///
    /// Reproduces torch on x86-64 (where `normal_` always runs its AVX2 kernel: torch registers no AVX-512
    /// kernel for it). Tensors of fewer than 16 elements use torch's scalar float64 path, whose `log1p`, `sin`
    /// and `cos` come from the C library (glibc on Linux, matching torch's own).
    public static func randn(count: Int, seed: Int) -> [Float] {
        var generator = TorchGenerator(seed: seed)
        return generator.randn(count: count)
    }

    /// One `torch.randn(count, generator=g)` call on an engine that may have been used before.
    static func randn(count: Int, engine: inout MT19937) -> [Float] {
        count >= 16 ? normalFill(count: count, engine: &engine) : scalarNormals(count: count, engine: &engine)
    }

    /// A tensor of shape `shape` filled by `randn(count:seed:)` (row-major, as torch fills it).
    public static func randn(shape: [Int], seed: Int) -> Tensor {
        Tensor(shape: shape, values: randn(count: shape.reduce(1, *), seed: seed))
    }

    // MARK: numel >= 16: normal_fill with NormalFill16 (AVX2 Box-Muller on 8 pairs)

    /// 24 random bits scaled to [0, 1) (`uniform_real_distribution<float>(0, 1)`).
    @inline(__always)
    private static func uniformFloat(_ engine: inout MT19937) -> Float {
        Float(engine.next32() & 0x00ff_ffff) * Float(1.0 / 16_777_216.0)
    }

    private static func normalFill(count: Int, engine: inout MT19937) -> [Float] {
        var data = [Float](repeating: 0, count: count)
        for i in 0..<count { data[i] = uniformFloat(&engine) }
        var i = 0
        while i < count - 15 {
            boxMuller16(&data, at: i)
            i += 16
        }
        // A tail shorter than 16: redraw 16 uniforms over the LAST 16 slots and transform them again.
        if count % 16 != 0 {
            for j in 0..<16 { data[count - 16 + j] = uniformFloat(&engine) }
            boxMuller16(&data, at: count - 16)
        }
        return data
    }

    /// Uniforms u[0..<8] and u[8..<16] → normals: radius from 1 − u[j], angle from u[j + 8].
    private static func boxMuller16(_ data: inout [Float], at offset: Int) {
        let twoPi = Float(2.0 * Double.pi)
        for j in 0..<8 {
            let u1 = 1 - data[offset + j]
            let u2 = data[offset + j + 8]
            let radius = (-2 * AVX2Math.log(u1)).squareRoot()
            let theta = twoPi * u2
            let (s, c) = AVX2Math.sincos(theta)
            // _mm256_fmadd_ps(n, std = 1, mean = 0): also turns −0 into +0.
            data[offset + j] = Float(0).addingProduct(radius * c, 1)
            data[offset + j + 8] = Float(0).addingProduct(radius * s, 1)
        }
    }

    // MARK: numel < 16: at::normal_distribution<double> with the cached second sample

    private static func uniformDouble(_ engine: inout MT19937) -> Double {
        Double(engine.next64() & ((1 << 53) - 1)) * (1.0 / 9_007_199_254_740_992.0)
    }

    private static func scalarNormals(count: Int, engine: inout MT19937) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(count)
        var cached: Double?
        while out.count < count {
            if let c = cached {
                out.append(Float(c * 1.0 + 0.0))
                cached = nil
                continue
            }
            let u1 = uniformDouble(&engine)
            let u2 = uniformDouble(&engine)
            let r = (-2.0 * Foundation.log1p(-u2)).squareRoot()
            let theta = 2.0 * Double.pi * u1
            cached = r * Foundation.sin(theta)
            out.append(Float(r * Foundation.cos(theta) * 1.0 + 0.0))
        }
        return out
    }
}

/// Scalar transcriptions of `log256_ps` and `sincos256_ps` from PyTorch's avx_mathfun.h (Cephes polynomials),
/// lane by lane. The fused multiply-adds are where GCC contracts the intrinsics in torch's AVX2 build
/// (established against torch, including inputs where contraction changes the result).
enum AVX2Math {
    // Constants are float literals in C, i.e. decimal → double → float; converted the same way here.
    private static let sqrtHalf = Float(0.707106781186547524 as Double)
    private static let logP: [Float] = ([7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1,
                                         1.4249322787E-1, -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1,
                                         3.3333331174E-1] as [Double]).map { Float($0) }
    private static let logQ1 = Float(-2.12194440e-4 as Double)
    private static let logQ2 = Float(0.693359375 as Double)
    private static let minusDP1 = Float(-0.78515625 as Double)
    private static let minusDP2 = Float(-2.4187564849853515625e-4 as Double)
    private static let minusDP3 = Float(-3.77489497744594108e-8 as Double)
    private static let sincof: [Float] = ([-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1] as [Double])
        .map { Float($0) }
    private static let coscof: [Float] = ([2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002]
        as [Double]).map { Float($0) }
    private static let fourOverPi = Float(1.27323954473516 as Double)

    /// `log256_ps` for one lane: NaN for x ≤ 0.
    static func log(_ input: Float) -> Float {
        let invalid = input <= 0
        var x = Swift.max(input, Float(bitPattern: 0x0080_0000))  // cut off denormals
        let exponent = Int32(bitPattern: x.bitPattern >> 23) - 0x7f
        x = Float(bitPattern: (x.bitPattern & ~UInt32(0x7f80_0000)) | Float(0.5).bitPattern)
        var e = Float(exponent) + 1
        let lessThanSqrtHalf = x < sqrtHalf
        let tmp: Float = lessThanSqrtHalf ? x : 0
        x = x - 1
        e = e - (lessThanSqrtHalf ? 1 : 0)
        x = x + tmp
        let z = x * x
        var y = logP[0]
        for p in logP.dropFirst() { y = p.addingProduct(y, x) }
        y = y * x
        y = (e * logQ1).addingProduct(y, z)  // y·z + e·q1, y·z fused
        y = y - z * 0.5
        x = x + y
        x = x.addingProduct(e, logQ2)
        return invalid ? Float(bitPattern: 0xffff_ffff) : x
    }

    /// `sincos256_ps` for one lane.
    static func sincos(_ input: Float) -> (sin: Float, cos: Float) {
        var signSin = input.bitPattern & 0x8000_0000
        var x = Float(bitPattern: input.bitPattern & 0x7fff_ffff)
        var j = Int32(x * fourOverPi)  // _mm256_cvttps_epi32 (truncation); inputs here are < 2π
        j = (j &+ 1) & ~1
        let y = Float(j)
        let swapSignSin = UInt32(bitPattern: j & 4) << 29
        let polyMask = (j & 2) == 0
        // Extended-precision range reduction x = ((x − y·DP1) − y·DP2) − y·DP3, each step fused.
        x = x.addingProduct(y, minusDP1)
        x = x.addingProduct(y, minusDP2)
        x = x.addingProduct(y, minusDP3)
        let signCos = UInt32(bitPattern: ~(j &- 2) & 4) << 29
        signSin ^= swapSignSin

        let z = x * x
        var yc = coscof[0]
        yc = coscof[1].addingProduct(yc, z)
        yc = coscof[2].addingProduct(yc, z)
        yc = yc * z
        yc = (-(z * 0.5)).addingProduct(yc, z)  // y·z − z·0.5, y·z fused
        yc = yc + 1

        var ys = sincof[0]
        ys = sincof[1].addingProduct(ys, z)
        ys = sincof[2].addingProduct(ys, z)
        ys = ys * z
        ys = x.addingProduct(ys, x)

        // Select per polynomial mask with the same adds/subtracts as the vector code (keeps ±0 behaviour).
        let ysin2: Float = polyMask ? ys : 0
        let ysin1: Float = polyMask ? 0 : yc
        let ys2 = ys - ysin2
        let yc2 = yc - ysin1
        let s = ysin1 + ysin2
        let c = yc2 + ys2
        return (Float(bitPattern: s.bitPattern ^ signSin), Float(bitPattern: c.bitPattern ^ signCos))
    }
}
