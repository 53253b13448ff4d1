import Testing
import Tensors
import TestSupport

@Suite("Pixel shuffle")
struct PixelShuffleTests {
    @Test("pixelShuffle and pixelUnshuffle match torch (exactly)", arguments: [("r2", 2), ("r3", 3)])
    func matchesTorch(_ name: String, _ r: Int) throws {
        let f = try AttentionFixtures.open("pixel_shuffle")
        let up = Ops.pixelShuffle(try f.tensor("\(name).x"), upscale: r)
        let refUp = try f.tensor("\(name).shuffled")
        #expect(up.shape == refUp.shape)
        #expect(up.scalars == refUp.scalars)
        let down = Ops.pixelUnshuffle(try f.tensor("\(name).z"), downscale: r)
        let refDown = try f.tensor("\(name).unshuffled")
        #expect(down.shape == refDown.shape)
        #expect(down.scalars == refDown.scalars)
    }

    @Test("unshuffle inverts shuffle on a non-square batch")
    func roundTrip() {
        let x = Tensor(shape: [2, 8, 3, 5], values: (0..<240).map(Float.init))
        let back = Ops.pixelUnshuffle(Ops.pixelShuffle(x, upscale: 2), downscale: 2)
        #expect(back.shape == x.shape)
        #expect(back.scalars == x.scalars)
    }
}
