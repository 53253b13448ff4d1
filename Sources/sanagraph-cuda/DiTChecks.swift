import CUDA
import DiffusionModels
import GraphRuntime
import LinearDiT
import Tensors

extension GPUChecks {
    /// A small random Sana transformer run by the CPU model (fp32) and the GPU model (bf16) from the same weights.
    /// `variant` turns on the options the 600M config lacks: q/k RMSNorm, guidance embedding (Sprint),
    /// the sin-cos PE (2K/4K models), patch size 2, and a text length that is not a multiple of 8.
    static func ditSmall(_ c: CUDAContext, variant: Bool) throws -> String {
        var config = SanaTransformerConfig()
        config.inChannels = 4; config.outChannels = 4
        config.numAttentionHeads = 2; config.attentionHeadDim = 32
        config.numLayers = 2
        config.numCrossAttentionHeads = 4; config.crossAttentionHeadDim = 16; config.crossAttentionDim = 64
        config.captionChannels = 48
        config.sampleSize = 8
        if variant {
            config.qkNorm = "rms_norm_across_heads"
            config.guidanceEmbeds = true
            config.interpolationScale = 1
            config.patchSize = 2
        }
        var r = Random(seed: variant ? 21 : 20)
        var tensors: [String: Tensor] = [:]
        for (key, shape) in SanaTransformer2DModel.expectedWeightShapes(config).sorted(by: { $0.key < $1.key }) {
            let fanIn = shape.dropFirst().reduce(1, *)
            if key.contains("norm") {
                tensors[key] = r.tensor(shape, scale: 0.1, offset: 1)
            } else if key.hasSuffix("scale_shift_table") || shape.count == 1 {
                tensors[key] = r.tensor(shape, scale: 0.1)
            } else {
                tensors[key] = r.tensor(shape, scale: 1 / Float(fanIn).squareRoot())
            }
        }
        let cpu = try SanaTransformer2DModel(config: config, tensors: tensors)
        let gpu = try SanaTransformerCUDA(config: config, tensors: tensors, device: c.deviceIndex)
        let b = 2, l = variant ? 13 : 16
        let latent = r.tensor([b, 4, 8, 8]), text = r.tensor([b, l, 48])
        var mask = [Float](repeating: 1, count: b * l)
        for j in 5..<l { mask[l + j] = 0 }
        let m = Tensor(shape: [b, l], values: mask)
        let t = Tensor(shape: [b], values: [999, 321.5])
        let g: Tensor? = variant ? Tensor(shape: [b], values: [0.45, 0.45]) : nil
        let want = try cpu.forward(hiddenStates: latent, encoderHiddenStates: text, encoderAttentionMask: m, timestep: t,
                                   guidance: g)
        let got = try gpu.forward(hiddenStates: latent, encoderHiddenStates: text, encoderAttentionMask: m, timestep: t,
                                  guidance: g)
        return try expectClose(got, want, tolerance: 3e-2, "GPU bf16 vs CPU fp32")
    }
}
