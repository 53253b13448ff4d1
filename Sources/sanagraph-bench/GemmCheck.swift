// `sanagraph-bench gemm [--reps N] [--only LABEL-SUBSTRING]`: GFLOP/s of the model's GEMM and convolution shapes on
// every kernel this machine has (fp32: OpenBLAS, oneDNN; bf16: SanaGraph's AMX kernel — also with its weights cold,
// as in a model's forward —, native oneDNN, emulation; `--only`: the columns whose label contains the substring), with
// the bf16 layers' accuracy, as a Markdown table.
// tools/bench/amx-check.sh runs it on machines without a Swift toolchain. A benchmark, not a test.

import Foundation
import Tensors

enum GemmCheck {
    struct Variant {
        let label: String
        let precision: Precision
        let mode: WeightKernel
    }

    static func run(_ arguments: [String]) {
        var reps = 5, only: String?
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            switch (flag, rest.popFirst()) {
            case ("--reps", let value?) where (Int(value) ?? 0) > 0: reps = Int(value)!
            case ("--only", let value?): only = value
            default:
                FileHandle.standardError.write(Data("usage: sanagraph-bench gemm [--reps N] [--only LABEL-SUBSTRING]\n".utf8))
                exit(2)
            }
        }
        let s = Kernels.selection
        var variants = [Variant(label: "fp32 OpenBLAS", precision: .fp32, mode: .plain)]
        if s.oneDNNVersion != nil { variants.append(Variant(label: "fp32 oneDNN", precision: .fp32, mode: .oneDNN)) }
        if s.bf16Linear == .amxTiles { variants.append(Variant(label: "bf16 AMX tiles", precision: .bf16, mode: .amxTiles)) }
        if case .native(let isa) = s.bf16 { variants.append(Variant(label: "bf16 oneDNN \(isa)", precision: .bf16, mode: .oneDNN)) }
        variants.append(Variant(label: "bf16 emulated", precision: .bf16, mode: .emulatedBF16))
        if let only {
            let labels = variants.map(\.label)
            variants = variants.filter { $0.label.localizedCaseInsensitiveContains(only) }
            guard !variants.isEmpty else {
                FileHandle.standardError.write(Data("gemm: no kernel here matches --only \(only); these run here: \(labels.joined(separator: ", "))\n".utf8))
                exit(2)
            }
        }

