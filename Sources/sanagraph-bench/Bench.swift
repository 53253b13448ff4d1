// sanagraph-bench: times the CPU kernels of the Tensors module on SANA-sized shapes.
//
//   sanagraph-bench kernels [--reps N] [--filter SUBSTRING|=NAME] [--list]
//   sanagraph-bench serve      (model rows driven by tools/reference/bench_models.py; see ModelServer.swift)
//   sanagraph-bench info [--threads N]   the kernels in use (the report of `sanagraph info`)
//   sanagraph-bench gemm [--reps N] [--only LABEL]   model GEMM/conv shapes on every kernel here (GemmCheck.swift)
//   sanagraph-bench bf16-check           bf16 accuracy of the shipped model against PyTorch (BF16Check.swift)
//
// Prints one JSON object per line: {"name", "shape", "ms" (median), "min_ms", "reps", "gflop"}; the first line
// describes the run (threads, OpenBLAS core). tools/bench/kernels.sh runs this and the PyTorch twin
// (tools/reference/bench_kernels.py) on the same shapes and prints the comparison table.
// A benchmark, not a test: nothing here asserts timings.

import Foundation
import Tensors

/// One benchmark row: a name the PyTorch side repeats, its shape text, FLOPs (0 if not meaningful) and work,
/// and for prepared layers the kernel that ran it.
struct Row {
    let name: String
    let shape: String
    let gflop: Double
    var kernel = ""
    let body: () -> Void

    init(name: String, shape: String, gflop: Double, kernel: String = "", body: @escaping () -> Void) {
        (self.name, self.shape, self.gflop, self.kernel, self.body) = (name, shape, gflop, kernel, body)
    }
}

