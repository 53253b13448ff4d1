import Foundation
import Testing
import TestSupport

/// One reference picture of tools/reference/text2img_pipeline.py (Tests/Fixtures/Pipeline/tiny/cases.json).
struct TinyPipelineCase: Sendable, CustomTestStringConvertible {
    var id: String
    var graph: String
    var sets: [String: String]
    var expectedWidth: Int
    var expectedHeight: Int

    var testDescription: String { id }

    static let folder = "Pipeline/tiny"

    /// The cases in the fixture (empty when it is unreadable; `casesArePresent` fails then).
    static let all: [TinyPipelineCase] = {
        guard let object = try? PipelineSupport.json("\(folder)/cases.json"),
              let cases = object["cases"] as? [[String: Any]] else { return [] }
        return cases.compactMap { c in
            guard let id = c["id"] as? String, let graph = c["graph"] as? String else { return nil }
            var sets: [String: String] = ["models": TestSupport.fixture("Pipeline/tiny-sana")]
            for key in ["prompt", "negative"] { sets[key] = c[key] as? String ?? "" }
            for key in ["seed", "steps", "width", "height"] { sets[key] = String(c[key] as? Int ?? -1) }
            sets["guidance"] = String(c["guidance"] as? Double ?? -1)
            sets["resolution_binning"] = String(c["resolution_binning"] as? Bool ?? false)
            return TinyPipelineCase(id: id, graph: graph, sets: sets,
                                    expectedWidth: c["expected_width"] as? Int ?? -1,
                                    expectedHeight: c["expected_height"] as? Int ?? -1)
        }
    }()
}

/// Graphs/text2img.yaml and Graphs/text2img-euler.yaml on a tiny random SANA pipeline (diffusers layout, committed
/// in Tests/Fixtures/Pipeline/tiny-sana) against diffusers' SanaPipeline pictures of the same settings.
@Suite struct Text2ImgPipelineTests {
    @Test("The reference cases cover both solvers, several sizes, steps and seeds, binning and auto size")
    func casesArePresent() {
        let cases = TinyPipelineCase.all
        #expect(cases.count >= 10)
        #expect(Set(cases.map(\.graph)) == ["text2img", "text2img-euler"])
        #expect(Set(cases.map { $0.sets["steps"] ?? "" }).count >= 5)
        #expect(Set(cases.map { $0.sets["seed"] ?? "" }).count >= 5)
        #expect(cases.contains { $0.expectedWidth != $0.expectedHeight })
        #expect(cases.contains { $0.sets["resolution_binning"] == "true" })
        #expect(cases.contains { $0.sets["width"] == "0" })
    }

    @Test("The PNG sanagraph writes equals diffusers' SanaPipeline within 2/255 per pixel",
          arguments: TinyPipelineCase.all)
    func pictureEqualsDiffusers(_ c: TinyPipelineCase) throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-text2img")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("\(c.id).png").path
        var sets = c.sets
        sets["output"] = out
        let r = try PipelineSupport.run(graph: PipelineSupport.graph(c.graph), sets: sets, directory: dir)
        try #require(r.status == 0, "\(r.stderr)")
        let reference = TestSupport.fixture("\(TinyPipelineCase.folder)/\(c.id).png")
        let (got, want) = try PipelineSupport.pixels(out, reference)
        #expect(got.shape == [1, 3, c.expectedHeight, c.expectedWidth])
        let diff = PipelineSupport.maxDifference255(got, want)
        #expect(diff <= 2.0 + 1e-3, "\(c.id): max difference \(diff)/255")
    }

    @Test("text2img-upscale.yaml renders text2img's picture and resizes it x2 with Lanczos (PIL's within 4/255)")
    func upscaleGraph() throws {
        let fixture = try PipelineSupport.json("\(TinyPipelineCase.folder)/cases.json")
        let upscale = try #require(fixture["upscale"] as? [String: Any])
        let c = try #require(TinyPipelineCase.all.first { $0.id == upscale["case"] as? String })
        let dir = TestSupport.temporaryDirectory("sanagraph-upscale")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("up.png").path
        var sets = c.sets
        sets["output"] = out
        sets["upscale"] = "2"
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("text2img-upscale"), sets: sets, directory: dir)
        try #require(r.status == 0, "\(r.stderr)")
        let reference = TestSupport.fixture("\(TinyPipelineCase.folder)/\(upscale["reference"] as? String ?? "")")
        let (got, want) = try PipelineSupport.pixels(out, reference)
        #expect(got.shape == [1, 3, 2 * c.expectedHeight, 2 * c.expectedWidth])
        // 2/255 from the pipeline, amplified a little by Lanczos' negative lobes, plus 1/255 from the resize.
        let diff = PipelineSupport.maxDifference255(got, want)
        #expect(diff <= 4.0 + 1e-3, "max difference \(diff)/255")
    }

    @Test("The text encoder is released before sampling starts (--json events)")
    func textEncoderIsFreedBeforeSampling() throws {
        let c = try #require(TinyPipelineCase.all.first)
        let dir = TestSupport.temporaryDirectory("sanagraph-events")
        defer { try? FileManager.default.removeItem(at: dir) }
        var sets = c.sets
        sets["output"] = dir.appendingPathComponent("x.png").path
        sets["steps"] = "2"
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("text2img"), sets: sets, extra: ["--json"],
                                        directory: dir)
        try #require(r.status == 0, "\(r.stderr)")
        let events = PipelineSupport.events(r.stdout)
        let released = events.firstIndex {
            $0["event"] as? String == "value_released" && $0["node"] as? String == "text_encoder"
        }
        let sampling = events.firstIndex {
            $0["event"] as? String == "node_started" && $0["node"] as? String == "sample"
        }
        let r1 = try #require(released, "no value_released event for text_encoder: \(r.stdout)")
        let s1 = try #require(sampling, "no node_started event for sample")
        #expect(r1 < s1)
    }

    @Test("A width that is not a multiple of 32 is an error before anything runs, naming the param")
    func badWidthIsRejected() throws {
        let r = try CLI.run(["validate", PipelineSupport.graph("text2img"), "--set", "width=100"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("width 100 px is not a multiple of 32 px"), "\(r.stderr)")
        #expect(r.stderr.contains("use 96 or 128"))
        let euler = try CLI.run(["validate", PipelineSupport.graph("text2img-euler"), "--set", "height=40"])
        #expect(euler.status == 2)
        #expect(euler.stderr.contains("height 40 px is not a multiple of 32 px"), "\(euler.stderr)")
    }

    @Test("resolution_binning without width and height is an error; with them any size is accepted")
    func binningNeedsASize() throws {
        let r = try CLI.run(["validate", PipelineSupport.graph("text2img"), "--set", "resolution_binning=true"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("cannot be used with resolution_binning"), "\(r.stderr)")
        let ok = try CLI.run(["validate", PipelineSupport.graph("text2img"), "--set", "resolution_binning=true",
                              "--set", "width=1000", "--set", "height=700"])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test("The three text2img graphs validate with their defaults")
    func graphsValidate() throws {
        for name in ["text2img", "text2img-euler", "text2img-upscale"] {
            let r = try CLI.run(["validate", PipelineSupport.graph(name)])
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
    }

    @Test("A models folder that does not exist is a model-file error (exit 4) naming it, with no PNG written")
    func missingModelsFolder() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-nomodel")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.png").path
        let missing = dir.appendingPathComponent("no-such-model").path
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("text2img"),
                                        sets: ["models": missing, "output": out], directory: dir)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains(missing))
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
