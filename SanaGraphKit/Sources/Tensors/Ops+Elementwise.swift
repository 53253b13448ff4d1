// Broadcasting elementwise arithmetic (NumPy/PyTorch rules), scalar variants and in-place fast paths.

extension Ops {
    // MARK: Broadcasting shapes

    /// The broadcast shape of two shapes under NumPy/PyTorch rules (dimensions aligned from the right; a
    /// dimension of 1 stretches), or nil when they are incompatible.
    public static func broadcastShapes(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Element strides of a contiguous tensor of `shape` read as the (broadcast) `target` shape: 0 along
    /// dimensions that broadcast. `shape` must broadcast to `target`.
    static func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: target.count)
        var step = 1
        let lead = target.count - shape.count
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[lead + i] = shape[i] == 1 ? 0 : step
            step *= shape[i]
        }
        return strides
    }

    // MARK: Tensor ⊕ tensor

    /// `a + b` with broadcasting.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, AddOp.self, "add") }
    /// `a - b` with broadcasting.
    public static func sub(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, SubOp.self, "sub") }
    /// `a * b` with broadcasting.
    public static func mul(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, MulOp.self, "mul") }
    /// `a / b` with broadcasting (true division).
    public static func div(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, DivOp.self, "div") }

    // MARK: Tensor ⊕ scalar

    /// `a + s`.
    public static func add(_ a: Tensor, _ s: Float) -> Tensor { scalar(a, s, AddOp.self) }
    /// `a - s`.
    public static func sub(_ a: Tensor, _ s: Float) -> Tensor { scalar(a, s, SubOp.self) }
    /// `s - a` (`torch.rsub`).
    public static func sub(_ s: Float, _ a: Tensor) -> Tensor { scalar(a, s, ReverseSubOp.self) }
    /// `a * s`.
    public static func mul(_ a: Tensor, _ s: Float) -> Tensor { scalar(a, s, MulOp.self) }
    /// `a / s`.
    public static func div(_ a: Tensor, _ s: Float) -> Tensor { scalar(a, s, DivOp.self) }
    /// `s / a`.
    public static func div(_ s: Float, _ a: Tensor) -> Tensor { scalar(a, s, ReverseDivOp.self) }
    /// `x * s`.
    public static func scale(_ x: Tensor, by s: Float) -> Tensor { scalar(x, s, MulOp.self) }

    // MARK: In place (only on tensors you created and have not shared: views share storage)

    /// `a += b`, where `b` broadcasts to `a`'s shape.
    public static func addInPlace(_ a: inout Tensor, _ b: Tensor) { binaryInPlace(&a, b, AddOp.self, "addInPlace") }
    /// `a -= b`, where `b` broadcasts to `a`'s shape.
    public static func subInPlace(_ a: inout Tensor, _ b: Tensor) { binaryInPlace(&a, b, SubOp.self, "subInPlace") }
    /// `a *= b`, where `b` broadcasts to `a`'s shape.
    public static func mulInPlace(_ a: inout Tensor, _ b: Tensor) { binaryInPlace(&a, b, MulOp.self, "mulInPlace") }
    /// `a /= b`, where `b` broadcasts to `a`'s shape.
    public static func divInPlace(_ a: inout Tensor, _ b: Tensor) { binaryInPlace(&a, b, DivOp.self, "divInPlace") }
    /// `a += s`.
    public static func addInPlace(_ a: inout Tensor, _ s: Float) { scalarLoop(a, s, AddOp.self, into: a) }
    /// `a *= s`.
    public static func scaleInPlace(_ a: inout Tensor, by s: Float) { scalarLoop(a, s, MulOp.self, into: a) }

    // MARK: Implementation

    /// Elements per parallel chunk for cheap memory-bound loops (~10 µs of work).
    static let elementwiseChunk = 32_768

    private static func binary<Op: BinaryOp>(_ a: Tensor, _ b: Tensor, _ op: Op.Type, _ name: String) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitialized: a.shape)
            sameShapeLoop(a, b, op, into: out)
            return out
        }
        guard let shape = broadcastShapes(a.shape, b.shape) else {
            preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let out = Tensor(uninitialized: shape)
        if out.count == 0 { return out }
        // A one-element operand that does not set the output shape is a scalar.
        if b.count == 1, shape == a.shape { scalarLoop(a, b.storage.pointer[b.offset], op, into: out); return out }
        if a.count == 1, shape == b.shape { scalarLoop(b, a.storage.pointer[a.offset], Swapped<Op>.self, into: out); return out }
        broadcastLoop(a, b, op, into: out)
        return out
    }

    private static func binaryInPlace<Op: BinaryOp>(_ a: inout Tensor, _ b: Tensor, _ op: Op.Type, _ name: String) {
        guard broadcastShapes(a.shape, b.shape) == a.shape else {
            preconditionFailure("\(name): \(b.shape) does not broadcast to the destination shape \(a.shape)")
        }
        if a.count == 0 { return }
        if a.shape == b.shape { sameShapeLoop(a, b, op, into: a) }
        else if b.count == 1 { scalarLoop(a, b.storage.pointer[b.offset], op, into: a) }
        else { broadcastLoop(a, b, op, into: a) }
    }

    private static func scalar<Op: BinaryOp>(_ a: Tensor, _ s: Float, _ op: Op.Type) -> Tensor {
        let out = Tensor(uninitialized: a.shape)
        scalarLoop(a, s, op, into: out)
        return out
    }

    /// `out[i] = op(a[i], b[i])`. `out` may alias `a` or `b` (each element is read before it is written).
    private static func sameShapeLoop<Op: BinaryOp>(_ a: Tensor, _ b: Tensor, _: Op.Type, into out: Tensor) {
        let pa = SendablePointer(a.storage.pointer + a.offset)
        let pb = SendablePointer(b.storage.pointer + b.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(out.count, minChunk: elementwiseChunk) { range in
            let x = pa.pointer, y = pb.pointer, o = po.pointer
            for i in range { o[i] = Op.apply(x[i], y[i]) }
        }
    }

    /// `out[i] = op(a[i], s)`.
    private static func scalarLoop<Op: BinaryOp>(_ a: Tensor, _ s: Float, _: Op.Type, into out: Tensor) {
        let pa = SendablePointer(a.storage.pointer + a.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(out.count, minChunk: elementwiseChunk) { range in
            let x = pa.pointer, o = po.pointer
            for i in range { o[i] = Op.apply(x[i], s) }
        }
    }

    /// General broadcasting: dimensions are merged where both operands stay contiguous, so the innermost run
    /// is contiguous (stride 1) or constant (stride 0) for each operand and vectorises.
    private static func broadcastLoop<Op: BinaryOp>(_ a: Tensor, _ b: Tensor, _: Op.Type, into out: Tensor) {
        let shape = out.shape
        let sa = broadcastStrides(a.shape, to: shape)
        let sb = broadcastStrides(b.shape, to: shape)
        var dims: [(size: Int, sa: Int, sb: Int)] = []
        for d in 0..<shape.count where shape[d] != 1 {
            if let last = dims.last, last.sa == sa[d] * shape[d], last.sb == sb[d] * shape[d] {
                dims[dims.count - 1] = (last.size * shape[d], sa[d], sb[d])
            } else {
                dims.append((shape[d], sa[d], sb[d]))
            }
        }
        guard let inner = dims.popLast() else {  // every dimension is 1
            out.storage.pointer[out.offset] = Op.apply(a.storage.pointer[a.offset], b.storage.pointer[b.offset])
            return
        }
        let n = inner.size
        let outer = dims
        let outerCount = outer.reduce(1) { $0 * $1.size }
        let pa = SendablePointer(a.storage.pointer + a.offset)
        let pb = SendablePointer(b.storage.pointer + b.offset)
        let po = SendablePointer(out.storage.pointer + out.offset)
        Parallel.forEachRange(outerCount, minChunk: Swift.max(1, elementwiseChunk / n)) { range in
            // Odometer over the outer dimensions, started at range.lowerBound.
            var index = [Int](repeating: 0, count: outer.count)
            var offA = 0, offB = 0
            var rem = range.lowerBound
            for d in stride(from: outer.count - 1, through: 0, by: -1) {
                index[d] = rem % outer[d].size
                rem /= outer[d].size
                offA += index[d] * outer[d].sa
                offB += index[d] * outer[d].sb
            }
            for row in range {
                let x = pa.pointer + offA, y = pb.pointer + offB, o = po.pointer + row * n
                switch (inner.sa, inner.sb) {
                case (1, 1): for i in 0..<n { o[i] = Op.apply(x[i], y[i]) }
                case (1, _): let s = y[0]; for i in 0..<n { o[i] = Op.apply(x[i], s) }
                case (_, 1): let s = x[0]; for i in 0..<n { o[i] = Op.apply(s, y[i]) }
                default: let v = Op.apply(x[0], y[0]); for i in 0..<n { o[i] = v }
                }
                var d = outer.count - 1
                while d >= 0 {
                    index[d] += 1
                    offA += outer[d].sa
                    offB += outer[d].sb
                    if index[d] < outer[d].size { break }
                    offA -= outer[d].sa * index[d]
                    offB -= outer[d].sb * index[d]
                    index[d] = 0
                    d -= 1
                }
            }
        }
    }
}

/// A binary scalar operation, specialised into each loop.
private protocol BinaryOp: Sendable {
    static func apply(_ a: Float, _ b: Float) -> Float
}

private enum AddOp: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
private enum SubOp: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
private enum MulOp: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
private enum DivOp: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
private enum ReverseSubOp: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { b - a } }
private enum ReverseDivOp: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { b / a } }
/// `op(b, a)`: lets a scalar left operand reuse the `op(tensor, scalar)` loop.
private enum Swapped<Op: BinaryOp>: BinaryOp { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { Op.apply(b, a) } }