@main
struct Bench {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        if args.first == "serve" {
            ModelServer.run()
            return
        }
        if args.first == "info" {
            // The header of every benchmark table: the same report as `sanagraph info`.
            if args.count == 3, args[1] == "--threads", let n = Int(args[2]), n > 0 { Kernels.configure(threads: n) }
            print(Kernels.selection.reportText())
            return
        }
        if args.first == "gemm" {
            GemmCheck.run(Array(args.dropFirst()))
            return
        }
        if args.first == "bf16-check" { exit(BF16Check.run()) }
        guard args.first == "kernels" else {
            FileHandle.standardError.write(Data("usage: sanagraph-bench kernels [--reps N] [--filter SUBSTRING|=NAME] [--list] | info [--threads N] | gemm [--reps N] [--only LABEL] | bf16-check | serve\n".utf8))
            exit(2)
        }
        args.removeFirst()
        var reps = 5
        var filter: String?
        var list = false
        while !args.isEmpty {
            let flag = args.removeFirst()
            switch flag {
            case "--reps":
                guard let v = args.first.flatMap(Int.init), v > 0 else { usage("--reps needs a positive integer") }
                reps = v; args.removeFirst()
            case "--list":
                list = true
            case "--filter":
                guard let v = args.first else { usage("--filter needs a value") }
                filter = v; args.removeFirst()
            default:
                usage("unknown argument \(flag)")
            }
        }
        let kernels = Kernels.selection
        emit(["run": "swift", "threads": Parallel.workerCount, "openblas_core": kernels.openBLASCore, "reps": reps,
              "kernels": kernels.reportText()])
        // "=NAME" selects one row exactly (tools/bench/kernels.sh interleaves the two sides row by row).
        let selected = rows().filter { row in
            filter.map { $0.hasPrefix("=") ? row.name == $0.dropFirst() : row.name.contains($0) } ?? true
        }
        if list {
            for row in selected { print(row.name) }
            return
        }
        for row in selected {
            row.body()  // warm-up (page faults, BLAS buffers)
            var times: [Double] = []
            for _ in 0..<reps {
                let t0 = DispatchTime.now().uptimeNanoseconds
                row.body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
            }
            times.sort()
            emit(["name": row.name, "shape": row.shape, "ms": times[times.count / 2], "min_ms": times[0],
                  "reps": reps, "gflop": row.gflop, "kernel": row.kernel])
        }
    }

    static func usage(_ message: String) -> Never {
        FileHandle.standardError.write(Data("sanagraph-bench: \(message)\nusage: sanagraph-bench kernels [--reps N] [--filter SUBSTRING|=NAME] [--list]\n".utf8))
        exit(2)
    }

    static func emit(_ object: [String: Any]) {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
        fflush(nil)
    }

    /// Deterministic uniform values in [-1, 1).
    static func random(_ shape: [Int], seed: UInt64 = 1) -> Tensor {
        var t = Tensor(uninitialized: shape)
        var s = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        t.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17
                p[i] = Float(Int32(truncatingIfNeeded: s >> 32)) / 2_147_483_648
            }
        }
        return t
    }

    /// Keeps results alive so the optimiser cannot drop the work.
    nonisolated(unsafe) static var sink: Float = 0
    static func keep(_ t: Tensor) { sink += t.withUnsafeBufferPointer { $0.first ?? 0 } }

    static func rows() -> [Row] {
        var rows: [Row] = []
        // GEMM 2048×1152×2880: the DiT's M = 2·1024 tokens, 1152 → 2880 projection (activations × activations
        // path: OpenBLAS split over the workers).
        do {
            let (m, k, n) = (2048, 1152, 2880)
            let a = random([m, k], seed: 1), b = random([k, n], seed: 2)
            let flop = 2.0 * Double(m * k * n) / 1e9
            rows.append(Row(name: "gemm_ops_matmul", shape: "\(m)x\(k)x\(n)", gflop: flop) { keep(Ops.matmul(a, b)) })
        }
        // Linear layers as the models run them (weights prepared at load): this machine's fp32 choice, OpenBLAS
        // named explicitly, and precision bf16 (this machine's bf16 path; fp32 where it has none).
        for (suffix, rowsM, n, seed) in [("", 1024, 2880, UInt64(3)), ("_m512", 256, 1152, UInt64(24))] {
            let k = 1152
            let x = random([2, rowsM, k], seed: seed), w = random([n, k], seed: seed + 1), bias = random([n], seed: seed + 2)
            let shape = "[2,\(rowsM),\(k)]x[\(n),\(k)]ᵀ+b", flop = 2.0 * Double(2 * rowsM * k * n) / 1e9
            var layers = [("linear" + suffix, LinearWeight(w, precision: .fp32)),
                          ("linear" + suffix + "_bf16", LinearWeight(w, precision: .bf16))]
            if suffix.isEmpty { layers.insert(("linear_openblas", LinearWeight(w, precision: .fp32, mode: .plain)), at: 1) }
            for (name, layer) in layers {
                rows.append(Row(name: name, shape: shape, gflop: flop, kernel: "\(layer.precision.rawValue) \(layer.kernel)") {
                    keep(Ops.linear(x, weight: layer, bias: bias))
                })
            }
        }
        // The DiT's FFN conv_inverted at 512 px (two 256-token batches, 1152 → 5760 with SiLU), bf16: where the
        // AMX kernel applies SiLU to each output tile right after storing it.
        do {
            let (rowsM, k, n) = (256, 1152, 5760)
            let x = random([2, rowsM, k], seed: 30), w = random([n, k], seed: 31), bias = random([n], seed: 32)
            let layer = LinearWeight(w, precision: .bf16)
            rows.append(Row(name: "linear_m512_ffn_silu_bf16", shape: "silu([2,\(rowsM),\(k)]x[\(n),\(k)]ᵀ+b)",
                            gflop: 2.0 * Double(2 * rowsM * k * n) / 1e9, kernel: "\(layer.precision.rawValue) \(layer.kernel)") {
                keep(Ops.linear(x, weight: layer, bias: bias, activation: .silu))
            })
        }
        do {
            let x = random([2, 2880, 32, 32], seed: 6), w = random([2880, 1, 3, 3], seed: 7), b = random([2880], seed: 8)
            rows.append(Row(name: "conv2d_depthwise3x3", shape: "[2,2880,32,32] g=2880 k3 p1",
                            gflop: 2.0 * 2 * 2880 * 1024 * 9 / 1e9) {
                keep(Ops.conv2d(x, weight: w, bias: b, stride: 1, padding: 1, groups: 2880))
            })
        }
        do {
            let x = random([2, 1152, 32, 32], seed: 9), w = random([2880, 1152, 1, 1], seed: 10), b = random([2880], seed: 11)
            rows.append(Row(name: "conv2d_1x1", shape: "[2,1152,32,32]→2880", gflop: 2.0 * 2048 * 1152 * 2880 / 1e9) {
                keep(Ops.conv2d(x, weight: w, bias: b))
            })
        }
        // Dense 3×3 convolutions at DC-AE f32c32 decoder shapes (ResBlock convs at 512 px: 128 ch at 512², 512 ch
        // at 128²; their conv_out, 128 → 3): the Winograd path and, for conv_out, im2col.
        for (name, c, cout, side, seed) in [("conv2d_3x3_c128", 128, 128, 256, 16), ("conv2d_3x3_c512", 512, 512, 64, 19),
                                             ("conv2d_3x3_out3", 128, 3, 256, 22)] {
            let x = random([1, c, side, side], seed: UInt64(seed)), w = random([cout, c, 3, 3], seed: UInt64(seed + 1))
            let b = random([cout], seed: UInt64(seed + 2))
            rows.append(Row(name: name, shape: "[1,\(c),\(side),\(side)]→\(cout) k3 p1",
                            gflop: 2.0 * Double(side * side * c * cout * 9) / 1e9) {
                keep(Ops.conv2d(x, weight: w, bias: b, stride: 1, padding: 1))
            })
            if cout > 3 {
                let layer = ConvWeight(w, bias: b, padding: 1, precision: .bf16, typicalInput: (side, side))
                rows.append(Row(name: name + "_bf16", shape: "[1,\(c),\(side),\(side)]→\(cout) k3 p1",
                                gflop: 2.0 * Double(side * side * c * cout * 9) / 1e9,
                                kernel: "\(layer.precision.rawValue) \(layer.kernel)") {
                    keep(Ops.conv2d(x, layer))
                })
            }
        }
        do {
            let x = random([2, 1024, 1152], seed: 12)
            rows.append(Row(name: "layer_norm", shape: "[2,1024,1152] no affine", gflop: 0) {
                keep(Ops.layerNorm(x, weight: nil, bias: nil, eps: 1e-6))
            })
        }
        do {
            let q = random([2, 16, 1024, 72], seed: 13), k = random([2, 16, 300, 72], seed: 14)
            let v = random([2, 16, 300, 72], seed: 15)
            // Key padding like Sana's cross-attention: batch 0 keeps 300 tokens, batch 1 keeps 77.
            let mask = Tensor(shape: [2, 1, 1, 300], values: (0..<600).map { i in (i < 300 || i - 300 < 77) ? 0 : -10000 })
            rows.append(Row(name: "sdpa_cross", shape: "q[2,16,1024,72] kv[2,16,300,72] mask",
                            gflop: 2.0 * 2 * 2 * 16 * 1024 * 300 * 72 / 1e9) {
                keep(Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: mask))
            })
        }
        do {
            // text2img's cross-attention at 512 px: 256 tokens, a prompt of 12 tokens and an empty negative one
            // once the caption's padding is dropped (tokens-first, as the DiT calls it).
            let q = random([2, 256, 16, 72], seed: 13), k = random([2, 300, 16, 72], seed: 14)
            let v = random([2, 300, 16, 72], seed: 15)
            let mask = Tensor(shape: [2, 1, 1, 300], values: (0..<600).map { i in (i < 1 || (i >= 300 && i - 300 < 12)) ? 0 : -10000 })
            let padding = AttentionKeyPadding(key: k, mask: mask, queryHeads: 16, layout: .tokensFirst)  // once per prompt
            rows.append(Row(name: "sdpa_cross_prompt", shape: "q[2,256,16,72] kv[2,300,16,72], 1 and 12 keys kept",
                            gflop: 2.0 * 2 * 16 * 256 * 13 * 72 / 1e9) {
                keep(Ops.scaledDotProductAttention(query: q, key: k, value: v, mask: mask, layout: .tokensFirst,
                                                   keyPadding: padding))
            })
        }
        for (heads, d) in [(16, 72), (36, 32)] {
            let q = random([2, heads, 1024, d], seed: 16), k = random([2, heads, 1024, d], seed: 17)
            let v = random([2, heads, 1024, d], seed: 18)
            rows.append(Row(name: "relu_linear_attention_h\(heads)", shape: "[2,\(heads),1024,\(d)]",
                            gflop: 2.0 * 2 * 2 * Double(heads * 1024 * d * (d + 1)) / 1e9) {
                keep(Ops.reluLinearAttention(query: q, key: k, value: v))
            })
        }
        do {
            let x = random([2, 16, 1024, 300], seed: 19)
            rows.append(Row(name: "softmax", shape: "[2,16,1024,300] last axis", gflop: 0) { keep(Ops.softmax(x)) })
        }
        do {
            let x = random([2, 1024, 2880], seed: 20)
            rows.append(Row(name: "gelu_tanh", shape: "[2,1024,2880]", gflop: 0) { keep(Ops.gelu(x, approximate: .tanh)) })
        }
        do {
            let x = random([1, 512, 64, 64], seed: 21)
            rows.append(Row(name: "interpolate_nearest_x2", shape: "[1,512,64,64]→128²", gflop: 0) {
                keep(Ops.interpolate(x, scaleFactor: 2, mode: .nearest))
            })
            let img = random([1, 3, 512, 512], seed: 22)
            rows.append(Row(name: "interpolate_bicubic", shape: "[1,3,512,512]→1024²", gflop: 0) {
                keep(Ops.interpolate(img, size: (1024, 1024), mode: .bicubic))
            })
            rows.append(Row(name: "interpolate_bilinear_down", shape: "[1,3,512,512]→320²", gflop: 0) {
                keep(Ops.interpolate(img, size: (320, 320), mode: .bilinear))
            })
        }
        do {
            let x = random([2, 1024, 1152], seed: 23)
            rows.append(Row(name: "transpose_nlc_to_ncl", shape: "[2,1024,1152]→[2,1152,1024]", gflop: 0) {
                keep(Ops.transpose(x, 1, 2))
            })
        }
        return rows
    }
}
