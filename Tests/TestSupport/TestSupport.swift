import Foundation
import Safetensors
import Tensors

/// Locations and comparisons shared by every test target.
public enum TestSupport {
    /// The repository root: found from this file's path, or `SANAGRAPH_REPOSITORY_ROOT` (a test binary carried to
    /// a machine without the build tree, `tools/bench/amx-check.sh tests`).
    public static let repositoryRoot: URL = ProcessInfo.processInfo.environment["SANAGRAPH_REPOSITORY_ROOT"]
        .map { URL(fileURLWithPath: $0) }
        ?? URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Whether fp32 layers of a model loaded with `WeightReuse.few` keep a bf16 checkpoint's weights as stored on
    /// this machine: where oneDNN cannot pack them straight from bf16 (CPUs without AVX-512, or OpenBLAS running
    /// fp32), unless `SANAGRAPH_STORED_WEIGHTS=0`.
    public static var keepsStoredBF16Weights: Bool { !LinearWeight.fp32PacksFromBF16 && Kernels.selection.storedWeights }

    /// `Tests/Fixtures`.
    public static let fixturesDirectory: URL = repositoryRoot.appendingPathComponent("Tests/Fixtures")

    /// Path of a fixture file under `Tests/Fixtures`.
    public static func fixture(_ relativePath: String) -> String {
        fixturesDirectory.appendingPathComponent(relativePath).path
    }

    /// Opens a safetensors fixture.
    public static func loadFixture(_ relativePath: String) throws -> SafetensorsFile {
        try SafetensorsFile(path: fixture(relativePath))
    }

    /// max|a - b| / max|b| (0 when both are zero). The project's standard parity measure.
    /// NaN in either tensor counts as infinite error unless both have NaN at the same position.
    public static func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.shape == b.shape, "shape \(a.shape) != \(b.shape)")
        var maxDiff: Float = 0
        var maxRef: Float = 0
        var nanMismatch = false
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count {
                    if pa[i].isNaN || pb[i].isNaN {
                        if pa[i].isNaN != pb[i].isNaN { nanMismatch = true }
                        continue
                    }
                    maxDiff = max(maxDiff, abs(pa[i] - pb[i]))
                    maxRef = max(maxRef, abs(pb[i]))
                }
            }
        }
        if nanMismatch { return .infinity }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef
    }

    /// A fresh temporary directory, removed by the caller (or left in /tmp).
    public static func temporaryDirectory(_ prefix: String = "sanagraph-test") -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
