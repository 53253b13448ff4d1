import Foundation
import Testing
@testable import Tensors
import CKernels
import TestSupport

/// The fused DiT kernels against the chains of unfused ops they replace (which are checked against PyTorch
/// in their own suites): exact where the fused kernel performs the same fp32 operations in the same order.
@Suite("Fused kernels")
struct FusedKernelTests {
    @Test("layerNormModulated equals layerNorm · (1 + scale) + shift, bit for bit")
    func layerNormModulatedMatchesChain() {
        var r = SeededValues(seed: 11)
        let x = r.tensor([2, 37, 96], scale: 3, offset: 0.5)
        let scale = r.tensor([2, 1, 96]), shift = r.tensor([2, 1, 96])
        let fused = Ops.layerNormModulated(x, scale: scale, shift: shift, eps: 1e-6)
        let chain = Ops.add(Ops.mul(Ops.layerNorm(x, weight: nil, bias: nil, eps: 1e-6), Ops.add(scale, 1)), shift)
        #expect(fused.shape == chain.shape)
        #expect(fused.scalars == chain.scalars)
    }

    @Test("addGatedInPlace equals x + gate · clamp(y), bit for bit")
    func gatedAddMatchesChain() {
        var r = SeededValues(seed: 12)
        let x = r.tensor([2, 19, 40]), gate = r.tensor([2, 1, 40])
        var y = r.tensor([2, 19, 40], scale: 100_000)  // some values beyond the fp16 range
        var fused = x.copy()
        Ops.addGatedInPlace(&fused, gate: gate, y, clampMagnitude: 65_504)
        y.withUnsafeMutableBufferPointer { p in for i in p.indices { p[i] = min(max(p[i], -65_504), 65_504) } }
        let chain = Ops.add(x, Ops.mul(gate, y))
        #expect(fused.scalars == chain.scalars)

        var unclamped = x.copy()
        Ops.addGatedInPlace(&unclamped, gate: gate, y)
        #expect(unclamped.scalars == chain.scalars)
    }

    @Test("channels-last depthwise 3×3 + GLU equals NCHW conv2d → chunk → a · silu(g)",
          arguments: [(5, 7, 24), (1, 1, 8), (4, 3, 300)])
    func depthwiseGLUMatchesNCHW(_ h: Int, _ w: Int, _ c2: Int) {
        var r = SeededValues(seed: UInt64(h * 1000 + w * 10 + c2))
        let tokens = r.tensor([2, h * w, c2], scale: 2)
        let weight = r.tensor([c2, 1, 3, 3]), bias = r.tensor([c2])
        let fused = Ops.depthwiseConv3x3GLUChannelsLast(tokens, height: h, width: w,
                                                       taps: Ops.depthwiseTapsChannelsLast(weight), bias: bias)
        let grid = Ops.permute(tokens.reshaped([2, h, w, c2]), [0, 3, 1, 2])
        let conv = Ops.conv2d(grid, weight: weight, bias: bias, padding: 1, groups: c2)
        let parts = Ops.chunk(conv, 2, axis: 1)
        let ref = Ops.permute(Ops.mul(parts[0], Ops.silu(parts[1])), [0, 2, 3, 1]).reshaped([2, h * w, c2 / 2])
        #expect(fused.shape == [2, h * w, c2 / 2])
        // Different summation orders (and FMA on the CKernels paths): a few ulp of the largest value.
        #expect(TestSupport.relativeError(fused, ref) <= 1e-6)
    }

