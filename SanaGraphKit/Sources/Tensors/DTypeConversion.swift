// Bulk conversion between stored element types (F16, BF16, I64, I32, U8, BOOL, F32) and fp32 compute.
//
// Loops run over typed, aligned pointers so the compiler vectorises them (F16 uses `vcvtph2ps`/`vcvtps2ph`
// because this module is built with `-Xcc -mf16c`); misaligned sources (safetensors does not promise
// alignment) go through a small aligned bounce buffer. Large conversions are split over cores.

/// Conversions between stored dtypes and fp32.
public enum DTypeConversion {
    /// Elements converted per parallel chunk: ~64 Ki elements is tens of microseconds of work.
    @usableFromInline static let parallelChunk = 1 << 16
    /// Elements per bounce-buffer round for misaligned data.
    @usableFromInline static let bounceCount = 4096

    // MARK: Scalars

    /// fp32 → bf16 bits with round-to-nearest-even; NaN becomes the quiet NaN 0x7FC0 (as PyTorch's
    /// `c10::BFloat16` does), infinities stay infinite, large finite values may round to infinity.
    @inlinable @inline(__always)
    public static func bf16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let rounded = (bits &+ (0x7FFF &+ ((bits >> 16) & 1))) >> 16
        return x.isNaN ? 0x7FC0 : UInt16(truncatingIfNeeded: rounded)
    }

    /// bf16 bits → fp32 (exact).
    @inlinable @inline(__always)
    public static func float(fromBF16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// fp32 → Int64 truncating toward zero like `tensor.to(torch.int64)`; NaN becomes 0 and values beyond
    /// the Int64 range saturate (PyTorch leaves those undefined; we must not trap).
    @inlinable @inline(__always)
    public static func int64(_ x: Float) -> Int64 {
        if x.isNaN { return 0 }
        if x >= 9.223372e18 { return .max }
        if x <= -9.223372e18 { return .min }
        return Int64(x)
    }

    /// fp32 → Int32, truncating toward zero; NaN → 0; saturating.
    @inlinable @inline(__always)
    public static func int32(_ x: Float) -> Int32 {
        if x.isNaN { return 0 }
        if x >= 2147483648 { return .max }  // 2^31
        if x <= -2147483648 { return .min }
        return Int32(x)
    }

    /// fp32 → UInt8, truncating toward zero and clamping to 0...255; NaN → 0.
    @inlinable @inline(__always)
    public static func uint8(_ x: Float) -> UInt8 {
        if !(x > 0) { return 0 }  // also NaN
        if x >= 255 { return 255 }
        return UInt8(x)
    }

    // MARK: Bulk decode (stored → fp32)

    /// Decodes `count` elements of `dtype` stored little-endian at `source` (any alignment) into fp32.
    /// BOOL bytes decode as 0 or 1 (any non-zero byte is true).
    public static func decode(_ dtype: DType, from source: UnsafeRawPointer, count: Int,
                              into destination: UnsafeMutablePointer<Float>) {
        guard count > 0 else { return }
        let src = SendableRaw(source)
        let dst = SendablePointer(destination)
        Parallel.forEachRange(count, minChunk: parallelChunk) { range in
            decodeSerial(dtype, src.pointer + range.lowerBound * dtype.size, count: range.count,
                         dst.pointer + range.lowerBound)
        }
    }

    /// Single-threaded decode of one range.
    static func decodeSerial(_ dtype: DType, _ src: UnsafeRawPointer, count: Int, _ dst: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32: UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: count * 4)
        case .f16: withAligned(src, count: count, as: Float16.self, dst, decodeF16)
        case .bf16: withAligned(src, count: count, as: UInt16.self, dst, decodeBF16)
        case .i64: withAligned(src, count: count, as: Int64.self, dst, decodeI64)
        case .i32: withAligned(src, count: count, as: Int32.self, dst, decodeI32)
        case .u8: decodeU8(src.assumingMemoryBound(to: UInt8.self), count, dst)
        case .bool: decodeBool(src.assumingMemoryBound(to: UInt8.self), count, dst)
        }
    }

    /// Calls `body` with `src` viewed as `T` when aligned, else through an aligned bounce buffer.
    private static func withAligned<T>(_ src: UnsafeRawPointer, count: Int, as: T.Type,
                                       _ dst: UnsafeMutablePointer<Float>,
                                       _ body: (UnsafePointer<T>, Int, UnsafeMutablePointer<Float>) -> Void) {
        if Int(bitPattern: src) % MemoryLayout<T>.alignment == 0 {
            body(src.assumingMemoryBound(to: T.self), count, dst)
            return
        }
        let bounce = UnsafeMutablePointer<T>.allocate(capacity: bounceCount)
        defer { bounce.deallocate() }
        var done = 0
        while done < count {
            let n = min(bounceCount, count - done)
            UnsafeMutableRawPointer(bounce).copyMemory(from: src + done * MemoryLayout<T>.stride,
                                                       byteCount: n * MemoryLayout<T>.stride)
            body(bounce, n, dst + done)
            done += n
        }
    }

    private static func decodeF16(_ s: UnsafePointer<Float16>, _ n: Int, _ d: UnsafeMutablePointer<Float>) {
        for i in 0..<n { d[i] = Float(s[i]) }
    }

    private static func decodeBF16(_ s: UnsafePointer<UInt16>, _ n: Int, _ d: UnsafeMutablePointer<Float>) {
        for i in 0..<n { d[i] = Float(bitPattern: UInt32(s[i]) << 16) }
    }

    private static func decodeI64(_ s: UnsafePointer<Int64>, _ n: Int, _ d: UnsafeMutablePointer<Float>) {
        for i in 0..<n { d[i] = Float(s[i]) }
    }

    private static func decodeI32(_ s: UnsafePointer<Int32>, _ n: Int, _ d: UnsafeMutablePointer<Float>) {
        for i in 0..<n { d[i] = Float(s[i]) }
    }

    private static func decodeU8(_ s: UnsafePointer<UInt8>, _ n: Int, _ d: UnsafeMutablePointer<Float>) {
        for i in 0..<n { d[i] = Float(s[i]) }
    }

    private static func decodeBool(_ s: UnsafePointer<UInt8>, _ n: Int, _ d: UnsafeMutablePointer<Float>) {
        for i in 0..<n { d[i] = s[i] != 0 ? 1 : 0 }
    }

    // MARK: Bulk encode (fp32 → stored)

    /// Encodes `count` fp32 values as `dtype` (little-endian) at `destination` (any alignment).
    /// F16 and BF16 round to nearest even (F16 overflows to ±inf like PyTorch); integer types truncate
    /// toward zero and saturate (NaN → 0); BOOL stores 1 for any non-zero value (NaN is true, as in PyTorch).
    public static func encode(_ source: UnsafePointer<Float>, count: Int, as dtype: DType,
                              into destination: UnsafeMutableRawPointer) {
        guard count > 0 else { return }
        let src = SendablePointer(UnsafeMutablePointer(mutating: source))
        let dst = SendableMutableRaw(destination)
        Parallel.forEachRange(count, minChunk: parallelChunk) { range in
            encodeSerial(UnsafePointer(src.pointer + range.lowerBound), count: range.count, dtype,
                         dst.pointer + range.lowerBound * dtype.size)
        }
    }

    static func encodeSerial(_ src: UnsafePointer<Float>, count: Int, _ dtype: DType, _ dst: UnsafeMutableRawPointer) {
        switch dtype {
        case .f32: dst.copyMemory(from: src, byteCount: count * 4)
        case .f16: encodeAligned(src, count: count, as: Float16.self, dst, encodeF16)
        case .bf16: encodeAligned(src, count: count, as: UInt16.self, dst, encodeBF16)
        case .i64: encodeAligned(src, count: count, as: Int64.self, dst) { s, n, d in for i in 0..<n { d[i] = int64(s[i]) } }
        case .i32: encodeAligned(src, count: count, as: Int32.self, dst) { s, n, d in for i in 0..<n { d[i] = int32(s[i]) } }
        case .u8:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { d[i] = uint8(src[i]) }
        case .bool:
            let d = dst.assumingMemoryBound(to: UInt8.self)
            for i in 0..<count { d[i] = src[i] != 0 ? 1 : 0 }
        }
    }

    private static func encodeAligned<T>(_ src: UnsafePointer<Float>, count: Int, as: T.Type,
                                         _ dst: UnsafeMutableRawPointer,
                                         _ body: (UnsafePointer<Float>, Int, UnsafeMutablePointer<T>) -> Void) {
        if Int(bitPattern: dst) % MemoryLayout<T>.alignment == 0 {
            body(src, count, dst.assumingMemoryBound(to: T.self))
            return
        }
        let bounce = UnsafeMutablePointer<T>.allocate(capacity: bounceCount)
        defer { bounce.deallocate() }
        var done = 0
        while done < count {
            let n = min(bounceCount, count - done)
            body(src + done, n, bounce)
            (dst + done * MemoryLayout<T>.stride).copyMemory(from: bounce, byteCount: n * MemoryLayout<T>.stride)
            done += n
        }
    }

    private static func encodeF16(_ s: UnsafePointer<Float>, _ n: Int, _ d: UnsafeMutablePointer<Float16>) {
        for i in 0..<n { d[i] = Float16(s[i]) }
    }

    private static func encodeBF16(_ s: UnsafePointer<Float>, _ n: Int, _ d: UnsafeMutablePointer<UInt16>) {
        for i in 0..<n { d[i] = bf16Bits(s[i]) }
    }
}

