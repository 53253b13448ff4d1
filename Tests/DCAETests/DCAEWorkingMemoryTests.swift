import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport
@testable import DCAE

/// The memory-bounded EfficientViT path of large decodes/encodes (attention a few heads at a time, GLUMBConv in row
/// bands): forced on with a tiny working limit, it must give the whole pass's result on every fixture architecture
/// (multiscale kernels (3, 5), (5) and none, the quadratic 2×2 branch, batch 2).
@Suite struct DCAEWorkingMemoryTests {
    @Test("One head at a time and 4-row GLUMBConv bands equal the whole decode and encode", arguments: DCAEParityTests.cases)
    func boundedBlocksEqualTheWholePass(_ name: String) throws {
        let vae = try AutoencoderDC.load(folder: DCAEParityTests.folder(name))
        let f = vae.downscale
        let context = RunContext(nodeID: "bounded")
        let latent = TestPictures.noise([2, vae.latentChannels, 10, 6], seed: 11)
        let whole = try vae.decode(latent, tileSize: nil, context: context)
        let bounded = try vae.decode(latent, tileSize: 2 * f, workingLimit: 1, context: context)
        let err = TestSupport.relativeError(bounded, whole)
        print("DC-AE bounded vs whole decode \(name): max|Δ|/max|ref| = \(err)")
        // Bands and head groups run their GEMMs at other shapes, so fp32 sums come out in another order through
        // the whole network: 4e-7 to 1.5e-6 seen, depending on the CPU's kernels (not a bit-for-bit property).
        #expect(err <= 1e-5, "\(name) decode: \(err)")
        let image = TestPictures.noise([2, 3, 10 * f, 6 * f], seed: 12)
        let wholeLatent = try vae.encode(image, tileSize: nil, context: context)
        let boundedLatent = try vae.encode(image, tileSize: 2 * f, workingLimit: 1, context: context)
        #expect(TestSupport.relativeError(boundedLatent, wholeLatent) <= 1e-5, "\(name) encode")
    }
}