    /// Every kernel of the depthwise GLU (the Swift loop, CKernels' portable C and its vector paths, narrowed to
    /// what this CPU has) against the op in double precision, with C = 37 so the vector paths run masked tails;
    /// at scale 30 some gates pass ±88, where e^−g over- or underflows in fp32.
    @Test("depthwise GLU kernels match a double-precision reference", arguments: [(true, 2), (false, 2), (true, 30)])
    func depthwiseGLUKernelsMatchReference(_ withBias: Bool, _ scale: Float) {
        let (b, h, w, c) = (2, 5, 3, 37)
        var r = SeededValues(seed: withBias ? 21 : 22)
        let x = r.tensor([b, h * w, 2 * c], scale: scale), taps = r.tensor([9, 2 * c]), bias = r.tensor([2 * c])
        let xs = x.scalars, ts = taps.scalars, bs = bias.scalars
        var reference = [Double](repeating: 0, count: b * h * w * c)
        for image in 0..<b { for y in 0..<h { for xx in 0..<w { for ch in 0..<c {
            var a = withBias ? Double(bs[ch]) : 0, g = withBias ? Double(bs[c + ch]) : 0
            for dy in -1...1 { for dx in -1...1 {
                let (sy, sx) = (y + dy, xx + dx)
                guard sy >= 0, sy < h, sx >= 0, sx < w else { continue }
                let src = ((image * h + sy) * w + sx) * 2 * c, tap = ((dy + 1) * 3 + dx + 1) * 2 * c
                a += Double(xs[src + ch]) * Double(ts[tap + ch])
                g += Double(xs[src + c + ch]) * Double(ts[tap + c + ch])
            } }
            reference[((image * h + y) * w + xx) * c + ch] = a * g / (1 + Foundation.exp(-g))
        } } } }
        let maxReference = reference.map(abs).max()!
        let cpu = Kernels.selection.cpu
        let isas: [KernelSelection.VectorISA?] = [nil, .portable] + (cpu.avx2 && cpu.fma ? [.avx2] : [])
            + (cpu.avx512Core ? [.avx512] : [])
        for isa in isas {
            let out = Ops.depthwiseConv3x3GLUChannelsLast(x, height: h, width: w, taps: taps,
                                                          bias: withBias ? bias : nil, isa: isa)
            #expect(out.shape == [b, h * w, c])
            let error = zip(out.scalars, reference).map { abs(Double($0) - $1) }.max()! / maxReference
            #expect(error <= 1e-5, "isa \(String(describing: isa)): relative error \(error)")
        }
    }

    /// The DiT's GLUMBConv first half on the AMX kernel (tile instructions emulated where the CPU has none), 32
    /// channels at a time with the product kept in a small buffer, against the same kernel's full product followed
    /// by the depthwise GLU pass. Rows (2·5·3 = 30) and depth (40) are not multiples of the tiles; 96 outputs is no
    /// multiple of 64, so it takes the unfused path.
    @Test("AMX linear + SiLU + depthwise GLU in one pass equals the two steps",
          arguments: [(64, true), (128, true), (128, false), (96, true)])
    func amxGLUMBConvMatchesSteps(_ n: Int, _ withBias: Bool) {
        let (b, h, w, k) = (2, 5, 3, 40)
        var r = SeededValues(seed: UInt64(n * 10 + (withBias ? 1 : 0)))
        let x = r.tensor([b, h * w, k], scale: 2), weight = r.tensor([n, k], scale: 0.5)
        let bias = r.tensor([n]), taps = r.tensor([9, n]), depthBias = r.tensor([n])
        let layer = LinearWeight(weight, precision: .bf16, mode: .amxTiles)
        let fused = Ops.linearSiLUDepthwiseGLU(x, weight: layer, bias: withBias ? bias : nil, height: h, width: w,
                                               taps: taps, depthBias: withBias ? depthBias : nil)
        let product = Ops.linear(x, weight: layer, bias: withBias ? bias : nil, activation: .silu)
        let steps = Ops.depthwiseConv3x3GLUChannelsLast(product, height: h, width: w, taps: taps,
                                                        bias: withBias ? depthBias : nil)
        #expect(fused.shape == [b, h * w, n / 2])
        #expect(TestSupport.relativeError(fused, steps) <= 1e-6)
    }

