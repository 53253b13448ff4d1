import DiffusionModels
import Foundation
import GraphRuntime
import Tensors
import Testing
import TestSupport
@testable import FlowSolvers

/// A denoiser that only reports its sizes (latent.noise never calls it).
private final class SizedDenoiser: DenoiserModel {
    let inChannels: Int
    let latentSpatialDivisor = 32
    let takesGuidance = false
    let sampleSize: Int?
    let patchSize: Int
    var residentBytes: Int { 0 }

    init(inChannels: Int, sampleSize: Int?, patchSize: Int = 1) {
        self.inChannels = inChannels
        self.sampleSize = sampleSize
        self.patchSize = patchSize
    }

    func prepare(_ conditioning: Conditioning) throws -> any PreparedText { fatalError("not used") }
    func predict(latent: Tensor, timestep: Tensor, text: any PreparedText, guidance: Tensor?) throws -> Tensor {
        fatalError("not used")
    }
}

/// An autoencoder that only reports its sizes.
private final class SizedAutoencoder: AutoencoderModel {
    let latentChannels: Int
    let downscale: Int
    let scalingFactor: Float = 1
    var residentBytes: Int { 0 }

    init(latentChannels: Int, downscale: Int) {
        self.latentChannels = latentChannels
        self.downscale = downscale
    }

    func decode(_ latent: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor { fatalError("not used") }
    func encode(_ image: Tensor, tileSize: Int?, context: RunContext) throws -> Tensor { fatalError("not used") }
}

@Suite("latent.noise with model and vae")
struct LatentNoiseModelTests {
    static func run(_ overrides: [String: ParamValue], model: (any DenoiserModel)? = nil,
                    vae: (any AutoencoderModel)? = nil) throws -> Tensor {
        var values: [String: Value] = [:]
        if let model { values["model"] = .denoiser(model) }
        if let vae { values["vae"] = .autoencoder(vae) }
        let out = try LatentNoiseNode().run(inputs: NodeInputs(values, nodeID: "noise"),
                                            params: NodeTests.params(LatentNoiseNode.self, overrides),
                                            context: RunContext(nodeID: "noise"))
        guard let t = out["latent"]?.payload(as: Tensor.self) else { throw NodeError.invalidInput(node: "noise", message: "") }
        return t
    }

    @Test("Channels and downscale come from the vae; width/height 0 is the model's native size")
    func autoSizeFromTheModels() throws {
        // The shipped model: sample_size 16, f16, 16 channels -> 256 px, latent 16x16.
        let shipped = try Self.run(["width": .int(0), "height": .int(0)],
                                   model: SizedDenoiser(inChannels: 16, sampleSize: 16),
                                   vae: SizedAutoencoder(latentChannels: 16, downscale: 16))
        #expect(shipped.shape == [1, 16, 16, 16])
        // SANA 1024 px: sample_size 32, f32 -> 1024 px (SanaPipeline's default), latent 32x32.
        let sana = try Self.run(["width": .int(0), "height": .int(512), "seed": .int(3)],
                                model: SizedDenoiser(inChannels: 32, sampleSize: 32),
                                vae: SizedAutoencoder(latentChannels: 32, downscale: 32))
        #expect(sana.shape == [1, 32, 16, 32])
        // Same numbers as without the models: the noise is torch.randn of the shape.
        let plain = try Self.run(["width": .int(1024), "height": .int(512), "seed": .int(3)])
        #expect(plain.scalars == sana.scalars)
        // Only the model: channels from it, downscale from the param.
        let modelOnly = try Self.run(["width": .int(64), "height": .int(64)],
                                     model: SizedDenoiser(inChannels: 8, sampleSize: 16))
        #expect(modelOnly.shape == [1, 8, 2, 2])
    }

