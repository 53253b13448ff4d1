import DCAE
import Foundation
import GraphRuntime
import Safetensors
import Tensors
import TensorIO
import Testing
import TestSupport

/// Bad models and bad inputs give one clear, categorized error naming the file or node.
@Suite struct ModelFolderErrorTests {
    static let fixture = "mixed_interpolate_f32"
    static var folder: String { DCAEParityTests.folder(fixture) }

    /// A copy of the fixture's vae/ folder to break.
    static func copyOfFixture() throws -> URL {
        let dir = TestSupport.temporaryDirectory("dcae-broken")
        let dst = dir.appendingPathComponent("vae")
        try FileManager.default.copyItem(atPath: folder, toPath: dst.path)
        return dst
    }

    /// Rewrites the weights file of a copied vae/ folder after `edit`; returns its path.
    static func rewriteWeights(of vae: URL, _ edit: (inout [String: Tensor]) -> Void) throws -> String {
        let path = vae.appendingPathComponent("diffusion_pytorch_model.safetensors").path
        let file = try SafetensorsFile(path: path)
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        edit(&tensors)
        try SafetensorsWriter.write(tensors, to: path)
        return path
    }

    @Test func missingFolderIsAModelFileError() throws {
        let error = #expect(throws: ModelFolderError.self) { try AutoencoderDC.load(folder: "/nonexistent/vae") }
        #expect(error?.category == .modelFile)
        #expect(error?.category.exitCode == 4)
        #expect(error?.description.contains("/nonexistent/vae") == true)
    }

    @Test func missingConfigNamesConfigJSON() throws {
        let vae = try Self.copyOfFixture()
        defer { try? FileManager.default.removeItem(at: vae.deletingLastPathComponent()) }
        try FileManager.default.removeItem(at: vae.appendingPathComponent("config.json"))
        let error = #expect(throws: ModelFolderError.self) { try AutoencoderDC.load(folder: vae.path) }
        #expect(error?.description.contains("config.json") == true)
    }

