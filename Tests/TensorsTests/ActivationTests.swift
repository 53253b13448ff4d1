import Foundation
import Tensors
import Testing
import TestSupport

@Suite("Activations")
struct ActivationTests {
    private func apply(_ name: String, _ x: Tensor, slope: Float?) -> Tensor? {
        switch name {
        case "silu": return Ops.silu(x)
        case "gelu": return Ops.gelu(x)
        case "geluTanh": return Ops.gelu(x, approximate: .tanh)
        case "relu": return Ops.relu(x)
        case "leakyReLU", "leakyReLU02": return slope.map { Ops.leakyReLU(x, negativeSlope: $0) }
        default: return nil
        }
    }

    @Test("SiLU, GELU (erf and tanh), ReLU and LeakyReLU match torch, including the vector tail")
    func matchTorch() throws {
        let (f, cases) = try CoreFixtures.load("activation")
        #expect(cases.count == 6)
        let x = try f.tensor("x")
        for c in cases {
            let y = try #require(apply(c.name, x, slope: c.float("negativeSlope")), "case \(c.name)")
            #expect(TestSupport.relativeError(y, try f.tensor(c.name)) <= CoreFixtures.tolerance, "\(c.name)")
        }
    }

    @Test("activations stay finite and correct where exp overflows (|x| up to 1e30)")
    func extremeInputs() throws {
        let (f, cases) = try CoreFixtures.load("activation")
        let x = try f.tensor("extreme")
        for c in cases {
            let y = try #require(apply(c.name, x, slope: c.float("negativeSlope"))).scalars
            let ref = try f.tensor("\(c.name).extreme").scalars
            for i in 0..<ref.count {
                // Relative for large values, absolute (1e-5) near zero, where torch returns denormals.
                #expect(abs(y[i] - ref[i]) <= 1e-5 * max(abs(ref[i]), 1), "\(c.name)(\(x.scalars[i])) = \(y[i]), torch \(ref[i])")
            }
        }
    }

    @Test("vectorised SiLU and GELU agree with libm formulas over a dense range, on many parallel chunks")
    func agreeWithLibm() {
        let n = 200_003
        let values = (0..<n).map { Float($0 - n / 2) * 3e-4 }  // [-30, 30]
        let x = Tensor(shape: [n], values: values)
        let silu = Ops.silu(x).scalars, gelu = Ops.gelu(x).scalars, geluTanh = Ops.gelu(x, approximate: .tanh).scalars
        var worst: (silu: Float, gelu: Float, tanh: Float) = (0, 0, 0)
        for i in 0..<n {
            let v = Double(values[i])
            let refSiLU = v / (1 + Foundation.exp(-v))
            let refGELU = 0.5 * v * (1 + Foundation.erf(v / 2.0.squareRoot()))
            let refTanh = 0.5 * v * (1 + Foundation.tanh((2 / Double.pi).squareRoot() * (v + 0.044715 * v * v * v)))
            // Error relative to max(|ref|, 1): the project measure is max-normalised, and |ref| ≤ 30 here.
            worst.silu = max(worst.silu, Float(abs(Double(silu[i]) - refSiLU) / max(abs(refSiLU), 1)))
            worst.gelu = max(worst.gelu, Float(abs(Double(gelu[i]) - refGELU) / max(abs(refGELU), 1)))
            worst.tanh = max(worst.tanh, Float(abs(Double(geluTanh[i]) - refTanh) / max(abs(refTanh), 1)))
        }
        #expect(worst.silu <= 1e-6)
        #expect(worst.gelu <= 1e-6)
        #expect(worst.tanh <= 1e-6)
    }

    @Test("in-place variants equal the out-of-place kernels, and ReLU keeps NaN")
    func inPlaceAndNaN() {
        var rng = SeededValues(seed: 70)
        let x = rng.tensor([5, 1001], scale: 6)
        var a = x.copy(), b = x.copy(), c = x.copy()
        Ops.siluInPlace(&a)
        Ops.geluInPlace(&b, approximate: .tanh)
        Ops.reluInPlace(&c)
        #expect(a.scalars == Ops.silu(x).scalars)
        #expect(b.scalars == Ops.gelu(x, approximate: .tanh).scalars)
        #expect(c.scalars == Ops.relu(x).scalars)
        let nan = Ops.relu(Tensor(shape: [3], values: [.nan, -1, 2])).scalars
        #expect(nan[0].isNaN && nan[1] == 0 && nan[2] == 2)
    }
}
