import CUDA
import Foundation
import DiffusionModels
import GraphRuntime
import LinearDiT
import Safetensors
import Tensors

/// `sanagraph-cuda dit`: loads a diffusers transformer/ folder onto the GPU, runs diffusers' forward
/// (prepare + predict) on the inputs of a safetensors file (hidden_states, encoder_hidden_states,
/// encoder_attention_mask, timestep), writes `velocity` and prints timings as JSON lines. Not a test.
enum DiTBench {
    static func run(arguments args: inout [String]) throws {
        guard let model = SanaGraphCUDA.option("--model", in: &args),
              let inputs = SanaGraphCUDA.option("--inputs", in: &args),
              let out = SanaGraphCUDA.option("--out", in: &args) else {
            SanaGraphCUDA.usage("dit needs --model, --inputs and --out")
        }
        let reps = SanaGraphCUDA.option("--reps", in: &args).flatMap(Int.init) ?? 20
        let device = SanaGraphCUDA.option("--device", in: &args).flatMap(Int.init) ?? 0

        let t0 = Date()
        let context = try CUDAContext.open(device: device)
        let tOpen = Date()
        let dit = try SanaTransformerCUDA.load(folder: model, device: device)
        let tLoad = Date()
        let file = try SafetensorsFile(path: inputs)
        let x = try file.tensor("hidden_states"), y = try file.tensor("encoder_hidden_states")
        let mask = try file.tensor("encoder_attention_mask"), t = try file.tensor("timestep")

        // First call (cuBLASLt heuristics, allocator warm-up), then timed repetitions.
        let first = Date()
        let velocity = try dit.forward(hiddenStates: x, encoderHiddenStates: y, encoderAttentionMask: mask, timestep: t)
        let firstMs = Date().timeIntervalSince(first) * 1000
        try SafetensorsWriter.write(["velocity": velocity], to: out)

        context.allocator.resetPeak()
        var full: [Double] = [], predictWall: [Double] = [], predictGPU: [Double] = []
        let text = try dit.prepare(Conditioning(embeddings: y, mask: mask))
        for _ in 0..<reps {
            let a = Date()
            _ = try dit.forward(hiddenStates: x, encoderHiddenStates: y, encoderAttentionMask: mask, timestep: t)
            full.append(Date().timeIntervalSince(a) * 1000)
            let b = Date()
            _ = try dit.predict(latent: x, timestep: t, text: text, guidance: nil)
            predictWall.append(Date().timeIntervalSince(b) * 1000)
        }
        let latent = try DeviceTensor(x, on: context)
        let textCUDA = text
        for _ in 0..<reps {
            predictGPU.append(try context.time {
                _ = try dit.forwardOnDevice(latent: latent, timestep: t.scalars, text: textCUDA)
            })
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        SanaGraphCUDA.emit([
            "device": context.name, "architecture": context.architecture, "driver_cuda_version": context.driverVersion,
            "batch": x.shape[0], "latent": Array(x.shape.dropFirst()), "text_tokens": y.shape[1],
            "open_s": tOpen.timeIntervalSince(t0), "load_s": tLoad.timeIntervalSince(tOpen),
            "kernels_from_disk_cache": dit.kernelsFromDiskCache,
            "first_forward_ms": firstMs, "reps": reps,
            "forward_ms": median(full), "predict_ms": median(predictWall), "predict_gpu_ms": median(predictGPU),
            "peak_gib": Double(context.allocator.peakInUse) / 1_073_741_824,
            "reserved_gib": Double(context.allocator.peakReserved) / 1_073_741_824,
            "weights_gib": Double(dit.deviceBytes) / 1_073_741_824,
        ])
    }
}
