import DiffusionModels
import Foundation
import Synchronization
import GraphRuntime
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

/// latent.mask and the samplers' inpainting blend (docs/workflows.md, "Inpainting").
@Suite("Inpainting masks and blending")
struct InpaintTests {
    /// A picture [1, 3, H, W] whose three channels are `r`, `g`, `b` (row-major H×W each).
    static func picture(_ r: [Float], _ g: [Float], _ b: [Float], h: Int, w: Int) -> Tensor {
        Tensor(shape: [1, 3, h, w], values: r + g + b)
    }

    static func mask(_ image: Tensor, latent: [Int], feather: Double = 0, invert: Bool = false) throws -> Tensor {
        let out = try LatentMaskNode().run(
            inputs: NodeInputs(["image": .image(image), "latent": .latent(Tensor(repeating: 0, shape: latent))],
                               nodeID: "mask"),
            params: NodeTests.params(LatentMaskNode.self, ["feather": .float(feather), "invert": .bool(invert)]),
            context: RunContext(nodeID: "mask"))
        return try #require(out["mask"]?.payload(as: Tensor.self))
    }

    @Test("The mask is the luma (0.299 R + 0.587 G + 0.114 B) averaged over each latent cell")
    func lumaAveragedPerCell() throws {
        // 4×4 picture, 2×2 grid: cell (0,0) all white; (0,1) half white; (1,0) pure red; (1,1) black.
        var r = [Float](repeating: 0, count: 16), g = r, b = r
        for (y, x) in [(0, 0), (0, 1), (1, 0), (1, 1), (0, 2), (1, 2)] { r[y * 4 + x] = 1; g[y * 4 + x] = 1; b[y * 4 + x] = 1 }
        for (y, x) in [(2, 0), (2, 1), (3, 0), (3, 1)] { r[y * 4 + x] = 1 }
        let m = try Self.mask(Self.picture(r, g, b, h: 4, w: 4), latent: [1, 8, 2, 2])
        #expect(m.shape == [1, 1, 2, 2])
        let want: [Float] = [1, 0.5, 0.299, 0]
        for (got, w) in zip(m.scalars, want) { #expect(abs(got - w) < 1e-6, "\(m.scalars)") }
        let inverted = try Self.mask(Self.picture(r, g, b, h: 4, w: 4), latent: [1, 8, 2, 2], invert: true)
        for (got, w) in zip(inverted.scalars, want) { #expect(abs(got - (1 - w)) < 1e-6) }
    }

    @Test("A picture that is not a multiple of the grid is pooled as torch's adaptive_avg_pool2d (overlapping cells)")
    func adaptivePooling() throws {
        // 1×3 luma row [0, 1, 0.5] (gray pixels) onto 1×2 cells: cell 0 covers pixels 0..<2, cell 1 covers 1..<3.
        let row: [Float] = [0, 1, 0.5]
        let m = try Self.mask(Self.picture(row, row, row, h: 1, w: 3), latent: [1, 4, 1, 2])
        #expect(abs(m.scalars[0] - 0.5) < 1e-6 && abs(m.scalars[1] - 0.75) < 1e-6, "\(m.scalars)")
    }

    @Test("feather blurs with a normalised Gaussian of sigma 'feather' cells, taps -ceil(3 sigma)...ceil(3 sigma), edges replicated")
    func featherIsAGaussianBlur() throws {
        // One white cell in a 1×7 row; sigma 0.5 → r = 2, weights exp(-k²/0.5) for k = -2...2.
        var row = [Float](repeating: 0, count: 7)
        row[3] = 1
        let m = try Self.mask(Self.picture(row, row, row, h: 1, w: 7), latent: [1, 4, 1, 7], feather: 0.5)
        let k = (-2...2).map { exp(-Double($0 * $0) / 0.5) }
        let total = k.reduce(0, +)
        // Along rows the impulse spreads; along the single column the replicated edge keeps the sum (weights sum to 1).
        let want = [0, k[0], k[1], k[2], k[3], k[4], 0].map { Float($0 / total) }
        for (got, w) in zip(m.scalars, want) { #expect(abs(got - w) < 1e-6, "\(m.scalars) vs \(want)") }
        // Replicated edges: a white left half stays 1 at the left border.
        let half: [Float] = [1, 1, 1, 0, 0, 0]
        let e = try Self.mask(Self.picture(half, half, half, h: 1, w: 6), latent: [1, 4, 1, 6], feather: 0.5)
        #expect(abs(e.scalars[0] - 1) < 1e-6 && abs(e.scalars[5]) < 1e-6, "\(e.scalars)")
    }

    @Test("latent.mask refuses a picture smaller than the grid and a batch of pictures, naming the node")
    func maskErrors() {
        let small = Tensor(repeating: 1, shape: [1, 3, 2, 2])
        #expect { _ = try Self.mask(small, latent: [1, 4, 4, 4]) } throws: {
            "\($0)".contains("mask") && "\($0)".contains("smaller than the latent grid")
        }
        let batch = Tensor(repeating: 1, shape: [2, 3, 4, 4])
        #expect(throws: NodeError.self) { _ = try Self.mask(batch, latent: [1, 4, 2, 2]) }
    }

    static func sample(mask: Tensor?, latent: Tensor, noise: Tensor, denoise: Double = 1,
                       kind: FlowSolverKind = .dpmSolver) throws -> Tensor {
        try FlowSampler.sample(kind: kind, model: StandInDenoiser(inChannels: 2), positive: NodeTests.cond,
                               negative: NodeTests.negCond, latent: latent, noise: noise,
                               options: SamplingOptions(steps: 6, guidance: 4.5, shift: 3, denoise: denoise),
                               context: RunContext(nodeID: "s"), mask: mask)
    }

    @Test("Sampling with a mask keeps the clean latent exactly where the mask is 0, equals unmasked sampling where it is 1, and blends in between",
          arguments: [FlowSolverKind.dpmSolver, .euler])
    func blendKeepsTheUnmaskedArea(kind: FlowSolverKind) throws {
        let latent = TorchRandom.randn(shape: [1, 2, 2, 3], seed: 1)
        let noise = TorchRandom.randn(shape: [1, 2, 2, 3], seed: 2)
        let mask = Tensor(shape: [1, 1, 2, 3], values: [0, 1, 0.5, 1, 0, 0])
        let free = try Self.sample(mask: nil, latent: latent, noise: noise, kind: kind)
        let masked = try Self.sample(mask: mask, latent: latent, noise: noise, kind: kind)
        let (l, f, m) = (latent.scalars, free.scalars, masked.scalars)
        for c in 0..<2 {
            for p in [0, 4, 5] { #expect(m[c * 6 + p] == l[c * 6 + p], "kept cell \(p) changed") }
            // Cell 1 is masked at every step, but the kept cells never feed it (the stand-in acts per element).
            for p in [1, 3] { #expect(abs(m[c * 6 + p] - f[c * 6 + p]) < 1e-5) }
            // Cell 2 (0.5) ends halfway between the kept source and its own trajectory at the last step.
            #expect(abs(m[c * 6 + 2] - l[c * 6 + 2]) > 1e-4 && abs(m[c * 6 + 2] - f[c * 6 + 2]) > 1e-4)
        }
    }

    @Test("A mask needs the noise input and the latent's grid")
    func maskInputErrors() throws {
        let latent = TorchRandom.randn(shape: [1, 2, 2, 3], seed: 1)
        let noise = TorchRandom.randn(shape: [1, 2, 2, 3], seed: 2)
        #expect { _ = try Self.sample(mask: Tensor(repeating: 1, shape: [1, 1, 3, 2]), latent: latent, noise: noise) }
            throws: { "\($0)".contains("latent.mask") }
        #expect {
            _ = try FlowSampler.sample(kind: .euler, model: StandInDenoiser(inChannels: 2), positive: NodeTests.cond,
                                       negative: nil, latent: latent, noise: nil, options: SamplingOptions(steps: 2),
                                       context: RunContext(nodeID: "s"), mask: Tensor(repeating: 1, shape: [1, 1, 2, 3]))
        } throws: { "\($0)".contains("'noise'") }
    }
}

/// The preview projection (DiffusionModels.LatentPreview) and the sampler's preview hook.
@Suite("Latent previews")
struct LatentPreviewTests {
    @Test("rgb = bias + W·z per cell, clamped to [0, 1], first batch item only")
    func projection() {
        let p = LatentPreview(weights: [[1, 0], [0, 2], [0.5, 0.5]], bias: [0, 0.1, -0.2])
        // z: batch 2, 2 channels, 1×2 cells: channel 0 = [0.3, 2], channel 1 = [0.2, -1]; batch 2 ignored.
        let z = Tensor(shape: [2, 2, 1, 2], values: [0.3, 2, 0.2, -1, 9, 9, 9, 9])
        let rgb = p.rgb(z)
        #expect(rgb.shape == [1, 3, 1, 2])
        let want: [Float] = [0.3, 1, 0.1 + 0.4, 0, 0.05, 0.3]
        for (g, w) in zip(rgb.scalars, want) { #expect(abs(g - w) < 1e-6, "\(rgb.scalars)") }
    }

    @Test("With a preview sink the sampler hands a frame every N steps, drawn with the projection; without one it hands none")
    func samplerHandsFrames() throws {
        let frames = Mutex<[PreviewFrame]>([])
        var info = RunInfo(graphFile: "g.yaml", graphSource: "", params: [:])
        info.preview = PreviewSink(every: 2) { f in frames.withLock { $0.append(f) } }
        let p = LatentPreview(weights: [[1, 0], [0, 1], [0, 0]], bias: [0.5, 0.5, 0.25])
        let latent = TorchRandom.randn(shape: [1, 2, 2, 3], seed: 1)
        let noise = TorchRandom.randn(shape: [1, 2, 2, 3], seed: 2)
        let out = try FlowSampler.sample(kind: .euler, model: StandInDenoiser(inChannels: 2), positive: NodeTests.cond,
                                         negative: nil, latent: latent, noise: noise,
                                         options: SamplingOptions(steps: 5, guidance: 1), context:
                                            RunContext(nodeID: "s", run: info), preview: p)
        let got = frames.withLock { $0 }
        #expect(got.map(\.step) == [2, 4] && got.allSatisfy { $0.total == 5 && $0.nodeID == "s" })
        // The last frame is not the final latent (step 4 of 5), but the projection of the final one is well formed.
        #expect(got.last?.image.shape == [1, 3, 2, 3])
        #expect(p.rgb(out).shape == [1, 3, 2, 3])
        // A run without a sink hands nothing (the sink above sees no new frame).
        _ = try FlowSampler.sample(kind: .euler, model: StandInDenoiser(inChannels: 2), positive: NodeTests.cond,
                                   negative: nil, latent: latent, noise: noise,
                                   options: SamplingOptions(steps: 5, guidance: 1), context: RunContext(nodeID: "t"),
                                   preview: p)
        #expect(frames.withLock { $0.count } == 2)
    }
}