    @Test("SDPA skipping trailing padding keys equals the full computation")
    func paddingSkipMatchesFullMask() {
        var r = SeededValues(seed: 13)
        let (b, h, lq, lk, d) = (2, 3, 17, 29, 8)
        let q = r.tensor([b, h, lq, d], scale: 2), k = r.tensor([b, h, lk, d], scale: 2)
        let v = r.tensor([b, h, lk, d])
        // Batch 0 keeps 29 keys, batch 1 keeps 9 (diffusers' (1 − mask)·−10000 bias).
        let keep = (0..<(b * lk)).map { i -> Float in (i < lk || i - lk < 9) ? 0 : -10_000 }
        let padding = Tensor(shape: [b, 1, 1, lk], values: keep)
        // The same mask expanded over the queries is not query-independent, so it runs the full path.
        let full = Ops.add(padding, Tensor(zeros: [b, 1, lq, lk]))
        let skipped = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: padding)
        let reference = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: full)
        #expect(TestSupport.relativeError(skipped, reference) <= 1e-6)
        // The padding found once (as the DiT does per prompt) is the padding found per call.
        let known = AttentionKeyPadding(key: k, mask: padding, queryHeads: h, layout: .headsFirst)
        #expect(known.padding?.kept == [29, 29, 29, 9, 9, 9])
        let reused = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: padding, keyPadding: known)
        #expect(reused.scalars == skipped.scalars)
        // A mask that varies along the queries has no padding to drop.
        #expect(AttentionKeyPadding(key: k, mask: full, queryHeads: h, layout: .headsFirst).padding == nil)
    }

    @Test("SDPA falls back to every key when padding scores could still matter")
    func paddingSkipFallsBack() {
        var r = SeededValues(seed: 14)
        let (b, h, lq, lk, d) = (1, 2, 5, 12, 4)
        // Huge keys in the padding: their masked scores exceed the kept ones, so they are not negligible.
        let q = r.tensor([b, h, lq, d], offset: 2)
        var kValues = r.tensor([b, h, lk, d]).scalars
        for head in 0..<h { for j in 8..<lk { for c in 0..<d { kValues[(head * lk + j) * d + c] = 20_000 } } }
        let k = Tensor(shape: [b, h, lk, d], values: kValues)
        let v = r.tensor([b, h, lk, d])
        let padding = Tensor(shape: [b, 1, 1, lk], values: (0..<lk).map { $0 < 8 ? 0 : -10_000 })
        let full = Ops.add(padding, Tensor(zeros: [b, 1, lq, lk]))
        let y = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: padding)
        let reference = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: full)
        #expect(y.scalars.allSatisfy { $0.isFinite })
        #expect(TestSupport.relativeError(y, reference) <= 1e-6)
        let known = AttentionKeyPadding(key: k, mask: padding, queryHeads: h, layout: .headsFirst)
        let reused = Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: padding, keyPadding: known)
        #expect(TestSupport.relativeError(reused, reference) <= 1e-6)
    }

    @Test("bilinear fast path equals the general resampling order (upscale and downscale)")
    func bilinearMatchesAcrossSizes() {
        var r = SeededValues(seed: 15)
        let x = r.tensor([1, 2, 9, 13])
        let down = Ops.interpolate(x, size: (5, 7), mode: .bilinear)
        let up = Ops.interpolate(x, size: (20, 31), mode: .bilinear, alignCorners: true)
        // Direct evaluation of PyTorch's formula for one output pixel of each.
        func sample(_ oy: Int, _ ox: Int, outH: Int, outW: Int, align: Bool) -> Float {
            func axis(_ o: Int, _ inSize: Int, _ outSize: Int) -> (Int, Int, Float) {
                let scale: Float = align ? Float(inSize - 1) / Float(outSize - 1) : Float(inSize) / Float(outSize)
                var real = align ? scale * Float(o) : scale * (Float(o) + 0.5) - 0.5
                if real < 0 { real = 0 }
                let i0 = min(Int(real.rounded(.down)), inSize - 1)
                let l1 = min(max(real - Float(i0), 0), 1)
                return (i0, i0 + (i0 < inSize - 1 ? 1 : 0), l1)
            }
            let (y0, y1, ly) = axis(oy, 9, outH), (x0, x1, lx) = axis(ox, 13, outW)
            var t0 = x[0, 1, y0, x0] * (1 - lx)
            t0 += x[0, 1, y0, x1] * lx
            var t1 = x[0, 1, y1, x0] * (1 - lx)
            t1 += x[0, 1, y1, x1] * lx
            return t0 * (1 - ly) + t1 * ly
        }
        #expect(down[0, 1, 3, 4] == sample(3, 4, outH: 5, outW: 7, align: false))
        #expect(up[0, 1, 17, 29] == sample(17, 29, outH: 20, outW: 31, align: true))
    }
}

