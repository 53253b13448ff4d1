import Foundation
import Testing
import TestSupport

/// One reference picture of a model-side workflow script (tools/reference/pag_pipeline.py, …): the graph's
/// params from the fixture's cases.json.
struct ModelWorkflowCase: Sendable, CustomTestStringConvertible {
    var id: String
    var sets: [String: String]
    var extra: [String: String]
    var testDescription: String { id }

    /// The cases of `folder`/cases.json: every scalar key of a case becomes a `--set` (except those in `skip`).
    static func load(_ folder: String, skip: Set<String> = ["id"]) -> [ModelWorkflowCase] {
        guard let object = try? PipelineSupport.json("\(folder)/cases.json"),
              let cases = object["cases"] as? [[String: Any]] else { return [] }
        return cases.compactMap { c in
            guard let id = c["id"] as? String else { return nil }
            var sets: [String: String] = ["models": TestSupport.fixture("Pipeline/tiny-sana")]
            var extra: [String: String] = [:]
            for (key, value) in c where key != "id" {
                let text: String
                switch value {
                case let v as String: text = v
                case let v as NSNumber: text = v.stringValue
                default: continue
                }
                if skip.contains(key) { extra[key] = text } else { sets[key] = text }
            }
            return ModelWorkflowCase(id: id, sets: sets, extra: extra)
        }
    }

    /// Renders `graph` (a path) with the case's params and compares with `folder`/<id>.png; returns the max
    /// difference in 1/255.
    func render(graph: String, folder: String, overrides: [String: String] = [:]) throws -> Float {
        let dir = TestSupport.temporaryDirectory("sanagraph-workflow")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("\(id).png").path
        var sets = sets.merging(overrides) { $1 }
        sets["output"] = out
        let r = try PipelineSupport.run(graph: graph, sets: sets, directory: dir)
        guard r.status == 0 else { throw CLIError("\(id): exit \(r.status): \(r.stderr)") }
        let (got, want) = try PipelineSupport.pixels(out, TestSupport.fixture("\(folder)/\(id).png"))
        return PipelineSupport.maxDifference255(got, want)
    }
}

/// Graphs/text2img-pag.yaml against diffusers' SanaPAGPipeline on the tiny random pipeline.
@Suite struct PAGPipelineTests {
    static let folder = "Pipeline/pag"
    static let cases = ModelWorkflowCase.load(folder, skip: ["id", "solver"])

    @Test("The PAG cases cover CFG on and off, one and two layers, a regex, both solvers and adaptive scaling")
    func casesArePresent() {
        let c = Self.cases
        #expect(c.count >= 4)
        #expect(c.contains { $0.sets["guidance"] == "1" || $0.sets["guidance"] == "1.0" })
        #expect(c.contains { ($0.sets["pag_applied_layers"] ?? "").contains(",") })
        #expect(Set(c.compactMap { $0.extra["solver"] }) == ["flow_dpm_solver", "flow_euler"])
        #expect(c.contains { $0.sets["pag_adaptive_scale"] != "0" && $0.sets["pag_adaptive_scale"] != "0.0" })
    }

    /// The graph, with the sampler swapped for `solver` (the graph ships with Flow-DPM-Solver).
    static func graph(solver: String, in dir: URL) throws -> String {
        let yaml = try String(contentsOfFile: PipelineSupport.graph("text2img-pag"), encoding: .utf8)
        let path = dir.appendingPathComponent("text2img-pag-\(solver).yaml").path
        try yaml.replacingOccurrences(of: "sample.flow_dpm_solver", with: "sample.\(solver)")
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("The PNG equals diffusers' SanaPAGPipeline within 2/255 per pixel", arguments: PAGPipelineTests.cases)
    func pictureEqualsDiffusers(_ c: ModelWorkflowCase) throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-pag-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        let diff = try c.render(graph: Self.graph(solver: c.extra["solver"] ?? "", in: dir), folder: Self.folder)
        #expect(diff <= 2.0 + 1e-3, "\(c.id): max difference \(diff)/255")
    }

