import SanaGraphKit
import Tensors
import Testing
import TestSupport
@testable import DCAE

/// DCUpBlock2d's "interpolate" convolution runs on the input itself (four 2×2 parity filters) instead of on the
/// nearest ×2 upsampled input: it must be the same function, at fp32 rounding, on any size and batch.
@Suite struct NearestUpsampleConvTests {
    @Test("the parity filters equal a 3×3 convolution of the nearest ×2 upsampled input", arguments: [
        [1, 3, 4, 4, 5], [2, 5, 3, 7, 2], [1, 16, 8, 1, 9], [2, 8, 4, 3, 6], [1, 4, 4, 3, 3], [1, 8, 2, 3, 4],  // [batch, in, out, height, width]
    ])
    func equalsConvolutionOfTheUpsampledInput(_ dims: [Int]) throws {
        let (b, cin, cout, h, w) = (dims[0], dims[1], dims[2], dims[3], dims[4])
        let weight = TestPictures.noise([cout, cin, 3, 3], seed: 21)
        let bias = TestPictures.noise([cout], seed: 22)
        let store = WeightStore(.tensors(["up.weight": weight, "up.bias": bias]), path: "test")
        let fused = NearestUpsampleConv(store, "up", cin, cout)
        let x = TestPictures.noise([b, cin, h, w], seed: 23)
        let expected = Ops.conv2d(Ops.interpolate(x, scaleFactor: 2, mode: .nearest), weight: weight, bias: bias,
                                  stride: (1, 1), padding: (1, 1), groups: 1)
        let y = fused(x)
        #expect(y.shape == [b, cout, 2 * h, 2 * w])
        let err = TestSupport.relativeError(y, expected)
        #expect(err <= 1e-5, "max|Δ|/max|ref| = \(err)")
        // DCUpBlock2d's shortcut added in the same pass equals adding it afterwards.
        if (4 * cout) % cin == 0 {
            let repeats = 4 * cout / cin
            var separate = expected
            DCAEKernels.addShuffledRepeat(&separate, x, repeats: repeats)
            let fusedShortcut = fused(x, shortcutRepeats: repeats)
            #expect(TestSupport.relativeError(fusedShortcut, separate) <= 1e-5)
        }
    }

    @Test("a collecting pass declares the checkpoint's 3×3 filter and bias")
    func declaresTheCheckpointKeys() {
        let store = WeightStore(collecting: .fp32)
        let conv = NearestUpsampleConv(store, "decoder.up_blocks.0.0.conv", 8, 4)
        #expect(conv.conv == nil)
        #expect(store.expected["decoder.up_blocks.0.0.conv.weight"] == [4, 8, 3, 3])
        #expect(store.expected["decoder.up_blocks.0.0.conv.bias"] == [4])
    }
}
