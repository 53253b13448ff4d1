import DCAE
import Foundation
import GraphRuntime
import Safetensors
import Tensors
import TensorIO
import Testing
import TestSupport

/// Parity with diffusers' AutoencoderDC on the tiny random configs of tools/reference/dcae.py.
@Suite struct DCAEParityTests {
    /// mixed_interpolate_f32: ResBlock + EfficientViT stages, strided-conv down, interpolate up, shortcuts, multiscale
    /// kernels (3, 5) / (5) / none, batch 2, non-square, F32.
    /// shuffle_batchnorm_f16: pixel (un)shuffle samplers, batch_norm and rms_norm per stage, relu/gelu/mish/silu,
    /// no in/out shortcuts, quadratic attention on the 2×2 map, F16.
    /// stemless_bf16_sharded: layers_per_block[0] = 0 (conv_in/conv_out are down/up blocks), head dim 4, BF16 shards.
    static let cases = ["mixed_interpolate_f32", "shuffle_batchnorm_f16", "stemless_bf16_sharded"]

    static func folder(_ name: String) -> String { TestSupport.fixture("DCAE/\(name)/vae") }
    static func io(_ name: String) -> String { TestSupport.fixture("DCAE/\(name)/io.safetensors") }

    @Test(arguments: cases)
    func decoderMatchesDiffusers(_ name: String) throws {
        let model = try AutoencoderDC.load(folder: Self.folder(name))
        let io = try SafetensorsFile(path: Self.io(name))
        let err = TestSupport.relativeError(try model.decoderForward(io.tensor("latent")), try io.tensor("decoded"))
        print("DCAE decoder parity \(name): \(err)")
        #expect(err <= 1e-4, "\(name): max|Δ|/max|ref| = \(err)")
    }

    @Test(arguments: cases)
    func encoderMatchesDiffusers(_ name: String) throws {
        let model = try AutoencoderDC.load(folder: Self.folder(name))
        let io = try SafetensorsFile(path: Self.io(name))
        let err = TestSupport.relativeError(try model.encoderForward(io.tensor("sample")), try io.tensor("encoded"))
        print("DCAE encoder parity \(name): \(err)")
        #expect(err <= 1e-4, "\(name): max|Δ|/max|ref| = \(err)")
    }

    @Test func tiledDecodeAndEncodeMatchDiffusersTiling() throws {
        let name = "mixed_interpolate_f32"
        let model = try AutoencoderDC.load(folder: Self.folder(name))
        let io = try SafetensorsFile(path: Self.io(name))
        let tile = Int(io.metadata["tile"] ?? "") ?? 0, stride = Int(io.metadata["stride"] ?? "") ?? 0
        #expect(tile == 16 && stride == 12)
        let decoded = try model.tiledDecode(io.tensor("tiled_latent"), tile: tile, stride: stride)
        let decodeErr = TestSupport.relativeError(decoded, try io.tensor("tiled_decoded"))
        let encoded = try model.tiledEncode(io.tensor("tiled_sample"), tile: tile, stride: stride)
        let encodeErr = TestSupport.relativeError(encoded, try io.tensor("tiled_encoded"))
        print("DCAE tiled parity: decode \(decodeErr), encode \(encodeErr)")
        #expect(decodeErr <= 1e-4)
        #expect(encodeErr <= 1e-4)
        // Tiling really changed the result (the tiles are smaller than the image), so the check above means something.
        #expect(TestSupport.relativeError(try io.tensor("tiled_decoded"), try io.tensor("untiled_decoded")) > 1e-3)
        // Unusable tilings are errors, not crashes.
        #expect(throws: DCAEInputError.self) { try model.tiledDecode(io.tensor("tiled_latent"), tile: 16, stride: 10) }
        #expect(throws: DCAEInputError.self) { try model.tiledEncode(io.tensor("tiled_sample"), tile: 8, stride: 12) }
    }

    @Test func decodeNodeRunFromYAMLGraphMatchesPipeline() throws {
        for name in Self.cases {
            let dir = TestSupport.temporaryDirectory("dcae-decode-graph")
            defer { try? FileManager.default.removeItem(at: dir) }
            let io = Self.io(name), output = dir.appendingPathComponent("image.safetensors").path
            let meta = try SafetensorsFile(path: io).metadata
            let yaml = """
            sanagraph: 1
            description: DC-AE decode as SanaPipeline does it
            nodes:
              vae: {type: dcae.load, params: {path: "\(Self.folder(name))"}}
              z: {type: tensor.load, params: {path: "\(io)", name: scaled_latent}}
              decode:
                type: dcae.decode
                inputs: {vae: vae, latent: z}
                params: {width: \(meta["width"] ?? "0"), height: \(meta["height"] ?? "0")}
              save: {type: tensor.save, inputs: {tensor: decode.image}, params: {path: "\(output)", name: image}}
            """
            try Self.run(yaml)
            let image = try SafetensorsFile(path: output).tensor("image")
            let err = TestSupport.relativeError(image, try SafetensorsFile(path: io).tensor("image"))
            print("DCAE decode node \(name): \(err)")
            #expect(err <= 1e-4, "\(name) through the graph: \(err)")
        }
    }

    @Test func encodeNodeRunFromYAMLGraphMatchesDiffusers() throws {
        for name in Self.cases {
            let dir = TestSupport.temporaryDirectory("dcae-encode-graph")
            defer { try? FileManager.default.removeItem(at: dir) }
            let io = Self.io(name), output = dir.appendingPathComponent("latent.safetensors").path
            let yaml = """
            sanagraph: 1
            description: DC-AE encode
            nodes:
              vae: {type: dcae.load, params: {path: "\(Self.folder(name))"}}
              x: {type: tensor.load, params: {path: "\(io)", name: sample01}}
              encode: {type: dcae.encode, inputs: {vae: vae, image: x}}
              save: {type: tensor.save, inputs: {tensor: encode.latent}, params: {path: "\(output)", name: latent}}
            """
            try Self.run(yaml)
            let latent = try SafetensorsFile(path: output).tensor("latent")
            let err = TestSupport.relativeError(latent, try SafetensorsFile(path: io).tensor("latent_node"))
            print("DCAE encode node \(name): \(err)")
            #expect(err <= 1e-4, "\(name) through the graph: \(err)")
        }
    }

    @Test func resizeAndCropMatchesDiffusersGeometry() throws {
        // 12×20 → 14×26: ratio max(14/12, 26/20) = 1.3 → 15×26 (int truncation), crop rows 0..<14 from offset 0.
        let x = Tensor(shape: [1, 1, 12, 20], values: (0..<240).map(Float.init))
        let y = DCAEDecode.resizeAndCrop(x, width: 26, height: 14)
        #expect(y.shape == [1, 1, 14, 26])
        let full = Ops.interpolate(x, size: (15, 26), mode: .bilinear)
        #expect(TestSupport.relativeError(y, Ops.slice(full, axis: 2, range: 0..<14)) == 0)
        // Same size: untouched.
        #expect(DCAEDecode.resizeAndCrop(x, width: 20, height: 12).scalars == x.scalars)
    }

    static func run(_ yaml: String) throws {
        let registry = try NodeRegistry(packs: [TensorIOPack.self, DCAEPack.self])
        let graph = try GraphLoader.load(yaml: yaml, file: "dcae.yaml", registry: registry)
        let summary = try Executor().run(graph, plan: Planner.plan(graph))
        #expect(summary.ok)
    }
}
