import DCAE
import Foundation
import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport

/// The autoencoder shipped in models/sana-shapes/vae (5 stages, f16 weights, 16 latent channels).
@Suite struct ShippedVAETests {
    static let folder = TestSupport.repositoryRoot.appendingPathComponent("models/sana-shapes/vae").path

    @Test func loadsWithItsConfig() throws {
        let vae = try AutoencoderDC.load(folder: Self.folder)
        #expect(vae.latentChannels == 16)
        #expect(vae.downscale == 16)
        #expect(abs(vae.scalingFactor - 0.34597834944725037) < 1e-7)
        #expect(vae.config.decoderBlockOutChannels == [32, 64, 128, 128, 256])
        #expect(vae.config.upsampleBlockType == "interpolate" && vae.config.downsampleBlockType == "Conv")
        #expect(vae.residentBytes == 0)  // nothing converted until a half is used
    }

    @Test func decodingConvertsOnlyTheDecoderWeights() throws {
        let vae = try AutoencoderDC.load(folder: Self.folder)
        _ = try vae.decode(TestPictures.noise([1, 16, 2, 2], seed: 1), tileSize: nil, context: RunContext(nodeID: "decode"))
        let decoderBytes = vae.residentBytes
        #expect(decoderBytes > 5_000_000 && !vae.encoderIsLoaded)
        _ = try vae.encode(TestPictures.noise([1, 3, 32, 32], seed: 2), tileSize: nil, context: RunContext(nodeID: "encode"))
        #expect(vae.encoderIsLoaded && vae.residentBytes > decoderBytes)
        #expect(vae.residentBytes > 20_000_000)  // ≈ 6.7 M parameters held in fp32
    }

    @Test func decodeAndEncodeMatchDiffusers() throws {
        let vae = try AutoencoderDC.load(folder: Self.folder)
        let io = try TestSupport.loadFixture("DCAE/shipped_io.safetensors")
        let decoded = try vae.decoderForward(io.tensor("latent"))
        #expect(decoded.shape == [1, 3, 64, 64])
        #expect(decoded.scalars.allSatisfy { $0.isFinite })
        let decodeErr = TestSupport.relativeError(decoded, try io.tensor("decoded"))
        let encodeErr = TestSupport.relativeError(try vae.encoderForward(io.tensor("sample")), try io.tensor("encoded"))
        print("shipped VAE parity: decode \(decodeErr), encode \(encodeErr)")
        #expect(decodeErr <= 1e-4)
        #expect(encodeErr <= 1e-4)
    }

    @Test func decodesAnEightByEightLatentTo128Pixels() throws {
        let vae = try AutoencoderDC.load(folder: Self.folder)
        let latent = TestPictures.noise([2, 16, 8, 8], seed: 3)
        let image = try vae.decode(latent, tileSize: nil, context: RunContext(nodeID: "decode"))
        #expect(image.shape == [2, 3, 128, 128])
        #expect(image.scalars.allSatisfy { $0.isFinite })
        // A real decoder output has structure: not constant.
        let values = image.scalars
        #expect((values.max() ?? 0) - (values.min() ?? 0) > 0.1)
    }
}

/// Deterministic test inputs.
enum TestPictures {
    /// Uniform noise in [-1, 1] from a fixed LCG.
    static func noise(_ shape: [Int], seed: UInt64) -> Tensor {
        var state = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        let n = shape.reduce(1, *)
        var values = [Float](repeating: 0, count: n)
        for i in 0..<n {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            values[i] = Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        return Tensor(shape: shape, values: values)
    }

    /// A picture-like image in [0, 1] `[1, 3, h, w]`: sky gradient, a sun disc, hills and a checkered ground.
    static func scene(height h: Int, width w: Int) -> Tensor {
        var v = [Float](repeating: 0, count: 3 * h * w)
        for y in 0..<h {
            for x in 0..<w {
                let (fy, fx) = (Float(y) / Float(h), Float(x) / Float(w))
                var rgb: (Float, Float, Float) = (0.35 + 0.3 * fy, 0.55 + 0.25 * fy, 0.95 - 0.2 * fy)
                let (dx, dy) = (fx - 0.7, fy - 0.25)
                if dx * dx + dy * dy < 0.012 { rgb = (1.0, 0.85, 0.3) }
                let hill = 0.6 + 0.08 * Foundation.sin(fx * 9) + 0.04 * Foundation.cos(fx * 23)
                if fy > hill { rgb = (0.2 + 0.2 * fx, 0.55 - 0.2 * fy, 0.2) }
                if fy > 0.82 { rgb = ((x / 16 + y / 16) % 2 == 0) ? (0.8, 0.75, 0.6) : (0.45, 0.3, 0.2) }
                v[y * w + x] = rgb.0; v[h * w + y * w + x] = rgb.1; v[2 * h * w + y * w + x] = rgb.2
            }
        }
        return Tensor(shape: [1, 3, h, w], values: v)
    }
}
