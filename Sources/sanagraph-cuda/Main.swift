// sanagraph-cuda: the GPU side of SanaGraph that `make bundle` ships to a GPU host (no Swift toolchain there).
//
//   sanagraph-cuda info                       driver, GPU, NVRTC and cuBLASLt versions
//   sanagraph-cuda test [--filter SUBSTRING]  GPU checks against the CPU kernels (`make test-cuda`); without a
//                                             driver prints "skipped: no CUDA driver" and exits 0
//   sanagraph-cuda dit --model DIR --inputs FILE --out FILE [--reps N] [--device N]
//                                             DiT forward on the GPU: velocity to FILE, timings as JSON lines
//                                             (tools/bench/cuda_dit.py compares it with diffusers on the same GPU)
//   sanagraph-cuda dcae --model VAE_DIR --inputs FILE --out FILE [--reps N] [--device N] [--im2col-mb N]
//                       [--gemm-tune N] [--profile RUNS [--profile-json FILE]] [--profile-first]
//                                             DC-AE decode on the GPU: image to FILE, timings as JSON lines
//                                             (tools/bench/cuda_dcae.py); --profile: per-kernel/per-stage GPU
//                                             time tables on stderr (CUDAProfiler, docs/cuda.md)
//   sanagraph-cuda gemma --model DIR --inputs FILE --out FILE [--reps N] [--device N]
//                                             Gemma-2 text encoder on the GPU: last hidden state to FILE, timings as
//                                             JSON (tools/bench/cuda_gemma.py compares it with transformers)
// Exit codes: 0 ok, 1 a check failed, 2 bad arguments, 3 GPU error.

import CUDA
import Foundation

@main
struct SanaGraphCUDA {
    static func main() {
        var args = Array(CommandLine.arguments.dropFirst())
        guard let command = args.first else { usage("missing command") }
        args.removeFirst()
        do {
            switch command {
            case "info": try info()
            case "test": exit(GPUChecks.run(filter: option("--filter", in: &args)))
            case "dit": try DiTBench.run(arguments: &args)
            case "dcae": try DCAEBench.run(arguments: &args)
            case "gemma": try GemmaBench.run(arguments: &args)
            default: usage("unknown command '\(command)'")
            }
        } catch {
            FileHandle.standardError.write(Data("sanagraph-cuda: \(error)\n".utf8))
            exit(3)
        }
    }

    static func info() throws {
        let context = try CUDAContext.open(device: 0)
        let (free, total) = try context.memoryInfo()
        emit(["device": context.name, "architecture": context.architecture, "multiprocessors": context.multiprocessorCount,
              "memory_gib": Double(total) / 1_073_741_824, "free_gib": Double(free) / 1_073_741_824,
              "driver_cuda_version": context.driverVersion, "devices": try CUDAContext.deviceCount(),
              "libraries": CUDALibraries.describe()])
    }

    /// Removes `--name VALUE` from `args` and returns VALUE.
    static func option(_ name: String, in args: inout [String]) -> String? {
        guard let i = args.firstIndex(of: name) else { return nil }
        guard i + 1 < args.count else { usage("\(name) needs a value") }
        let value = args[i + 1]
        args.removeSubrange(i...(i + 1))
        return value
    }

    static func usage(_ message: String) -> Never {
        FileHandle.standardError.write(Data("""
            sanagraph-cuda: \(message)
            usage: sanagraph-cuda info | test [--filter S] | dit --model DIR --inputs FILE --out FILE [--reps N] [--device N]
                   | dcae --model VAE_DIR --inputs FILE --out FILE [--reps N] [--device N] [--im2col-mb N]
                          [--gemm-tune N] [--profile RUNS [--profile-json FILE]] [--profile-first]
                   | gemma --model DIR --inputs FILE --out FILE [--reps N] [--device N]

            """.utf8))
        exit(2)
    }

    /// One JSON object per line (sorted keys).
    static func emit(_ object: [String: Any]) {
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
