import CUDA
import GraphRuntime
import LinearDiT
import Testing
import TestSupport

/// `dit.load`'s `device` param: spellings, validation, and the no-driver path (the GPU model itself is checked by
/// `make test-cuda` on a GPU and `make test-cuda-emulated` here).
@Suite struct DiTDeviceTests {
    @Test func deviceSpellings() {
        #expect(ComputeDevice(parsing: "cpu") == .cpu)
        #expect(ComputeDevice(parsing: "CUDA") == .cuda(0))
        #expect(ComputeDevice(parsing: "cuda:3") == .cuda(3))
        for bad in ["gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", ""] { #expect(ComputeDevice(parsing: bad) == nil) }
        #expect(ComputeDevice.cuda(2).description == "cuda:2")
    }

    @Test func loadNodeValidatesTheDevice() {
        let path = TestSupport.fixture("LinearDiT/basic_f32/transformer")
        #expect(DiTLoad().validate(params: ParamValues(["path": .string(path), "device": .string("cuda:1")])).isEmpty)
        #expect(DiTLoad().validate(params: ParamValues(["path": .string(path)])).isEmpty)
        let problems = DiTLoad().validate(params: ParamValues(["path": .string(path), "device": .string("gpu")]))
        #expect(problems == ["device must be cpu, cuda or cuda:N, got 'gpu'"])
    }

    @Test func cudaWithoutADriverIsANodeFailureSayingSo() throws {
        guard !CUDAContext.driverAvailable else { return }  // a GPU machine: `make test-cuda` covers it
        let params = ParamValues(["path": .string(TestSupport.fixture("LinearDiT/basic_f32/transformer")),
                                  "device": .string("cuda")])
        do {
            _ = try DiTLoad().run(inputs: NodeInputs([:], nodeID: "dit"), params: params, context: RunContext(nodeID: "dit"))
            Issue.record("loading onto a GPU without a driver succeeded")
        } catch {
            #expect("\(error)".hasPrefix("no CUDA driver found"))
            #expect(error.exitCategory == .nodeFailed)
        }
    }
}
