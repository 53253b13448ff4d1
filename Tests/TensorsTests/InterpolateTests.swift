import Testing
import Tensors
import TestSupport

@Suite("Interpolate")
struct InterpolateTests {
    @Test("nearest, nearest-exact, bilinear and bicubic match F.interpolate (up, down, align_corners, scale factors)")
    func matchesTorch() throws {
        let f = try AttentionFixtures.open("interpolate")
        let x = try f.tensor("x")
        let cases = try AttentionFixtures.cases(f)
        #expect(cases.count >= 18)
        for spec in cases {
            let name = try #require(spec["name"] as? String)
            let modeName = try #require(spec["mode"] as? String)
            let mode = try #require(InterpolationMode(rawValue: modeName))
            let align = spec["align_corners"] as? Bool ?? false
            let y: Tensor
            if let size = spec["size"] as? [Int] {
                y = Ops.interpolate(x, size: (size[0], size[1]), mode: mode, alignCorners: align)
            } else {
                let s = try #require(spec["scale"] as? Double)
                y = Ops.interpolate(x, scaleFactor: s, mode: mode, alignCorners: align)
            }
            let ref = try f.tensor(name)
            #expect(y.shape == ref.shape, "\(name)")
            if y.shape == ref.shape {
                #expect(TestSupport.relativeError(y, ref) <= AttentionFixtures.tolerance, "\(name)")
            }
        }
    }

    @Test("nearest ×2 repeats each pixel into a 2×2 block (DC-AE upsampling)")
    func nearestDoubling() {
        let x = Tensor(shape: [1, 1, 2, 3], values: [1, 2, 3, 4, 5, 6])
        let y = Ops.interpolate(x, scaleFactor: 2, mode: .nearest)
        #expect(y.shape == [1, 1, 4, 6])
        #expect(y.scalars == [1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 4, 4, 5, 5, 6, 6])
    }
}
