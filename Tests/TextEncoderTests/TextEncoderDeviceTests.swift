@testable import CUDA
import DiffusionModels
import GraphRuntime
import SanaGraphKit
import Testing
import TestSupport
@testable import TextEncoder

/// `text_encoder.load`'s `device` param: spellings, validation, the CPU default and the no-driver path (the GPU
/// encoder itself is checked by `make test-cuda` on a GPU and `make test-cuda-emulated` here).
@Suite struct TextEncoderDeviceTests {
    static let path = TestSupport.fixture("TextEncoder/tiny-gemma2/text_encoder")

    /// The node's defaults with `overrides` on top.
    static func params(_ overrides: [String: ParamValue]) -> ParamValues {
        var values: [String: ParamValue] = [:]
        for spec in TextEncoderLoad.descriptor.params { if let d = spec.defaultValue { values[spec.name] = d } }
        values["path"] = .string(path)
        values.merge(overrides) { _, new in new }
        return ParamValues(values)
    }

    @Test func deviceDefaultsToCPU() throws {
        let spec = try #require(TextEncoderLoad.descriptor.params.first { $0.name == "device" })
        #expect(spec.defaultValue == .string("cpu"))
        #expect(TextEncoderLoad().validate(params: ParamValues(["path": .string(Self.path)])).isEmpty)
        // An empty string is an unset param: the default.
        #expect(TextEncoderLoad().validate(params: Self.params(["device": .string("")])).isEmpty)
    }

    @Test func loadNodeAcceptsEverySpellingOfADevice() {
        for device in ["cpu", "CPU", "cuda", "CUDA", "cuda:0", "cuda:3", " cuda:1 "] {
            #expect(TextEncoderLoad().validate(params: Self.params(["device": .string(device)])).isEmpty, "\(device)")
        }
    }

    @Test func loadNodeRejectsOtherDevicesNamingTheSpellings() {
        for device in ["gpu", "cuda:", "cuda:-1", "cuda:x", "cuda0", "cuda:1024"] {
            #expect(TextEncoderLoad().validate(params: Self.params(["device": .string(device)]))
                    == ["device must be cpu, cuda or cuda:N, got '\(device)'"], "\(device)")
        }
    }

    @Test func cpuDeviceLoadsTheCPUDecoder() throws {
        let out = try TextEncoderLoad().run(inputs: NodeInputs([:], nodeID: "te"), params: Self.params(["device": .string("cpu")]),
                                            context: RunContext(nodeID: "te"))
        let encoder = try NodeInputs(out, nodeID: "next").textEncoder("encoder")
        let model = try #require((encoder as? SanaTextEncoder)?.model)
        #expect(model is Gemma2Model)
        #expect(model.config.hiddenSize == 64 && model.precision == .fp32)
    }

    @Test func cudaWithoutADriverIsANodeFailureSayingSo() throws {
        guard !CUDAContext.driverAvailable else { return }  // a GPU machine: `make test-cuda` covers it
        do {
            _ = try TextEncoderLoad().run(inputs: NodeInputs([:], nodeID: "te"), params: Self.params(["device": .string("cuda")]),
                                          context: RunContext(nodeID: "te"))
            Issue.record("loading onto a GPU without a driver succeeded")
        } catch {
            #expect("\(error)".hasPrefix("no CUDA driver found"))
            #expect(error.exitCategory == .nodeFailed)
        }
    }

    /// Compiles the Gemma kernels with a real NVRTC when one is installed (no GPU needed), so CUDA C errors the
    /// emulator cannot see show before a GPU run. CI has none and passes trivially; run it with
    /// SANAGRAPH_CUDA_LIBRARY_PATH=<a CUDA lib folder> (e.g. a pip nvidia/cu13/lib).
    @Test func gemmaKernelsCompileWithNVRTC() throws {
        guard let nvrtc = try? NVRTC.shared() else { return }
        let cubin = try nvrtc.compile(source: KernelPrelude.prefixed(GemmaKernels.source), name: "gemma",
                                      options: ["--gpu-architecture=sm_90", "--std=c++17", "-default-device"])
        #expect(Array(cubin.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46], "a CUBIN is an ELF file")
    }
}
