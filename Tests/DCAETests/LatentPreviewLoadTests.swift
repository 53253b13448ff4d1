import DiffusionModels
import Foundation
import SanaGraphKit
import Testing
import TestSupport
@testable import DCAE

/// dcae.load reads the folder's latent_preview.json (docs/cli.md#previews).
@Suite struct LatentPreviewLoadTests {
    @Test("The shipped vae has a preview projection for its 16 channels; a folder without the file has none")
    func shippedProjection() throws {
        let shipped = try AutoencoderDC.load(folder: TestSupport.repositoryRoot.appendingPathComponent("models/sana-shapes/vae").path)
        let p = try #require(shipped.latentPreview)
        #expect(p.channels == shipped.latentChannels && p.bias.count == 3)
        #expect(try AutoencoderDC.load(folder: TestSupport.fixture("Pipeline/tiny-sana/vae")).latentPreview == nil)
    }

    @Test("A malformed or mismatched latent_preview.json is a model-file error (exit 4) naming the file")
    func badProjection() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-preview-vae")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = TestSupport.fixture("Pipeline/tiny-sana/vae")
        for name in try FileManager.default.contentsOfDirectory(atPath: source) {
            try FileManager.default.copyItem(atPath: "\(source)/\(name)", toPath: dir.appendingPathComponent(name).path)
        }
        let file = dir.appendingPathComponent(LatentPreview.fileName)
        for text in ["{\"weights\": [[1]], \"bias\": [0, 0, 0]}", "not json",
                     "{\"weights\": [[1], [1], [1]], \"bias\": [0, 0, 0]}"] {
            try text.write(to: file, atomically: true, encoding: .utf8)
            #expect { _ = try AutoencoderDC.load(folder: dir.path) } throws: { error in
                error.exitCategory == .modelFile && "\(error)".contains(LatentPreview.fileName)
            }
        }
    }
}
