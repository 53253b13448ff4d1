import Foundation
import Testing
import TestSupport

/// `--device`: the default placement for the graph's model-load nodes that don't set `device` (docs/cuda.md).
@Suite struct DeviceCLITests {
    static let root = TestSupport.repositoryRoot

    @Test("a misspelt --device is a usage error (exit 2) naming the accepted spellings")
    func misspeltDeviceIsAUsageError() throws {
        let r = try CLI.run(["validate", "Graphs/text2img.yaml", "--device", "gpu"], directory: Self.root)
        #expect(r.status == 2)
        #expect(r.stderr.contains("--device must be cpu, cuda or cuda:N, got 'gpu'"))
    }

    @Test("--device cuda without a CUDA driver fails at the first GPU load (exit 3), writing nothing")
    func cudaWithoutADriverFailsCleanly() throws {
        let out = TestSupport.temporaryDirectory("device-cli")
        defer { try? FileManager.default.removeItem(at: out) }
        let png = out.appendingPathComponent("x.png").path
        let r = try CLI.run(["run", "Graphs/text2img.yaml", "--device", "cuda", "--set", "steps=1", "--set", "output=\(png)"],
                            directory: Self.root, environment: ["SANAGRAPH_CUDA_DRIVER": "/nonexistent/libcuda.so.1"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("no CUDA driver found"))
        #expect(!FileManager.default.fileExists(atPath: png))
    }

    @Test("--device cpu is accepted (the CPU placement every load node has by default)")
    func cpuDeviceIsAccepted() throws {
        let r = try CLI.run(["validate", "Graphs/text2img.yaml", "--device", "cpu"], directory: Self.root)
        #expect(r.status == 0, "\(r.stderr)")
    }
}
