// Shape kernels: concat / split / chunk / permute / transpose / slice, with torch.cat / torch.split /
// torch.chunk / Tensor.permute / Tensor.transpose / narrow semantics.
//
// Tensors are always contiguous, so these copy, except `split`/`chunk`/`slice` along a dimension with only
// size-1 dimensions in front of it: those parts are contiguous runs of the source and come back as views
// sharing its storage (like `reshaped`). Treat every result as read-only unless you `copy()` it.

/// Axis and stride arithmetic shared by the shape, softmax and attention kernels.
@usableFromInline
enum KernelShape {
    /// Maps a possibly negative axis into `0..<rank`, trapping with the kernel name otherwise.
    @usableFromInline
    static func axis(_ axis: Int, rank: Int, _ kernel: String) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "Ops.\(kernel): axis \(axis) out of range for rank \(rank)")
        return a
    }

    /// Product of `shape[range]`.
    @usableFromInline
    static func product(_ shape: [Int], _ range: Range<Int>) -> Int {
        var p = 1
        for i in range { p *= shape[i] }
        return p
    }

    /// Row-major strides of `shape`.
    @usableFromInline
    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// Strides of a tensor of shape `source` broadcast (NumPy rules, right-aligned) to `target`:
    /// 0 along broadcast dimensions. Returns nil when `source` does not broadcast to `target`.
    @usableFromInline
    static func broadcastStrides(_ source: [Int], to target: [Int]) -> [Int]? {
        guard source.count <= target.count else { return nil }
        let own = strides(source)
        var result = [Int](repeating: 0, count: target.count)
        let lead = target.count - source.count
        for i in 0..<source.count {
            if source[i] == target[lead + i] {
                result[lead + i] = source[i] == 1 ? 0 : own[i]
            } else if source[i] == 1 {
                result[lead + i] = 0
            } else {
                return nil
            }
        }
        return result
    }
}

extension Ops {
    // MARK: concat

