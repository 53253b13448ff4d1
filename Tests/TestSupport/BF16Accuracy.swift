import Foundation
import Safetensors
import Tensors

/// Shared by the bf16 accuracy tests: PyTorch's fp32 and bf16 outputs of the shipped model on the same inputs
/// (tools/reference/bf16_accuracy.py → Tests/Fixtures/BF16/), and the bf16 paths to try on this machine.
public enum BF16Accuracy {
    /// Allowed ratio of SanaGraph's bf16 error to PyTorch's (both against the fp32 output).
    public static let maxRatio: Float = 1.5

    /// The fixture file.
    public static func fixture() throws -> SafetensorsFile {
        try TestSupport.loadFixture("BF16/sana_shapes.safetensors")
    }

    /// `models/sana-shapes` in the repository.
    public static let model = TestSupport.repositoryRoot.appendingPathComponent("models/sana-shapes").path

    /// The bf16 paths this machine can run: the emulation always, and the native one when the CPU has a bf16 unit.
    public static var paths: [BF16Path] {
        if case .native = Kernels.selection.bf16 { return [Kernels.selection.bf16, .emulated] }
        return [.emulated]
    }

    /// A bf16 path of this machine, or linear layers on the AMX tile kernel (its tile instructions emulated where
    /// the CPU has no AMX; `Kernels.withAMXTiles`).
    public enum Kernel: Sendable, CustomStringConvertible {
        case path(BF16Path)
        case amxTiles

        public var description: String {
            switch self {
            case .path(let path): return "\(path)"
            case .amxTiles: return "AMX tiles"
            }
        }

        /// Runs `body` (a model load) with bf16 requests taking this kernel.
        public func with<R>(_ body: () throws -> R) rethrows -> R {
            switch self {
            case .path(let path): return try Kernels.withBF16(path, body)
            case .amxTiles: return try Kernels.withBF16(.emulated) { try Kernels.withAMXTiles(body) }
            }
        }
    }

    /// `paths`, and the AMX tile kernel.
    public static var kernels: [Kernel] { paths.map(Kernel.path) + [.amxTiles] }

    /// ‖a − b‖₂ / ‖b‖₂: less sensitive than the max-based error to the one element a rounding flips.
    public static func relativeRMS(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.shape == b.shape, "shape \(a.shape) != \(b.shape)")
        var num = 0.0, den = 0.0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for i in 0..<pa.count {
                    let d = Double(pa[i]) - Double(pb[i])
                    num += d * d
                    den += Double(pb[i]) * Double(pb[i])
                }
            }
        }
        return den == 0 ? Float(num.squareRoot()) : Float((num / den).squareRoot())
    }

    /// Both errors of SanaGraph's bf16 output and PyTorch's, against the fp32 reference.
    public struct Comparison: CustomStringConvertible {
        public var ours: (max: Float, rms: Float)
        public var pytorch: (max: Float, rms: Float)
        public init(ours: Tensor, pytorch: Tensor, reference: Tensor) {
            self.ours = (TestSupport.relativeError(ours, reference), BF16Accuracy.relativeRMS(ours, reference))
            self.pytorch = (TestSupport.relativeError(pytorch, reference), BF16Accuracy.relativeRMS(pytorch, reference))
        }
        /// Within `maxRatio` of PyTorch bf16 on both measures.
        public var withinRatio: Bool {
            ours.max <= BF16Accuracy.maxRatio * pytorch.max && ours.rms <= BF16Accuracy.maxRatio * pytorch.rms
        }
        public var description: String {
            String(format: "max %.3g vs PyTorch %.3g (ratio %.2f); rms %.3g vs %.3g (ratio %.2f)", ours.max,
                   pytorch.max, ours.max / pytorch.max, ours.rms, pytorch.rms, ours.rms / pytorch.rms)
        }
    }
}
