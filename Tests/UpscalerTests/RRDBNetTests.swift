import DiffusionModels
import Foundation
import GraphRuntime
import Safetensors
import Tensors
import Testing
import TestSupport
import Upscaler

/// A deterministic smooth-plus-texture test image [1, 3, h, w] in [0, 1].
func testImage(h: Int, w: Int) -> Tensor {
    var values: [Float] = []
    for c in 0..<3 {
        for y in 0..<h {
            for x in 0..<w {
                let v = 0.5 + 0.3 * sin(Float(x) * 0.31 + Float(c)) * cos(Float(y) * 0.23) + 0.15 * sin(Float(x * y + c) * 1.7)
                values.append(min(max(v, 0), 1))
            }
        }
    }
    return Tensor(shape: [1, 3, h, w], values: values)
}

func maxAbsDiff(_ a: Tensor, _ b: Tensor) -> Float {
    zip(a.scalars, b.scalars).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

/// RRDBNet against the PyTorch reference in tools/reference/rrdbnet.py.
@Suite struct RRDBNetTests {
    @Test(arguments: [4, 2])
    func matchesPyTorchReference(scale: Int) throws {
        let model = try RRDBNetLoader.load(path: TestSupport.fixture("Upscaler/rrdbnet_x\(scale).safetensors"))
        #expect(model.config == RRDBNetConfig(scale: scale, numFeat: 8, numBlock: 2, numGrowCh: 4))
        let io = try TestSupport.loadFixture("Upscaler/rrdbnet_io.safetensors")
        let out = model.forward(try io.tensor("x\(scale)_input"))
        let reference = try io.tensor("x\(scale)_output")
        #expect(out.shape == reference.shape)
        let error = TestSupport.relativeError(out, reference)
        #expect(error <= 1e-4, "x\(scale): relative error \(error)")
    }

    @Test func oldESRGANKeysLoadToTheSameModel() throws {
        let old = try RRDBNetLoader.load(path: TestSupport.fixture("Upscaler/rrdbnet_x4_oldarch.safetensors"))
        let new = try RRDBNetLoader.load(path: TestSupport.fixture("Upscaler/rrdbnet_x4.safetensors"))
        #expect(old.config == new.config)
        let x = testImage(h: 6, w: 5)
        #expect(old.forward(x).scalars == new.forward(x).scalars)
    }

    // An odd overlap (9) with the x2 model checks that tiles stay on the pixel-unshuffle grid.
    @Test(arguments: [(4, 40, 52, 12), (2, 41, 53, 12), (2, 36, 30, 9)])
    func tiledMatchesUntiled(scale: Int, h: Int, w: Int, overlap: Int) throws {
        let model = try RRDBNetLoader.load(path: TestSupport.fixture("Upscaler/rrdbnet_x\(scale).safetensors"))
        let x = testImage(h: h, w: w)
        let context = RunContext(nodeID: "up")
        let whole = try model.upscale(x, tileSize: 0, overlap: 0, context: context)
        let tiled = try model.upscale(x, tileSize: 15, overlap: overlap, context: context)
        #expect(whole.shape == [1, 3, h * scale, w * scale])
        #expect(tiled.shape == whole.shape)
        let diff = maxAbsDiff(tiled, whole)
        #expect(diff <= 2 / 255, "x\(scale) \(h)x\(w): tiled vs untiled max |diff| = \(diff * 255)/255")
        #expect(whole.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func applyNodeUpscalesABatch() throws {
        let model = try RRDBNetLoader.load(path: TestSupport.fixture("Upscaler/rrdbnet_x2.safetensors"))
        let one = testImage(h: 8, w: 6)
        let batch = Tensor(shape: [2, 3, 8, 6], values: one.scalars + one.scalars.map { 1 - $0 })
        let out = try UpscaleApply().run(
            inputs: NodeInputs(["model": .upscaler(model), "image": .image(batch)], nodeID: "up"),
            params: ParamValues(["tile": .int(4), "overlap": .int(4)]), context: RunContext(nodeID: "up"))
        guard let t = out["image"]?.payload(as: Tensor.self) else { Issue.record("no image output"); return }
        #expect(t.shape == [2, 3, 16, 12])
        let first = try model.upscale(one, tileSize: 0, overlap: 0, context: RunContext(nodeID: "up"))
        #expect(maxAbsDiff(Tensor(storage: t.storage, shape: [1, 3, 16, 12]), first) <= 2 / 255)
    }

    @Test func loadNodeOutputsAnUpscaleModel() throws {
        let params = ParamValues(["path": .string(TestSupport.fixture("Upscaler/rrdbnet_x4.safetensors"))])
        let out = try UpscaleLoad().run(inputs: NodeInputs([:]), params: params, context: RunContext(nodeID: "load"))
        guard let m = out["model"]?.payload(as: (any UpscaleModel).self) else { Issue.record("no model output"); return }
        #expect(m.scale == 4)
        #expect(m.residentBytes > 0)
        #expect(try UpscaleLoad().fingerprint(params: params) != nil)
        let registry = try NodeRegistry(packs: [UpscalerPack.self])
        #expect(registry.typeNames == ["image.resize", "upscale.apply", "upscale.load"])
    }
}

/// Wrong model files give one clear error category (.modelFile, exit 4) naming the file.
@Suite struct UpscalerModelFileErrorTests {
    func expectModelFileError(_ path: String, mentioning fragment: String) {
        do {
            _ = try RRDBNetLoader.load(path: path)
            Issue.record("\(path) loaded")
        } catch {
            #expect(error.exitCategory == .modelFile, "\(error)")
            #expect("\(error)".contains(path))
            #expect("\(error)".contains(fragment), "\(error)")
        }
    }

    func writeVariant(_ edit: (inout [String: Tensor]) -> Void) throws -> String {
        let file = try TestSupport.loadFixture("Upscaler/rrdbnet_x4.safetensors")
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        edit(&tensors)
        let path = TestSupport.temporaryDirectory("upscaler").appendingPathComponent("m.safetensors").path
        try SafetensorsWriter.write(tensors, to: path)
        return path
    }

    @Test func missingFile() { expectModelFileError("/nonexistent/model.safetensors", mentioning: "cannot open") }

    @Test func notSafetensors() throws {
        let path = TestSupport.temporaryDirectory("upscaler").appendingPathComponent("junk.safetensors").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data("definitely not a model".utf8)))
        expectModelFileError(path, mentioning: "cannot open")
    }

    @Test func otherModelKeys() {
        expectModelFileError(TestSupport.fixture("Upscaler/resize.safetensors"), mentioning: "no tensor 'conv_first.weight'")
    }

    @Test func wrongShape() throws {
        let path = try writeVariant { $0["conv_up1.weight"] = Tensor(zeros: [8, 8, 1, 1]) }
        expectModelFileError(path, mentioning: "conv_up1.weight [8, 8, 1, 1]")
    }

    @Test func missingTensor() throws {
        let path = try writeVariant { $0["body.1.rdb3.conv5.bias"] = nil }
        expectModelFileError(path, mentioning: "body.1.rdb3.conv5.bias")
    }

    @Test func unsupportedInputChannels() throws {
        let path = try writeVariant { $0["conv_first.weight"] = Tensor(zeros: [8, 5, 3, 3]) }
        expectModelFileError(path, mentioning: "5 input channels")
    }

    @Test func unexpectedExtraTensors() throws {
        let path = try writeVariant { $0["conv_up3.weight"] = Tensor(zeros: [8, 8, 3, 3]) }
        expectModelFileError(path, mentioning: "x8")
    }
}
