import Testing
@testable import Tensors
import TestSupport

@Suite("ReLU linear attention")
struct LinearAttentionTests {
    @Test("matches diffusers SanaLinearAttnProcessor2_0 in [B, H, N, D]")
    func matchesSanaProcessor() throws {
        let f = try AttentionFixtures.open("linear_attention")
        let y = Ops.reluLinearAttention(query: try f.tensor("sana.q"), key: try f.tensor("sana.k"),
                                        value: try f.tensor("sana.v"))
        let ref = try f.tensor("sana.out")
        #expect(y.shape == ref.shape)
        #expect(TestSupport.relativeError(y, ref) <= AttentionFixtures.tolerance)
    }

    @Test("tokens-first layout [B, N, H, D] gives the same result")
    func tokensFirstLayout() throws {
        let f = try AttentionFixtures.open("linear_attention")
        let swap = { (t: Tensor) in Ops.permute(t, [0, 2, 1, 3]) }
        let y = Ops.reluLinearAttention(query: swap(try f.tensor("sana.q")), key: swap(try f.tensor("sana.k")),
                                        value: swap(try f.tensor("sana.v")), layout: .tokensFirst)
        #expect(TestSupport.relativeError(swap(y), try f.tensor("sana.out")) <= AttentionFixtures.tolerance)
    }

    @Test("long sequences (several token blocks, heads spread over workers) match a direct double-precision sum",
          arguments: [AttentionLayout.headsFirst, .tokensFirst])
    func longSequenceMatchesDirectSum(layout: AttentionLayout) {
        var rng = SeededValues(seed: 70)
        let (b, h, n, d, dv) = (2, 3, 700, 32, 24)  // 700 tokens = 10 blocks of 64 and a partial one
        let q = rng.tensor([b, h, n, d]), k = rng.tensor([b, h, n, d]), v = rng.tensor([b, h, n, dv])
        let swap = { (t: Tensor) in layout == .headsFirst ? t : Ops.permute(t, [0, 2, 1, 3]) }
        let y = swap(Ops.reluLinearAttention(query: swap(q), key: swap(k), value: swap(v), layout: layout))
        #expect(TestSupport.relativeError(y, Self.directSum(q, k, v)) <= 1e-5)
    }

    /// Every C kernel path this CPU runs (portable always, AVX2 and AVX-512 where present) on sizes that leave
    /// vector tails (d 5, dv 7), fill whole vectors (32), and cross a 64-token block with a KV workspace too large
    /// for the stack (96 × 80 on the vector paths), in both layouts (tokens-first rows are strided: 3·d apart for
    /// q/k, 3·dv for v and out).
    @Test("C kernel paths match a direct double-precision sum",
          arguments: [(19, 5, 7), (64, 32, 32), (70, 96, 80)])
    func kernelPathsMatchDirectSum(_ n: Int, _ d: Int, _ dv: Int) {
        var rng = SeededValues(seed: UInt64(n * 10_000 + d * 100 + dv))
        let (b, h) = (2, 3)
        let q = rng.tensor([b, h, n, d]), k = rng.tensor([b, h, n, d]), v = rng.tensor([b, h, n, dv])
        let reference = Self.directSum(q, k, v)
        let cpu = Kernels.selection.cpu
        var paths: [KernelSelection.VectorISA] = [.portable]
        if cpu.avx2 && cpu.fma { paths.append(.avx2) }
        if cpu.avx512Core { paths.append(.avx512) }
        for isa in paths {
            for layout in [AttentionLayout.headsFirst, .tokensFirst] {
                let swap = { (t: Tensor) in layout == .headsFirst ? t : Ops.permute(t, [0, 2, 1, 3]) }
                let y = swap(Ops.reluLinearAttention(query: swap(q), key: swap(k), value: swap(v), eps: 1e-15,
                                                     layout: layout, isa: isa))
                // Sums of n·d products in fp32, in another order than the reference's: a few ulp of the largest.
                let error = TestSupport.relativeError(y, reference)
                #expect(error <= 1e-5, "\(isa.name), \(layout): relative error \(error)")
            }
        }
    }

    /// `[B, H, N, Dv]` attention of `[B, H, N, D]` q/k/v summed in double precision, in diffusers' form.
    static func directSum(_ q: Tensor, _ k: Tensor, _ v: Tensor) -> Tensor {
        let (b, h, n, d, dv) = (q.shape[0], q.shape[1], q.shape[2], q.shape[3], v.shape[3])
        let (qs, ks, vs) = (q.scalars, k.scalars, v.scalars)
        var reference = [Float](repeating: 0, count: b * h * n * dv)
        for pair in 0..<(b * h) {
            var kv = [Double](repeating: 0, count: d * (dv + 1))
            for t in 0..<n {
                for i in 0..<d {
                    let kr = Double(Swift.max(0, ks[(pair * n + t) * d + i]))
                    for j in 0..<dv { kv[i * (dv + 1) + j] += kr * Double(vs[(pair * n + t) * dv + j]) }
                    kv[i * (dv + 1) + dv] += kr
                }
            }
            for t in 0..<n {
                var o = [Double](repeating: 0, count: dv + 1)
                for i in 0..<d {
                    let qr = Double(Swift.max(0, qs[(pair * n + t) * d + i]))
                    for j in 0...dv { o[j] += qr * kv[i * (dv + 1) + j] }
                }
                for j in 0..<dv { reference[(pair * n + t) * dv + j] = Float(o[j] / (o[dv] + 1e-15)) }
            }
        }
        return Tensor(shape: [b, h, n, dv], values: reference)
    }

    @Test("a token with relu(q) = 0 gives 0 (eps keeps 0/0 finite)")
    func zeroQueryGivesZero() throws {
        let f = try AttentionFixtures.open("linear_attention")
        let y = Ops.reluLinearAttention(query: try f.tensor("sana.q"), key: try f.tensor("sana.k"),
                                        value: try f.tensor("sana.v"))
        // Fixture token (batch 1, n 3) is all zeros.
        for h in 0..<y.shape[1] {
            for j in 0..<y.shape[3] { #expect(y[1, h, 3, j] == 0) }
        }
        #expect(y.scalars.allSatisfy { $0.isFinite })
    }

    @Test("DC-AE multiscale core matches diffusers apply_linear_attention / apply_quadratic_attention",
          arguments: ["dcae", "dcae_quadratic"])
    func matchesMultiscale(_ name: String) throws {
        let f = try AttentionFixtures.open("linear_attention")
        let y = Ops.sanaMultiscaleAttention(qkv: try f.tensor("\(name).qkv"), headDim: 8)
        let ref = try f.tensor("\(name).out")
        #expect(y.shape == ref.shape)
        #expect(TestSupport.relativeError(y, ref) <= AttentionFixtures.tolerance, "\(name)")
    }
}