@Suite("Buffer pool")
struct BufferPoolTests {
    @Test("a freed block is handed out again for the same rounded size; larger sizes get new blocks")
    func reusesFreedBlocks() throws {
        let pool = BufferPool(capacityBytes: 64 << 20)
        let (a, na) = try #require(pool.take(bytes: 5 << 20))
        #expect(na == 6 << 20)  // rounded up to 2 MiB
        pool.give(a, bytes: na)
        let (b, nb) = try #require(pool.take(bytes: (5 << 20) + 123))
        #expect(b == a && nb == na)
        let (c, nc) = try #require(pool.take(bytes: 9 << 20))
        #expect(c != a && nc == 10 << 20)
        #expect(pool.statistics.hits == 1 && pool.statistics.misses == 2)
        pool.give(b, bytes: nb)
        pool.give(c, bytes: nc)
        pool.trim()
    }

    @Test("evicting to make room works after a size class was emptied by reuse")
    func evictsAfterReuse() throws {
        let pool = BufferPool(capacityBytes: 10 << 20)
        let (a, na) = try #require(pool.take(bytes: 6 << 20))
        pool.give(a, bytes: na)
        let (b, nb) = try #require(pool.take(bytes: 6 << 20))  // empties the 6 MiB class
        let (c, nc) = try #require(pool.take(bytes: 8 << 20))
        pool.give(c, bytes: nc)
        pool.give(b, bytes: nb)  // needs room: evicts the 8 MiB block
        #expect(pool.cachedBytes == 6 << 20)
        pool.trim()
    }

    @Test("a freed block serves a request of at least half its size, not a smaller one")
    func servesFromLargerBlocks() throws {
        let pool = BufferPool(capacityBytes: 64 << 20)
        let (a, na) = try #require(pool.take(bytes: 10 << 20))
        pool.give(a, bytes: na)
        let (b, nb) = try #require(pool.take(bytes: 6 << 20))
        #expect(b == a && nb == 10 << 20)  // the block's own size comes back, to be given back
        pool.give(b, bytes: nb)
        let (c, nc) = try #require(pool.take(bytes: 4 << 20))  // 10 MiB > 2 × 4 MiB: a new block
        #expect(c != a && nc == 4 << 20)
        pool.give(c, bytes: nc)
        pool.trim()
    }

    @Test("the least recently freed blocks are evicted first")
    func evictsLeastRecentlyFreed() throws {
        let pool = BufferPool(capacityBytes: 12 << 20)
        let (a, na) = try #require(pool.take(bytes: 4 << 20))
        let (b, nb) = try #require(pool.take(bytes: 6 << 20))
        let (c, nc) = try #require(pool.take(bytes: 8 << 20))
        pool.give(a, bytes: na)
        pool.give(b, bytes: nb)
        pool.give(c, bytes: nc)  // 18 MiB kept > 12: a, then b, go
        #expect(pool.cachedBytes == 8 << 20)
        let (d, _) = try #require(pool.take(bytes: 8 << 20))
        #expect(d == c)
        pool.give(d, bytes: nc)
        pool.trim()
    }

