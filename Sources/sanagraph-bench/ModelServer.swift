// `sanagraph-bench serve`: a line-driven model runner so tools/reference/bench_models.py can interleave one
// Swift call with one PyTorch call on the same inputs (both processes stay up; the box is noisy, so the two
// sides must see the same conditions). One command per stdin line, one JSON object per reply line:
//
//   dit.load FOLDER [VARIANT|- [fp32|bf16]]
//                               load a diffusers transformer/ folder at a precision
//                                                                         → {"ok", "seconds", "rss_gib", "kernel"}
//   dit.inputs FILE             read hidden_states, encoder_hidden_states, encoder_attention_mask, timestep
//   dit.forward                 one full forward (caption projection + K/V + blocks), as diffusers' forward
//                                                      → {"ok", "ms", "onednn_ms", "onednn_calls"}
//   dit.profile                 the same with SectionProfile on → also {"parts": {name: {"ms", "onednn_ms", "calls"}}}
//   save FILE                   the last output as raw little-endian fp32 (shape in the reply)
//   rss                         current and peak resident set size       → {"ok", "rss_gib", "peak_gib"}
//   quit
//
// Errors reply {"ok": false, "error": "..."} and the loop goes on. Not a test: nothing here asserts timings.

import Foundation
import GraphRuntime
import LinearDiT
import Safetensors
import Tensors

struct ModelServer {
    var dit: SanaTransformer2DModel?
    var inputs: [String: Tensor] = [:]
    var last: Tensor?

    static func run() {
        var server = ModelServer()
        while let line = readLine() {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            guard let command = parts.first else { continue }
            if command == "quit" { break }
            do {
                Bench.emit(try server.handle(command, Array(parts.dropFirst())))
            } catch {
                Bench.emit(["ok": false, "error": "\(error)"])
            }
        }
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    mutating func handle(_ command: String, _ args: [String]) throws -> [String: Any] {
        switch command {
        case "dit.load":
            guard let folder = args.first else { throw Failure(description: "dit.load needs a folder") }
            dit = nil
            let t0 = DispatchTime.now().uptimeNanoseconds
            let variant = args.count > 1 && args[1] != "-" ? args[1] : nil
            let precision = args.count > 2 ? Precision(rawValue: args[2]) ?? .fp32 : .fp32
            let model = try SanaTransformer2DModel.load(folder: folder, variant: variant, precision: precision)
            dit = model
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            return ["ok": true, "seconds": s, "rss_gib": Memory.currentGiB(),
                    "kernel": "\(model.precision.rawValue) on \(model.kernel)"]
        case "dit.inputs":
            guard let path = args.first else { throw Failure(description: "dit.inputs needs a file") }
            let file = try SafetensorsFile(path: path)
            inputs = [:]
            for name in ["hidden_states", "encoder_hidden_states", "encoder_attention_mask", "timestep"] {
                inputs[name] = try file.tensor(name)
            }
            return ["ok": true]
        case "dit.forward":
            guard let dit else { throw Failure(description: "no model loaded (dit.load first)") }
            guard let x = inputs["hidden_states"], let y = inputs["encoder_hidden_states"],
                  let m = inputs["encoder_attention_mask"], let t = inputs["timestep"] else {
                throw Failure(description: "no inputs (dit.inputs first)")
            }
            last = nil
            let before = Kernels.oneDNNTime()
            let t0 = DispatchTime.now().uptimeNanoseconds
            let out = try dit.forward(hiddenStates: x, encoderHiddenStates: y, encoderAttentionMask: m, timestep: t)
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6
            let after = Kernels.oneDNNTime()
            last = out
            return ["ok": true, "ms": ms, "onednn_ms": (after.seconds - before.seconds) * 1e3,
                    "onednn_calls": after.calls - before.calls]
        case "dit.profile":
            // One forward with SectionProfile on: wall and oneDNN time per part of the blocks.
            guard dit != nil else { throw Failure(description: "no model loaded (dit.load first)") }
            SectionProfile.start()
            var reply = try handle("dit.forward", [])
            let parts = SectionProfile.stop()
            reply["parts"] = parts.mapValues { ["ms": $0.seconds * 1e3, "onednn_ms": $0.oneDNNSeconds * 1e3, "calls": $0.calls] }
            return reply
        case "save":
            guard let path = args.first, let last else { throw Failure(description: "save needs a file and an output") }
            let data = last.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: path))
            return ["ok": true, "shape": last.shape]
        case "rss":
            return ["ok": true, "rss_gib": Memory.currentGiB(), "peak_gib": Memory.peakGiB()]
        default:
            throw Failure(description: "unknown command \(command)")
        }
    }
}

enum Memory {
    /// Peak resident set size of this process (getrusage ru_maxrss, KiB on Linux).
    static func peakGiB() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_maxrss) / 1024 / 1024
    }

    /// Current resident set size from /proc/self/statm.
    static func currentGiB() -> Double {
        guard let s = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
        let f = s.split(separator: " ")
        guard f.count > 1, let pages = Double(f[1]) else { return 0 }
        return pages * Double(sysconf(Int32(_SC_PAGESIZE))) / Double(1 << 30)
    }
}
