import Foundation
import Testing
import TestSupport

/// `sanagraph convert`: NVlabs .pth → diffusers folder that the graphs (and diffusers) load.
@Suite struct ConvertCommandTests {
    static func checkpoint(_ name: String) -> String { TestSupport.fixture("LinearDiT/checkpoints/\(name)") }

    @Test("The tiny Sprint pipeline's transformer as a .pth, converted with --base, renders SanaSprintPipeline's picture")
    func convertedSprintRendersTheReference() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-convert")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("sprint").path
        let r = try CLI.run(["convert", Self.checkpoint("tiny_sprint.pth"), "--out", out,
                             "--config", Self.checkpoint("tiny_sprint.config.json"),
                             "--base", TestSupport.fixture("Pipeline/tiny-sprint")])
        try #require(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Sana-Sprint") && r.stdout.contains("Graphs/sprint.yaml"), "\(r.stdout)")
        for file in ["transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
                     "scheduler/scheduler_config.json", "model_index.json", "vae/config.json"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + file), "\(file)")
        }
        let c = try #require(FamilyPipelineCase.all.first { $0.id == "sprint_2step" })
        var sets = c.sets
        sets["models"] = out
        sets["output"] = dir.appendingPathComponent("x.png").path
        let run = try PipelineSupport.run(graph: PipelineSupport.graph("sprint"), sets: sets, directory: dir)
        try #require(run.status == 0, "\(run.stderr)")
        let (got, want) = try PipelineSupport.pixels(sets["output"]!,
                                                     TestSupport.fixture("\(FamilyPipelineCase.folder)/\(c.id).png"))
        #expect(PipelineSupport.maxDifference255(got, want) <= 2.0 + 1e-3)
        let inspect = try CLI.run(["inspect", out, "--json"])
        #expect(inspect.status == 0 && inspect.stdout.contains("\"family\":\"Sana-Sprint\""), "\(inspect.stdout)")
    }

    @Test("A hostile .pth exits 4 naming the file, writes nothing and runs nothing")
    func hostileCheckpointIsRefused() throws {
        let marker = "/tmp/sanagraph_pickle_executed"
        try? FileManager.default.removeItem(atPath: marker)
        let dir = TestSupport.temporaryDirectory("sanagraph-convert-hostile")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("x").path
        for name in ["hostile_global.pth", "hostile_reduce.pth", "truncated.pth"] {
            let path = TestSupport.fixture("TorchCheckpoint/\(name)")
            let r = try CLI.run(["convert", path, "--out", out])
            #expect(r.status == 4, "\(name): \(r.stderr)")
            #expect(r.stderr.contains(path), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("dit.load takes a checkpoint file in a graph; a hostile one is exit 4 before anything runs")
    func ditLoadOfAFile() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-dit-file")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = TestSupport.fixture("TorchCheckpoint/hostile_eval.pth")
        let graph = dir.appendingPathComponent("g.yaml")
        try """
        sanagraph: 1
        nodes:
          dit: {type: dit.load, params: {path: "\(path)"}}
          noise: {type: latent.noise, inputs: {model: dit}, params: {width: 64, height: 64}}
          save: {type: tensor.save, inputs: {tensor: noise}, params: {path: "\(dir.path)/n.safetensors", name: x}}
        """.write(to: graph, atomically: true, encoding: .utf8)
        let r = try CLI.run(["run", graph.path, "--cache", "off"])
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains(path) && r.stderr.contains("refused"), "\(r.stderr)")
    }
}
