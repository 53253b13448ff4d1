import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// Files written by Python's safetensors (tools/reference/safetensors_fixtures.py) read back as Python reads them.
@Suite struct ReaderFixtureTests {
    /// Bitwise comparison (NaN-aware, so -0.0 and the exact F16/BF16 widening are checked too).
    static func bits(_ t: Tensor) -> [UInt32] { t.scalars.map { $0.isNaN ? 0x7FC0_0000 : $0.bitPattern } }

    @Test(arguments: [("f32", DType.f32), ("f16", .f16), ("bf16", .bf16), ("i64", .i64), ("i32", .i32),
                      ("u8", .u8), ("bool", .bool), ("scalar", .f32), ("empty", .f32)])
    func readsEveryDTypeAsPythonStoredIt(name: String, dtype: DType) throws {
        let file = try TestSupport.loadFixture("Safetensors/dtypes.safetensors")
        let info = try #require(file.tensors[name])
        #expect(info.dtype == dtype)
        let expected = try file.tensor(name + ".expected")
        let got = try file.tensor(name)
        #expect(got.shape == expected.shape)
        #expect(got.count > 0 || name == "empty")
        #expect(Self.bits(got) == Self.bits(expected))
    }

    @Test func readsShapesAndMetadata() throws {
        let file = try TestSupport.loadFixture("Safetensors/dtypes.safetensors")
        #expect(file.metadata == ["format": "pt", "source": "safetensors_fixtures.py"])
        #expect(try file.info("f16").shape == [2, 3, 17])
        #expect(try file.info("scalar").shape == [])
        #expect(try file.info("empty").shape == [0, 4])
        #expect(try file.tensor("scalar").scalars == [1.5])
        #expect(file.names.contains("bool.expected"))
        #expect(file.names == file.names.sorted())
    }

    @Test func rawBytesKeepDTypeAndDecodeToTheSameValues() throws {
        let file = try TestSupport.loadFixture("Safetensors/dtypes.safetensors")
        let raw = try file.rawBytes("bf16")
        #expect(raw.dtype == .bf16)
        #expect(raw.bytes.count == 109 * 2)
        #expect(Self.bits(raw.decoded()) == Self.bits(try file.tensor("bf16.expected")))
        var out = [Float](repeating: 0, count: 109)
        try out.withUnsafeMutableBufferPointer { try file.read("bf16", into: $0) }
        #expect(out == (try file.tensor("bf16.expected")).scalars)
    }

    @Test func missingTensorNamesFileAndListsTensors() throws {
        let path = TestSupport.fixture("Safetensors/dtypes.safetensors")
        let file = try SafetensorsFile(path: path)
        let error = #expect(throws: SafetensorsError.self) { try file.tensor("f61") }
        guard case .tensorNotFound(let p, let t, let available)? = error else {
            Issue.record("wrong error \(String(describing: error))")
            return
        }
        #expect(p == path && t == "f61" && available.contains("f16"))
        #expect(error?.description.contains(path) == true)
    }

    @Test func readsShardedCheckpointThroughIndexAndDirectory() throws {
        let expected = try TestSupport.loadFixture("Safetensors/sharded_expected.safetensors")
        let dir = TestSupport.fixture("Safetensors/sharded")
        for path in [dir + "/model.safetensors.index.json", dir, dir + "/"] {
            let ckpt = try SafetensorsCheckpoint(path: path)
            #expect(ckpt.names == expected.names)
            #expect(ckpt.files.count == 2)
            #expect(ckpt.indexPath == dir + "/model.safetensors.index.json")
            #expect(ckpt.metadata["total_size"] == "1040")
            for name in expected.names {
                #expect(try ckpt.tensor(name).scalars == expected.tensor(name).scalars, "\(name)")
            }
            #expect(try ckpt.info("layers.0.weight").dtype == .f16)
            #expect(try ckpt.rawBytes("layers.0.bias").dtype == .bf16)
            #expect(try ckpt.file(containing: "head.weight").path.hasSuffix("model-00002-of-00002.safetensors"))
        }
    }
}