    @Test("PAG changes the picture: pag_scale 0 differs from the PAG reference by more than the tolerance")
    func pagHasAnEffect() throws {
        let c = try #require(Self.cases.first { $0.extra["solver"] == "flow_dpm_solver" })
        let diff = try c.render(graph: PipelineSupport.graph("text2img-pag"), folder: Self.folder,
                                overrides: ["pag_scale": "0"])
        #expect(diff > 10, "\(c.id): pag_scale 0 is only \(diff)/255 from the PAG picture")
    }

    @Test("A layer pattern that matches nothing is an error naming the param and the layers (exit 3), no PNG")
    func unknownLayerIsAnError() throws {
        let c = try #require(Self.cases.first)
        let dir = TestSupport.temporaryDirectory("sanagraph-pag-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        var sets = c.sets
        let out = dir.appendingPathComponent("x.png").path
        sets["output"] = out
        sets["pag_applied_layers"] = "transformer_blocks.7"
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("text2img-pag"), sets: sets, directory: dir)
        #expect(r.status == 2 || r.status == 3, "\(r.status)")
        #expect(r.stderr.contains("pag_applied_layers") && r.stderr.contains("transformer_blocks.7"), "\(r.stderr)")
        #expect(r.stderr.contains("transformer_blocks.0.attn1"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("A pattern that is not a regular expression is rejected by validate (exit 2)")
    func badRegexIsRejected() throws {
        let r = try CLI.run(["validate", PipelineSupport.graph("text2img-pag"), "--set", "pag_applied_layers=blocks.(1"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("not a regular expression"), "\(r.stderr)")
    }
}

/// Graphs/controlnet.yaml against diffusers' SanaControlNetPipeline on the tiny random pipeline and a random
/// ControlNet (tools/reference/controlnet_pipeline.py).
@Suite struct ControlNetPipelineTests {
    static let folder = "Pipeline/controlnet"
    static let cases = ModelWorkflowCase.load(folder).map { c in
        var c = c
        c.sets["controlnet"] = TestSupport.fixture("Pipeline/tiny-controlnet")
        c.sets["control_image"] = TestSupport.fixture("\(folder)/\(c.sets["control_image"] ?? "")")
        return c
    }

    @Test("The ControlNet cases cover CFG on and off, several scales and a control image that is resized")
    func casesArePresent() {
        let c = Self.cases
        #expect(c.count >= 3)
        #expect(Set(c.compactMap { $0.sets["conditioning_scale"] }).count >= 3)
        #expect(c.contains { $0.sets["width"] != "64" || $0.sets["height"] != "64" })
    }

    @Test("The PNG equals diffusers' SanaControlNetPipeline within 2/255 per pixel",
          arguments: ControlNetPipelineTests.cases)
    func pictureEqualsDiffusers(_ c: ModelWorkflowCase) throws {
        let diff = try c.render(graph: PipelineSupport.graph("controlnet"), folder: Self.folder)
        #expect(diff <= 2.0 + 1e-3, "\(c.id): max difference \(diff)/255")
    }

    @Test("The ControlNet changes the picture: conditioning_scale 0 differs from the reference")
    func controlNetHasAnEffect() throws {
        let c = try #require(Self.cases.first)
        let diff = try c.render(graph: PipelineSupport.graph("controlnet"), folder: Self.folder,
                                overrides: ["conditioning_scale": "0"])
        #expect(diff > 10, "\(c.id): conditioning_scale 0 is only \(diff)/255 from the ControlNet picture")
    }

    @Test("A ControlNet made for another transformer is an error naming what differs (exit 3), no PNG")
    func mismatchedControlNetIsAnError() throws {
        let c = try #require(Self.cases.first)
        let dir = TestSupport.temporaryDirectory("sanagraph-cn-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        var sets = c.sets
        let out = dir.appendingPathComponent("x.png").path
        sets["output"] = out
        sets["controlnet"] = TestSupport.fixture("Pipeline/shapes-controlnet")
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("controlnet"), sets: sets, directory: dir)
        #expect(r.status == 3, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains("does not fit this transformer") && r.stderr.contains("in_channels"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    @Test("A transformer folder given as the ControlNet is a model-file error listing the missing keys (exit 4)")
    func transformerFolderIsNotAControlNet() throws {
        let c = try #require(Self.cases.first)
        let dir = TestSupport.temporaryDirectory("sanagraph-cn-keys")
        defer { try? FileManager.default.removeItem(at: dir) }
        var sets = c.sets
        sets["output"] = dir.appendingPathComponent("x.png").path
        sets["controlnet"] = TestSupport.fixture("Pipeline/tiny-sana/transformer")
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("controlnet"), sets: sets, directory: dir)
        #expect(r.status == 4, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains("input_block.weight") && r.stderr.contains("SanaControlNetModel"), "\(r.stderr)")
    }
}

/// Graphs/text2img-lora.yaml (and a copy with one lora.apply per LoRA) against diffusers' SanaPipeline after
/// load_lora_weights + set_adapters on the tiny random pipeline (tools/reference/lora_pipeline.py).
@Suite struct LoRAPipelineTests {
    static let folder = "Pipeline/lora"

    struct Case: Sendable, CustomTestStringConvertible {
        var id: String
        var sets: [String: String]
        var loras: [(file: String, strength: Double)]
        var testDescription: String { id }
    }

    static let cases: [Case] = {
        guard let object = try? PipelineSupport.json("\(folder)/cases.json"),
              let cases = object["cases"] as? [[String: Any]] else { return [] }
        return cases.compactMap { c in
            guard let id = c["id"] as? String, let loras = c["loras"] as? [[Any]] else { return nil }
            var sets: [String: String] = ["models": TestSupport.fixture("Pipeline/tiny-sana"), "negative": ""]
            for key in ["prompt", "seed", "steps", "width", "height", "guidance"] {
                sets[key] = (c[key] as? String) ?? (c[key] as? NSNumber)?.stringValue
            }
            let list = loras.compactMap { pair -> (String, Double)? in
                guard pair.count == 2, let f = pair[0] as? String, let s = (pair[1] as? NSNumber)?.doubleValue else { return nil }
                return (TestSupport.fixture("\(folder)/\(f)"), s)
            }
            return Case(id: id, sets: sets, loras: list)
        }
    }()

    /// Graphs/text2img-lora.yaml with one lora.apply node per LoRA (the graph ships with one: chaining is how
    /// LoRAs stack), written to `dir`.
    static func graph(loras: Int, in dir: URL) throws -> String {
        var yaml = try String(contentsOfFile: PipelineSupport.graph("text2img-lora"), encoding: .utf8)
        if loras > 1 {
            var extraParams = "", extraNodes = ""
            for i in 2...loras {
                extraParams += "  lora\(i): {type: path, default: \"\"}\n  lora\(i)_strength: {type: float, default: 1.0}\n"
                extraNodes += "  lora\(i):\n    type: lora.apply\n    inputs: {model: lora\(i == 2 ? "" : String(i - 1))}\n"
                    + "    params: {path: \"${lora\(i)}\", strength: \"${lora\(i)_strength}\"}\n"
            }
            yaml = yaml.replacingOccurrences(of: "  precision:", with: extraParams + "  precision:")
                .replacingOccurrences(of: "nodes:\n", with: "nodes:\n" + extraNodes)
                .replacingOccurrences(of: "inputs: {model: lora, positive:", with: "inputs: {model: lora\(loras), positive:")
        }
        let path = dir.appendingPathComponent("text2img-lora\(loras).yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func render(_ c: Case, strengths: [Double]? = nil) throws -> (CLI.Result, Float) {
        let dir = TestSupport.temporaryDirectory("sanagraph-lora")
        defer { try? FileManager.default.removeItem(at: dir) }
        var sets = c.sets
        for (i, l) in c.loras.enumerated() {
            let name = i == 0 ? "lora" : "lora\(i + 1)"
            sets[name] = l.file
            sets[name + "_strength"] = String(strengths?[i] ?? l.strength)
        }
        let out = dir.appendingPathComponent("\(c.id).png").path
        sets["output"] = out
        let r = try PipelineSupport.run(graph: graph(loras: c.loras.count, in: dir), sets: sets, directory: dir)
        guard r.status == 0 else { return (r, .infinity) }
        let (got, want) = try PipelineSupport.pixels(out, TestSupport.fixture("\(folder)/\(c.id).png"))
        return (r, PipelineSupport.maxDifference255(got, want))
    }

    @Test("The LoRA cases cover rank 4 and 16, metadata alpha and none, two stacked, strengths 0.5 and 1")
    func casesArePresent() {
        let c = Self.cases
        #expect(c.count >= 3)
        #expect(c.contains { $0.loras.count == 2 })
        let strengths = Set(c.flatMap { $0.loras.map(\.strength) })
        #expect(strengths.isSuperset(of: [0.5, 1.0]))
    }

    @Test("The PNG equals diffusers' SanaPipeline with the LoRAs loaded within 2/255 per pixel",
          arguments: LoRAPipelineTests.cases)
    func pictureEqualsDiffusers(_ c: Case) throws {
        let (r, diff) = try Self.render(c)
        try #require(r.status == 0, "\(r.stderr)")
        #expect(diff <= 2.0 + 1e-3, "\(c.id): max difference \(diff)/255")
    }

    @Test("The LoRA changes the picture: strength 0 differs from the reference")
    func loraHasAnEffect() throws {
        for c in Self.cases where c.loras.count == 1 {
            let (r, diff) = try Self.render(c, strengths: [0])
            try #require(r.status == 0, "\(r.stderr)")
            #expect(diff > 10, "\(c.id): strength 0 is only \(diff)/255 from the LoRA picture")
        }
    }

    @Test("Applying a LoRA leaves the base weights on disk unchanged (bytes and modification time)")
    func baseWeightsAreNotModified() throws {
        let c = try #require(Self.cases.first)
        let weights = TestSupport.fixture("Pipeline/tiny-sana/transformer/diffusion_pytorch_model.safetensors")
        let before = try Data(contentsOf: URL(fileURLWithPath: weights))
        let attributes = try FileManager.default.attributesOfItem(atPath: weights)
        let (r, _) = try Self.render(c)
        try #require(r.status == 0, "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: weights)) == before)
        let after = try FileManager.default.attributesOfItem(atPath: weights)
        #expect(after[.modificationDate] as? Date == attributes[.modificationDate] as? Date)
    }

    @Test("The disk cache keys the sampled latent on the LoRA's content and strength")
    func cacheKeysFollowLoRAContentAndStrength() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-lora-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let lora = dir.appendingPathComponent("l.safetensors")
        try FileManager.default.copyItem(atPath: TestSupport.fixture("\(Self.folder)/lora_r4.safetensors"), toPath: lora.path)
        func sampleWasCached(strength: String) throws -> Bool {
            var args = ["run", PipelineSupport.graph("text2img-lora"), "--no-metadata", "--json", "--cache", "rw",
                        "--cache-dir", dir.appendingPathComponent("cache").path]
            let sets = ["models": TestSupport.fixture("Pipeline/tiny-sana"), "steps": "2", "width": "64", "height": "64",
                        "lora": lora.path, "lora_strength": strength, "output": dir.appendingPathComponent("x.png").path]
            for key in sets.keys.sorted() { args += ["--set", "\(key)=\(sets[key]!)"] }
            let r = try CLI.run(args)
            try #require(r.status == 0, "\(r.stderr)")
            let finished = PipelineSupport.events(r.stdout).first {
                $0["event"] as? String == "node_finished" && $0["node"] as? String == "sample"
            }
            return finished?["cached"] as? Bool ?? false
        }
        #expect(try !sampleWasCached(strength: "1.0"))
        #expect(try sampleWasCached(strength: "1.0"))
        #expect(try !sampleWasCached(strength: "0.5"))
        // Another LoRA written under the same name (a new file, as a download or a training run writes it).
        try FileManager.default.removeItem(at: lora)
        try FileManager.default.copyItem(atPath: TestSupport.fixture("\(Self.folder)/lora_r16.safetensors"), toPath: lora.path)
        #expect(try !sampleWasCached(strength: "0.5"))
    }

    static func failing(_ file: String) throws -> (CLI.Result, String) {
        let c = try #require(cases.first)
        let dir = TestSupport.temporaryDirectory("sanagraph-lora-bad")
        defer { try? FileManager.default.removeItem(at: dir) }
        var sets = c.sets
        let out = dir.appendingPathComponent("x.png").path
        sets["output"] = out
        sets["lora"] = file
        let r = try PipelineSupport.run(graph: PipelineSupport.graph("text2img-lora"), sets: sets, directory: dir)
        #expect(!FileManager.default.fileExists(atPath: out))
        return (r, file)
    }

    @Test("A LoRA whose keys match no layer is a model-file error naming the file and the keys (exit 4)")
    func unmatchedKeysAreAnError() throws {
        let (r, file) = try Self.failing(TestSupport.fixture("\(Self.folder)/bad_keys.safetensors"))
        #expect(r.status == 4, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains(file) && r.stderr.contains("transformer_blocks.9.attn1.to_q"), "\(r.stderr)")
    }

    @Test("A LoRA whose shapes do not fit is a model-file error naming the file, the layer and the shapes (exit 4)")
    func wrongShapeIsAnError() throws {
        let (r, file) = try Self.failing(TestSupport.fixture("\(Self.folder)/bad_shape.safetensors"))
        #expect(r.status == 4, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains(file) && r.stderr.contains("transformer_blocks.0.attn1.to_q")
                    && r.stderr.contains("[32, 48]"), "\(r.stderr)")
    }

    @Test("A file that is not a LoRA (a transformer's weights) is an error listing its unsupported keys (exit 4)")
    func notALoRAIsAnError() throws {
        let (r, file) = try Self.failing(
            TestSupport.fixture("Pipeline/tiny-sana/transformer/diffusion_pytorch_model.safetensors"))
        #expect(r.status == 4, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains(file) && r.stderr.contains("unsupported keys"), "\(r.stderr)")
    }

    @Test("A missing LoRA file is a model-file error naming it (exit 4)")
    func missingFileIsAnError() throws {
        let (r, _) = try Self.failing("/nonexistent/lora.safetensors")
        #expect(r.status == 4, "\(r.status): \(r.stderr)")
        #expect(r.stderr.contains("/nonexistent/lora.safetensors"), "\(r.stderr)")
    }
}

/// The model-side workflow graphs validate and run on the shipped model (models/sana-shapes) with their defaults.
@Suite struct ModelWorkflowShippedTests {
    @Test("Graphs/text2img-pag.yaml runs on the shipped model and writes a 256 px PNG")
    func pagRunsOnShippedModel() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-pag-shipped")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("pag.png").path
        let r = try PipelineSupport.run(graph: "Graphs/text2img-pag.yaml",
                                        sets: ["steps": "4", "pag_applied_layers": "transformer_blocks.1", "output": out],
                                        directory: TestSupport.repositoryRoot)
        try #require(r.status == 0, "\(r.stderr)")
        let (got, _) = try PipelineSupport.pixels(out, out)
        #expect(got.shape == [1, 3, 256, 256])
    }

