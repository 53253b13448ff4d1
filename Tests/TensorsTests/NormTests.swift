import Foundation
import Tensors
import Testing
import TestSupport

@Suite("Normalisation")
struct NormTests {
    @Test("LayerNorm, the three RMSNorm flavours and GroupNorm match torch / diffusers / transformers")
    func matchesReference() throws {
        let (f, cases) = try CoreFixtures.load("norm")
        #expect(cases.count == 12)
        for c in cases {
            let x = try f.tensor("\(c.name).x"), ref = try f.tensor("\(c.name).out")
            let eps = try #require(c.float("eps"))
            let weight = try CoreFixtures.optional(f, "\(c.name).weight")
            let bias = try CoreFixtures.optional(f, "\(c.name).bias")
            #expect((weight != nil) == (c.bool("weight") || c.string("kind") == "gemmaRMSNorm"), "\(c.name)")
            let y: Tensor
            switch c.string("kind") {
            case "layerNorm": y = Ops.layerNorm(x, weight: weight, bias: bias, eps: eps)
            case "rmsNorm": y = Ops.rmsNorm(x, weight: weight, eps: eps)
            case "gemmaRMSNorm": y = Ops.gemmaRMSNorm(x, weight: try #require(weight), eps: eps)
            case "channelRMSNorm": y = Ops.channelRMSNorm(x, weight: weight, bias: bias, eps: eps)
            case "groupNorm": y = Ops.groupNorm(x, groups: try #require(c.int("groups")), weight: weight, bias: bias, eps: eps)
            default: Issue.record("unknown kind in case \(c.name)"); continue
            }
            #expect(y.shape == ref.shape, "\(c.name)")
            #expect(TestSupport.relativeError(y, ref) <= CoreFixtures.tolerance, "\(c.name)")
        }
    }

    @Test("row norms agree with a float64 direct computation on many rows (parallel chunks)")
    func rowNormsAgreeWithFloat64() {
        var rng = SeededValues(seed: 50)
        let (rows, d) = (300, 1152)
        let x = rng.tensor([rows, d], scale: 3, offset: 0.5), w = rng.tensor([d]), b = rng.tensor([d])
        let xs = x.scalars, ws = w.scalars, bs = b.scalars
        var ln = [Float](repeating: 0, count: rows * d), rms = ln, gemma = ln
        for r in 0..<rows {
            let row = xs[(r * d)..<((r + 1) * d)].map(Double.init)
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(d)
            let ms = row.reduce(0) { $0 + $1 * $1 } / Double(d)
            for i in 0..<d {
                ln[r * d + i] = Float((row[i] - mean) / (variance + 1e-6).squareRoot() * Double(ws[i]) + Double(bs[i]))
                rms[r * d + i] = Float(row[i] / (ms + 1e-5).squareRoot() * Double(ws[i]))
                gemma[r * d + i] = Float(row[i] / (ms + 1e-6).squareRoot() * (1 + Double(ws[i])))
            }
        }
        let shape = [rows, d]
        #expect(TestSupport.relativeError(Ops.layerNorm(x, weight: w, bias: b, eps: 1e-6), Tensor(shape: shape, values: ln)) <= CoreFixtures.tolerance)
        #expect(TestSupport.relativeError(Ops.rmsNorm(x, weight: w, eps: 1e-5), Tensor(shape: shape, values: rms)) <= CoreFixtures.tolerance)
        #expect(TestSupport.relativeError(Ops.gemmaRMSNorm(x, weight: w, eps: 1e-6), Tensor(shape: shape, values: gemma)) <= CoreFixtures.tolerance)
    }

    @Test("channel RMSNorm and GroupNorm agree with float64 on images spanning many pixel tiles")
    func channelNormsAgreeWithFloat64() {
        var rng = SeededValues(seed: 60)
        let (n, c, h, w) = (2, 12, 33, 41)
        let plane = h * w
        let x = rng.tensor([n, c, h, w], scale: 2, offset: 0.25), wt = rng.tensor([c]), b = rng.tensor([c])
        let xs = x.scalars, ws = wt.scalars, bs = b.scalars
        var channel = [Float](repeating: 0, count: x.count), group = channel
        for i in 0..<n {
            for p in 0..<plane {
                var ms = 0.0
                for k in 0..<c { let v = Double(xs[(i * c + k) * plane + p]); ms += v * v }
                let rs = 1 / (ms / Double(c) + 1e-5).squareRoot()
                for k in 0..<c {
                    let at = (i * c + k) * plane + p
                    channel[at] = Float(Double(xs[at]) * rs * Double(ws[k]) + Double(bs[k]))
                }
            }
            for g in 0..<3 {  // 4 channels per group
                let range = ((i * c + g * 4) * plane)..<((i * c + g * 4 + 4) * plane)
                let values = xs[range].map(Double.init)
                let mean = values.reduce(0, +) / Double(values.count)
                let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
                for at in range {
                    let k = (at / plane) % c
                    group[at] = Float((Double(xs[at]) - mean) / (variance + 1e-5).squareRoot() * Double(ws[k]) + Double(bs[k]))
                }
            }
        }
        #expect(TestSupport.relativeError(Ops.channelRMSNorm(x, weight: wt, bias: b, eps: 1e-5), Tensor(shape: x.shape, values: channel)) <= CoreFixtures.tolerance)
        #expect(TestSupport.relativeError(Ops.groupNorm(x, groups: 3, weight: wt, bias: b, eps: 1e-5), Tensor(shape: x.shape, values: group)) <= CoreFixtures.tolerance)
    }
}
