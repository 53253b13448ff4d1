import Foundation
import Tensors
import Testing
import TestSupport

@Suite("Matmul and linear")
struct LinearTests {
    @Test("matmul matches torch.matmul: transposes, batches, broadcast batch dims, shared 2-D operands")
    func matmulMatchesTorch() throws {
        let (f, cases) = try CoreFixtures.load("matmul")
        let matmuls = cases.filter { $0.string("kind") == "matmul" }
        #expect(matmuls.count == 9)
        for c in matmuls {
            let ref = try f.tensor("\(c.name).out")
            let y = Ops.matmul(try f.tensor("\(c.name).a"), try f.tensor("\(c.name).b"),
                               transposeA: c.bool("transposeA"), transposeB: c.bool("transposeB"))
            #expect(y.shape == ref.shape, "\(c.name)")
            if y.shape == ref.shape {
                #expect(TestSupport.relativeError(y, ref) <= CoreFixtures.tolerance, "\(c.name)")
            }
        }
    }

    @Test("linear matches F.linear with and without bias, including a 1-D input")
    func linearMatchesTorch() throws {
        let (f, cases) = try CoreFixtures.load("matmul")
        let linears = cases.filter { $0.string("kind") == "linear" }
        #expect(linears.count == 3)
        for c in linears {
            let ref = try f.tensor("\(c.name).out")
            let y = Ops.linear(try f.tensor("\(c.name).x"), weight: try f.tensor("\(c.name).weight"),
                               bias: try CoreFixtures.optional(f, "\(c.name).bias"))
            #expect(y.shape == ref.shape, "\(c.name)")
            if y.shape == ref.shape {
                #expect(TestSupport.relativeError(y, ref) <= CoreFixtures.tolerance, "\(c.name)")
            }
        }
    }

    @Test("batched matmul agrees with a direct triple loop on a larger broadcast case")
    func batchedMatmulAgreesWithDirectLoops() {
        var rng = SeededValues(seed: 7)
        let a = rng.tensor([3, 2, 37, 65]), b = rng.tensor([2, 41, 65])  // b read transposed: [2, 65, 41]
        let y = Ops.matmul(a, b, transposeB: true)
        #expect(y.shape == [3, 2, 37, 41])
        var ref = [Float](repeating: 0, count: 3 * 2 * 37 * 41)
        let av = a.scalars, bv = b.scalars
        for i in 0..<3 { for h in 0..<2 { for r in 0..<37 { for c in 0..<41 {
            var s: Double = 0
            for k in 0..<65 { s += Double(av[((i * 2 + h) * 37 + r) * 65 + k]) * Double(bv[(h * 41 + c) * 65 + k]) }
            ref[((i * 2 + h) * 37 + r) * 41 + c] = Float(s)
        } } } }
        #expect(TestSupport.relativeError(y, Tensor(shape: y.shape, values: ref)) <= CoreFixtures.tolerance)
    }

    @Test("linear with bias equals matmul against the transposed weight plus a broadcast bias")
    func linearEqualsMatmulPlusBias() {
        var rng = SeededValues(seed: 11)
        let x = rng.tensor([2, 300, 96]), w = rng.tensor([130, 96]), b = rng.tensor([130])
        let y = Ops.linear(x, weight: w, bias: b)
        let ref = Ops.add(Ops.matmul(x, w, transposeB: true), b)
        #expect(y.shape == [2, 300, 130])
        #expect(TestSupport.relativeError(y, ref) <= 1e-6)
    }

    @Test("empty inner dimension gives zeros (plus bias for linear)")
    func emptyInnerDimension() {
        let z = Ops.matmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 4]))
        #expect(z.shape == [3, 4] && z.scalars.allSatisfy { $0 == 0 })
        let l = Ops.linear(Tensor(zeros: [2, 0]), weight: Tensor(zeros: [3, 0]), bias: Tensor(shape: [3], values: [1, 2, 3]))
        #expect(l.scalars == [1, 2, 3, 1, 2, 3])
    }

    @Test("shape mismatches are programmer errors that stop the process (matmul, linear, conv2d, broadcasting)")
    func shapeMismatchesTrap() async {
        await #expect(processExitsWith: .failure) { _ = Ops.matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 5])) }
        await #expect(processExitsWith: .failure) { _ = Ops.linear(Tensor(zeros: [2, 3]), weight: Tensor(zeros: [4, 5]), bias: nil) }
        await #expect(processExitsWith: .failure) {
            _ = Ops.conv2d(Tensor(zeros: [1, 4, 5, 5]), weight: Tensor(zeros: [2, 3, 3, 3]), bias: nil)
        }
        await #expect(processExitsWith: .failure) {  // 3×3 kernel, stride 2, on a 1-pixel-high input
            _ = Ops.conv2d(Tensor(zeros: [1, 2, 1, 5]), weight: Tensor(zeros: [2, 2, 3, 3]), bias: nil, stride: 2)
        }
        await #expect(processExitsWith: .failure) { _ = Ops.add(Tensor(zeros: [2, 3]), Tensor(zeros: [3, 2])) }
    }
}
