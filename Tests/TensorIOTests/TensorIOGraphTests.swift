import Foundation
import GraphRuntime
import Safetensors
import Tensors
import TensorIO
import Testing
import TestSupport

/// tensor.load → tensor.save run end to end from a YAML graph through GraphLoader and Executor.
@Suite struct TensorIOGraphTests {
    static func graph(_ source: String, _ output: String, name: String = "f16") -> String {
        """
        sanagraph: 1
        description: copy one tensor between safetensors files
        params:
          source: {type: path, default: "\(source)"}
          name:   {type: string, default: "\(name)"}
        nodes:
          load: {type: tensor.load, params: {path: "${source}", name: "${name}"}}
          save: {type: tensor.save, inputs: {tensor: load}, params: {path: "\(output)", name: "copy", dtype: BF16}}
        """
    }

    @Test func yamlGraphCopiesATensorAndCachesTheLoadUntilTheFileChanges() throws {
        let dir = TestSupport.temporaryDirectory("tio-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("in.safetensors").path
        let output = dir.appendingPathComponent("out/copied.safetensors").path
        try SafetensorsWriter.write(["f16": Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])], dtype: .f16, to: source)

        let registry = try NodeRegistry(packs: [TensorIOPack.self])
        let graph = try GraphLoader.load(yaml: Self.graph(source, output), file: "copy.yaml", registry: registry)
        let plan = Planner.plan(graph)
        #expect(plan.order == ["load", "save"])
        let executor = Executor(caches: [MemoryCache(budget: 1 << 20)])

        let first = try executor.run(graph, plan: plan)
        #expect(first.ok && first.nodesRun == 2)
        let out = try SafetensorsFile(path: output)
        #expect(try out.info("copy").dtype == .bf16)
        #expect(try out.tensor("copy").shape == [2, 3] && out.tensor("copy").scalars == [1, 2, 3, 4, 5, 6])

        // Same file: the load comes from the cache; the saver always runs.
        let second = try executor.run(graph, plan: plan)
        #expect(second.nodesRun == 1 && second.cachedNodes.keys.sorted() == ["load"])

        // Rewritten file: the fingerprint changes, so the load runs again and the new values are saved.
        try SafetensorsWriter.write(["f16": Tensor(shape: [2], values: [7, 8])], to: source)
        let third = try executor.run(graph, plan: plan)
        #expect(third.nodesRun == 2)
        #expect(try SafetensorsFile(path: output).tensor("copy").scalars == [7, 8])
    }

    @Test func yamlGraphWithMissingTensorFailsWithModelFileExitCode() throws {
        let dir = TestSupport.temporaryDirectory("tio-graph")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("in.safetensors").path
        let output = dir.appendingPathComponent("out.safetensors").path
        try SafetensorsWriter.write(["weight": Tensor(shape: [1], values: [1])], to: source)
        let registry = try NodeRegistry(packs: [TensorIOPack.self])
        let graph = try GraphLoader.load(yaml: Self.graph(source, output, name: "wieght"), file: "copy.yaml",
                                         registry: registry)
        do {
            try Executor().run(graph, plan: Planner.plan(graph))
            Issue.record("expected the run to fail")
        } catch {
            #expect(error.exitCategory == .modelFile && error.exitCategory.exitCode == 4)
            #expect("\(error)".contains("did you mean 'weight'?"), "\(error)")
            #expect("\(error)".contains(source))
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }
}
