import Foundation
import GraphRuntime
import ImageIO
import Tensors
import Testing
import TestSupport

/// Deterministic pseudo-random sample values (no RNG dependency).
func samples(_ count: Int, modulo: Int, seed: Int) -> [Int] {
    var state = UInt64(truncatingIfNeeded: seed) &* 6364136223846793005 &+ 1442695040888963407
    return (0..<count).map { _ in
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Int((state >> 33) % UInt64(modulo))
    }
}

func runInfo(params: [String: ParamValue] = ["seed": .int(42), "prompt": .string("a red/blue circle")],
             writeMetadata: Bool = true) -> RunInfo {
    RunInfo(graphFile: "graphs/text2img.yaml", graphSource: "description: test\nnodes: {}\n", params: params,
            nodeVersions: ["image.save": 1, "dit.load": 3], fingerprints: ["dit": "sha256:abc"],
            writeMetadata: writeMetadata, startedAt: Date(timeIntervalSince1970: 1_790_000_000))
}

func context(_ run: RunInfo? = nil, node: String = "save") -> RunContext { RunContext(nodeID: node, run: run) }

@Suite struct ImageRoundTripTests {
    @Test func eightBitSaveThenLoadIsExact() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let (h, w) = (13, 17)
        let values = samples(3 * h * w, modulo: 256, seed: 1).map { Float($0) / 255 }
        let image = Tensor(shape: [1, 3, h, w], values: values)
        let paths = try ImageSave.save(image, template: PathTemplate(dir.path + "/a.png"), bits: 8, collision: .fail,
                                       context: context())
        let back = try ImageLoad.load(path: paths[0])
        #expect(back.shape == [1, 3, h, w])
        #expect(back.scalars == values)
    }

    @Test func sixteenBitSaveThenLoadIsExact() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let (h, w) = (9, 11)
        let raw = samples(3 * h * w, modulo: 65536, seed: 2)
        let values = raw.map { Float($0) / 65535 }
        let image = Tensor(shape: [1, 3, h, w], values: values)
        let paths = try ImageSave.save(image, template: PathTemplate(dir.path + "/a16.png"), bits: 16,
                                       collision: .fail, context: context(runInfo()))
        let back = try ImageLoad.load(path: paths[0])
        #expect(back.scalars.map { Int(($0 * 65535).rounded()) } == raw)
        // The file is 16-bit RGB and labelled sRGB (not libpng's default linear gAMA 1.0).
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: paths[0])))
        #expect(bytes[24] == 16 && bytes[25] == 2)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("sRGB") && !text.contains("gAMA"))
    }

    @Test func quantisationRoundsLikeNumpyToPIL() throws {
        // round(clamp(x) * 255) in fp32 with ties to even: 0.5 -> 127.5 -> 128; out-of-range and NaN clamp.
        let dir = TestSupport.temporaryDirectory("imageio")
        let values: [Float] = [0.5, -0.2, 1.7, .nan, 0.25, 1 / 510, 3 / 510]
        let expected: [Float] = [128, 0, 255, 0, 64, 0, 2].map { $0 / 255 }
        let image = Tensor(shape: [1, 3, 1, 7], values: values + values + values)
        let paths = try ImageSave.save(image, template: PathTemplate(dir.path + "/q.png"), bits: 8, collision: .fail,
                                       context: context())
        let back = try ImageLoad.load(path: paths[0])
        #expect(back.scalars == expected + expected + expected)
    }

    @Test func batchesWriteOneFilePerImage() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let image = Tensor(shape: [2, 3, 2, 2], values: (0..<24).map { Float($0) / 23 })
        let outputs = try ImageSave().run(inputs: NodeInputs(["image": .image(image)], nodeID: "save"),
                                          params: ParamValues(["path": .string(dir.path + "/b.png"), "bits": .int(8),
                                                               "collision": .string("fail")]),
                                          context: context(runInfo()))
        guard let joined = outputs["path"]?.payload(as: String.self) else { Issue.record("no path output"); return }
        let paths = joined.split(separator: "\n").map(String.init)
        #expect(paths == [dir.path + "/b_0.png", dir.path + "/b_1.png"])
        for (b, p) in paths.enumerated() {
            let back = try ImageLoad.load(path: p)
            let want = (0..<12).map { (Float(b * 12 + $0) / 23 * 255).rounded() / 255 }
            #expect(back.scalars == want)
            #expect(try PNGMetadata.read(path: p).batchIndex == b)
        }
    }

    @Test func nodePackListsLoadAndSave() throws {
        let registry = try NodeRegistry(packs: [ImageIOPack.self])
        #expect(registry.typeNames == ["image.load", "image.save"])
        #expect(ImageSave.descriptor.hasSideEffects)
    }

    @Test func loadFingerprintChangesWhenTheFileChanges() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let path = dir.path + "/f.png"
        let image = Tensor(shape: [1, 3, 1, 1], values: [0, 0, 0])
        _ = try ImageSave.save(image, template: PathTemplate(path), bits: 8, collision: .fail, context: context())
        let params = ParamValues(["path": .string(path), "max_pixels": .int(100)])
        let first = try ImageLoad().fingerprint(params: params)
        _ = try ImageSave.save(Tensor(shape: [1, 3, 1, 2], values: [0, 0, 0, 0, 0, 0]), template: PathTemplate(path),
                               bits: 8, collision: .overwrite, context: context())
        let second = try ImageLoad().fingerprint(params: params)
        #expect(first != nil && first != second)
    }
}
