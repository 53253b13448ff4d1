import Foundation
import Testing
@testable import Tensors
import TestSupport

@Suite("Softmax")
struct SoftmaxTests {
    @Test("softmax matches torch.softmax along every axis, including -inf entries")
    func matchesTorchOnEveryAxis() throws {
        let f = try AttentionFixtures.open("softmax")
        let x = try f.tensor("x")
        for axis in [-1, 1, 0] {
            let ref = try f.tensor("out_axis\(axis)")
            let y = Ops.softmax(x, axis: axis)
            #expect(y.shape == ref.shape)
            #expect(TestSupport.relativeError(y, ref) <= AttentionFixtures.tolerance, "axis \(axis)")
            // relativeError skips NaN lanes, so compare where torch gives NaN (all -inf along the axis).
            #expect(y.scalars.map { $0.isNaN } == ref.scalars.map { $0.isNaN }, "axis \(axis)")
        }
    }

    @Test("softmax is stable for logits in the hundreds (no overflow)")
    func stableForLargeLogits() throws {
        let f = try AttentionFixtures.open("softmax")
        let y = Ops.softmax(try f.tensor("big"))
        #expect(y.scalars.allSatisfy { $0.isFinite })
        #expect(TestSupport.relativeError(y, try f.tensor("big_out")) <= AttentionFixtures.tolerance)
    }

    @Test("rows sum to one and a row of -inf gives NaN like PyTorch")
    func rowSumsAndAllMaskedRow() {
        let values: [Float] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, -.infinity, -.infinity, -.infinity, -.infinity,
                               -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity, -.infinity]
        let y = Ops.softmax(Tensor(shape: [2, 11], values: values))
        let first = y.scalars[0..<11].reduce(0, +)
        #expect(abs(first - 1) < 1e-6)
        #expect(y.scalars[11...].allSatisfy { $0.isNaN })
    }

    @Test("exp used by softmax is within 2e-7 relative of libm over the whole range")
    func vectorExpAccuracy() {
        var worst: Float = 0
        var x: Float = -87
        while x < 88 {
            let ys = Ops.softmax(Tensor(shape: [1, 2], values: [x, 0]))
            // softmax([x, 0])[0] = e^x / (e^x + 1); compare in a range where that is well conditioned.
            let expected = Float(1 / (1 + Foundation.exp(-Double(x))))
            if expected > 1e-30 { worst = max(worst, abs(ys.scalars[0] - expected) / expected) }
            x += 0.37
        }
        #expect(worst < 1e-6)
    }

    @Test("the vectorised tanh (Gemma-2's logit softcap) is within 3e-7 relative of libm, odd, and saturates to ±1")
    func vectorTanhAccuracy() {
        var worst: Double = 0
        var x: Float = -12
        while x < 12 {
            let lanes = SoftmaxMath.V((0..<8).map { x + Float($0) * 1e-3 })
            let y = SoftmaxMath.tanh(lanes)
            for i in 0..<8 {
                let expected = Foundation.tanh(Double(lanes[i]))
                if lanes[i] != 0 { worst = max(worst, abs(Double(y[i]) - expected) / abs(expected)) }
                #expect(SoftmaxMath.tanh(-lanes)[i] == -y[i])
            }
            x += 0.0137
        }
        #expect(worst < 3e-7, "worst relative error \(worst)")
        let edge = SoftmaxMath.tanh(SoftmaxMath.V([0, -0.0, 1e-30, 100, -100, .infinity, -.infinity, .nan]))
        #expect(edge[0] == 0 && edge[2] == 1e-30 && edge[3] == 1 && edge[4] == -1 && edge[5] == 1 && edge[6] == -1)
        #expect(edge[7].isNaN)
    }
}