    @Test("while a large block is in use the pool keeps twice its size, and shrinks back once it is freed")
    func keepsTheWorkingSetOfLargeBlocks() throws {
        let pool = BufferPool(capacityBytes: 8 << 20)
        let blocks = try (0..<4).map { _ in try #require(pool.take(bytes: 20 << 20)) }
        for b in blocks[1...] { pool.give(b.0, bytes: b.1) }
        #expect(pool.cachedBytes == 40 << 20)  // blocks[0] in use: 40 MiB kept, blocks[1] (the oldest) freed
        let (again, n) = try #require(pool.take(bytes: 20 << 20))
        #expect(again == blocks[3].0)  // the most recently freed
        pool.give(again, bytes: n)
        pool.give(blocks[0].0, bytes: blocks[0].1)  // none in use: back to 8 MiB, so none of them is kept
        #expect(pool.cachedBytes == 0)
        #expect(pool.statistics.hits == 1 && pool.statistics.misses == 4)
    }

    @Test("a pool of size 0 keeps nothing, even while large blocks are in use")
    func zeroCapacityKeepsNothing() throws {
        let pool = BufferPool(capacityBytes: 0)
        let (a, na) = try #require(pool.take(bytes: 20 << 20))
        let (b, nb) = try #require(pool.take(bytes: 20 << 20))
        pool.give(b, bytes: nb)
        #expect(pool.cachedBytes == 0)
        pool.give(a, bytes: na)
        #expect(pool.cachedBytes == 0)
    }

    @Test("weights spanning a huge page get huge-page-aligned memory unless huge pages are off")
    func weightMemory() {
        for huge in [true, false] {
            let pool = BufferPool(capacityBytes: 0, hugePages: false, weightHugePages: huge)
            let big = pool.allocateWeights(bytes: 3 << 20), small = pool.allocateWeights(bytes: 4096)
            if huge { #expect(Int(bitPattern: big) % (2 << 20) == 0) }
            #expect(Int(bitPattern: big) % 64 == 0 && Int(bitPattern: small) % 64 == 0)
            big.storeBytes(of: 1, toByteOffset: (3 << 20) - 1, as: UInt8.self)  // the whole size is writable
            big.deallocate()
            small.deallocate()
        }
    }

    @Test("large tensors recycle their storage through the shared pool")
    func tensorsRecycle() {
        let count = (26 << 20) / 4  // an unusual size, so parallel tests don't take this block in between
        var first: UnsafeMutablePointer<Float>?
        do {
            let t = Tensor(repeating: 7, shape: [count])
            first = t.storage.pointer
        }
        let z = Tensor(zeros: [count])
        #expect(z.storage.pointer == first)
        #expect(z.scalars.allSatisfy { $0 == 0 })  // zero-filled even on a recycled block
    }

    @Test("the pool keeps at most its capacity and trims to nothing")
    func capacityAndTrim() {
        let pool = BufferPool(capacityBytes: 8 << 20)
        var blocks: [(UnsafeMutableRawPointer, Int)] = []
        for _ in 0..<3 { if let b = pool.take(bytes: 4 << 20) { blocks.append(b) } }
        #expect(blocks.count == 3)
        for (p, n) in blocks { pool.give(p, bytes: n) }
        #expect(pool.cachedBytes == 8 << 20)
        if let big = pool.take(bytes: 12 << 20) { pool.give(big.0, bytes: big.1) }  // larger than capacity: freed
        #expect(pool.cachedBytes <= 8 << 20)
        pool.trim()
        #expect(pool.cachedBytes == 0)
    }

    @Test("borrowed storage is never freed by the tensor and keeps its owner alive")
    func borrowedStorage() {
        final class Owner {
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: 16)
            init() { pointer.initialize(repeating: 3, count: 16) }
            deinit { pointer.deallocate() }
        }
        var t: Tensor?
        do {
            let owner = Owner()
            t = Tensor(storage: TensorStorage(borrowing: owner.pointer, count: 16, owner: owner), shape: [4, 4])
        }
        #expect(t?[3, 3] == 3)
        #expect(t?.scalars.reduce(0, +) == 48)
    }
}

/// elementwise.c on every path this CPU has (portable C always), against double-precision sums: odd widths so
/// the vector paths run masked tails, SiLU across exp's under- and overflow.
@Suite("Element-wise C kernels")
struct ElementwiseKernelTests {
    /// Every path of the C kernels this CPU runs (portable C always); the attention tests use it too.
    static var isas: [sg_isa] {
        let cpu = Kernels.selection.cpu
        return [SG_ISA_PORTABLE] + (cpu.avx2 && cpu.fma ? [SG_ISA_AVX2] : []) + (cpu.avx512Core ? [SG_ISA_AVX512] : [])
    }

