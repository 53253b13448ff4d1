// Numerically stable softmax (torch.softmax) and the vectorised exp it runs on.

/// SIMD math used by softmax and attention.
@usableFromInline
enum SoftmaxMath {
    @usableFromInline typealias V = SIMD8<Float>

    /// exp(x) for 8 lanes: Cephes-style range reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-7 polynomial for
    /// e^r and 2^n assembled in the exponent bits (max relative error ≈ 1.2e-7 against libm).
    /// Inputs below -87.3 (including -inf) give exactly 0, above 88.72 give +inf.
    @inlinable @inline(__always)
    static func exp(_ xIn: V) -> V {
        var x = xIn.replacing(with: -87.3, where: xIn .< -87.3)
        x = x.replacing(with: 88.0, where: x .> 88.0)
        var y = expInRange(x)
        y = y.replacing(with: 0, where: xIn .< -87.3)
        y = y.replacing(with: .infinity, where: xIn .> 88.72)
        return y
    }

    /// exp(x) for x ≤ 0 (softmax after the max shift): the clamps of `exp` above 0 are not needed.
    /// Inputs below -87.3 (including -inf) give exactly 0; NaN stays NaN.
    @inlinable @inline(__always)
    static func expNonPositive(_ xIn: V) -> V {
        let x = xIn.replacing(with: -87.3, where: xIn .< -87.3)
        return expInRange(x).replacing(with: 0, where: xIn .< -87.3)
    }

    /// exp(x) for x already inside [-87.3, 88]: the range reduction and polynomial described at `exp`.
    @inlinable @inline(__always)
    static func expInRange(_ x: V) -> V {
        // n = round(x / ln2) with the 1.5·2^23 trick (SIMD .rounded() is scalarised on baseline x86-64).
        let magic: Float = 12_582_912
        let t = x * 1.442_695_04 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r = r + n * 2.121_944_4e-4
        var p = V(repeating: 1.987_569_15e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + r + 1
        // 2^n: the low mantissa bits of t hold n (offset by 0x4B400000).
        let nBits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- 0x4B40_0000
        return p * unsafeBitCast((nBits &+ 127) &<< 23, to: V.self)
    }

    /// tanh for 8 lanes (Cephes tanhf): an odd polynomial below |x| = 0.625, `1 − 2/(e^{2|x|} + 1)` with the sign
    /// above (no cancellation there); relative error ≈ 2e-7 against libm, ±1 beyond |x| ≈ 9, NaN stays NaN.
    @inlinable @inline(__always)
    static func tanh(_ x: V) -> V {
        let negative = x .< 0
        let a = x.replacing(with: -x, where: negative)
        let z = x * x
        var p = V(repeating: -5.704_988_727_45e-3)
        p = p * z + 2.063_908_879_54e-2
        p = p * z - 5.373_971_555_31e-2
        p = p * z + 1.333_144_220_36e-1
        p = p * z - 3.333_328_194_22e-1
        let small = x + x * z * p
        var large = 1 - 2 / (exp(2 * a) + 1)
        large = large.replacing(with: -large, where: negative)
        return small.replacing(with: large, where: a .>= 0.625)
    }

    /// Loads `count` (< 8) elements, filling the rest with `fill`.
    @inlinable @inline(__always)
    static func loadPartial(_ p: UnsafePointer<Float>, _ count: Int, fill: Float) -> V {
        var v = V(repeating: fill)
        for i in 0..<count { v[i] = p[i] }
        return v
    }

    @inlinable @inline(__always)
    static func load(_ p: UnsafePointer<Float>) -> V {
        UnsafeRawPointer(p).loadUnaligned(as: V.self)
    }

    @inlinable @inline(__always)
    static func store(_ v: V, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V.self)
    }

