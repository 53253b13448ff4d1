import CUDA
import DCAE
import GraphRuntime
import Testing
import TestSupport

/// `dcae.load`'s `device` param: validation, the no-driver path and the CPU default (the GPU decoder itself is
/// checked by `make test-cuda` on a GPU and `make test-cuda-emulated` here).
@Suite struct DCAEDeviceTests {
    static let folder = TestSupport.fixture("DCAE/mixed_interpolate_f32/vae")

    @Test func loadNodeValidatesTheDevice() {
        for device in ["cpu", "cuda", "CUDA", "cuda:0", "cuda:3"] {
            #expect(DCAELoad().validate(params: ParamValues(["path": .string(Self.folder), "device": .string(device)])).isEmpty)
        }
        #expect(DCAELoad().validate(params: ParamValues(["path": .string(Self.folder)])).isEmpty)
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda0"] {
            let problems = DCAELoad().validate(params: ParamValues(["path": .string(Self.folder), "device": .string(bad)]))
            #expect(problems == ["device must be cpu, cuda or cuda:N, got '\(bad)'"])
        }
        #expect(DCAELoad.descriptor.params.contains { $0.name == "device" })
    }

    @Test func cudaWithoutADriverIsANodeFailureSayingSo() throws {
        guard !CUDAContext.driverAvailable else { return }  // a GPU machine: `make test-cuda` covers it
        let params = ParamValues(["path": .string(Self.folder), "device": .string("cuda")])
        do {
            _ = try DCAELoad().run(inputs: NodeInputs([:], nodeID: "vae"), params: params, context: RunContext(nodeID: "vae"))
            Issue.record("loading onto a GPU without a driver succeeded")
        } catch {
            #expect("\(error)".hasPrefix("no CUDA driver found"))
            #expect(error.exitCategory == .nodeFailed)
        }
    }

    @Test func cpuIsTheDefaultPlacement() throws {
        let outputs = try DCAELoad().run(inputs: NodeInputs([:], nodeID: "vae"),
                                         params: ParamValues(["path": .string(Self.folder)]),
                                         context: RunContext(nodeID: "vae"))
        #expect(outputs["vae"]?.payload is AutoencoderDC)
    }
}