    @Test("Graphs/controlnet.yaml runs on the shipped model with a random ControlNet of its shapes")
    func controlNetRunsOnShippedModel() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-cn-shipped")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("cn.png").path
        let sets = ["steps": "4", "width": "256", "height": "256", "output": out,
                    "controlnet": TestSupport.fixture("Pipeline/shapes-controlnet"),
                    "control_image": TestSupport.fixture("Pipeline/controlnet/control_256x256.png")]
        let r = try PipelineSupport.run(graph: "Graphs/controlnet.yaml", sets: sets, directory: TestSupport.repositoryRoot)
        try #require(r.status == 0, "\(r.stderr)")
        let (got, _) = try PipelineSupport.pixels(out, out)
        #expect(got.shape == [1, 3, 256, 256])
    }

    @Test("Graphs/text2img-lora.yaml runs on the shipped model with a random LoRA of its shapes")
    func loraRunsOnShippedModel() throws {
        let dir = TestSupport.temporaryDirectory("sanagraph-lora-shipped")
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("lora.png").path
        let sets = ["steps": "4", "output": out, "lora": TestSupport.fixture("Pipeline/lora/shapes_r4.safetensors"),
                    "lora_strength": "0.8"]
        let r = try PipelineSupport.run(graph: "Graphs/text2img-lora.yaml", sets: sets, directory: TestSupport.repositoryRoot)
        try #require(r.status == 0, "\(r.stderr)")
        let (got, _) = try PipelineSupport.pixels(out, out)
        #expect(got.shape == [1, 3, 256, 256])
    }

    @Test("The model-side workflow graphs validate with their defaults")
    func graphsValidate() throws {
        for name in ["text2img-pag", "controlnet", "text2img-lora"] {
            let r = try CLI.run(["validate", PipelineSupport.graph(name)])
            #expect(r.status == 0, "\(name): \(r.stderr)")
        }
    }
}