        print("GFLOP/s, median of \(reps) after a warm-up, \(s.threads) threads. bf16 error: max|Δ|/max|ref| against "
              + "the double-precision product of the bf16-rounded operands (the arithmetic's own error; fp32 sums) and "
              + "against the fp32 product (bf16 rounding of the operands, ~2e-3 expected).")
        print()
        let labels = variants.flatMap { $0.mode == .amxTiles ? [$0.label, $0.label + ", cold weights"] : [$0.label] }
        print("| shape | " + labels.joined(separator: " | ") + " | bf16 vs exact | bf16 vs fp32 | bf16 kernel |")
        print("|---|" + String(repeating: "---:|", count: labels.count) + "---:|---:|---|")
        // Linear layers: (rows, in, out) of Sana-600M at 512 / 1024 px (batch 2), Gemma-2-2B (741 tokens).
        for (m, k, n, what) in [(512, 1152, 1152, "DiT 512 attn"), (512, 1152, 5760, "DiT 512 FFN in"),
                                (512, 2880, 1152, "DiT 512 FFN out"), (2048, 1152, 5760, "DiT 1024 FFN in"),
                                (741, 2304, 9216, "Gemma MLP in"), (741, 9216, 2304, "Gemma MLP out")] {
            let x = Bench.random([m, k], seed: 1), w = Bench.random([n, k], seed: 2)
            var cells: [String] = [], bf16Out: Tensor?, bf16Kernel = ""
            for v in variants {
                let layer = LinearWeight(w, precision: v.precision, mode: v.mode)
                let ms = time(reps) { Bench.keep(Ops.linear(x, weight: layer, bias: nil)) }
                cells.append(String(format: "%.0f", 2.0 * Double(m * k * n) / ms / 1e6))
                if v.mode == .amxTiles {
                    // As in a model's forward, each weight met once and from memory: cycle through 8 copies.
                    let copies = (0..<8).map { _ in LinearWeight(w, precision: v.precision, mode: v.mode) }
                    var next = 0
                    let cold = time(reps * 4) {
                        Bench.keep(Ops.linear(x, weight: copies[next % copies.count], bias: nil))
                        next += 1
                    }
                    cells.append(String(format: "%.0f", 2.0 * Double(m * k * n) / cold / 1e6))
                }
                if v.precision == .bf16 && bf16Out == nil {
                    bf16Out = Ops.linear(x, weight: layer, bias: nil)
                    bf16Kernel = layer.kernel
                }
            }
            guard let bf16Out else {
                print("| \(what) \(m)×\(k)×\(n) | " + cells.joined(separator: " | ") + " | | | |")
                continue
            }
            let (exact, fp32) = errors(bf16Out, x: x, w: w, rows: Swift.min(m, 64))
            print("| \(what) \(m)×\(k)×\(n) | " + cells.joined(separator: " | ")
                  + String(format: " | %.1e | %.1e | ", exact, fp32) + bf16Kernel + " |")
        }
        // DC-AE decoder 3×3 convolutions at 512 px output (fp32: SanaGraph's Winograd on OpenBLAS).
        for (c, side) in [(512, 128), (256, 256), (128, 512)] {
            let x = Bench.random([1, c, side, side], seed: 3), w = Bench.random([c, c, 3, 3], seed: 4)
            let flop = 2.0 * Double(side * side * c * c * 9)
            var cells: [String] = []
            var kernel = ""
            for v in variants {
                if v.mode == .amxTiles { cells += ["–", "–"]; continue }
                if v.precision == .fp32 && v.mode == .oneDNN { cells.append("–"); continue }
                let layer = ConvWeight(w, bias: nil, stride: (1, 1), padding: (1, 1), groups: 1, precision: v.precision,
                                       mode: v.mode, typicalInput: (side, side))
                if v.precision == .bf16 && kernel.isEmpty { kernel = layer.kernel }
                let ms = time(Swift.max(1, reps / 2)) { Bench.keep(Ops.conv2d(x, layer)) }
                cells.append(String(format: "%.0f", flop / ms / 1e6))
            }
            print("| DC-AE conv3×3 \(c)→\(c) at \(side)² | " + cells.joined(separator: " | ") + " | | | \(kernel) |")
        }
    }

    /// Median milliseconds of `reps` calls after one warm-up.
    static func time(_ reps: Int, _ body: () -> Void) -> Double {
        body()
        var times: [Double] = []
        for _ in 0..<reps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        return times.sorted()[times.count / 2]
    }

    /// The bf16 output's error on its first `rows` rows against the exact product of rounded operands and
    /// against the fp32 product (both in double).
    static func errors(_ y: Tensor, x: Tensor, w: Tensor, rows: Int) -> (Double, Double) {
        let (k, n) = (x.shape[1], w.shape[0])
        let xs = x.scalars, ws = w.scalars, ys = y.scalars
        func round(_ v: Float) -> Double {
            let bits = v.bitPattern
            return Double(Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000))
        }
        var worstExact = 0.0, worstFP32 = 0.0, refMax = 0.0
        for i in 0..<rows {
            for j in 0..<n {
                var exact = 0.0, full = 0.0
                for p in 0..<k {
                    exact += round(xs[i * k + p]) * round(ws[j * k + p])
                    full += Double(xs[i * k + p]) * Double(ws[j * k + p])
                }
                let got = Double(ys[i * n + j])
                worstExact = Swift.max(worstExact, abs(got - exact))
                worstFP32 = Swift.max(worstFP32, abs(got - full))
                refMax = Swift.max(refMax, abs(full))
            }
        }
        return (worstExact / refMax, worstFP32 / refMax)
    }
}
