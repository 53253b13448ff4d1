import CUDA
import Foundation
import Safetensors
import Tensors
import TextEncoder

/// `sanagraph-cuda gemma`: loads a transformers `Gemma2Model` text_encoder/ folder onto the GPU, encodes the
/// `input_ids` [B, L] with `attention_mask` [B, L] of a safetensors file (transformers' forward: last hidden state
/// after the final norm), writes `last_hidden_state` [B, L, D] (fp32) and prints timings as one JSON line. Not a test.
enum GemmaBench {
    static func run(arguments args: inout [String]) throws {
        guard let model = SanaGraphCUDA.option("--model", in: &args),
              let inputs = SanaGraphCUDA.option("--inputs", in: &args),
              let out = SanaGraphCUDA.option("--out", in: &args) else {
            SanaGraphCUDA.usage("gemma needs --model, --inputs and --out")
        }
        let reps = max(1, SanaGraphCUDA.option("--reps", in: &args).flatMap(Int.init) ?? 20)
        let device = SanaGraphCUDA.option("--device", in: &args).flatMap(Int.init) ?? 0

        let t0 = Date()
        let context = try CUDAContext.open(device: device)
        let tOpen = Date()
        let encoder = try Gemma2ModelCUDA.load(folder: model, device: device)
        let tLoad = Date()
        let file = try SafetensorsFile(path: inputs)
        func rows(_ name: String) throws -> [[Int]] {
            let t = try file.tensor(name)
            guard t.rank == 2 else { throw CheckFailure(description: "\(name) must be [B, L], got \(t.shape)") }
            let s = t.scalars, l = t.shape[1]
            return (0..<t.shape[0]).map { b in (0..<l).map { Int(s[b * l + $0]) } }
        }
        let ids = try rows("input_ids"), mask = try rows("attention_mask")
        let b = ids.count, l = ids.first?.count ?? 0, d = encoder.config.hiddenSize

        // First call (cuBLASLt heuristics, allocator warm-up), then timed repetitions.
        let first = Date()
        let hidden = try encoder(inputIds: ids, attentionMask: mask, afterLayer: { _ in })
        let firstMs = Date().timeIntervalSince(first) * 1000
        try SafetensorsWriter.write(["last_hidden_state": hidden], to: out)

        context.allocator.resetPeak()
        var full: [Double] = [], gpu: [Double] = []
        for _ in 0..<reps {
            let a = Date()
            _ = try encoder(inputIds: ids, attentionMask: mask, afterLayer: { _ in })
            full.append(Date().timeIntervalSince(a) * 1000)
        }
        // GPU time of the decoder alone (embeddings and mask already on the device, result left there).
        let embeddings = try DeviceTensor(encoder.embeddings(ids).reshaped([b * l, d]), on: context)
        let maskDevice = try DeviceTensor(Tensor(shape: [b, l], values: mask.flatMap { $0.map { $0 != 0 ? Float(1) : 0 } }),
                                          on: context)
        for _ in 0..<reps {
            gpu.append(try context.time {
                _ = try encoder.forwardOnDevice(embeddings: embeddings, mask: maskDevice, batch: b, length: l)
            })
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        SanaGraphCUDA.emit([
            "device": context.name, "architecture": context.architecture, "driver_cuda_version": context.driverVersion,
            "batch": b, "tokens": l, "real_tokens": mask.map { $0.reduce(0, +) },
            "open_s": tOpen.timeIntervalSince(t0), "load_s": tLoad.timeIntervalSince(tOpen),
            "kernels_from_disk_cache": encoder.kernelsFromDiskCache,
            "first_encode_ms": firstMs, "reps": reps,
            "encode_ms": median(full), "encode_gpu_ms": median(gpu),
            "peak_gib": Double(context.allocator.peakInUse) / 1_073_741_824,
            "reserved_gib": Double(context.allocator.peakReserved) / 1_073_741_824,
            "weights_gib": Double(encoder.deviceBytes) / 1_073_741_824,
        ])
    }
}
