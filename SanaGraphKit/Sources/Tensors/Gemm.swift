internal import CKernels

// GEMM entry points. OpenBLAS is loaded single-threaded (see `Kernels`): `Ops.sgemm` runs on the calling
// thread, so it may be called from inside `Parallel` loops (one GEMM per worker), and `Ops.parallelSgemm`
// splits one GEMM's output over the workers. oneDNN (`LinearWeight`, `ConvWeight`) runs its own OpenMP team
// and is only ever called from the thread running a node, never from inside a `Parallel` loop.

extension Ops {
    /// Row-major `C = alpha·op(A) op(B) + beta C` on the calling thread (OpenBLAS, single-threaded).
    @inline(__always)
    static func sgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1) {
        _ = Kernels.selection  // loads OpenBLAS on first use
        sg_sgemm(transposeA ? 1 : 0, transposeB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }

    /// The same GEMM with its output split into one block of rows (or of columns, when there are more
    /// columns than rows) per worker, each computed by a single-threaded GEMM.
    static func parallelSgemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float = 1) {
        let workers = Parallel.workerCount
        let splitRows = m >= n
        let extent = splitRows ? m : n
        // Below ~2 M multiply-adds (tens of µs) a hand-off costs more than it saves; blocks stay ≥ 16 wide.
        let blocks = m * n * k < 1 << 21 ? 1 : Swift.min(workers, extent / 16)
        guard blocks > 1 else {
            sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                  beta: beta, c: c, ldc: ldc, alpha: alpha)
            return
        }
        let (pa, pb, pc) = (SendablePointer(UnsafeMutablePointer(mutating: a)),
                            SendablePointer(UnsafeMutablePointer(mutating: b)), SendablePointer(c))
        // Blocks of a multiple of 16 that together cover the whole extent (the last one may be short, and with the
        // rounding fewer than `blocks` may be needed: the rest find nothing to do).
        let step = ((extent + blocks - 1) / blocks + 15) / 16 * 16
        Parallel.forEachRange(blocks, minChunk: 1) { range in
            for block in range {
                let start = block * step, count = Swift.min(step, extent - start)
                guard count > 0 else { continue }
                if splitRows {
                    // Rows of op(A): rows of A, or columns of A when transposed.
                    let aBlock = pa.pointer + (transposeA ? start : start * lda)
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: count, n: n, k: k, a: aBlock, lda: lda,
                          b: pb.pointer, ldb: ldb, beta: beta, c: pc.pointer + start * ldc, ldc: ldc, alpha: alpha)
                } else {
                    // Columns of op(B): columns of B, or rows of B when transposed.
                    let bBlock = pb.pointer + (transposeB ? start * ldb : start)
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: count, k: k, a: pa.pointer, lda: lda,
                          b: bBlock, ldb: ldb, beta: beta, c: pc.pointer + start, ldc: ldc, alpha: alpha)
                }
            }
        }
    }
}
