import Foundation
import Testing
import TestSupport

/// One reference picture of tools/reference/sana_family_pipelines.py (Tests/Fixtures/Pipeline/family/cases.json).
struct FamilyPipelineCase: Sendable, CustomTestStringConvertible {
    var id: String
    var model: String
    var graph: String
    var sets: [String: String]
    var expectedWidth: Int
    var expectedHeight: Int

    var testDescription: String { id }

    static let folder = "Pipeline/family"

    static let all: [FamilyPipelineCase] = {
        guard let object = try? PipelineSupport.json("\(folder)/cases.json"),
              let cases = object["cases"] as? [[String: Any]] else { return [] }
        return cases.compactMap { c in
            guard let id = c["id"] as? String, let graph = c["graph"] as? String,
                  let model = c["model"] as? String else { return nil }
            var sets: [String: String] = ["models": TestSupport.fixture("Pipeline/\(model)")]
            sets["prompt"] = c["prompt"] as? String ?? ""
            for key in ["seed", "steps", "width", "height"] { sets[key] = String(c[key] as? Int ?? -1) }
            sets["guidance"] = String(c["guidance"] as? Double ?? -1)
            if graph == "sprint-img2img" {
                sets["image"] = TestSupport.fixture("\(folder)/\(c["image"] as? String ?? "")")
                sets["strength"] = String(c["strength"] as? Double ?? -1)
            } else {
                sets["resolution_binning"] = String(c["resolution_binning"] as? Bool ?? false)
            }
            if graph == "text2img" { sets["negative"] = c["negative"] as? String ?? "" }
            return FamilyPipelineCase(id: id, model: model, graph: graph, sets: sets,
                                      expectedWidth: c["expected_width"] as? Int ?? -1,
                                      expectedHeight: c["expected_height"] as? Int ?? -1)
        }
    }()
}

/// The SANA family beyond SANA 1.0 on tiny random pipelines (diffusers layout, Tests/Fixtures/Pipeline/tiny-sprint,
/// tiny-sana15, tiny-sana4k): Graphs/sprint.yaml and sprint-img2img.yaml against SanaSprintPipeline and
/// SanaSprintImg2ImgPipeline, and the unchanged Graphs/text2img.yaml on SANA 1.5-style (qk-norm) and 4K-style
/// (sin-cos PE with interpolation_scale 2.0, flow_shift 6, the 4096 px bins) folders against SanaPipeline.
@Suite struct SanaFamilyPipelineTests {
    @Test("The reference cases cover Sprint at 1, 2 and 4 steps, Sprint img2img, SANA 1.5 and 4K with binning")
    func casesArePresent() {
        let cases = FamilyPipelineCase.all
        let sprintSteps = Set(cases.filter { $0.graph == "sprint" }.map { $0.sets["steps"] ?? "" })
        #expect(sprintSteps.isSuperset(of: ["1", "2", "4"]))
        #expect(cases.filter { $0.graph == "sprint-img2img" }.count >= 2)
        #expect(cases.contains { $0.model == "tiny-sana15" })
        #expect(cases.contains { $0.model == "tiny-sana4k" && $0.sets["resolution_binning"] == "true" })
    }

    @Test("The PNG sanagraph writes equals diffusers' picture within 2/255 per pixel", arguments: FamilyPipelineCase.all)
    func pictureEqualsDiffusers(_ c: FamilyPipelineCase) throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-family")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("\(c.id).png").path
        var sets = c.sets
        sets["output"] = out
        let r = try PipelineSupport.run(graph: PipelineSupport.graph(c.graph), sets: sets, directory: dir)
        try #require(r.status == 0, "\(r.stderr)")
        let (got, want) = try PipelineSupport.pixels(out, TestSupport.fixture("\(FamilyPipelineCase.folder)/\(c.id).png"))
        #expect(got.shape == [1, 3, c.expectedHeight, c.expectedWidth])
        let diff = PipelineSupport.maxDifference255(got, want)
        #expect(diff <= 2.0 + 1e-3, "\(c.id): max difference \(diff)/255")
    }

    @Test("A Sprint folder in text2img.yaml and a SANA folder in sprint.yaml fail before sampling, naming the right graph")
    func wrongGraphForTheFamilyIsExplained() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-family-wrong")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x.png").path
        let sprint = try PipelineSupport.run(
            graph: PipelineSupport.graph("text2img"),
            sets: ["models": TestSupport.fixture("Pipeline/tiny-sprint"), "width": "64", "height": "64", "steps": "2",
                   "output": out], directory: dir)
        #expect(sprint.status == 4, "\(sprint.stderr)")
        #expect(sprint.stderr.contains("sprint.yaml"), "\(sprint.stderr)")
        let sana = try PipelineSupport.run(
            graph: PipelineSupport.graph("sprint"),
            sets: ["models": TestSupport.fixture("Pipeline/tiny-sana15"), "width": "64", "height": "64", "output": out],
            directory: dir)
        #expect(sana.status == 4, "\(sana.stderr)")
        #expect(sana.stderr.contains("text2img.yaml"), "\(sana.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("sprint.yaml and sprint-img2img.yaml validate with their defaults and take text2img's param names")
    func graphsValidate() throws {
        for name in ["sprint", "sprint-img2img"] {
            let r = try CLI.run(["validate", PipelineSupport.graph(name)])
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
        let shared = ["models", "prompt", "seed", "steps", "guidance", "width", "height", "resolution_binning", "output"]
        let text = try String(contentsOfFile: PipelineSupport.graph("sprint"), encoding: .utf8)
        for name in shared { #expect(text.contains("\n  \(name): ") || text.contains("\n  \(name):"), "\(name)") }
    }
}
