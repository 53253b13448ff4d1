import DiffusionModels
import Foundation
import GraphRuntime
import Safetensors
import Tensors
import TensorIO
import Testing
import TestSupport

/// tensor.load and tensor.save called directly through `run(...)`.
@Suite struct TensorIONodeTests {
    static func params(_ path: String, _ name: String, dtype: String? = nil) -> ParamValues {
        var v: [String: ParamValue] = ["path": .string(path), "name": .string(name)]
        if let dtype { v["dtype"] = .string(dtype) }
        return ParamValues(v)
    }

    static func load(_ path: String, _ name: String) throws -> Tensor {
        let out = try TensorLoad().run(inputs: NodeInputs([:], nodeID: "load"), params: params(path, name),
                                       context: RunContext(nodeID: "load"))
        guard let t = out["tensor"]?.payload(as: Tensor.self) else { throw NodeError.failed(node: "load", message: "no tensor output") }
        return t
    }

    @discardableResult
    static func save(_ value: Value, _ path: String, _ name: String, dtype: String? = nil) throws -> NodeOutputs {
        try TensorSave().run(inputs: NodeInputs(["tensor": value], nodeID: "save"), params: params(path, name, dtype: dtype),
                             context: RunContext(nodeID: "save"))
    }

    /// The NodeError a call throws (or nil, recording an issue).
    static func nodeError(_ body: () throws -> Void) -> NodeError? {
        do {
            try body()
            Issue.record("expected an error")
        } catch let e as NodeError {
            return e
        } catch {
            Issue.record("expected a NodeError, got \(type(of: error)): \(error)")
        }
        return nil
    }

    @Test func descriptorsDeclareSocketsParamsAndSideEffects() throws {
        let load = TensorLoad.descriptor, save = TensorSave.descriptor
        #expect(load.typeName == "tensor.load" && load.version == 1 && !load.hasSideEffects)
        #expect(load.outputs.map(\.name) == ["tensor"] && load.outputs[0].type == .tensor)
        #expect(load.params.map(\.name) == ["path", "name"] && load.params[0].type == .path && load.params[1].type == .string)
        #expect(save.typeName == "tensor.save" && save.version == 1 && save.hasSideEffects && !save.diskCacheable)
        #expect(Set(save.inputs[0].accepts) == [.tensor, .latent, .image, .conditioning])
        let registry = try NodeRegistry(packs: [TensorIOPack.self])
        #expect(registry.typeNames == ["tensor.load", "tensor.save"])
    }

    @Test func validationRejectsEmptyAndReservedNames() {
        #expect(TensorLoad().validate(params: Self.params("a.safetensors", "")) == ["name must not be empty"])
        #expect(TensorLoad().validate(params: Self.params("", "x")) == ["path must not be empty"])
        #expect(TensorSave().validate(params: Self.params("a.safetensors", "__metadata__")).count == 1)
        #expect(TensorSave().validate(params: Self.params("a.safetensors", "x")).isEmpty)
    }

    @Test func loadReadsFromFileIndexAndFolder() throws {
        let fixture = TestSupport.fixture("Safetensors/dtypes.safetensors")
        let expected = try SafetensorsFile(path: fixture).tensor("f16.expected")
        #expect(try Self.load(fixture, "f16").scalars == expected.scalars)
        let sharded = TestSupport.fixture("Safetensors/sharded")
        let head = try TestSupport.loadFixture("Safetensors/sharded_expected.safetensors").tensor("head.weight")
        #expect(try Self.load(sharded, "head.weight").scalars == head.scalars)
        #expect(try Self.load(sharded + "/model.safetensors.index.json", "head.weight").scalars == head.scalars)
    }

    @Test func loadFingerprintIsTheFastFileFingerprint() throws {
        let dir = TestSupport.temporaryDirectory("tio")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafetensorsWriter.write(["x": Tensor(shape: [2], values: [1, 2])], to: path)
        let p = Self.params(path, "x")
        let before = try TensorLoad().fingerprint(params: p)
        #expect(before == (try FileFingerprint.fast(path)))
        try SafetensorsWriter.write(["x": Tensor(shape: [2], values: [3, 4])], to: path)
        #expect(try TensorLoad().fingerprint(params: p) != before)
        let missing = Self.nodeError { _ = try TensorLoad().fingerprint(params: Self.params(path + ".gone", "x")) }
        #expect(missing?.category == .modelFile)
    }

    @Test func loadMissingFileIsAModelFileError() {
        let path = "/nonexistent/sanagraph/weights.safetensors"
        let error = Self.nodeError { _ = try Self.load(path, "x") }
        #expect(error == .modelFile(path: path, message: "no such file; check the 'path' param"))
        #expect(error?.category.exitCode == 4)
    }

    @Test func loadMissingTensorSuggestsTheClosestName() {
        let path = TestSupport.fixture("Safetensors/dtypes.safetensors")
        let typo = Self.nodeError { _ = try Self.load(path, "f32.expectd") }
        #expect(typo == .modelFile(path: path, message: "no tensor named 'f32.expectd' (did you mean 'f32.expected'?)"))
        let far = Self.nodeError { _ = try Self.load(path, "transformer.blocks.0.attn.to_q.weight") }
        #expect(far?.category == .modelFile)
        #expect(far?.description.contains("the file has 18: bf16, bf16.expected") == true, "\(String(describing: far))")
    }

