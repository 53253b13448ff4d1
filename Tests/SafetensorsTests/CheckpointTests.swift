import Foundation
import Safetensors
import Tensors
import Testing
import TestSupport

/// Sharded checkpoints and model-directory resolution.
@Suite struct CheckpointTests {
    /// A scratch copy of the sharded fixture.
    static func shardedCopy() throws -> URL {
        let dir = TestSupport.temporaryDirectory("st-ckpt")
        let src = URL(fileURLWithPath: TestSupport.fixture("Safetensors/sharded"))
        for name in try FileManager.default.contentsOfDirectory(atPath: src.path) {
            try FileManager.default.copyItem(at: src.appendingPathComponent(name), to: dir.appendingPathComponent(name))
        }
        return dir
    }

    @Test func missingShardNamesIndexShardAndTensor() throws {
        let dir = try Self.shardedCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.removeItem(at: dir.appendingPathComponent("model-00002-of-00002.safetensors"))
        let index = dir.appendingPathComponent("model.safetensors.index.json").path
        #expect(throws: SafetensorsError.missingShard(index: index, shard: "model-00002-of-00002.safetensors",
                                                      tensor: "head.weight")) {
            _ = try SafetensorsCheckpoint(path: index)
        }
        // Through the directory too.
        let error = #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: dir.path) }
        #expect(error?.description.contains("model-00002-of-00002.safetensors") == true)
        #expect(error?.description.contains("head.weight") == true)
    }

    @Test func indexPointingToMissingTensorIsRejected() throws {
        let dir = try Self.shardedCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let index = dir.appendingPathComponent("model.safetensors.index.json")
        let text = try String(contentsOf: index, encoding: .utf8)
            .replacingOccurrences(of: "\"head.weight\"", with: "\"ghost.weight\": \"model-00001-of-00002.safetensors\",\n    \"head.weight\"")
        try text.write(to: index, atomically: true, encoding: .utf8)
        let error = #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: index.path) }
        #expect(error == .tensorMissingFromShard(index: index.path, shard: "model-00001-of-00002.safetensors",
                                                 tensor: "ghost.weight"))
        #expect(error?.description.contains(index.path) == true && error?.description.contains("ghost.weight") == true)
    }

    @Test(arguments: [
        ("[]", "expected a JSON object"),
        ("{\"metadata\": {}}", "missing 'weight_map'"),
        ("{\"weight_map\": {\"a\": 3}}", "expected a file name"),
        ("{\"weight_map\": {\"a\": \"../x.safetensors\"}}", "beside the index"),
        ("{\"weight_map\": {\"a\": \"/etc/passwd\"}}", "beside the index"),
        ("{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", "listed twice"),
        ("{\"weight_map\": ", "not valid JSON"),
    ])
    func malformedIndexIsRejected(text: String, reason: String) throws {
        let dir = TestSupport.temporaryDirectory("st-ckpt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let index = dir.appendingPathComponent("model.safetensors.index.json").path
        try text.write(toFile: index, atomically: true, encoding: .utf8)
        let error = #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: index) }
        guard case .invalidIndex(let p, let r)? = error else {
            Issue.record("wrong error: \(String(describing: error))")
            return
        }
        #expect(p == index)
        #expect(r.contains(reason), "\(r)")
    }

    @Test func corruptShardReportsTheShardFile() throws {
        let dir = try Self.shardedCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let shard = dir.appendingPathComponent("model-00001-of-00002.safetensors")
        let bytes = try Data(contentsOf: shard)
        try bytes.prefix(bytes.count - 3).write(to: shard)
        let error = #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: dir.path) }
        #expect(error?.path == shard.path)
    }

    @Test func directoryResolutionPrefersDiffusersNamesAndVariants() throws {
        let dir = TestSupport.temporaryDirectory("st-ckpt")
        defer { try? FileManager.default.removeItem(at: dir) }
        let t = Tensor(shape: [2], values: [1, 2])
        func put(_ name: String, _ value: Float) throws {
            try SafetensorsWriter.write(["x": Tensor(repeating: value, shape: [2])], to: dir.appendingPathComponent(name).path)
        }
        // Nothing there yet.
        let empty = #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: dir.path) }
        #expect(empty?.description.contains("no .safetensors") == true)

        try put("diffusion_pytorch_model.fp16.safetensors", 16)
        // Only a variant file: taken as the single .safetensors file.
        #expect(try SafetensorsCheckpoint(path: dir.path).tensor("x").scalars == [16, 16])
        try put("diffusion_pytorch_model.safetensors", 32)
        #expect(try SafetensorsCheckpoint(path: dir.path).tensor("x").scalars == [32, 32])
        #expect(try SafetensorsCheckpoint(path: dir.path, variant: "fp16").tensor("x").scalars == [16, 16])
        #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: dir.path, variant: "bf16") }
        _ = t

        let other = TestSupport.temporaryDirectory("st-ckpt")
        defer { try? FileManager.default.removeItem(at: other) }
        try SafetensorsWriter.write(["x": t], to: other.appendingPathComponent("a.safetensors").path)
        try SafetensorsWriter.write(["x": t], to: other.appendingPathComponent("b.safetensors").path)
        let ambiguous = #expect(throws: SafetensorsError.self) { _ = try SafetensorsCheckpoint(path: other.path) }
        #expect(ambiguous?.description.contains("a.safetensors, b.safetensors") == true)
        try SafetensorsWriter.write(["x": t], to: other.appendingPathComponent("model.safetensors").path)
        #expect(try SafetensorsCheckpoint.resolve(directory: other.path) == other.path + "/model.safetensors")
    }

    @Test func checkpointFingerprintCoversEveryShardAndChangesWithThem() throws {
        let dir = try Self.shardedCopy()
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = try SafetensorsCheckpoint(path: dir.path).fingerprint()
        #expect(before.split(separator: "\n").count == 3)
        let shard = dir.appendingPathComponent("model-00002-of-00002.safetensors").path
        let f = try SafetensorsFile(path: shard)
        var entries: [String: SafetensorsWriter.Entry] = [:]
        for name in f.names { entries[name] = .raw(try f.rawBytes(name)) }
        try SafetensorsWriter.write(entries: entries, metadata: f.metadata, to: shard)
        let after = try SafetensorsCheckpoint(path: dir.path).fingerprint()
        #expect(before != after)
    }

    @Test func fastFingerprintHasDocumentedShapeAndChangesOnRewrite() throws {
        let dir = TestSupport.temporaryDirectory("st-fp")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("w.safetensors").path
        try SafetensorsWriter.write(["x": Tensor(shape: [1], values: [1])], to: path)
        let a = try FileFingerprint.fast(path)
        #expect(a.hasPrefix(FileFingerprint.absolute(path) + "|size="))
        #expect(a.contains("|mtime=") && a.contains("|inode="))
        #expect(try FileFingerprint.fast(path) == a)
        try SafetensorsWriter.write(["x": Tensor(shape: [1], values: [1])], to: path)  // same bytes, new inode
        #expect(try FileFingerprint.fast(path) != a)
        #expect(throws: SafetensorsError.self) { _ = try FileFingerprint.fast(path + ".missing") }
    }
}
