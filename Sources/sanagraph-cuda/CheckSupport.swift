import CUDA
import Foundation
import Tensors

/// A failed expectation inside a GPU check.
struct CheckFailure: Error, CustomStringConvertible {
    let description: String
}

/// Deterministic pseudo-random numbers (splitmix64 + Box–Muller), fresh per check.
struct Random {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func uniform() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func normal() -> Float {
        let u1 = max(uniform(), 1e-7), u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2)
    }
    /// A tensor of `scale · N(0, 1) + offset` values.
    mutating func tensor(_ shape: [Int], scale: Float = 1, offset: Float = 0) -> Tensor {
        Tensor(shape: shape, values: (0..<shape.reduce(1, *)).map { _ in scale * normal() + offset })
    }
}

/// The tensor rounded to bf16 and back (what the GPU sees of an fp32 input uploaded as bf16).
func bf16Rounded(_ t: Tensor) -> Tensor {
    Tensor(shape: t.shape, values: t.scalars.map { DTypeConversion.float(fromBF16: DTypeConversion.bf16Bits($0)) })
}

/// ‖a − b‖₂ / ‖b‖₂ (infinite when a holds NaN or the shapes differ).
func relativeError(_ a: Tensor, _ b: Tensor) -> Double {
    guard a.count == b.count else { return .infinity }
    var num = 0.0, den = 0.0
    let x = a.scalars, y = b.scalars
    for i in 0..<x.count {
        if x[i].isNaN { return .infinity }
        let d = Double(x[i]) - Double(y[i])
        num += d * d
        den += Double(y[i]) * Double(y[i])
    }
    return (num / max(den, 1e-300)).squareRoot()
}

/// Throws unless `relativeError(actual, expected) ≤ tolerance`; returns a short report.
@discardableResult
func expectClose(_ actual: Tensor, _ expected: Tensor, tolerance: Double, _ what: String) throws -> String {
    guard actual.shape.reduce(1, *) == expected.shape.reduce(1, *) else {
        throw CheckFailure(description: "\(what): shape \(actual.shape) vs expected \(expected.shape)")
    }
    let e = relativeError(actual, expected)
    guard e <= tolerance else {
        throw CheckFailure(description: "\(what): relative error \(String(format: "%.3e", e)) > \(tolerance)")
    }
    return "\(what) \(String(format: "%.1e", e))"
}

/// A device tensor filled with NaN bit patterns, so an element the kernel forgets to write shows up.
func poisoned(_ shape: [Int], _ dtype: DeviceDType, on context: CUDAContext) throws -> DeviceTensor {
    let t = try DeviceTensor(uninitialized: shape, dtype: dtype, on: context)
    let words = (t.byteCount + 3) / 4
    try context.fill32(t.pointer, value: 0x7FC0_7FC0, count: words)  // NaN in fp32 and in both bf16 halves
    return t
}
