import CUDA
import Foundation
import LinearDiT
import Tensors

/// `sanagraph-cuda test`: every GPU kernel, the GPU DiT and DC-AE decoder (DCAEChecks) against the CPU implementation (fp32) on fresh random
/// inputs, outputs poisoned with NaN first. Tolerances: 1e-4-ish where only fp32 accumulation order differs,
/// 5e-3 where the output is rounded to bf16 (2⁻⁹ relative per element), 3e-2 for whole bf16 models.
enum GPUChecks {
    typealias Check = (name: String, body: @Sendable (CUDAContext, NNKernels) throws -> String)

    static func run(filter: String?) -> Int32 {
        let context: CUDAContext
        do {
            context = try CUDAContext.open(device: 0)
        } catch .noDriver(let tried, let reason) {
            print("skipped: no CUDA driver (\(CUDAError.noDriver(tried: tried, reason: reason)))")
            return 0
        } catch {
            print("FAIL opening the GPU: \(error)")
            return 1
        }
        print("GPU: \(context.name) (\(context.architecture), \(context.multiprocessorCount) SMs, CUDA driver \(context.driverVersion))")
        let kernels: NNKernels
        let t0 = Date()
        do {
            kernels = try NNKernels(context: context)
        } catch {
            print("FAIL compiling the kernels: \(error)")
            return 1
        }
        print("kernels ready in \(String(format: "%.0f", Date().timeIntervalSince(t0) * 1000)) ms "
              + "(\(kernels.module.fromDiskCache ? "disk cache" : "compiled by NVRTC"))")
        var passed = 0, failed = 0
        for check in checks + dcaeChecks where filter.map({ check.name.contains($0) }) ?? true {
            do {
                let detail = try check.body(context, kernels)
                try context.synchronize()
                print("PASS \(check.name): \(detail)")
                passed += 1
            } catch {
                print("FAIL \(check.name): \(error)")
                failed += 1
            }
        }
        print("\(passed) passed, \(failed) failed")
        return failed == 0 ? 0 : 1
    }

    static let checks: [Check] = [
        ("copies round-trip f32 and bf16", copies),
        ("allocator reuses freed blocks", allocatorReuse),
        ("kernel disk cache hit", kernelCache),
        ("gemm linear fp32 out + bias", gemmLinear),
        ("gemm bf16 out, accumulate", gemmVariants),
        ("gemm strided-batch attention shapes", gemmAttention),
        ("gemm tuning (candidates timed, fastest kept)", gemmTuning),
        ("layernorm_modulate", layerNorm),
        ("rmsnorm (rows and strided in place)", rmsNorm),
        ("gated_residual with clamp", gatedResidual),
        ("activations silu / gelu-tanh", activations),
        ("add_mod_tables", modTables),
        ("patchify / unpatchify", patches),
        ("dwconv3x3_glu", dwconv),
        ("relu linear attention", linearAttention),
        ("masked softmax", softmax),
        ("DiT forward (small config)", { c, _ in try ditSmall(c, variant: false) }),
        ("DiT forward (qk_norm, guidance, PE, patch 2)", { c, _ in try ditSmall(c, variant: true) }),
    ] + gemmaChecks

