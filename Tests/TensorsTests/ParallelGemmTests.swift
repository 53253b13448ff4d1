import Testing
import TestSupport
@testable import Tensors

/// `Ops.parallelSgemm` splits one GEMM's output into blocks of 16 rows (or columns) over the workers; every output
/// element must be computed whatever the extent and the worker count (a rounding once left the last rows of a
/// 168-row output unwritten with 10+ workers — a DC-AE decode of a 6×7 latent on a 16-core machine).
@Suite("GEMM split over the workers")
struct ParallelGemmTests {
    /// fp64 reference of row-major `op(A)·op(B)`.
    static func reference(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int, transposeA: Bool, transposeB: Bool) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let x = transposeA ? a[p * m + i] : a[i * k + p]
                    let y = transposeB ? b[j * k + p] : b[p * n + j]
                    s += Double(x) * Double(y)
                }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    @Test("every row and column is computed, for extents that are not multiples of 16 × the blocks",
          arguments: [(33, 32, false), (32, 33, false), (50, 17, true), (168, 40, false), (40, 175, true)])
    func coversTheWholeOutput(m: Int, n: Int, transposed: Bool) {
        let k = 2048  // m·n·k above the split threshold (2^21 multiply-adds)
        var r = SeededRandom(seed: UInt64(m * 1000 + n))
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &r) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &r) }
        var c = [Float](repeating: .nan, count: m * n)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    Ops.parallelSgemm(transposeA: transposed, transposeB: transposed, m: m, n: n, k: k,
                                      a: pa.baseAddress!, lda: transposed ? m : k, b: pb.baseAddress!,
                                      ldb: transposed ? k : n, beta: 0, c: pc.baseAddress!, ldc: n)
                }
            }
        }
        let want = Self.reference(a, b, m: m, n: n, k: k, transposeA: transposed, transposeB: transposed)
        let worst = zip(c, want).map { Swift.abs($0 - $1) / Swift.max(1, Swift.abs($1)) }.max() ?? .nan
        #expect(!c.contains { $0.isNaN }, "\(m)×\(n): elements left unwritten")
        #expect(worst <= 1e-4, "\(m)×\(n): worst relative difference \(worst)")
    }
}
