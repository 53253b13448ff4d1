import Testing
import Tensors
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