    static func copies(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 1)
        let x = r.tensor([3, 333])
        let f = try DeviceTensor(x, dtype: .f32, on: c).toHost()
        guard f.scalars == x.scalars else { throw CheckFailure(description: "fp32 round trip changed values") }
        let b = try DeviceTensor(x, dtype: .bf16, on: c).toHost()
        guard b.scalars == bf16Rounded(x).scalars else { throw CheckFailure(description: "bf16 round trip is not bf16 rounding") }
        return "exact"
    }

    static func allocatorReuse(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var p: DevicePointer = 0
        do { p = try c.allocator.allocate(bytes: 3 << 20).pointer }
        let before = c.allocator.driverAllocations
        let again = try c.allocator.allocate(bytes: 3 << 20)
        guard again.pointer == p, c.allocator.driverAllocations == before else {
            throw CheckFailure(description: "a freed 3 MiB block was not reused")
        }
        return "reused, \(c.allocator.reserved >> 20) MiB reserved"
    }

    static func kernelCache(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        let again = try c.module(named: "nn-cache-check", source: NNKernels.source)
        guard again.fromDiskCache else {
            throw CheckFailure(description: "the same source compiled again (cache folder \(KernelCache().directory) unwritable?)")
        }
        return "loaded from \(KernelCache().directory)"
    }

    static func gemmLinear(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 2)
        let x = bf16Rounded(r.tensor([37, 96])), w = bf16Rounded(r.tensor([80, 96], scale: 0.1)), bias = r.tensor([80])
        let out = try poisoned([37, 80], .f32, on: c)
        try c.gemm().run(m: 37, n: 80, k: 96, a: GemmOperand(DeviceTensor(x, dtype: .bf16, on: c).pointer, ld: 96),
                         b: GemmOperand(DeviceTensor(w, dtype: .bf16, on: c).pointer, ld: 96), bTransposed: true,
                         d: GemmOperand(out.pointer, ld: 80), outputF32: true,
                         bias: DeviceTensor(bias, on: c).pointer, stream: c.stream)
        return try expectClose(out.toHost(), Ops.linear(x, weight: w, bias: bias), tolerance: 1e-4, "rel err")
    }

    static func gemmVariants(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 3)
        let x = bf16Rounded(r.tensor([64, 128])), w = bf16Rounded(r.tensor([48, 128], scale: 0.1))
        let biasB = bf16Rounded(r.tensor([48]))
        let xd = try DeviceTensor(x, dtype: .bf16, on: c), wd = try DeviceTensor(w, dtype: .bf16, on: c)
        let outB = try poisoned([64, 48], .bf16, on: c)
        try c.gemm().run(m: 64, n: 48, k: 128, a: GemmOperand(xd.pointer, ld: 128), b: GemmOperand(wd.pointer, ld: 128),
                         bTransposed: true, d: GemmOperand(outB.pointer, ld: 48), outputF32: false,
                         bias: DeviceTensor(biasB, dtype: .bf16, on: c).pointer, stream: c.stream)
        let a = try expectClose(outB.toHost(), Ops.linear(x, weight: w, bias: biasB), tolerance: 5e-3, "bf16 out")
        let start = r.tensor([64, 48])
        let acc = try DeviceTensor(start, on: c)
        try c.gemm().run(m: 64, n: 48, k: 128, a: GemmOperand(xd.pointer, ld: 128), b: GemmOperand(wd.pointer, ld: 128),
                         bTransposed: true, d: GemmOperand(acc.pointer, ld: 48), outputF32: true, accumulate: true,
                         stream: c.stream)
        let b = try expectClose(acc.toHost(), Ops.add(start, Ops.linear(x, weight: w, bias: nil)), tolerance: 1e-4,
                                "accumulate")
        return a + ", " + b
    }

    /// `Gemm.tuneCandidates` > 1 on a shape no other check uses: every candidate runs on the real operands, the
    /// result is still the GEMM's, and an accumulating GEMM is not tuned (re-running it would add twice).
    static func gemmTuning(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 5)
        let (m, n, kk) = (29, 40, 56)
        let x = bf16Rounded(r.tensor([m, kk])), w = bf16Rounded(r.tensor([n, kk], scale: 0.1)), bias = r.tensor([n])
        let xd = try DeviceTensor(x, dtype: .bf16, on: c), wd = try DeviceTensor(w, dtype: .bf16, on: c)
        let bd = try DeviceTensor(bias, on: c)
        let out = try poisoned([m, n], .f32, on: c)
        let gemm = try c.gemm()
        let saved = Gemm.tuneCandidates
        Gemm.tuneCandidates = 4
        defer { Gemm.tuneCandidates = saved }
        let before = gemm.tuned.count
        try gemm.run(m: m, n: n, k: kk, a: GemmOperand(xd.pointer, ld: kk), b: GemmOperand(wd.pointer, ld: kk),
                     bTransposed: true, d: GemmOperand(out.pointer, ld: n), outputF32: true, bias: bd.pointer,
                     stream: c.stream)
        let a = try expectClose(out.toHost(), Ops.linear(x, weight: w, bias: bias), tolerance: 1e-4, "tuned")
        let start = r.tensor([m, n])
        let acc = try DeviceTensor(start, on: c)
        try gemm.run(m: m, n: n, k: kk, a: GemmOperand(xd.pointer, ld: kk), b: GemmOperand(wd.pointer, ld: kk),
                     bTransposed: true, d: GemmOperand(acc.pointer, ld: n), outputF32: true, accumulate: true,
                     stream: c.stream)
        let b = try expectClose(acc.toHost(), Ops.add(start, Ops.linear(x, weight: w, bias: nil)), tolerance: 1e-4,
                                "accumulate untuned")
        guard gemm.tuned.count == before + 1, let last = gemm.tuned.last, last.milliseconds.count > 1 else {
            throw CheckFailure(description: "expected one tuned plan with several candidates, got \(gemm.tuned.suffix(2))")
        }
        return "\(a), \(b), \(last.milliseconds.count) candidates"
    }

    /// The cross-attention pattern: per head h, S_h = Q_h K_hᵀ (K inside a fused K|V buffer), O_h = P_h V_h with
    /// k < ld (padded probability rows), heads as the strided batch.
    static func gemmAttention(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 4)
        let n = 33, heads = 3, hd = 24, l = 19, lp = 24, dc = heads * hd
        let q = bf16Rounded(r.tensor([n, dc])), kv = bf16Rounded(r.tensor([l, 2 * dc]))
        let qd = try DeviceTensor(q, dtype: .bf16, on: c), kvd = try DeviceTensor(kv, dtype: .bf16, on: c)
        let s = try poisoned([heads, n, lp], .f32, on: c)
        try c.gemm().run(m: n, n: l, k: hd, a: GemmOperand(qd.pointer, ld: dc, batchStride: hd),
                         b: GemmOperand(kvd.pointer, ld: 2 * dc, batchStride: hd), bTransposed: true,
                         d: GemmOperand(s.pointer, ld: lp, batchStride: n * lp), outputF32: true, alpha: 0.5,
                         batch: heads, stream: c.stream)
        let sh = try s.toHost().scalars
        let qs = q.scalars, kvs = kv.scalars
        var got: [Float] = [], want: [Float] = []
        for h in 0..<heads {
            for i in 0..<n {
                for j in 0..<l {
                    var dot: Float = 0
                    for e in 0..<hd { dot += qs[i * dc + h * hd + e] * kvs[j * 2 * dc + h * hd + e] }
                    want.append(0.5 * dot)
                    got.append(sh[(h * n + i) * lp + j])
                }
            }
        }
        let e1 = try expectClose(Tensor(shape: [got.count], values: got), Tensor(shape: [want.count], values: want),
                                 tolerance: 1e-4, "QKᵀ")
        // P·V with the probability rows padded to lp columns, k = l.
        let p = bf16Rounded(r.tensor([heads, n, lp]))
        let pd = try DeviceTensor(p, dtype: .bf16, on: c)
        let o = try poisoned([n, dc], .f32, on: c)
        try c.gemm().run(m: n, n: hd, k: l, a: GemmOperand(pd.pointer, ld: lp, batchStride: n * lp),
                         b: GemmOperand(kvd.pointer + DevicePointer(dc * 2), ld: 2 * dc, batchStride: hd),
                         bTransposed: false, d: GemmOperand(o.pointer, ld: dc, batchStride: hd), outputF32: true,
                         batch: heads, stream: c.stream)
        let oh = try o.toHost().scalars, ps = p.scalars
        got = []; want = []
        for h in 0..<heads {
            for i in 0..<n {
                for e in 0..<hd {
                    var dot: Float = 0
                    for j in 0..<l { dot += ps[(h * n + i) * lp + j] * kvs[j * 2 * dc + dc + h * hd + e] }
                    want.append(dot)
                    got.append(oh[i * dc + h * hd + e])
                }
            }
        }
        let e2 = try expectClose(Tensor(shape: [got.count], values: got), Tensor(shape: [want.count], values: want),
                                 tolerance: 1e-4, "PV")
        return e1 + ", " + e2
    }

    static func layerNorm(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 5)
        let b = 2, n = 5, d = 1152
        let x = r.tensor([b, n, d], scale: 3, offset: 1), mods = r.tensor([b, 6, d], scale: 0.5)
        let out = try poisoned([b * n, d], .bf16, on: c)
        let md = try DeviceTensor(mods, on: c)
        try k.layerNormModulated(x: DeviceTensor(x, on: c).pointer, out: out.pointer, rows: b * n, dim: d,
                                 shift: md.pointer + DevicePointer(3 * d * 4), scale: md.pointer + DevicePointer(4 * d * 4),
                                 modBatchStride: 6 * d, rowsPerBatch: n, eps: 1e-6)
        let shift = Ops.slice(mods, axis: 1, range: 3..<4), scale = Ops.slice(mods, axis: 1, range: 4..<5)
        return try expectClose(out.toHost(), Ops.layerNormModulated(x, scale: scale, shift: shift, eps: 1e-6),
                               tolerance: 5e-3, "rel err")
    }

    static func rmsNorm(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 6)
        let x = r.tensor([7, 72], scale: 2), w = r.tensor([72], scale: 0.1, offset: 1)
        let wd = try DeviceTensor(w, on: c)
        let out = try poisoned([7, 72], .bf16, on: c)
        try k.rmsNorm(x: DeviceTensor(x, on: c).pointer, weight: wd.pointer, out: out.pointer, rows: 7, dim: 72, eps: 1e-5)
        let a = try expectClose(out.toHost(), Ops.rmsNorm(x, weight: w, eps: 1e-5), tolerance: 5e-3, "rows")
        // In place on the middle third of 3·72-wide rows; the other columns must not change.
        let wide = bf16Rounded(r.tensor([7, 216]))
        let wd2 = try DeviceTensor(wide, dtype: .bf16, on: c)
        try k.rmsNormInPlace(wd2.pointer + DevicePointer(72 * 2), rows: 7, dim: 72, ld: 216, weight: wd.pointer, eps: 1e-5)
        let got = try wd2.toHost()
        let mid = Ops.slice(wide, axis: 1, range: 72..<144)
        let b = try expectClose(Ops.slice(got, axis: 1, range: 72..<144), Ops.rmsNorm(mid, weight: w, eps: 1e-5),
                                tolerance: 5e-3, "strided")
        guard Ops.slice(got, axis: 1, range: 0..<72).scalars == Ops.slice(wide, axis: 1, range: 0..<72).scalars,
              Ops.slice(got, axis: 1, range: 144..<216).scalars == Ops.slice(wide, axis: 1, range: 144..<216).scalars else {
            throw CheckFailure(description: "in-place RMSNorm wrote outside its columns")
        }
        return a + ", " + b
    }

    static func gatedResidual(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 7)
        let b = 2, n = 5, d = 64
        var x = r.tensor([b, n, d])
        var yv = r.tensor([b, n, d]).scalars
        yv[3] = 1e5; yv[70] = -2e5  // beyond fp16: clamped
        let y = Tensor(shape: [b, n, d], values: yv), gate = r.tensor([b, 1, d])
        let xd = try DeviceTensor(x, on: c)
        let xb = try poisoned([b * n, d], .bf16, on: c)
        try k.gatedResidual(x: xd.pointer, y: DeviceTensor(y, on: c).pointer, gate: DeviceTensor(gate, on: c).pointer,
                            gateBatchStride: d, rows: b * n, dim: d, rowsPerBatch: n, clampMagnitude: 65_504,
                            xBF16: xb.pointer)
        Ops.addGatedInPlace(&x, gate: gate, y, clampMagnitude: 65_504)
        let a = try expectClose(xd.toHost(), x, tolerance: 1e-6, "fp32")
        let e = try expectClose(xb.toHost(), x, tolerance: 5e-3, "bf16 copy")
        return a + ", " + e
    }

    static func activations(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 8)
        let x = r.tensor([1000], scale: 4)
        let xd = try DeviceTensor(x, on: c)
        let out = try poisoned([1000], .bf16, on: c)
        try k.activation(.silu, x: xd.pointer, out: out.pointer, count: 1000)
        let a = try expectClose(out.toHost(), Ops.silu(x), tolerance: 5e-3, "silu")
        try k.activation(.geluTanh, x: xd.pointer, out: out.pointer, count: 1000)
        let g = try expectClose(out.toHost(), Ops.gelu(x, approximate: .tanh), tolerance: 5e-3, "gelu")
        try k.activation(.identity, x: xd.pointer, out: out.pointer, count: 1000)
        guard try out.toHost().scalars == bf16Rounded(x).scalars else {
            throw CheckFailure(description: "fp32 → bf16 conversion differs from round-to-nearest-even")
        }
        return a + ", " + g + ", identity exact"
    }

    static func modTables(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 9)
        let blocks = 3, b = 2, d = 40
        let t = r.tensor([b, 6 * d]), tables = r.tensor([blocks, 6, d])
        let out = try poisoned([blocks, b, 6, d], .f32, on: c)
        try k.addModulationTables(t: DeviceTensor(t, on: c).pointer, tBatchStride: 6 * d, tKStride: d,
                                  tables: DeviceTensor(tables, on: c).pointer, out: out.pointer, blocks: blocks,
                                  batch: b, k: 6, dim: d)
        let ts = t.scalars, tab = tables.scalars
        var want: [Float] = []
        for blk in 0..<blocks { for bi in 0..<b { for kk in 0..<6 { for i in 0..<d {
            want.append(ts[bi * 6 * d + kk * d + i] + tab[(blk * 6 + kk) * d + i])
        } } } }
        return try expectClose(out.toHost(), Tensor(shape: [want.count], values: want), tolerance: 1e-7, "rel err")
    }

    static func patches(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 10)
        let b = 2, ch = 4, h = 6, w = 8, p = 2, hp = 3, wp = 4
        let x = bf16Rounded(r.tensor([b, ch, h, w]))
        let tokens = try poisoned([b * hp * wp, ch * p * p], .bf16, on: c)
        try k.patchify(DeviceTensor(x, on: c).pointer, out: tokens.pointer, batch: b, channels: ch, height: h, width: w,
                       patch: p)
        let want = Ops.permute(x.reshaped([b, ch, hp, p, wp, p]), [0, 2, 4, 1, 3, 5]).reshaped([b * hp * wp, ch * p * p])
        guard try tokens.toHost().scalars == want.scalars else { throw CheckFailure(description: "patchify layout") }
        let y = r.tensor([b * hp * wp, p * p * ch])
        let img = try poisoned([b, ch, h, w], .f32, on: c)
        try k.unpatchify(DeviceTensor(y, on: c).pointer, out: img.pointer, batch: b, channels: ch, hp: hp, wp: wp, patch: p)
        let back = Ops.permute(y.reshaped([b, hp, wp, p, p, ch]), [0, 5, 1, 3, 2, 4]).reshaped([b, ch, h, w])
        guard try img.toHost().scalars == back.scalars else { throw CheckFailure(description: "unpatchify layout") }
        return "exact"
    }

    static func dwconv(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 11)
        let b = 2, h = 5, w = 7, ch = 24
        let a = bf16Rounded(r.tensor([b, h * w, 2 * ch], scale: 2))
        let weight = r.tensor([2 * ch, 1, 3, 3], scale: 0.5), bias = r.tensor([2 * ch], scale: 0.1)
        let taps = Ops.depthwiseTapsChannelsLast(weight)
        let out = try poisoned([b, h * w, ch], .bf16, on: c)
        try k.depthwiseConv3x3GLU(DeviceTensor(a, dtype: .bf16, on: c).pointer, taps: DeviceTensor(taps, on: c).pointer,
                                  bias: DeviceTensor(bias, on: c).pointer, out: out.pointer, batch: b, height: h,
                                  width: w, channels: ch)
        let want = Ops.depthwiseConv3x3GLUChannelsLast(Ops.silu(a), height: h, width: w, taps: taps, bias: bias)
        return try expectClose(out.toHost(), want, tolerance: 5e-3, "rel err")
    }

    static func linearAttention(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 12)
        let b = 2, n = 300, heads = 3, d = 32, width = heads * d, ld = 3 * width + 8
        let qkv = bf16Rounded(r.tensor([b * n, ld]))
        let scratch = try DeviceTensor(uninitialized: [NNKernels.linearAttentionScratchBytes(batch: b, heads: heads, tokens: n) / 4],
                                       dtype: .f32, on: c)
        let out = try poisoned([b * n, width], .bf16, on: c)
        try k.reluLinearAttention(qkv: DeviceTensor(qkv, dtype: .bf16, on: c).pointer, ld: ld, qOffset: 0, kOffset: width,
                                  vOffset: 2 * width, out: out.pointer, outLD: width, batch: b, tokens: n, heads: heads,
                                  scratch: scratch.pointer)
        func part(_ i: Int) -> Tensor {
            Ops.slice(qkv, axis: 1, range: (i * width)..<((i + 1) * width)).reshaped([b, n, heads, d])
        }
        let want = Ops.reluLinearAttention(query: part(0), key: part(1), value: part(2), eps: 1e-15, layout: .tokensFirst)
        return try expectClose(out.toHost(), want, tolerance: 5e-3, "rel err")
    }

    static func softmax(_ c: CUDAContext, _ k: NNKernels) throws -> String {
        var r = Random(seed: 13)
        let b = 2, heads = 3, nq = 10, l = 21, lp = 24, rows = b * heads * nq
        let s = r.tensor([rows, lp], scale: 3)
        var mask = [Float](repeating: 0, count: b * l)
        for j in 15..<l { mask[j] = -10_000 }          // batch 0: last 6 keys masked
        for j in 4..<l { mask[l + j] = -10_000 }       // batch 1: only 4 keys
        let out = try poisoned([rows, lp], .bf16, on: c)
        try k.maskedSoftmax(scores: DeviceTensor(s, on: c).pointer,
                            bias: DeviceTensor(Tensor(shape: [b, l], values: mask), on: c).pointer, out: out.pointer,
                            rows: rows, cols: l, ld: lp, rowsPerBatch: heads * nq)
        let sv = s.scalars
        var want = [Float](repeating: 0, count: rows * lp)
        for row in 0..<rows {
            let bi = row / (heads * nq)
            let logits = (0..<l).map { sv[row * lp + $0] + mask[bi * l + $0] }
            let m = logits.max()!
            let e = logits.map { Foundation.exp($0 - m) }
            let sum = e.reduce(0, +)
            for j in 0..<l { want[row * lp + j] = e[j] / sum }
        }
        return try expectClose(out.toHost(), Tensor(shape: [rows, lp], values: want), tolerance: 5e-3, "rel err")
    }
}
