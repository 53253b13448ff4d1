import Foundation
import Tensors
import Testing
import TestSupport

@Suite("Elementwise")
struct ElementwiseTests {
    private func binary(_ op: String, _ a: Tensor, _ b: Tensor) -> Tensor? {
        switch op {
        case "add": return Ops.add(a, b)
        case "sub": return Ops.sub(a, b)
        case "mul": return Ops.mul(a, b)
        case "div": return Ops.div(a, b)
        default: return nil
        }
    }

    @Test("add/sub/mul/div broadcast like PyTorch (bias rows, adaLN [B,1,C], per-channel, outer, scalar tensors)")
    func broadcastingMatchesTorch() throws {
        let (f, cases) = try CoreFixtures.load("elementwise")
        #expect(cases.count == 11)
        for c in cases {
            let ref = try f.tensor("\(c.name).out")
            let y = try #require(binary(c.string("op") ?? "", try f.tensor("\(c.name).a"), try f.tensor("\(c.name).b")), "\(c.name)")
            #expect(y.shape == ref.shape, "\(c.name)")
            if y.shape == ref.shape {
                #expect(TestSupport.relativeError(y, ref) <= CoreFixtures.tolerance, "\(c.name)")
            }
        }
    }

    @Test("scalar variants match torch, including s - x and s / x")
    func scalarVariantsMatchTorch() throws {
        let (f, _) = try CoreFixtures.load("elementwise")
        let x = try f.tensor("scalar.x")
        let results: [(String, Tensor)] = [
            ("add", Ops.add(x, 1.25)), ("sub", Ops.sub(x, 0.75)), ("rsub", Ops.sub(2, x)),
            ("mul", Ops.mul(x, -3)), ("div", Ops.div(x, 0.3)), ("rdiv", Ops.div(1.5, x)),
        ]
        for (name, y) in results {
            #expect(TestSupport.relativeError(y, try f.tensor("scalar.\(name)")) <= CoreFixtures.tolerance, "\(name)")
        }
        #expect(Ops.scale(x, by: -3).scalars == Ops.mul(x, -3).scalars)
    }

    @Test("broadcast loops agree with direct index arithmetic on large multi-chunk shapes")
    func largeBroadcastAgreesWithDirectLoops() {
        var rng = SeededValues(seed: 80)
        let a = rng.tensor([4, 130, 257]), b = rng.tensor([4, 1, 257]), c = rng.tensor([130, 1])
        let ab = Ops.mul(a, b).scalars, ac = Ops.sub(a, c).scalars
        let av = a.scalars, bv = b.scalars, cv = c.scalars
        var worst: Float = 0
        for i in 0..<4 { for r in 0..<130 { for k in 0..<257 {
            let at = (i * 130 + r) * 257 + k
            worst = max(worst, abs(ab[at] - av[at] * bv[i * 257 + k]), abs(ac[at] - (av[at] - cv[r])))
        } } }
        #expect(worst == 0)
    }

    @Test("in-place ops equal their out-of-place forms")
    func inPlaceMatchesOutOfPlace() {
        var rng = SeededValues(seed: 90)
        let x = rng.tensor([3, 50, 70]), y = rng.tensor([3, 1, 70]), z = rng.tensor([3, 50, 70])
        var a = x.copy(), s = x.copy(), m = x.copy(), d = x.copy(), k = x.copy(), q = x.copy()
        Ops.addInPlace(&a, y)
        Ops.subInPlace(&s, z)
        Ops.mulInPlace(&m, y)
        Ops.divInPlace(&d, Ops.add(Ops.mul(y, y), 1))
        Ops.addInPlace(&k, 2.5)
        Ops.scaleInPlace(&q, by: 0.5)
        #expect(a.scalars == Ops.add(x, y).scalars)
        #expect(s.scalars == Ops.sub(x, z).scalars)
        #expect(m.scalars == Ops.mul(x, y).scalars)
        #expect(d.scalars == Ops.div(x, Ops.add(Ops.mul(y, y), 1)).scalars)
        #expect(k.scalars == Ops.add(x, 2.5).scalars)
        #expect(q.scalars == Ops.scale(x, by: 0.5).scalars)
    }

    @Test("broadcastShapes follows NumPy rules and rejects incompatible shapes")
    func broadcastShapes() {
        #expect(Ops.broadcastShapes([2, 1, 3], [4, 1]) == [2, 4, 3])
        #expect(Ops.broadcastShapes([5], [3, 1]) == [3, 5])
        #expect(Ops.broadcastShapes([], [2, 2]) == [2, 2])
        #expect(Ops.broadcastShapes([2, 3], [3, 2]) == nil)
        #expect(Ops.add(Tensor(zeros: [0, 3]), Tensor(zeros: [1, 3])).shape == [0, 3])
    }
}