    /// Writes the softmax of `src[0..<n]` to `dst` (which may equal `src`). A row that is entirely -inf
    /// becomes all zeros (`zeroIfAllMasked`) or NaN (torch.softmax behaviour).
    @inlinable
    static func softmaxRow(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ n: Int,
                           zeroIfAllMasked: Bool = false) {
        let full = n & ~7
        // 1. max
        var mv = V(repeating: -.infinity)
        var i = 0
        while i < full {
            let v = load(src + i)
            mv = mv.replacing(with: v, where: v .> mv)
            i += 8
        }
        var m = mv.max()
        for j in full..<n where src[j] > m { m = src[j] }
        if m == -.infinity {
            dst.update(repeating: zeroIfAllMasked ? 0 : .nan, count: n)
            return
        }
        // 2. exp(x - max) and its sum
        var sv = V()
        let mvec = V(repeating: m)
        i = 0
        while i < full {
            let e = expNonPositive(load(src + i) - mvec)
            store(e, dst + i)
            sv += e
            i += 8
        }
        if full < n {
            let e = expNonPositive(loadPartial(src + full, n - full, fill: -.infinity) - mvec)
            for j in 0..<(n - full) { dst[full + j] = e[j] }
            sv += e
        }
        // 3. normalise
        let inv = V(repeating: 1 / sv.sum())
        i = 0
        while i < full {
            store(load(dst + i) * inv, dst + i)
            i += 8
        }
        for j in full..<n { dst[j] *= inv[0] }
    }

    /// In-place form of `softmaxRow(_:_:_:zeroIfAllMasked:)`.
    @inlinable
    static func softmaxRow(_ row: UnsafeMutablePointer<Float>, _ n: Int, zeroIfAllMasked: Bool = false) {
        softmaxRow(UnsafePointer(row), row, n, zeroIfAllMasked: zeroIfAllMasked)
    }
}

extension Ops {
    /// Softmax along `axis` (torch.softmax): exp(x - max) / Σ exp(x - max). Rows that are entirely -inf
    /// give NaN, as in PyTorch.
    public static func softmax(_ x: Tensor, axis: Int = -1) -> Tensor {
        let ax = KernelShape.axis(axis, rank: x.rank, "softmax")
        let n = x.shape[ax]
        let outer = KernelShape.product(x.shape, 0..<ax)
        let inner = KernelShape.product(x.shape, (ax + 1)..<x.rank)
        if inner == 1 {
            let out = Tensor(uninitialized: x.shape)
            guard out.count > 0 else { return out }
            let src = SendablePointer(x.storage.pointer + x.offset)
            let dst = SendablePointer(out.storage.pointer)
            Parallel.forEachRange(outer, minChunk: Swift.max(1, 16_384 / n)) { rows in
                for r in rows { SoftmaxMath.softmaxRow(src.pointer + r * n, dst.pointer + r * n, n) }
            }
            return out
        }
        let out = x.copy()
        guard out.count > 0 else { return out }
        let base = SendablePointer(out.storage.pointer)
        // Softmax over a strided axis: vectorise across the contiguous inner positions, in blocks of 256
        // (max, exp and the running sums live in two small scratch rows).
        let block = 256
        let blocks = (inner + block - 1) / block
        Parallel.forEachRange(outer * blocks, minChunk: Swift.max(1, 16_384 / (n * block))) { range in
            let maxes = UnsafeMutablePointer<Float>.allocate(capacity: block)
            let sums = UnsafeMutablePointer<Float>.allocate(capacity: block)
            defer { maxes.deallocate(); sums.deallocate() }
            for t in range {
                let o = t / blocks
                let j0 = (t % blocks) * block
                let w = Swift.min(block, inner - j0)
                let p = base.pointer + o * n * inner + j0
                maxes.update(repeating: -.infinity, count: w)
                sums.update(repeating: 0, count: w)
                for a in 0..<n {
                    let row = p + a * inner
                    for j in 0..<w where row[j] > maxes[j] { maxes[j] = row[j] }
                }
                for a in 0..<n {
                    let row = p + a * inner
                    var j = 0
                    while j + 8 <= w {
                        let e = SoftmaxMath.exp(SoftmaxMath.load(row + j) - SoftmaxMath.load(maxes + j))
                        SoftmaxMath.store(e, row + j)
                        SoftmaxMath.store(SoftmaxMath.load(sums + j) + e, sums + j)
                        j += 8
                    }
                    if j < w {
                        let e = SoftmaxMath.exp(SoftmaxMath.loadPartial(row + j, w - j, fill: 0)
                                                - SoftmaxMath.loadPartial(maxes + j, w - j, fill: 0))
                        for l in 0..<(w - j) { row[j + l] = e[l]; sums[j + l] += e[l] }
                    }
                }
                for j in 0..<w {
                    // All -inf along the axis → NaN like torch; otherwise 1/sum.
                    sums[j] = maxes[j] == -.infinity ? .nan : 1 / sums[j]
                }
                for a in 0..<n {
                    let row = p + a * inner
                    for j in 0..<w { row[j] *= sums[j] }
                }
            }
        }
        return out
    }

}
