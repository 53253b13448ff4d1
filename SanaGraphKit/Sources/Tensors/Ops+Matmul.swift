// GEMM-backed kernels on fp32 tensors. OpenBLAS is single-threaded here (see Gemm.swift): one GEMM is split
// over the workers, or a batch of GEMMs runs one per worker.

extension Ops {
    /// `torch.matmul` for rank ≥ 2 operands: `[..., M, K] × [..., K, N] → [..., M, N]`.
    ///
    /// Leading (batch) dimensions broadcast like PyTorch (e.g. `[B, H, M, K] × [K, N]`). `transposeA` reads `a`
    /// as `[..., K, M]` and `transposeB` reads `b` as `[..., N, K]`, both transposed on the fly (no copy).
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) -> Tensor {
        precondition(a.rank >= 2 && b.rank >= 2, "matmul: operands must have rank >= 2, got \(a.shape) and \(b.shape)")
        let (aRows, aCols) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (bRows, bCols) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let m = transposeA ? aCols : aRows
        let k = transposeA ? aRows : aCols
        let kb = transposeB ? bCols : bRows
        let n = transposeB ? bRows : bCols
        precondition(k == kb, "matmul: inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : "")")

        let aBatch = Array(a.shape.dropLast(2))
        let bBatch = Array(b.shape.dropLast(2))
        guard let batch = broadcastShapes(aBatch, bBatch) else {
            preconditionFailure("matmul: batch dimensions \(aBatch) and \(bBatch) do not broadcast")
        }
        var out = Tensor(uninitialized: batch + [m, n])
        let batchCount = batch.reduce(1, *)
        if out.count == 0 { return out }
        if k == 0 {
            out.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
            return out
        }

        // A [..., M, K] times a shared 2-D B folds every batch into the rows of one GEMM.
        if !transposeA, b.rank == 2 {
            a.withUnsafeBufferPointer { pa in
                b.withUnsafeBufferPointer { pb in
                    out.withUnsafeMutableBufferPointer { pc in
                        parallelSgemm(transposeA: false, transposeB: transposeB, m: batchCount * m, n: n, k: k,
                              a: pa.baseAddress!, lda: aCols, b: pb.baseAddress!, ldb: bCols, beta: 0,
                              c: pc.baseAddress!, ldc: n)
                    }
                }
            }
            return out
        }

        let aOffsets = broadcastBatchOffsets(batch: batch, operand: aBatch, matrixSize: aRows * aCols)
        let bOffsets = broadcastBatchOffsets(batch: batch, operand: bBatch, matrixSize: bRows * bCols)
        let (pa, pb) = (SendablePointer(a.storage.pointer + a.offset), SendablePointer(b.storage.pointer + b.offset))
        let pc = SendablePointer(out.storage.pointer)
        // Enough matrices: one GEMM per worker at a time; few: each GEMM split over the workers.
        if batchCount >= Parallel.workerCount {
            Parallel.forEachRange(batchCount, minChunk: Swift.max(1, 1 << 20 / Swift.max(1, m * n * k))) { range in
                for i in range {
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                          a: pa.pointer + aOffsets[i], lda: aCols, b: pb.pointer + bOffsets[i], ldb: bCols, beta: 0,
                          c: pc.pointer + i * m * n, ldc: n)
                }
            }
        } else {
            for i in 0..<batchCount {
                parallelSgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                              a: pa.pointer + aOffsets[i], lda: aCols, b: pb.pointer + bOffsets[i], ldb: bCols,
                              beta: 0, c: pc.pointer + i * m * n, ldc: n)
            }
        }
        return out
    }

    /// `torch.nn.functional.linear`: `y = x Wᵀ + bias` with `x [..., in]`, `weight [out, in]`, `bias [out]`.
    ///
    /// All leading dimensions fold into one GEMM. The bias is written into the output first and the GEMM
    /// accumulates onto it (`beta = 1`), which costs the same as the zeroing pass OpenBLAS does for `beta = 0`.
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank >= 1 && weight.rank == 2, "linear: expected x [..., in] and weight [out, in], got \(x.shape) and \(weight.shape)")
        let inFeatures = x.shape[x.rank - 1]
        let outFeatures = weight.shape[0]
        precondition(weight.shape[1] == inFeatures, "linear: weight \(weight.shape) does not match input features \(inFeatures) of x \(x.shape)")
        if let bias { precondition(bias.count == outFeatures, "linear: bias \(bias.shape) does not match \(outFeatures) output features") }
        let rows = x.shape.dropLast().reduce(1, *)
        var out = Tensor(uninitialized: Array(x.shape.dropLast()) + [outFeatures])
        if out.count == 0 { return out }
        out.withUnsafeMutableBufferPointer { pc in
            guard inFeatures > 0 else {
                fillRows(pc.baseAddress!, rows: rows, columns: outFeatures, bias: bias)
                return
            }
            if bias != nil { fillRows(pc.baseAddress!, rows: rows, columns: outFeatures, bias: bias) }
            x.withUnsafeBufferPointer { px in
                weight.withUnsafeBufferPointer { pw in
                    parallelSgemm(transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures,
                                  a: px.baseAddress!, lda: inFeatures, b: pw.baseAddress!, ldb: inFeatures,
                                  beta: bias == nil ? 0 : 1, c: pc.baseAddress!, ldc: outFeatures)
                }
            }
        }
        return out
    }

    // MARK: - Helpers shared by the GEMM-based kernels

    /// Writes `bias` into every row of a `[rows, columns]` buffer, or zeros without a bias.
    static func fillRows(_ c: UnsafeMutablePointer<Float>, rows: Int, columns: Int, bias: Tensor?) {
        let out = SendablePointer(c)
        guard let bias else {
            Parallel.forEachRange(rows, minChunk: Swift.max(1, 16_384 / Swift.max(columns, 1))) { range in
                (out.pointer + range.lowerBound * columns).update(repeating: 0, count: range.count * columns)
            }
            return
        }
        let src = SendablePointer(bias.storage.pointer + bias.offset)
        Parallel.forEachRange(rows, minChunk: Swift.max(1, 16_384 / Swift.max(columns, 1))) { range in
            for r in range { (out.pointer + r * columns).update(from: src.pointer, count: columns) }
        }
    }

    /// For each broadcast batch index, the element offset of the operand's matrix.
    static func broadcastBatchOffsets(batch: [Int], operand: [Int], matrixSize: Int) -> [Int] {
        let count = batch.reduce(1, *)
        let strides = broadcastStrides(operand, to: batch)
        var offsets = [Int](repeating: 0, count: count)
        var index = [Int](repeating: 0, count: batch.count)
        var offset = 0
        for i in 0..<count {
            offsets[i] = offset * matrixSize
            // Odometer increment over the broadcast batch shape.
            var d = batch.count - 1
            while d >= 0 {
                index[d] += 1
                offset += strides[d]
                if index[d] < batch[d] { break }
                offset -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return offsets
    }
}
