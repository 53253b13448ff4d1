import Foundation
import GraphRuntime
import ImageIO
import Tensors
import Testing
import TestSupport

/// PNGs written by PIL (and by hand, for formats PIL cannot write) load to the values PIL reads from them.
@Suite struct ForeignPNGTests {
    static let names = ["rgb8", "gray8", "gray_alpha8", "rgba8", "palette8", "palette4", "palette_trns", "bilevel1",
                        "gray16", "rgb16", "rgba16", "gamma8"]

    @Test(arguments: names)
    func loadsToThePILValues(name: String) throws {
        let expected = try TestSupport.loadFixture("ImageIO/expected.safetensors").tensor(name)
        let image = try ImageLoad.load(path: TestSupport.fixture("ImageIO/\(name).png"))
        #expect(image.shape == expected.shape)
        guard image.shape == expected.shape else { return }
        var maxDiff: Float = 0
        for (a, b) in zip(image.scalars, expected.scalars) { maxDiff = max(maxDiff, abs(a - b)) }
        // 16-bit RGBA goes through libpng's premultiplied output and back: within 2/65535. All else exact.
        let tolerance: Float = name == "rgba16" ? 2.5 / 65535 : 1e-6
        #expect(maxDiff <= tolerance, "\(name): max |diff| \(maxDiff)")
    }
}

/// Damaged and hostile files give clear, categorized errors naming the file, never a crash.
@Suite struct BadPNGTests {
    static let cases: [(String, String)] = [
        ("bad_truncated", "truncated"), ("bad_crc", "CRC"), ("bad_notpng", "signature"),
        ("bad_zero", "empty image"), ("bad_huge", "decompression bombs"), ("bad_zlib", "libpng"),
    ]

    @Test(arguments: cases.map(\.0))
    func corruptFilesGiveClearErrors(name: String) throws {
        let path = TestSupport.fixture("ImageIO/\(name).png")
        let fragment = Self.cases.first { $0.0 == name }!.1
        do {
            _ = try ImageLoad.load(path: path)
            Issue.record("\(name) loaded without error")
        } catch let error as ImageIOError {
            #expect(error.category == .nodeFailed)
            #expect(error.description.contains(path))
            #expect(error.description.contains(fragment), "\(error)")
        }
    }

    @Test func missingFileIsAnIOError() throws {
        let error = #expect(throws: ImageIOError.self) { try ImageLoad.load(path: "/nonexistent/x.png") }
        #expect(error?.category == .io)
        #expect(error?.description.contains("/nonexistent/x.png") == true)
    }

    @Test func maxPixelsGuardsBeforeDecoding() throws {
        let path = TestSupport.fixture("ImageIO/rgb8.png")  // 9 x 7 = 63 pixels
        #expect(try ImageLoad.load(path: path, maxPixels: 63).shape == [1, 3, 7, 9])
        let error = #expect(throws: ImageIOError.self) { try ImageLoad.load(path: path, maxPixels: 62) }
        #expect(error == .badDimensions(path: path, width: 9, height: 7, limit: 62))
        #expect(error?.description.contains("max_pixels") == true)
    }

    @Test func loadNodeReportsTheFileInItsError() throws {
        let path = TestSupport.fixture("ImageIO/bad_crc.png")
        let params = ParamValues(["path": .string(path), "max_pixels": .int(1000)])
        let error = #expect(throws: ImageIOError.self) {
            try ImageLoad().run(inputs: NodeInputs([:], nodeID: "load"), params: params, context: context())
        }
        #expect(error?.description.contains(path) == true)
    }
}