    @Test func loadCorruptFileIsAModelFileErrorNamingFileAndTensor() throws {
        let dir = TestSupport.temporaryDirectory("tio")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("cut.safetensors").path
        try SafetensorsWriter.write(["weight": Tensor(repeating: 1, shape: [64])], to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        try bytes.prefix(bytes.count - 1).write(to: URL(fileURLWithPath: path))
        let error = Self.nodeError { _ = try Self.load(path, "weight") }
        #expect(error?.category == .modelFile)
        #expect(error?.description.hasPrefix(path + ": ") == true)
        #expect(error?.description.contains("'weight'") == true && error?.description.contains("truncated") == true)
    }

    @Test func saveAddsAndReplacesTensorsKeepingTheRest() throws {
        let dir = TestSupport.temporaryDirectory("tio")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("out.safetensors").path
        // An existing file with other dtypes and metadata, as Python would leave it.
        try SafetensorsWriter.write(entries: [
            "ids": .tensor(Tensor(shape: [3], values: [1, 2, 3]), .i64),
            "half": .tensor(Tensor(shape: [2], values: [0.5, 1.5]), .f16),
            "x": .tensor(Tensor(shape: [1], values: [9]), .f32),
        ], metadata: ["format": "pt"], to: path)
        let before = try SafetensorsFile(path: path)
        let idsBytes = Array(try before.rawBytes("ids").bytes), halfBytes = Array(try before.rawBytes("half").bytes)

        let out = try Self.save(.tensor(Tensor(shape: [2, 2], values: [1, 2, 3, 4])), path, "x")
        #expect(out["path"].map { if let p = $0.payload(as: String.self) { return p == path } else { return false } } == true)
        try Self.save(.latent(Tensor(shape: [1, 2, 1, 1], values: [5, 6])), path, "latent", dtype: "BF16")
        try Self.save(.image(Tensor(repeating: 0.25, shape: [1, 3, 2, 2])), path, "image")

        let after = try SafetensorsFile(path: path)
        #expect(after.names == ["half", "ids", "image", "latent", "x"])
        #expect(after.metadata == ["format": "pt"])
        #expect(Array(try after.rawBytes("ids").bytes) == idsBytes)
        #expect(Array(try after.rawBytes("half").bytes) == halfBytes)
        #expect(try after.info("ids").dtype == .i64)
        #expect(try after.tensor("x").shape == [2, 2] && after.tensor("x").scalars == [1, 2, 3, 4])
        #expect(try after.info("latent").dtype == .bf16 && after.tensor("latent").scalars == [5, 6])
        #expect(try after.tensor("image").shape == [1, 3, 2, 2])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["out.safetensors"])
    }

    @Test func saveConditioningWritesEmbeddingsAndMaskIntoNewFolders() throws {
        let dir = TestSupport.temporaryDirectory("tio")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("a/b/cond.safetensors").path
        let c = Conditioning(embeddings: Tensor(shape: [1, 2, 3], values: [1, 2, 3, 4, 5, 6]),
                             mask: Tensor(shape: [1, 2], values: [1, 0]))
        try Self.save(.conditioning(c), path, "positive")
        let f = try SafetensorsFile(path: path)
        #expect(f.names == ["positive.embeddings", "positive.mask"])
        #expect(try f.tensor("positive.embeddings").scalars == [1, 2, 3, 4, 5, 6])
        #expect(try f.tensor("positive.mask").shape == [1, 2] && f.tensor("positive.mask").scalars == [1, 0])
        // Loading it back through tensor.load.
        #expect(try Self.load(path, "positive.mask").scalars == [1, 0])
    }

    @Test func saveFailuresAreIOErrorsNamingThePathAndLeaveFilesUntouched() throws {
        let dir = TestSupport.temporaryDirectory("tio")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = Value.tensor(Tensor(shape: [1], values: [1]))

        // The path is a directory.
        let folder = dir.appendingPathComponent("folder.safetensors").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let e1 = Self.nodeError { try Self.save(t, folder, "x") }
        #expect(e1?.category == .io && e1?.category.exitCode == 6)
        #expect(e1?.description.hasPrefix(folder + ": ") == true)

        // A location where nothing can be created.
        let proc = "/proc/self/sanagraph/out.safetensors"
        let e2 = Self.nodeError { try Self.save(t, proc, "x") }
        #expect(e2?.category == .io && e2?.description.contains(proc) == true)

        // An existing file that is not safetensors is not clobbered.
        let text = dir.appendingPathComponent("notes.safetensors").path
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        let e3 = Self.nodeError { try Self.save(t, text, "x") }
        #expect(e3?.category == .io && e3?.description.contains("not a valid safetensors file") == true)
        #expect(try String(contentsOfFile: text, encoding: .utf8) == "hello")

        // A parent that is a file.
        let e4 = Self.nodeError { try Self.save(t, text + "/x.safetensors", "x") }
        #expect(e4?.category == .io && e4?.description.contains(text) == true)

        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["folder.safetensors", "notes.safetensors"])
    }

    @Test func saveRejectsNonTensorInputs() {
        let error = Self.nodeError {
            _ = try TensorSave().run(inputs: NodeInputs(["tensor": .int(3)], nodeID: "save"),
                                     params: Self.params("/tmp/never.safetensors", "x"), context: RunContext(nodeID: "save"))
        }
        #expect(error?.category == .nodeFailed)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never.safetensors"))
    }
}
