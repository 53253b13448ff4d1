import CUDA
import DCAE
import Foundation
import Safetensors
import Tensors

/// `sanagraph-cuda dcae`: loads a diffusers vae/ folder's decoder onto the GPU, decodes the `latent` of a
/// safetensors file (raw: already divided by scaling_factor, as diffusers' `vae.decode` takes it), writes `image`
/// (fp32 NCHW, ≈ [-1, 1]) and prints timings as JSON lines. Not a test.
enum DCAEBench {
    static func run(arguments args: inout [String]) throws {
        guard let model = SanaGraphCUDA.option("--model", in: &args),
              let inputs = SanaGraphCUDA.option("--inputs", in: &args),
              let out = SanaGraphCUDA.option("--out", in: &args) else {
            SanaGraphCUDA.usage("dcae needs --model, --inputs and --out")
        }
        let reps = SanaGraphCUDA.option("--reps", in: &args).flatMap(Int.init) ?? 20
        let device = SanaGraphCUDA.option("--device", in: &args).flatMap(Int.init) ?? 0
        if let mb = SanaGraphCUDA.option("--im2col-mb", in: &args) {
            guard let v = Int(mb), v > 0 else { SanaGraphCUDA.usage("--im2col-mb needs a positive number of MiB") }
            DeviceConv2d.im2colChunkBytes = v << 20
        }

        // --profile N: after the timed runs, N more decodes with per-launch GPU events (CUDAProfiler), tables to
        // stderr, rows to --profile-json FILE.
        let profileRuns = SanaGraphCUDA.option("--profile", in: &args).map { Int($0) ?? 3 } ?? 0
        let profileJSON = SanaGraphCUDA.option("--profile-json", in: &args)
        // --profile-first: the same tables for the first decode alone (a launch that waits for lazy loading or a
        // heuristic query shows its stall there, against the steady-state tables).
        let profileFirst = args.contains("--profile-first")
        args.removeAll { $0 == "--profile-first" }

        if let n = SanaGraphCUDA.option("--gemm-tune", in: &args) {
            guard let v = Int(n), v > 0 else { SanaGraphCUDA.usage("--gemm-tune needs a number of candidates") }
            Gemm.tuneCandidates = v
        }

        let t0 = Date()
        let context = try CUDAContext.open(device: device)
        let tOpen = Date()
        let beforeLoad = context.setup.snapshot()
        let vae = try AutoencoderDCCUDA.load(folder: model, device: device)
        let tLoad = Date()
        let afterLoad = context.setup.snapshot()
        let latent = try SafetensorsFile(path: inputs).tensor("latent")

        // First call (cuBLASLt heuristics, allocator warm-up, lazy loading of library kernels), then timed
        // repetitions. The setup counters split the first call's host time; the rest is the GPU work and lazy loads.
        if profileFirst { context.attachProfiler() }
        let first = Date()
        let image = try vae.decoderForward(latent)
        let firstMs = Date().timeIntervalSince(first) * 1000
        let afterFirst = context.setup.snapshot()
        if profileFirst, let profiler = context.profiler {
            FileHandle.standardError.write(Data("""
                == sanagraph-cuda dcae --profile-first: the first decode, \(String(format: "%.1f", firstMs)) ms on the \
                host; setup: \(afterFirst.line(since: afterLoad))

                \(try profiler.report())

                """.utf8))
            context.profiler = nil
        }
        let second = Date()
        _ = try vae.decoderForward(latent)
        let secondMs = Date().timeIntervalSince(second) * 1000
        try SafetensorsWriter.write(["image": image], to: out)

        context.allocator.resetPeak()
        var full: [Double] = [], gpu: [Double] = []
        for _ in 0..<reps {
            let a = Date()
            _ = try vae.decoderForward(latent)
            full.append(Date().timeIntervalSince(a) * 1000)
        }
        let z = try DeviceTensor(latent, on: context)
        for _ in 0..<reps {
            gpu.append(try context.time { _ = try vae.forward(z) })
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        var profiledMs: Double?
        if profileRuns > 0 {
            let profiler = context.attachProfiler()
            try profiler.reset()
            profiledMs = try context.time { for _ in 0..<profileRuns { _ = try vae.forward(z) } } / Double(profileRuns)
            FileHandle.standardError.write(Data("""
                == sanagraph-cuda dcae --profile \(profileRuns): \(latent.shape) → \(image.shape) on \(context.name)
                (decode GPU time \(String(format: "%.2f", median(gpu))) ms unprofiled, \
                \(String(format: "%.2f", profiledMs!)) ms with events)
                first decode \(String(format: "%.1f", firstMs)) ms, second \(String(format: "%.1f", secondMs)) ms; \
                setup in the first decode: \(afterFirst.line(since: afterLoad)); at load: \(afterLoad.line(since: beforeLoad))

                \(try profiler.report(runs: profileRuns))

                """.utf8))
            if let path = profileJSON {
                let data = try JSONSerialization.data(withJSONObject: try profiler.rows(runs: profileRuns),
                                                      options: [.prettyPrinted, .sortedKeys])
                try data.write(to: URL(fileURLWithPath: path))
            }
            context.profiler = nil
        }
        SanaGraphCUDA.emit([
            "first_decode_setup": afterFirst.since(afterLoad), "load_setup": afterLoad.since(beforeLoad),
            "second_decode_ms": secondMs, "profiled_decode_gpu_ms": profiledMs ?? NSNull(),
            "device": context.name, "architecture": context.architecture, "driver_cuda_version": context.driverVersion,
            "latent": latent.shape, "image": image.shape,
            "open_s": tOpen.timeIntervalSince(t0), "load_s": tLoad.timeIntervalSince(tOpen),
            "kernels_from_disk_cache": vae.kernelsFromDiskCache,
            "first_decode_ms": firstMs, "reps": reps,
            "decode_ms": median(full), "decode_gpu_ms": median(gpu),
            "peak_gib": Double(context.allocator.peakInUse) / 1_073_741_824,
            "reserved_gib": Double(context.allocator.peakReserved) / 1_073_741_824,
            "weights_gib": Double(vae.deviceBytes) / 1_073_741_824, "im2col_mb": DeviceConv2d.im2colChunkBytes >> 20,
            "gemm_tune": Gemm.tuneCandidates,
            "gemm_tuned": try context.gemm().tuned.map { ["shape": $0.shape, "chosen": $0.chosen,
                                                          "ms": $0.milliseconds.map { $0.isFinite ? $0 : -1 }] },
        ])
    }
}