    /// Concatenates tensors along `axis` (torch.cat). All shapes must agree except along `axis`.
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        precondition(!xs.isEmpty, "Ops.concat: no tensors")
        let first = xs[0].shape
        let ax = KernelShape.axis(axis, rank: first.count, "concat")
        var outShape = first
        outShape[ax] = 0
        for x in xs {
            precondition(x.rank == first.count, "Ops.concat: rank mismatch \(x.shape) vs \(first)")
            for d in 0..<first.count where d != ax {
                precondition(x.shape[d] == first[d], "Ops.concat: shape \(x.shape) does not match \(first) off axis \(ax)")
            }
            outShape[ax] += x.shape[ax]
        }
        let out = Tensor(uninitialized: outShape)
        let outer = KernelShape.product(first, 0..<ax)
        let inner = KernelShape.product(first, (ax + 1)..<first.count)
        let rowOut = outShape[ax] * inner
        guard out.count > 0 else { return out }
        // Each source contributes one contiguous run per outer index.
        var runs: [(base: UnsafeMutablePointer<Float>, length: Int, dest: Int)] = []
        var dest = 0
        for x in xs {
            let length = x.shape[ax] * inner
            runs.append((x.storage.pointer + x.offset, length, dest))
            dest += length
        }
        let o = SendablePointer(out.storage.pointer)
        let sources = runs.map { (SendablePointer($0.base), $0.length, $0.dest) }
        Parallel.forEachRange(outer, minChunk: Swift.max(1, 32_768 / Swift.max(1, rowOut))) { range in
            for i in range {
                for (src, length, d) in sources where length > 0 {
                    (o.pointer + i * rowOut + d).update(from: src.pointer + i * length, count: length)
                }
            }
        }
        return out
    }

    // MARK: split / chunk / slice

    /// Splits `x` along `axis` into parts of the given sizes (torch.split with a list); sizes must sum to
    /// the axis length.
    public static func split(_ x: Tensor, sizes: [Int], axis: Int) -> [Tensor] {
        let ax = KernelShape.axis(axis, rank: x.rank, "split")
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == x.shape[ax],
                     "Ops.split: sizes \(sizes) do not sum to \(x.shape[ax]) (axis \(ax) of \(x.shape))")
        var parts: [Tensor] = []
        var start = 0
        for s in sizes {
            parts.append(slice(x, axis: ax, range: start..<(start + s)))
            start += s
        }
        return parts
    }

    /// Splits `x` into `n` chunks along `axis` like torch.chunk: each chunk has ceil(len / n) elements along
    /// the axis, the last one fewer, so fewer than `n` chunks can come back (e.g. 5 split 4 ways → 2,2,1).
    public static func chunk(_ x: Tensor, _ n: Int, axis: Int) -> [Tensor] {
        precondition(n > 0, "Ops.chunk: chunk count \(n) must be positive")
        let ax = KernelShape.axis(axis, rank: x.rank, "chunk")
        let length = x.shape[ax]
        if length == 0 { return Array(repeating: x, count: n) }  // torch: n empty chunks
        let size = (length + n - 1) / n
        var sizes: [Int] = []
        var left = length
        while left > 0 {
            sizes.append(Swift.min(size, left))
            left -= size
        }
        return split(x, sizes: sizes, axis: ax)
    }

    /// Elements `range` along `axis` (torch.narrow / `x[..., a:b, ...]`). A view when every dimension before
    /// `axis` has size 1, else a copy.
    public static func slice(_ x: Tensor, axis: Int, range: Range<Int>) -> Tensor {
        let ax = KernelShape.axis(axis, rank: x.rank, "slice")
        precondition(range.lowerBound >= 0 && range.upperBound <= x.shape[ax],
                     "Ops.slice: range \(range) out of bounds for axis \(ax) of \(x.shape)")
        var outShape = x.shape
        outShape[ax] = range.count
        let outer = KernelShape.product(x.shape, 0..<ax)
        let inner = KernelShape.product(x.shape, (ax + 1)..<x.rank)
        if outer == 1 {
            return Tensor(storage: x.storage, shape: outShape, offset: x.offset + range.lowerBound * inner)
        }
        let out = Tensor(uninitialized: outShape)
        let run = range.count * inner
        let rowIn = x.shape[ax] * inner
        guard run > 0 else { return out }
        let src = SendablePointer(x.storage.pointer + x.offset + range.lowerBound * inner)
        let dst = SendablePointer(out.storage.pointer)
        Parallel.forEachRange(outer, minChunk: Swift.max(1, 32_768 / run)) { rows in
            for i in rows {
                (dst.pointer + i * run).update(from: src.pointer + i * rowIn, count: run)
            }
        }
        return out
    }

    // MARK: permute / transpose

    /// Swaps dimensions `a` and `b` (torch.transpose), returning a contiguous copy.
    public static func transpose(_ x: Tensor, _ a: Int, _ b: Int) -> Tensor {
        let a = KernelShape.axis(a, rank: x.rank, "transpose")
        let b = KernelShape.axis(b, rank: x.rank, "transpose")
        var dims = Array(0..<x.rank)
        dims.swapAt(a, b)
        return permute(x, dims)
    }

    /// Reorders dimensions (torch.permute): output dimension `i` is input dimension `dims[i]`. Returns a
    /// contiguous copy (or `x` itself for the identity permutation).
    public static func permute(_ x: Tensor, _ dims: [Int]) -> Tensor {
        let rank = x.rank
        precondition(dims.count == rank, "Ops.permute: \(dims) is not a permutation of \(rank) dimensions")
        let perm = dims.map { KernelShape.axis($0, rank: rank, "permute") }
        precondition(Set(perm).count == rank, "Ops.permute: \(dims) repeats a dimension")
        let outShape = perm.map { x.shape[$0] }
        let inStrides = KernelShape.strides(x.shape)

        // Drop size-1 dimensions and merge output dimensions that stay adjacent and in order in the input;
        // most permutations reduce to a copy, a batched 2-D transpose, or a short strided walk.
        var mShape: [Int] = []    // merged output shape
        var mStride: [Int] = []   // matching input strides
        for i in 0..<rank where outShape[i] != 1 {
            let s = inStrides[perm[i]]
            if let last = mShape.last, mStride.last! == s * outShape[i] {
                mShape[mShape.count - 1] = last * outShape[i]
                mStride[mStride.count - 1] = s
            } else {
                mShape.append(outShape[i])
                mStride.append(s)
            }
        }
        if mShape.count <= 1 {
            return x.reshaped(outShape)
        }
        let out = Tensor(uninitialized: outShape)
        guard out.count > 0 else { return out }
        let src = SendablePointer(x.storage.pointer + x.offset)
        let dst = SendablePointer(out.storage.pointer)
        let m = mShape.count

        if mStride[m - 1] == 1 {
            // Innermost run is contiguous in the input: copy runs.
            let run = mShape[m - 1]
            let rows = out.count / run
            let outerShape = Array(mShape[0..<(m - 1)])
            let outerStride = Array(mStride[0..<(m - 1)])
            Parallel.forEachRange(rows, minChunk: Swift.max(1, 16_384 / run)) { range in
                for r in range {
                    let offset = Self.stridedOffset(of: r, shape: outerShape, strides: outerStride)
                    (dst.pointer + r * run).update(from: src.pointer + offset, count: run)
                }
            }
            return out
        }

        if m >= 2, mStride[m - 2] == 1, mStride[m - 1] == mShape[m - 2] {
            // Batched 2-D transpose: out[..., i, j] = in[..., j, i]; blocked for cache reuse.
            let rowsOut = mShape[m - 2], colsOut = mShape[m - 1]
            let batchShape = Array(mShape[0..<(m - 2)])
            let batchStride = Array(mStride[0..<(m - 2)])
            let batches = batchShape.reduce(1, *)
            let block = 32
            let tilesR = (rowsOut + block - 1) / block
            let tiles = batches * tilesR
            Parallel.forEachRange(tiles, minChunk: Swift.max(1, 16_384 / Swift.max(1, block * colsOut))) { range in
                for t in range {
                    let bIndex = t / tilesR
                    let r0 = (t % tilesR) * block
                    let r1 = Swift.min(rowsOut, r0 + block)
                    var rem = bIndex
                    var inBase = 0
                    for d in stride(from: batchShape.count - 1, through: 0, by: -1) {
                        inBase += (rem % batchShape[d]) * batchStride[d]
                        rem /= batchShape[d]
                    }
                    let outBase = bIndex * rowsOut * colsOut
                    var c0 = 0
                    while c0 < colsOut {
                        // Contiguous writes, reads strided by rowsOut within a block that stays in L1.
                        let c1 = Swift.min(colsOut, c0 + block)
                        let s = src.pointer + inBase
                        for r in r0..<r1 {
                            let o = dst.pointer + outBase + r * colsOut
                            for c in c0..<c1 { o[c] = s[c * rowsOut + r] }
                        }
                        c0 = c1
                    }
                }
            }
            return out
        }

        // General case: strided walk along the innermost output dimension.
        let run = mShape[m - 1]
        let runStride = mStride[m - 1]
        let rows = out.count / run
        let outerShape = Array(mShape[0..<(m - 1)])
        let outerStride = Array(mStride[0..<(m - 1)])
        Parallel.forEachRange(rows, minChunk: Swift.max(1, 8_192 / run)) { range in
            for r in range {
                let s = src.pointer + Self.stridedOffset(of: r, shape: outerShape, strides: outerStride)
                let o = dst.pointer + r * run
                for j in 0..<run { o[j] = s[j * runStride] }
            }
        }
        return out
    }
}

extension Ops {
    /// Input offset of row-major index `index` over `shape` when the input walks it with `strides`.
    @inline(__always)
    static func stridedOffset(of index: Int, shape: [Int], strides: [Int]) -> Int {
        var rem = index
        var offset = 0
        for d in stride(from: shape.count - 1, through: 0, by: -1) {
            offset += (rem % shape[d]) * strides[d]
            rem /= shape[d]
        }
        return offset
    }
}
