// `sanagraph-bench bf16-check`: the bf16 accuracy tests' comparison on this machine's bf16 path, for machines
// without a Swift toolchain (tools/bench/amx-check.sh): the shipped model (models/sana-shapes) run with precision
// bf16 against PyTorch's fp32 and bf16 outputs on the same inputs (Tests/Fixtures/BF16, from
// tools/reference/bf16_accuracy.py). Run from the repository root. Prints one line per model; exits 1 when a
// ratio exceeds 1.5.

import DCAE
import Foundation
import GraphRuntime
import LinearDiT
import Safetensors
import Tensors
import TextEncoder

enum BF16Check {
    static func run() -> Int32 {
        do {
            let f = try SafetensorsFile(path: "Tests/Fixtures/BF16/sana_shapes.safetensors")
            let root = "models/sana-shapes"
            print("bf16 path: \(Kernels.bf16); error = max|Δ|/max|ref| and ‖Δ‖₂/‖ref‖₂ against PyTorch fp32, "
                  + "SanaGraph bf16 vs PyTorch bf16 (ratio ≤ 1.5 passes)")
            var ok = true
            func report(_ what: String, _ ours: Tensor, _ key: String) throws {
                let reference = try f.tensor(key + ".fp32"), pytorch = try f.tensor(key + ".bf16")
                let o = (maxRel(ours, reference), rms(ours, reference)), p = (maxRel(pytorch, reference), rms(pytorch, reference))
                let pass = o.0 <= 1.5 * p.0 && o.1 <= 1.5 * p.1
                ok = ok && pass
                print(String(format: "%@: max %.3g vs %.3g (ratio %.2f), rms %.3g vs %.3g (ratio %.2f) %@", what,
                             o.0, p.0, o.0 / p.0, o.1, p.1, o.1 / p.1, pass ? "ok" : "FAIL"))
            }
            let dit = try SanaTransformer2DModel.load(folder: root + "/transformer", precision: .bf16)
            try report("DiT forward (\(dit.precision.rawValue), \(dit.kernel))",
                       try dit.forward(hiddenStates: f.tensor("dit.latent"), encoderHiddenStates: f.tensor("dit.text"),
                                       encoderAttentionMask: f.tensor("dit.mask"), timestep: f.tensor("dit.timestep")),
                       "dit")
            let vae = try AutoencoderDC.load(folder: root + "/vae", precision: .bf16)
            try report("DC-AE decode (\(vae.precision.rawValue), \(vae.kernel))",
                       try vae.decoderForward(f.tensor("dcae.latent")), "dcae")
            let encoder = try SanaTextEncoder.load(textEncoder: root + "/text_encoder", tokenizer: root + "/tokenizer",
                                                   precision: .bf16)
            let c = try encoder.encode(prompts: ["a red circle above a blue square on a white background"],
                                       instruction: .default, maxSequenceLength: 300, context: RunContext(nodeID: "check"))
            try report("Gemma-2 encode (\(encoder.model.precision.rawValue), \(encoder.model.kernel))", c.embeddings, "gemma")
            return ok ? 0 : 1
        } catch {
            print("bf16-check failed: \(error) (run from the repository root: it reads models/sana-shapes and Tests/Fixtures/BF16)")
            return 2
        }
    }

    static func maxRel(_ a: Tensor, _ b: Tensor) -> Double {
        let (x, y) = (a.scalars, b.scalars)
        var d = 0.0, r = 0.0
        for i in 0..<x.count { d = max(d, Double(abs(x[i] - y[i]))); r = max(r, Double(abs(y[i]))) }
        return d / r
    }

    static func rms(_ a: Tensor, _ b: Tensor) -> Double {
        let (x, y) = (a.scalars, b.scalars)
        var d = 0.0, r = 0.0
        for i in 0..<x.count { d += Double(x[i] - y[i]) * Double(x[i] - y[i]); r += Double(y[i]) * Double(y[i]) }
        return (d / r).squareRoot()
    }
}
