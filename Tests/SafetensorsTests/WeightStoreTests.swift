import Foundation
import Safetensors
import SanaGraphKit
import Tensors
import Testing
import TestSupport

/// The SDK's weight loading: the building code declares keys and shapes; the source is checked against them.
@Suite struct WeightStoreTests {
    /// A two-layer toy model: a linear layer with bias and a norm whose running count is tolerated.
    struct Toy {
        var linear: LinearWeight, bias: Tensor, norm: Tensor
        init(_ w: WeightStore) {
            linear = w.linear("fc.weight", [3, 2])
            bias = w("fc.bias", [3])
            norm = w("norm.weight", [3])
            w.tolerate("norm.num_batches_tracked")
        }
    }

    static let good: [String: Tensor] = [
        "fc.weight": Tensor(shape: [3, 2], values: [1, 2, 3, 4, 5, 6]), "fc.bias": Tensor(zeros: [3]),
        "norm.weight": Tensor(repeating: 1, shape: [3]), "norm.num_batches_tracked": Tensor(zeros: [1]),
    ]

    @Test func collectingPassDeclaresTheKeySet() {
        let expected = WeightStore.expectedShapes { _ = Toy($0) }
        #expect(expected == ["fc.weight": [3, 2], "fc.bias": [3], "norm.weight": [3]])
    }

    @Test func loadsFromTensorsAndChecksEveryKeyAtOnce() throws {
        let toy = try WeightStore.load(.tensors(Self.good), path: "p", folder: "a toy") { Toy($0) }
        #expect(toy.linear.outFeatures == 3 && toy.linear.inFeatures == 2 && toy.norm.scalars == [1, 1, 1])

        var bad = Self.good
        bad["fc.bias"] = nil
        bad["fc.weight"] = Tensor(zeros: [2, 3])
        bad["extra"] = Tensor(zeros: [1])
        #expect(throws: ModelFolderError.keyMismatch(path: "p", folder: "a toy", missing: ["fc.bias"],
                                                     unexpected: ["extra"],
                                                     wrongShape: ["fc.weight [2, 3] (expected [3, 2])"])) {
            _ = try WeightStore.load(.tensors(bad), path: "p", folder: "a toy") { Toy($0) }
        }
    }

    @Test func renamedSourcesMapStoredNamesAndReportDuplicates() throws {
        var stored: [String: Tensor] = [:]
        for (k, v) in Self.good { stored["model." + k] = v }
        stored["lm_head.weight"] = Tensor(zeros: [1])  // dropped by the renaming
        stored["fc.bias"] = Tensor(zeros: [3])         // a second tensor for model key fc.bias
        let source = WeightSource.tensors(stored).renamed { name in
            name == "lm_head.weight" ? nil : name.hasPrefix("model.") ? String(name.dropFirst(6)) : name
        }
        #expect(throws: ModelFolderError.keyMismatch(path: "p", folder: "a toy", missing: [], unexpected: ["model.fc.bias"],
                                                     wrongShape: [])) {
            _ = try WeightStore.load(source, path: "p", folder: "a toy") { Toy($0) }
        }
    }

    @Test func checkpointSourceReadsLazilyAndNamesTheFile() throws {
        let dir = TestSupport.temporaryDirectory("weightstore")
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("model.safetensors").path
        try SafetensorsWriter.write(Self.good, dtype: .f16, to: path)
        let checkpoint = try SafetensorsCheckpoint(path: dir.path)
        let toy = try WeightStore.load(.checkpoint(checkpoint), path: path, folder: "a toy") { Toy($0) }
        #expect(toy.bias.scalars == [0, 0, 0] && toy.norm.scalars == [1, 1, 1])
    }

    @Test("a model that runs its layers a few times per load keeps a bf16 checkpoint's fp32 layers as stored where oneDNN cannot pack bf16")
    func fewReuseKeepsBF16WeightsAsStored() throws {
        let dir = TestSupport.temporaryDirectory("weightstore-reuse")
        defer { try? FileManager.default.removeItem(at: dir) }
        let x = Tensor(shape: [2, 2], values: [1, -2, 0.5, 3])
        for dtype in [DType.bf16, .f32] {
            let path = dir.appendingPathComponent("\(dtype).safetensors").path
            try SafetensorsWriter.write(Self.good, dtype: dtype, to: path)
            let file = try SafetensorsCheckpoint(path: path)
            let few = try WeightStore.load(.checkpoint(file), path: path, folder: "a toy", reuse: .few) { Toy($0) }
            let many = try WeightStore.load(.checkpoint(file), path: path, folder: "a toy") { Toy($0) }
            #expect((few.linear.mode == .storedBF16) == (dtype == .bf16 && TestSupport.keepsStoredBF16Weights), "\(dtype)")
            #expect(many.linear.mode != .storedBF16)
            // The same fp32 arithmetic either way (small integers: exact in bf16 and in any summation order).
            #expect(Ops.linear(x, weight: few.linear, bias: few.bias).scalars == [-3, -5, -7, 6.5, 13.5, 20.5])
            #expect(Ops.linear(x, weight: many.linear, bias: many.bias).scalars == [-3, -5, -7, 6.5, 13.5, 20.5])
        }
    }
}
