import Foundation
import GraphRuntime
import ImageIO
import Tensors
import Testing
import TestSupport

@Suite struct MetadataTests {
    let image = Tensor(shape: [1, 3, 2, 3], values: (0..<18).map { Float($0) / 17 })

    @Test func metadataIsWrittenAndReadBack() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        var params = runInfo().params
        params["cfg"] = .float(4.0)  // integral float: must come back as a float
        params["hires"] = .bool(true)
        let run = RunInfo(graphFile: "graphs/t.yaml", graphSource: "nodes:\n  a: {type: x}\n", params: params,
                          nodeVersions: ["image.save": 1], fingerprints: ["dit": "sha256:0123"],
                          startedAt: Date(timeIntervalSince1970: 1_790_000_000))
        let paths = try ImageSave.save(image, template: PathTemplate(dir.path + "/m.png"), bits: 8, collision: .fail,
                                       context: context(run, node: "saver"))
        let meta = try PNGMetadata.read(path: paths[0])
        #expect(meta.graphFile == "graphs/t.yaml")
        #expect(meta.graphSource == run.graphSource)
        #expect(meta.params == params)
        #expect(meta.nodeVersions == ["image.save": 1])
        #expect(meta.modelFingerprints == ["dit": "sha256:0123"])
        #expect(meta.toolVersion == SanaGraphVersion.current)
        #expect(meta.node == "saver")
        #expect(meta.createdAt.hasPrefix("2026-09-21"))
        #expect(meta.report.contains("cfg = 4.0 (float)"))
        // The JSON form round-trips on its own too.
        #expect(try Provenance(json: meta.json) == meta)
        // Metadata does not disturb the pixels.
        #expect(try ImageLoad.load(path: paths[0]).scalars == image.scalars.map { ($0 * 255).rounded() / 255 })
    }

    @Test func noMetadataFlagWritesNone() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let paths = try ImageSave.save(image, template: PathTemplate(dir.path + "/n.png"), bits: 8, collision: .fail,
                                       context: context(runInfo(writeMetadata: false)))
        let error = #expect(throws: ImageIOError.self) { try PNGMetadata.read(path: paths[0]) }
        #expect(error?.category == .invalidGraph)
        #expect(error?.description.contains("--no-metadata") == true)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: paths[0]))
        #expect(!String(decoding: bytes, as: UTF8.self).contains("sanagraph"))
    }

    @Test func foreignPNGHasNoMetadata() throws {
        let path = TestSupport.fixture("ImageIO/rgb8.png")
        #expect(throws: ImageIOError.noMetadata(path: path, reason: "the file has no 'sanagraph' text chunk "
            + "(it was not written by SanaGraph, was saved with --no-metadata, or was re-encoded by another tool)")) {
            try PNGMetadata.read(path: path)
        }
    }
}

@Suite struct PathTemplateTests {
    @Test func placeholdersAreSubstituted() throws {
        let run = runInfo()
        let path = try PathTemplate("out/{graph}/{seed}-{params.prompt}-{date}-{time}.png")
            .resolve(run: run, batchIndex: 0, batchCount: 1)
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd-HHmmss"
        // '/' in a param value cannot escape the folder.
        #expect(path == "out/text2img/42-a red_blue circle-\(formatter.string(from: run.startedAt)).png")
    }

    @Test func batchIndexIsAddedWhenTheTemplateLacksIt() throws {
        let t = PathTemplate("out/x.png")
        #expect(try t.resolve(run: nil, batchIndex: 1, batchCount: 2) == "out/x_1.png")
        #expect(try t.resolve(run: nil, batchIndex: 0, batchCount: 1) == "out/x.png")
        #expect(try PathTemplate("out/{batch}-x").resolve(run: nil, batchIndex: 3, batchCount: 4) == "out/3-x.png")
    }