extension Tensor {
    /// A fp32 tensor decoded from `count(shape)` elements of `dtype` stored at `bytes`.
    /// The caller guarantees `bytes` holds `shape.product * dtype.size` bytes.
    public init(decoding bytes: UnsafeRawPointer, dtype: DType, shape: [Int]) {
        self.init(uninitialized: shape)
        let n = count
        withUnsafeMutableBufferPointer { dst in
            if let base = dst.baseAddress { DTypeConversion.decode(dtype, from: bytes, count: n, into: base) }
        }
    }

    /// The elements encoded as `dtype` (little-endian bytes, `count * dtype.size` of them).
    public func encoded(as dtype: DType) -> [UInt8] {
        let n = count
        return [UInt8](unsafeUninitializedCapacity: n * dtype.size) { buffer, initialized in
            withUnsafeBufferPointer { src in
                if let s = src.baseAddress, let d = buffer.baseAddress {
                    DTypeConversion.encode(s, count: n, as: dtype, into: UnsafeMutableRawPointer(d))
                }
            }
            initialized = n * dtype.size
        }
    }
}

/// Raw pointers made sendable for disjoint parallel access.
struct SendableRaw: @unchecked Sendable {
    let pointer: UnsafeRawPointer
    init(_ pointer: UnsafeRawPointer) { self.pointer = pointer }
}

struct SendableMutableRaw: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
    init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
}
