import Tensors

/// Element types a device tensor holds.
public enum DeviceDType: String, Sendable {
    case f32, bf16
    public var size: Int { self == .f32 ? 4 : 2 }
}

/// A dense row-major tensor in GPU memory. Host ↔ device copies are explicit: `init(_:dtype:on:)` uploads a host
/// `Tensor` (converting fp32 to bf16 on the host when asked), `toHost()` downloads (waiting for queued work).
public struct DeviceTensor: @unchecked Sendable {
    public private(set) var shape: [Int]
    public let dtype: DeviceDType
    public let buffer: DeviceBuffer
    public let context: CUDAContext
    /// Byte offset into `buffer` (views).
    public let byteOffset: Int

    public var count: Int { shape.reduce(1, *) }
    public var byteCount: Int { count * dtype.size }
    public var pointer: DevicePointer { buffer.pointer + DevicePointer(byteOffset) }

    /// A tensor whose contents the caller's kernels will write.
    public init(uninitialized shape: [Int], dtype: DeviceDType, on context: CUDAContext) throws(CUDAError) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.dtype = dtype
        self.context = context
        buffer = try context.allocator.allocate(bytes: shape.reduce(1, *) * dtype.size)
        byteOffset = 0
    }

    /// Uploads `host` (fp32) as `dtype` (bf16 rounds to nearest even on the host).
    public init(_ host: Tensor, dtype: DeviceDType = .f32, on context: CUDAContext) throws {
        try self.init(uninitialized: host.shape, dtype: dtype, on: context)
        let n = host.count
        switch dtype {
        case .f32:
            try host.withUnsafeBufferPointer { src in
                try context.copy(toDevice: pointer, from: UnsafeRawPointer(src.baseAddress!), bytes: n * 4)
            }
        case .bf16:
            var bits = [UInt16](repeating: 0, count: n)
            host.withUnsafeBufferPointer { src in
                for i in 0..<n { bits[i] = DTypeConversion.bf16Bits(src[i]) }
            }
            try bits.withUnsafeBytes { raw in
                try context.copy(toDevice: pointer, from: raw.baseAddress!, bytes: n * 2)
            }
        }
    }

    private init(shape: [Int], dtype: DeviceDType, buffer: DeviceBuffer, context: CUDAContext, byteOffset: Int) {
        self.shape = shape; self.dtype = dtype; self.buffer = buffer; self.context = context; self.byteOffset = byteOffset
    }

    /// Downloads to a host fp32 `Tensor` after all work queued on the context's stream.
    public func toHost() throws -> Tensor {
        var out = Tensor(uninitialized: shape)
        let n = count
        switch dtype {
        case .f32:
            try out.withUnsafeMutableBufferPointer { dst in
                try context.copy(toHost: UnsafeMutableRawPointer(dst.baseAddress!), from: pointer, bytes: n * 4)
            }
        case .bf16:
            var bits = [UInt16](repeating: 0, count: n)
            try bits.withUnsafeMutableBytes { raw in
                try context.copy(toHost: raw.baseAddress!, from: pointer, bytes: n * 2)
            }
            out.withUnsafeMutableBufferPointer { dst in
                for i in 0..<n { dst[i] = DTypeConversion.float(fromBF16: bits[i]) }
            }
        }
        return out
    }

    /// The same memory with another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> DeviceTensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return DeviceTensor(shape: newShape, dtype: dtype, buffer: buffer, context: context, byteOffset: byteOffset)
    }

    /// Rows `start..<start+length` of the first axis (a view sharing memory).
    public func slice(rows start: Int, _ length: Int) -> DeviceTensor {
        precondition(start >= 0 && length >= 0 && start + length <= shape[0], "slice out of range")
        let rowBytes = shape.dropFirst().reduce(1, *) * dtype.size
        var s = shape
        s[0] = length
        return DeviceTensor(shape: s, dtype: dtype, buffer: buffer, context: context,
                            byteOffset: byteOffset + start * rowBytes)
    }
}