    @Test("SiLU matches x / (1 + e^−x), with exact signed zeros and infinities at the ends")
    func silu() {
        var x = (0..<203).map { Float($0 - 101) * 0.97 }  // −98 … 98
        x += [-.infinity, .infinity, 0, -0.0, 1e-30]
        for isa in Self.isas {
            var y = [Float](repeating: .nan, count: x.count)
            sg_silu(x, &y, x.count, isa)
            for (v, got) in zip(x, y) {
                let want = Double(v) / (1 + Foundation.exp(-Double(v)))
                if v.isInfinite { #expect(v < 0 ? (got == 0 || got.isNaN) : got == .infinity, "isa \(isa.rawValue) x \(v)") }
                else { #expect(abs(Double(got) - want) <= 2e-7 * max(1, abs(want)), "isa \(isa.rawValue) x \(v): \(got) vs \(want)") }
            }
        }
    }

    @Test("DC-AE channel RMSNorm with and without affine and residual matches double-precision sums", arguments: [(3, 77), (128, 130)])
    func channelRMSNorm(_ c: Int, _ plane: Int) {
        var r = SeededValues(seed: UInt64(c * plane))
        let x = r.tensor([c, plane], scale: 3).scalars, residual = r.tensor([c, plane]).scalars
        let weight = r.tensor([c]).scalars, bias = r.tensor([c]).scalars
        for isa in Self.isas {
            for affine in [false, true] {
                var out = [Float](repeating: .nan, count: c * plane)
                // Two pixel ranges, the first ending inside a vector.
                for (p0, p1) in [(0, 21), (21, plane)] {
                    sg_channel_rms_norm(x, affine ? residual : nil, affine ? weight : nil, affine ? bias : nil, c, plane,
                                        p0, p1, 1e-5, &out, isa)
                }
                for p in 0..<plane {
                    let ms = (0..<c).reduce(0.0) { $0 + Double(x[$1 * plane + p]) * Double(x[$1 * plane + p]) } / Double(c)
                    for ch in 0..<c {
                        let at = ch * plane + p
                        var want = Double(x[at]) / (ms + 1e-5).squareRoot()
                        if affine { want = want * Double(weight[ch]) + Double(bias[ch]) + Double(residual[at]) }
                        #expect(abs(Double(out[at]) - want) <= 2e-6 * max(1, abs(want)), "isa \(isa.rawValue) c \(c) p \(p)")
                    }
                }
            }
        }
        // The op: its residual form equals the norm plus the residual.
        let t = Tensor(shape: [1, c, plane], values: x), res = Tensor(shape: [1, c, plane], values: residual)
        let w = Tensor(shape: [c], values: weight), b = Tensor(shape: [c], values: bias)
        let fused = Ops.channelRMSNorm(t, weight: w, bias: b, eps: 1e-5, residual: res)
        let chain = Ops.add(Ops.channelRMSNorm(t, weight: w, bias: b, eps: 1e-5), res)
        #expect(TestSupport.relativeError(fused, chain) <= 1e-6)
    }
}
