import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
@testable import DCAE

/// precision bf16 against PyTorch's bf16 on the shipped model's autoencoder (tools/reference/bf16_accuracy.py).
@Suite("DC-AE bf16 accuracy")
struct DCAEBF16AccuracyTests {
    @Test("decoding in bf16 is no less accurate than PyTorch bf16 against fp32 (ratio ≤ 1.5)",
          arguments: BF16Accuracy.paths)
    func decode(path: BF16Path) throws {
        let f = try BF16Accuracy.fixture()
        let vae = try Kernels.withBF16(path) {
            let vae = try AutoencoderDC.load(folder: BF16Accuracy.model + "/vae", precision: .bf16)
            _ = try vae.decoder()  // the half is built (and its filters packed) on first use
            return vae
        }
        #expect(vae.precision == .bf16)
        let image = try vae.decoderForward(try f.tensor("dcae.latent"))
        let comparison = BF16Accuracy.Comparison(ours: image, pytorch: try f.tensor("dcae.bf16"),
                                                 reference: try f.tensor("dcae.fp32"))
        print("DC-AE decode bf16 (\(path)): \(comparison)")
        #expect(comparison.withinRatio, "\(path): \(comparison)")
        #expect(comparison.ours.rms > 1e-5, "bf16 must round (\(comparison))")
    }

    @Test("the fp32 decode matches diffusers on the fixture's latent")
    func fp32Decode() throws {
        let f = try BF16Accuracy.fixture()
        let vae = try AutoencoderDC.load(folder: BF16Accuracy.model + "/vae")
        let image = try vae.decoderForward(try f.tensor("dcae.latent"))
        #expect(TestSupport.relativeError(image, try f.tensor("dcae.fp32")) <= 1e-4)
    }
}
