import GraphRuntime
import Tensors
import Testing
import TestSupport
import Upscaler

/// `image.resize` against PIL's `Image.resize` on an 8-bit RGB image (fixtures from tools/reference/imageio_fixtures.py;
/// Pillow 13, including its vertical-first pass order when the height shrinks much more than the width).
@Suite struct ResampleTests {
    // up, down, mixed, one axis each, and two sizes Pillow resizes vertical pass first
    static let sizes = [(50, 37), (9, 7), (40, 10), (23, 30), (16, 17), (20, 5), (21, 3)]

    static var cases: [String] {
        ResampleFilter.allCases.flatMap { f in sizes.map { "\(f.rawValue)_\($0.0)x\($0.1)" } }
    }

    @Test(arguments: cases)
    func matchesPILWithinOneLevel(name: String) throws {
        let file = try TestSupport.loadFixture("Upscaler/resize.safetensors")
        let src = try file.tensor("src")
        let reference = try file.tensor(name)
        let filter = ResampleFilter(rawValue: String(name.split(separator: "_")[0]))!
        let out = Resample.resize(src, height: reference.shape[2], width: reference.shape[3], filter: filter)
        #expect(out.shape == reference.shape)
        var maxDiff: Float = 0
        var maxLevels = 0
        for (a, b) in zip(out.scalars, reference.scalars) {
            maxDiff = max(maxDiff, abs(a - b))
            maxLevels = max(maxLevels, abs(Int((a * 255).rounded()) - Int((b * 255).rounded())))
        }
        // PIL rounds to 8 bits after each pass; we stay in fp32. Quantised to 8 bits (as image.save does) the
        // results agree within one level; before quantisation within PIL's own rounding (about 1/255).
        #expect(maxLevels <= 1, "\(name): \(maxLevels) levels apart")
        #expect(maxDiff <= 1.5 / 255, "\(name): max |diff| = \(maxDiff * 255)/255")
        if filter == .nearest { #expect(maxDiff == 0, "nearest must pick the same pixels as PIL") }
    }

    @Test func resizeNodeKeepsAspectRatioFromOneSide() throws {
        let image = Tensor(repeating: 0.5, shape: [2, 3, 10, 20])
        let out = try ImageResize().run(
            inputs: NodeInputs(["image": .image(image)], nodeID: "resize"),
            params: ParamValues(["mode": .string("bicubic"), "scale": .float(0), "width": .int(30), "height": .int(0)]),
            context: RunContext(nodeID: "resize"))
        guard let t = out["image"]?.payload(as: Tensor.self) else { Issue.record("no image output"); return }
        #expect(t.shape == [2, 3, 15, 30])
        // A constant image stays constant under every normalised filter.
        #expect(t.scalars.allSatisfy { abs($0 - 0.5) < 1e-6 })
        #expect(try ImageResize.outputSize(height: 10, width: 20, scale: 1.5, targetWidth: 0, targetHeight: 0) == (15, 30))
        #expect(ImageResize().validate(params: ParamValues(["scale": .float(0), "width": .int(0), "height": .int(0)])).count == 1)
    }
}
