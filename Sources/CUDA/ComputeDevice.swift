import Foundation

/// Where a model runs: the host CPU or CUDA GPU N. Spelled `cpu`, `cuda` (GPU 0) or `cuda:N` in graphs and on
/// the command line.
public enum ComputeDevice: Sendable, Hashable, CustomStringConvertible {
    case cpu
    case cuda(Int)

    /// Parses `cpu`, `cuda`, `cuda:N` (N ≥ 0); nil for anything else.
    public init?(parsing text: String) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        if t == "cpu" { self = .cpu; return }
        if t == "cuda" { self = .cuda(0); return }
        guard t.hasPrefix("cuda:"), let n = Int(t.dropFirst(5)), n >= 0, n < 1024 else { return nil }
        self = .cuda(n)
    }

    public var description: String {
        switch self {
        case .cpu: return "cpu"
        case .cuda(let n): return "cuda:\(n)"
        }
    }

    /// What the param docs and validation messages call the accepted spellings.
    public static let spellings = "cpu, cuda or cuda:N"
}