    @Test func counterIsOneAboveTheHighestExisting() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let t = PathTemplate(dir.path + "/img_{counter}.png")
        #expect(try t.resolve(run: nil, batchIndex: 0, batchCount: 1) == dir.path + "/img_00001.png")
        for name in ["img_00007.png", "img_00003.png", "img_x.png", "other_00099.png"] {
            #expect(FileManager.default.createFile(atPath: dir.path + "/" + name, contents: Data()))
        }
        #expect(try t.resolve(run: nil, batchIndex: 0, batchCount: 1) == dir.path + "/img_00008.png")
        let image = Tensor(shape: [1, 3, 1, 1], values: [1, 1, 1])
        let a = try ImageSave.save(image, template: t, bits: 8, collision: .fail, context: context())
        let b = try ImageSave.save(image, template: t, bits: 8, collision: .fail, context: context())
        #expect(a == [dir.path + "/img_00008.png"] && b == [dir.path + "/img_00009.png"])
    }

    @Test func badTemplatesAreRejected() throws {
        #expect(throws: ImageIOError.self) { try PathTemplate("out/{nope}.png").resolve(run: nil, batchIndex: 0, batchCount: 1) }
        #expect(throws: ImageIOError.self) { try PathTemplate("out/{seed.png").resolve(run: runInfo(), batchIndex: 0, batchCount: 1) }
        #expect(throws: ImageIOError.self) { try PathTemplate("out/{seed}.png").resolve(run: nil, batchIndex: 0, batchCount: 1) }
        let e = #expect(throws: ImageIOError.self) {
            try PathTemplate("{params.steps}.png").resolve(run: runInfo(), batchIndex: 0, batchCount: 1)
        }
        #expect(e?.description.contains("no param 'steps'") == true)
        #expect(throws: ImageIOError.self) { try PathTemplate("{counter}/a.png").resolve(run: nil, batchIndex: 0, batchCount: 1) }
    }
}

@Suite struct CollisionAndFailureTests {
    let red = Tensor(shape: [1, 3, 1, 1], values: [1, 0, 0])
    let blue = Tensor(shape: [1, 3, 1, 1], values: [0, 0, 1])

    func files(_ dir: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).sorted()
    }

    @Test func failPolicyKeepsTheExistingFile() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let t = PathTemplate(dir.path + "/c.png")
        _ = try ImageSave.save(red, template: t, bits: 8, collision: .fail, context: context())
        let error = #expect(throws: ImageIOError.self) {
            try ImageSave.save(blue, template: t, bits: 8, collision: .fail, context: context())
        }
        #expect(error?.category == .io)
        #expect(try ImageLoad.load(path: dir.path + "/c.png").scalars == [1, 0, 0])
        #expect(files(dir) == ["c.png"])  // no temporary file left behind
    }

    @Test func overwritePolicyReplaces() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let t = PathTemplate(dir.path + "/c.png")
        _ = try ImageSave.save(red, template: t, bits: 8, collision: .overwrite, context: context())
        _ = try ImageSave.save(blue, template: t, bits: 8, collision: .overwrite, context: context())
        #expect(try ImageLoad.load(path: dir.path + "/c.png").scalars == [0, 0, 1])
        #expect(files(dir) == ["c.png"])
    }

    @Test func suffixPolicyPicksTheNextFreeName() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let t = PathTemplate(dir.path + "/c.png")
        var written: [String] = []
        for _ in 0..<3 { written += try ImageSave.save(red, template: t, bits: 8, collision: .suffix, context: context()) }
        #expect(written == ["c.png", "c_1.png", "c_2.png"].map { dir.path + "/" + $0 })
        #expect(files(dir) == ["c.png", "c_1.png", "c_2.png"])
    }

    @Test func outputFoldersAreCreated() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        let paths = try ImageSave.save(red, template: PathTemplate(dir.path + "/a/b/c/d.png"), bits: 16,
                                       collision: .fail, context: context())
        #expect(FileManager.default.fileExists(atPath: paths[0]))
    }

    @Test func unwritableOutputGivesAnIOErrorAndNoFile() throws {
        let dir = TestSupport.temporaryDirectory("imageio")
        // A regular file where a folder should be: creating the folder must fail, for root too.
        #expect(FileManager.default.createFile(atPath: dir.path + "/blocker", contents: Data("x".utf8)))
        let error = #expect(throws: ImageIOError.self) {
            try ImageSave.save(red, template: PathTemplate(dir.path + "/blocker/sub/x.png"), bits: 8,
                               collision: .fail, context: context())
        }
        #expect(error?.category == .io)
        #expect(error?.description.contains("blocker") == true)
        #expect(files(dir) == ["blocker"])
        // A folder where the file should be.
        try FileManager.default.createDirectory(atPath: dir.path + "/taken.png", withIntermediateDirectories: false)
        #expect(throws: ImageIOError.self) {
            try ImageSave.save(red, template: PathTemplate(dir.path + "/taken.png"), bits: 8, collision: .overwrite,
                               context: context())
        }
        #expect(files(dir) == ["blocker", "taken.png"])
    }

    @Test func wrongImageShapeIsANodeError() throws {
        let bad = Tensor(shape: [1, 4, 2, 2], values: [Float](repeating: 0, count: 16))
        #expect(throws: NodeError.self) {
            try ImageSave().run(inputs: NodeInputs(["image": .image(bad)], nodeID: "save"),
                                params: ParamValues(["path": .string("/tmp/never.png"), "bits": .int(8),
                                                     "collision": .string("fail")]),
                                context: context())
        }
        #expect(ImageSave().validate(params: ParamValues(["bits": .int(12)])) == ["bits must be 8 or 16, got 12"])
    }
}
