import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport
import TorchCheckpoint

/// The restricted .pth reader against files written by torch.save (tools/reference/torch_checkpoint_fixtures.py):
/// the same tensors as safetensors files written by safetensors.torch, and hostile or broken pickles refused.
@Suite struct TorchCheckpointTests {
    static func fixture(_ name: String) -> String { TestSupport.fixture("TorchCheckpoint/\(name)") }

    /// Every tensor of `pth` equals the same-named tensor of `safetensors`: dtype, shape and every byte.
    static func expectSameTensors(_ pth: String, _ safetensors: String) throws {
        let checkpoint = try TorchCheckpoint(path: fixture(pth))
        let reference = try SafetensorsFile(path: fixture(safetensors))
        #expect(checkpoint.names == reference.names, "\(pth)")
        for name in reference.names {
            let want = try reference.rawBytes(name)
            let got = try #require(checkpoint.rawBytes(name), "\(name)")
            #expect(got.dtype == want.dtype && got.shape == want.shape, "\(pth): \(name) \(got.shape) vs \(want.shape)")
            #expect(Array(got.bytes) == Array(want.bytes), "\(pth): \(name) bytes differ")
        }
    }

    @Test("fp32, fp16, bf16 and int64 tensors, shared and non-contiguous views equal safetensors' contiguous copies")
    func stateDictMatchesSafetensors() throws {
        try Self.expectSameTensors("state_dict.pth", "state_dict.safetensors")
        let c = try TorchCheckpoint(path: Self.fixture("state_dict.pth"))
        #expect(c.info("f32_transposed")?.shape == [6, 4])
        #expect(c.info("i64_scalar")?.shape == [] && c.info("i64_scalar")?.dtype == .i64)
        #expect(c.tensor("f32_columns")?.shape == [4, 3])
    }

    @Test("Pickle protocol 4 and ZIP64 archives read the same tensors")
    func protocol4AndZip64() throws {
        try Self.expectSameTensors("protocol4.pth", "state_dict.safetensors")
        try Self.expectSameTensors("zip64.pth", "state_dict.safetensors")
    }

    @Test("Nested dicts, Parameters (keep_vars) and lists flatten to dotted names; other values are skipped")
    func nestedCheckpoint() throws {
        try Self.expectSameTensors("nested_params.pth", "nested_params.safetensors")
    }

    @Test("Hostile pickles are refused naming the file and the offending global or opcode; nothing runs",
          arguments: [("hostile_global.pth", "posix.system"), ("hostile_eval.pth", "builtin__.eval"),
                      ("hostile_stack_global.pth", "subprocess.Popen"), ("hostile_reduce.pth", "REDUCE of 'torch.FloatStorage'"),
                      ("hostile_newobj.pth", "NEWOBJ"), ("hostile_persid.pth", "persistent id")])
    func hostilePicklesAreRefused(_ name: String, _ mention: String) throws {
        let marker = "/tmp/sanagraph_pickle_executed"
        try? FileManager.default.removeItem(atPath: marker)
        let path = Self.fixture(name)
        #expect {
            _ = try TorchCheckpoint(path: path)
        } throws: { error in
            guard let e = error as? TorchCheckpointError, case .refused = e else { return false }
            return e.description.contains(path) && e.description.contains(mention)
        }
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test("A truncated zip, the legacy format and a view past its storage are errors naming the file",
          arguments: ["truncated.pth", "legacy.pth", "out_of_range.pth"])
    func brokenFilesAreRejected(_ name: String) throws {
        let path = Self.fixture(name)
        #expect {
            _ = try TorchCheckpoint(path: path)
        } throws: { error in
            (error as? TorchCheckpointError)?.path == path && "\(error)".contains(path)
        }
    }

    @Test("Every prefix of a checkpoint is refused cleanly (no crash)")
    func everyTruncationIsAnError() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Self.fixture("state_dict.pth")))
        let dir = TestSupport.temporaryDirectory("pth-cut")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cut.pth").path
        for length in stride(from: 0, to: data.count, by: 97) {
            try data.prefix(length).write(to: URL(fileURLWithPath: path))
            #expect(throws: TorchCheckpointError.self) { _ = try TorchCheckpoint(path: path) }
        }
    }
}
