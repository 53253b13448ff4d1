import Foundation
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

/// DC-AE's channels-last ResBlock runs (`ResBlock.runChannelsLast`), where this CPU runs bf16 convolutions
/// channels-last (AVX-512 with a bf16 unit).
@Suite("DC-AE channels-last ResBlocks")
struct DCAEChannelsLastTests {
    static var runsHere: Bool {
        guard Kernels.selection.channelsLast, case .native = Kernels.selection.bf16 else { return false }
        return true
    }

    @Test("a run of the fixture decoder's ResBlocks kept channels-last equals the blocks one by one",
          .enabled(if: runsHere, "bf16 convolutions do not run channels-last on this CPU"))
    func runMatchesBlocks() throws {
        let decoder = try AutoencoderDC.load(folder: BF16Accuracy.model + "/vae", precision: .bf16).decoder()
        var checked = 0
        for stage in decoder.up_blocks {
            let blocks = stage.compactMap { block -> ResBlock? in if case .res(let b) = block { b } else { nil } }
            guard blocks.count >= 2, blocks.allSatisfy({ $0.runsChannelsLast(batch: 2, height: 9, width: 14) }) else { continue }
            let c = blocks[0].conv1.conv!.inChannels
            let x = Tensor(shape: [2, c, 9, 14], values: (0..<(2 * c * 126)).map { Float(sin(Double($0) * 0.37)) })
            let run = StageBlock.run(blocks.map { .res($0) }, x) {}
            let oneByOne = blocks.reduce(x) { $1($0) }
            #expect(run.shape == oneByOne.shape)
            #expect(TestSupport.relativeError(run, oneByOne) <= 2e-3, "stage of \(c) channels")
            checked += 1
        }
        #expect(checked > 0, "the fixture decoder has a stage of two ResBlocks")
    }
}
