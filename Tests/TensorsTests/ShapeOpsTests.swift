import Testing
import Tensors
import TestSupport

@Suite("Shape ops")
struct ShapeOpsTests {
    private func expectEqual(_ a: Tensor, _ b: Tensor, _ what: String) {
        #expect(a.shape == b.shape, "\(what)")
        #expect(a.scalars == b.scalars, "\(what)")
    }

    @Test("concat, permute, transpose and slice match torch exactly")
    func matchTorch() throws {
        let f = try AttentionFixtures.open("shape_ops")
        let x = try f.tensor("x"), y = try f.tensor("y")
        expectEqual(Ops.concat([x, y, x], axis: 2), try f.tensor("concat_axis2"), "concat axis 2")
        expectEqual(Ops.concat([x, x], axis: -4), try f.tensor("concat_axis0"), "concat axis 0")
        expectEqual(Ops.permute(x, [2, 0, 3, 1]), try f.tensor("permute_2031"), "permute 2031")
        expectEqual(Ops.permute(x, [0, 2, 3, 1]), try f.tensor("permute_0231"), "permute 0231")
        expectEqual(Ops.permute(x, [0, 3, 1, 2]), try f.tensor("permute_0312"), "permute 0312")
        expectEqual(Ops.transpose(x, 1, 3), try f.tensor("transpose_13"), "transpose 1 3")
        expectEqual(Ops.transpose(x, -2, -1), try f.tensor("transpose_23"), "transpose 2 3")
        expectEqual(Ops.slice(x, axis: 3, range: 1..<4), try f.tensor("slice_axis3"), "slice axis 3")
        expectEqual(Ops.slice(x, axis: 0, range: 1..<2), try f.tensor("slice_axis0"), "slice axis 0")
    }

    @Test("chunk follows torch.chunk sizes (5 in 3 → 2, 2, 1) and split follows torch.split")
    func chunkAndSplit() throws {
        let f = try AttentionFixtures.open("shape_ops")
        let x = try f.tensor("x")
        let chunks = Ops.chunk(x, 3, axis: 3)
        #expect(chunks.map { $0.shape[3] } == [2, 2, 1])
        for (i, c) in chunks.enumerated() { expectEqual(c, try f.tensor("chunk3_axis3.\(i)"), "chunk \(i)") }
        let parts = Ops.split(x, sizes: [1, 2], axis: 1)
        for (i, p) in parts.enumerated() { expectEqual(p, try f.tensor("split12_axis1.\(i)"), "split \(i)") }
        // torch.chunk(5 elements, 4) gives 3 chunks of 2, 2, 1; an empty axis gives n empty chunks.
        #expect(Ops.chunk(x, 4, axis: 3).map { $0.shape[3] } == [2, 2, 1])
        #expect(Ops.chunk(Tensor(zeros: [2, 0]), 3, axis: 1).map { $0.shape } == [[2, 0], [2, 0], [2, 0]])
    }

    @Test("slicing the leading axis is a view; identity and size-1 permutes keep the data")
    func viewsAndTrivialPermutes() {
        let x = Tensor(shape: [3, 2, 2], values: (0..<12).map(Float.init))
        let s = Ops.slice(x, axis: 0, range: 1..<3)
        #expect(s.storage === x.storage && s.offset == 4)
        #expect(s.scalars == (4..<12).map(Float.init))
        #expect(Ops.permute(x, [0, 1, 2]).scalars == x.scalars)
        let y = Tensor(shape: [1, 4, 1, 3], values: (0..<12).map(Float.init))
        let p = Ops.permute(y, [2, 1, 0, 3])
        #expect(p.shape == [1, 4, 1, 3] && p.scalars == y.scalars)
    }

    @Test("large batched transpose (blocked path) is exact")
    func largeTranspose() {
        let x = Tensor(shape: [2, 70, 45], values: (0..<6300).map(Float.init))
        let t = Ops.transpose(x, 1, 2)
        #expect(t.shape == [2, 45, 70])
        var ok = true
        for b in 0..<2 { for i in 0..<45 { for j in 0..<70 where t[b, i, j] != x[b, j, i] { ok = false } } }
        #expect(ok)
    }
}