    @Test func unsupportedConfigListsEveryProblem() throws {
        let vae = try Self.copyOfFixture()
        defer { try? FileManager.default.removeItem(at: vae.deletingLastPathComponent()) }
        let configURL = vae.appendingPathComponent("config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        json["decoder_block_types"] = ["ResBlock", "AttnBlock", "EfficientViTBlock"]
        json["decoder_conv_act_fn"] = "relu6"
        try JSONSerialization.data(withJSONObject: json).write(to: configURL)
        let error = #expect(throws: ModelFolderError.self) { try AutoencoderDC.load(folder: vae.path) }
        let text = error?.description ?? ""
        #expect(text.contains("config.json") && text.contains("AttnBlock") && text.contains("relu6"), "\(text)")
    }

    @Test func corruptSafetensorsNamesTheFile() throws {
        let vae = try Self.copyOfFixture()
        defer { try? FileManager.default.removeItem(at: vae.deletingLastPathComponent()) }
        let weights = vae.appendingPathComponent("diffusion_pytorch_model.safetensors")
        let bytes = try Data(contentsOf: weights)
        try bytes.prefix(bytes.count / 2).write(to: weights)  // truncated download
        let error = #expect(throws: ModelFolderError.self) { try AutoencoderDC.load(folder: vae.path) }
        #expect(error?.category == .modelFile)
        #expect(error?.description.contains("diffusion_pytorch_model.safetensors") == true, "\(error?.description ?? "")")
    }

    @Test func misshapedMissingAndUnexpectedKeysAreListedTogether() throws {
        let vae = try Self.copyOfFixture()
        defer { try? FileManager.default.removeItem(at: vae.deletingLastPathComponent()) }
        let path = try Self.rewriteWeights(of: vae) { tensors in
            tensors["decoder.conv_out.weight"] = Tensor(zeros: [3, 8, 1, 1])       // wrong shape
            tensors.removeValue(forKey: "encoder.conv_in.bias")                      // missing
            tensors["decoder.extra.weight"] = Tensor(zeros: [2])                     // unexpected
        }
        let error = #expect(throws: ModelFolderError.self) { try AutoencoderDC.load(folder: vae.path) }
        guard case .keyMismatch(let p, _, let missing, let unexpected, let wrong) = error else {
            Issue.record("expected keyMismatch, got \(String(describing: error))"); return
        }
        #expect(p == path)
        #expect(missing == ["encoder.conv_in.bias"])
        #expect(unexpected == ["decoder.extra.weight"])
        #expect(wrong.count == 1 && wrong[0].contains("decoder.conv_out.weight") && wrong[0].contains("[3, 8, 3, 3]"))
        #expect(error?.category == .modelFile)
    }

    @Test func nonFiniteDecoderWeightFailsTheDecodeNodeNamingTheFileWithExitCode4() throws {
        let vae = try Self.copyOfFixture()
        let dir = vae.deletingLastPathComponent()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = try Self.rewriteWeights(of: vae) { tensors in
            var poisoned = tensors["decoder.conv_out.weight"]!.scalars
            poisoned[0] = .nan
            tensors["decoder.conv_out.weight"] = Tensor(shape: tensors["decoder.conv_out.weight"]!.shape, values: poisoned)
        }
        // Loading checks keys and shapes only; the decoder's weights are converted (and checked) on first use.
        #expect(try AutoencoderDC.load(folder: vae.path).residentBytes == 0)
        let out = dir.appendingPathComponent("out.safetensors").path
        let yaml = """
        sanagraph: 1
        nodes:
          vae: {type: dcae.load, params: {path: "\(vae.path)"}}
          z: {type: tensor.load, params: {path: "\(DCAEParityTests.io(Self.fixture))", name: scaled_latent}}
          decode: {type: dcae.decode, inputs: {vae: vae, latent: z}}
          save: {type: tensor.save, inputs: {tensor: decode.image}, params: {path: "\(out)", name: x}}
        """
        do {
            try DCAEParityTests.run(yaml)
            Issue.record("expected a failure")
        } catch {
            #expect(error.exitCategory.exitCode == 4, "\(error)")
            #expect("\(error)".contains(path) && "\(error)".contains("non-finite"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: out), "no partial output")
    }

    @Test func wrongLatentChannelsFailsTheDecodeNode() throws {
        let dir = TestSupport.temporaryDirectory("dcae-wrong-latent")
        defer { try? FileManager.default.removeItem(at: dir) }
        let latent = dir.appendingPathComponent("z.safetensors").path
        try SafetensorsWriter.write(["z": Tensor(zeros: [1, 7, 3, 3])], to: latent)
        let yaml = """
        sanagraph: 1
        nodes:
          vae: {type: dcae.load, params: {path: "\(Self.folder)"}}
          z: {type: tensor.load, params: {path: "\(latent)", name: z}}
          decode_it: {type: dcae.decode, inputs: {vae: vae, latent: z}}
          save: {type: tensor.save, inputs: {tensor: decode_it.image}, params: {path: "\(dir.path)/out.safetensors", name: x}}
        """
        let error = #expect(throws: NodeRunError.self) { try DCAEParityTests.run(yaml) }
        #expect(error?.nodeID == "decode_it")
        #expect(error?.category == .nodeFailed && error?.category.exitCode == 3)
        #expect(error?.description.contains("[B, 4, h, w]") == true, "\(error?.description ?? "")")
        #expect(!FileManager.default.fileExists(atPath: "\(dir.path)/out.safetensors"), "no partial output")
    }

    @Test func imageSizeNotAMultipleOfTheFactorFailsTheEncodeNode() throws {
        let dir = TestSupport.temporaryDirectory("dcae-odd-image")
        defer { try? FileManager.default.removeItem(at: dir) }
        let image = dir.appendingPathComponent("x.safetensors").path
        try SafetensorsWriter.write(["x": Tensor(zeros: [1, 3, 10, 12])], to: image)
        let yaml = """
        sanagraph: 1
        nodes:
          vae: {type: dcae.load, params: {path: "\(Self.folder)"}}
          x: {type: tensor.load, params: {path: "\(image)", name: x}}
          enc: {type: dcae.encode, inputs: {vae: vae, image: x}}
          save: {type: tensor.save, inputs: {tensor: enc.latent}, params: {path: "\(dir.path)/out.safetensors", name: z}}
        """
        let error = #expect(throws: NodeRunError.self) { try DCAEParityTests.run(yaml) }
        #expect(error?.nodeID == "enc")
        #expect(error?.description.contains("multiple of 4") == true, "\(error?.description ?? "")")
    }

    @Test func missingFolderFailsTheLoadNodeWithExitCode4() throws {
        let yaml = """
        sanagraph: 1
        nodes:
          vae: {type: dcae.load, params: {path: "/nonexistent/vae"}}
          z: {type: tensor.load, params: {path: "\(DCAEParityTests.io(Self.fixture))", name: scaled_latent}}
          decode: {type: dcae.decode, inputs: {vae: vae, latent: z}}
          save: {type: tensor.save, inputs: {tensor: decode.image}, params: {path: "/tmp/never.safetensors", name: x}}
        """
        do {
            try DCAEParityTests.run(yaml)
            Issue.record("expected a failure")
        } catch {
            #expect(error.exitCategory.exitCode == 4, "\(error)")
            #expect("\(error)".contains("/nonexistent/vae"), "\(error)")
        }
    }

    @Test func configDefaultsAreDiffusers() throws {
        let config = try JSONDecoder().decode(AutoencoderDCConfig.self, from: Data("{}".utf8))
        #expect(config.latentChannels == 32 && config.attentionHeadDim == 32 && config.inChannels == 3)
        #expect(config.encoderBlockOutChannels == [128, 256, 512, 512, 1024, 1024])
        #expect(config.encoderLayersPerBlock == [2, 2, 2, 3, 3, 3] && config.decoderLayersPerBlock == [3, 3, 3, 3, 3, 3])
        #expect(config.encoderQkvMultiscales == [[], [], [], [5], [5], [5]])
        #expect(config.upsampleBlockType == "pixel_shuffle" && config.downsampleBlockType == "pixel_unshuffle")
        #expect(config.decoderNormTypes == .all("rms_norm") && config.decoderActFns == .all("silu"))
        #expect(config.encoderOutShortcut && config.decoderInShortcut && config.decoderConvActFn == "relu")
        #expect(config.scalingFactor == 1.0 && config.spatialCompressionRatio == 32)
        #expect(config.problems().isEmpty)
    }
}
