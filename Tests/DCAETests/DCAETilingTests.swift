import DCAE
import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport

/// Memory-bounded decode/encode of large images: the local high-resolution stages run in bands with a
/// receptive-field margin, so the result must equal the whole-image pass.
@Suite struct DCAETilingTests {
    /// Largest per-pixel difference of two decoder outputs after the pipeline's `clamp(x/2 + 0.5, 0, 1)`.
    static func maxPixelDifference(_ a: Tensor, _ b: Tensor) -> Float {
        zip(a.scalars, b.scalars).reduce(0) { m, p in
            max(m, abs(min(max(p.0 / 2 + 0.5, 0), 1) - min(max(p.1 / 2 + 0.5, 0), 1)))
        }
    }

    @Test func bandedDecodeOfAPictureEqualsWholeDecode() throws {
        let vae = try AutoencoderDC.load(folder: ShippedVAETests.folder)
        let context = RunContext(nodeID: "tiling")
        let picture = Ops.sub(Ops.mul(TestPictures.scene(height: 256, width: 384), 2), 1)
        let latent = try vae.encode(picture, tileSize: nil, context: context)
        #expect(latent.shape == [1, 16, 16, 24])
        let whole = try vae.decode(latent, tileSize: nil, context: context)
        // 128² pixels at a time → bands of 32 rows: 8 bands.
        #expect(AutoencoderDC.bandRows(height: 256, width: 384, tileSize: 128, ratio: 16) == 32)
        let banded = try vae.decode(latent, tileSize: 128, context: context)
        #expect(banded.shape == whole.shape)
        let diff = Self.maxPixelDifference(banded, whole)
        print("DCAE banded vs whole decode (384×256, 32-row bands): max |Δ| = \(diff * 255)/255, rel \(TestSupport.relativeError(banded, whole))")
        #expect(diff <= 2 / 255)
        #expect(TestSupport.relativeError(banded, whole) <= 1e-5)
    }

    @Test func bandedEncodeEqualsWholeEncode() throws {
        let vae = try AutoencoderDC.load(folder: ShippedVAETests.folder)
        let context = RunContext(nodeID: "tiling")
        let picture = Ops.sub(Ops.mul(TestPictures.scene(height: 256, width: 384), 2), 1)
        let whole = try vae.encode(picture, tileSize: nil, context: context)
        let banded = try vae.encode(picture, tileSize: 128, context: context)
        #expect(banded.shape == whole.shape)
        let err = TestSupport.relativeError(banded, whole)
        print("DCAE banded vs whole encode: rel \(err)")
        #expect(err <= 1e-5)
    }

    @Test func bandedPathsMatchOnEveryFixtureArchitecture() throws {
        // Pixel-shuffle samplers, stem-less configs, batch 2: the margins must hold for each.
        for name in DCAEParityTests.cases {
            let vae = try AutoencoderDC.load(folder: DCAEParityTests.folder(name))
            let f = vae.downscale
            let latent = TestPictures.noise([2, vae.latentChannels, 10, 6], seed: 7)
            let context = RunContext(nodeID: "bands")
            let whole = try vae.decode(latent, tileSize: nil, context: context)
            let banded = try vae.decode(latent, tileSize: 2 * f, context: context)
            #expect(TestSupport.relativeError(banded, whole) <= 1e-5, "\(name) decode")
            let image = TestPictures.noise([2, 3, 10 * f, 6 * f], seed: 8)
            let wholeLatent = try vae.encode(image, tileSize: nil, context: context)
            let bandedLatent = try vae.encode(image, tileSize: 2 * f, context: context)
            #expect(TestSupport.relativeError(bandedLatent, wholeLatent) <= 1e-5, "\(name) encode")
        }
    }

    @Test func automaticBandsStartAbove1024Squared() {
        #expect(AutoencoderDC.bandRows(height: 1024, width: 1024, tileSize: 0, ratio: 32) == nil)
        #expect(AutoencoderDC.bandRows(height: 2048, width: 2048, tileSize: 0, ratio: 32) == 512)
        #expect(AutoencoderDC.bandRows(height: 4096, width: 4096, tileSize: 0, ratio: 32) == 256)
        #expect(AutoencoderDC.bandRows(height: 512, width: 512, tileSize: 512, ratio: 32) == nil)
    }
}
