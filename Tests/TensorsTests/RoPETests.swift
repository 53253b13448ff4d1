import Testing
import Tensors
import TestSupport

@Suite("Rotary position embedding")
struct RoPETests {
    @Test("cos/sin tables match transformers' Gemma2RotaryEmbedding")
    func tablesMatchTransformers() throws {
        let f = try AttentionFixtures.open("rope")
        let positions = try #require(try AttentionFixtures.metadataJSON(f, "positions") as? [[Int]])
        let theta = try #require(try AttentionFixtures.metadataJSON(f, "theta") as? Double)
        let cos = try f.tensor("cos"), sin = try f.tensor("sin")
        for (b, pos) in positions.enumerated() {
            let (c, s) = Ops.rotaryCosSin(positions: pos, headDim: 16, theta: Float(theta))
            let refC = Ops.slice(cos, axis: 0, range: b..<(b + 1)).reshaped([pos.count, 16])
            let refS = Ops.slice(sin, axis: 0, range: b..<(b + 1)).reshaped([pos.count, 16])
            #expect(TestSupport.relativeError(c, refC) <= AttentionFixtures.tolerance)
            #expect(TestSupport.relativeError(s, refS) <= AttentionFixtures.tolerance)
        }
    }

    @Test("Gemma-2 head size 256 at far positions (up to 509)")
    func farPositionsHeadDim256() throws {
        let f = try AttentionFixtures.open("rope")
        let positions = try #require(try AttentionFixtures.metadataJSON(f, "positions256") as? [Int])
        let (c, s) = Ops.rotaryCosSin(positions: positions, headDim: 256)
        #expect(TestSupport.relativeError(c, try f.tensor("cos256")) <= AttentionFixtures.tolerance)
        #expect(TestSupport.relativeError(s, try f.tensor("sin256")) <= AttentionFixtures.tolerance)
    }

    @Test("applyRotaryEmbedding matches apply_rotary_pos_emb with per-batch tables [B, 1, L, D]")
    func applyMatchesTransformers() throws {
        let f = try AttentionFixtures.open("rope")
        let cos = try f.tensor("cos").reshaped([2, 1, 5, 16]), sin = try f.tensor("sin").reshaped([2, 1, 5, 16])
        let y = Ops.applyRotaryEmbedding(try f.tensor("x"), cos: cos, sin: sin)
        #expect(TestSupport.relativeError(y, try f.tensor("out")) <= AttentionFixtures.tolerance)
    }

    @Test("a shared [L, D] table broadcasts over batch and heads")
    func sharedTableBroadcasts() throws {
        let f = try AttentionFixtures.open("rope")
        let x0 = Ops.slice(try f.tensor("x"), axis: 0, range: 0..<1)
        let (c, s) = Ops.rotaryCosSin(positions: Array(0..<5), headDim: 16)
        let y = Ops.applyRotaryEmbedding(x0, cos: c, sin: s)
        let ref = Ops.slice(try f.tensor("out"), axis: 0, range: 0..<1)
        #expect(TestSupport.relativeError(y, ref) <= AttentionFixtures.tolerance)
    }
}