    @Test("Auto size without a model, or mismatched channels, is an error naming what to connect")
    func autoSizeErrors() {
        #expect {
            try Self.run(["width": .int(0)])
        } throws: { e in
            "\(e)".contains("connect the 'model' input")
        }
        #expect {
            try Self.run(["width": .int(0)], model: SizedDenoiser(inChannels: 4, sampleSize: nil))
        } throws: { e in
            "\(e)".contains("sample_size")
        }
        #expect {
            try Self.run([:], model: SizedDenoiser(inChannels: 32, sampleSize: 32),
                         vae: SizedAutoencoder(latentChannels: 16, downscale: 32))
        } throws: { e in
            "\(e)".contains("16-channel latents but the model takes 32")
        }
        // Patch size 2 on f32: cells of 64 px.
        #expect {
            try Self.run(["width": .int(96), "height": .int(128)],
                         model: SizedDenoiser(inChannels: 32, sampleSize: 32, patchSize: 2),
                         vae: SizedAutoencoder(latentChannels: 32, downscale: 32))
        } throws: { e in
            "\(e)".contains("width 96 px is not a multiple of 64 px")
        }
    }

    @Test("Validation: multiples of 32 without binning; any non-zero size with binning; never 0 with binning")
    func validation() {
        let node = LatentNoiseNode()
        func errors(_ o: [String: ParamValue]) -> [String] { node.validate(params: NodeTests.params(LatentNoiseNode.self, o)) }
        #expect(errors(["width": .int(0), "height": .int(0)]).isEmpty)
        #expect(errors(["width": .int(40), "downscale": .int(8)])
                == ["width 40 px is not a multiple of 32 px (SanaPipeline's rule, and of the latent cell size "
                    + "'downscale' 8); use 32 or 64"])
        #expect(errors(["width": .int(1000), "height": .int(700), "resolution_binning": .bool(true)]).isEmpty)
        #expect(errors(["width": .int(0), "resolution_binning": .bool(true)]).first?.contains("width 0") == true)
    }

    @Test("Binning picks diffusers' table by sample_size and the nearest ratio (first on ties)")
    func binning() throws {
        // Values from diffusers' classify_height_width_bin on its tables.
        let b512 = try #require(AspectRatioBins.table(sampleSize: 16))
        #expect(AspectRatioBins.nearest(height: 200, width: 320, in: b512) == .init(key: "0.6", height: 384, width: 640))
        #expect(AspectRatioBins.nearest(height: 256, width: 256, in: b512)?.width == 512)
        let b1024 = try #require(AspectRatioBins.table(sampleSize: 32))
        #expect(AspectRatioBins.nearest(height: 700, width: 1000, in: b1024) == .init(key: "0.68", height: 832, width: 1216))
        #expect(AspectRatioBins.nearest(height: 4000, width: 100, in: b1024)?.key == "4.0")
        #expect(AspectRatioBins.table(sampleSize: 64)?.count == 40)
        #expect(AspectRatioBins.table(sampleSize: 128)?.first == .init(key: "0.25", height: 2048, width: 8192))
        #expect(AspectRatioBins.table(sampleSize: 8) == nil)

        let model = SizedDenoiser(inChannels: 8, sampleSize: 16)
        let vae = SizedAutoencoder(latentChannels: 8, downscale: 32)
        let t = try Self.run(["width": .int(320), "height": .int(200), "resolution_binning": .bool(true)],
                             model: model, vae: vae)
        #expect(t.shape == [1, 8, 12, 20])
        #expect {
            try Self.run(["width": .int(320), "height": .int(200), "resolution_binning": .bool(true)],
                         model: SizedDenoiser(inChannels: 8, sampleSize: 24), vae: vae)
        } throws: { e in
            "\(e)".contains("no aspect-ratio bins for sample_size 24")
        }
        #expect {
            try Self.run(["width": .int(320), "height": .int(200), "resolution_binning": .bool(true)], vae: vae)
        } throws: { e in
            "\(e)".contains("connect the 'model' input")
        }
    }
}
