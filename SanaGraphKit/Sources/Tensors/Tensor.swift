/// Element types a tensor can be *stored* as (in files, caches). Compute is always `Float` (fp32).
public enum DType: String, Sendable, CaseIterable, Codable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case i64 = "I64"
    case i32 = "I32"
    case u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f32, .i32: return 4
        case .f16, .bf16: return 2
        case .i64: return 8
        case .u8, .bool: return 1
        }
    }
}

/// Reference-counted fp32 buffer shared by a tensor and its views.
///
/// Large buffers (≥ `BufferPool.minimumBytes`) come from `BufferPool`: 2 MiB-aligned, backed by transparent
/// huge pages where the kernel allows it, and recycled when freed, so a denoising loop that allocates the same
/// activation sizes every step does not page-fault them in again (a fresh 4 KiB page costs ~7 µs here).
public final class TensorStorage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int
    /// How `pointer` is given back: freed, returned to the pool (rounded bytes), or kept alive by an owner.
    private let release: Release

    private enum Release {
        case deallocate
        case pool(Int)
        case borrowed(AnyObject?)
    }

    /// Allocates `count` floats, zero-filled.
    public init(count: Int) {
        self.count = count
        (pointer, release) = Self.allocate(count)
        pointer.initialize(repeating: 0, count: Swift.max(count, 1))
    }

    /// Allocates `count` floats without initialising them (caller writes every element).
    public init(uninitializedCount count: Int) {
        self.count = count
        (pointer, release) = Self.allocate(count)
    }

    /// Wraps memory this storage does not own (e.g. fp32 weights inside a memory-mapped file): `owner` is kept
    /// alive as long as the storage and nothing is freed. The memory must stay valid and hold `count` floats.
    /// Such tensors are read-only by contract (a read-only mapping faults on write).
    public init(borrowing pointer: UnsafeMutablePointer<Float>, count: Int, owner: AnyObject?) {
        self.count = count
        self.pointer = pointer
        release = .borrowed(owner)
    }

    private static func allocate(_ count: Int) -> (UnsafeMutablePointer<Float>, Release) {
        let bytes = Swift.max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= BufferPool.minimumBytes, let (p, rounded) = BufferPool.shared.take(bytes: bytes) {
            return (p.assumingMemoryBound(to: Float.self), .pool(rounded))
        }
        return (.allocate(capacity: Swift.max(count, 1)), .deallocate)
    }

    /// Whether the memory belongs to someone else (a file mapping): `Tensor.withUnsafeMutableBufferPointer` copies
    /// such storage before writing.
    public var isBorrowed: Bool {
        if case .borrowed = release { return true }
        return false
    }

    deinit {
        switch release {
        case .deallocate: pointer.deallocate()
        case .pool(let bytes): BufferPool.shared.give(UnsafeMutableRawPointer(pointer), bytes: bytes)
        case .borrowed: break
        }
    }
}

/// A dense, contiguous, row-major fp32 tensor.
///
/// Value semantics: kernels return new tensors, and `withUnsafeMutableBufferPointer` is copy-on-write — it copies
/// the elements first when the storage is shared (a view made by `reshaped`, a value held by a cache or another
/// node) or borrowed from a file mapping, so a write never changes another value or a weights file. Kernels that
/// fill a tensor they just allocated may write through `storage.pointer` directly.
public struct Tensor: Sendable {
    public private(set) var shape: [Int]
    public private(set) var storage: TensorStorage
    /// Element offset into `storage` (non-zero for views made by `slice(batch:)`).
    public private(set) var offset: Int

    public var count: Int { shape.reduce(1, *) }
    public var rank: Int { shape.count }
    /// Bytes this tensor's elements occupy in fp32.
    public var byteCount: Int { count * MemoryLayout<Float>.stride }

    /// A zero-filled tensor.
    public init(zeros shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(count: shape.reduce(1, *))
        self.offset = 0
    }

    /// A tensor whose contents the caller will overwrite completely.
    public init(uninitialized shape: [Int]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.storage = TensorStorage(uninitializedCount: shape.reduce(1, *))
        self.offset = 0
    }

    /// A tensor holding `values` (row-major) with `shape`.
    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(uninitialized: shape)
        values.withUnsafeBufferPointer { src in
            storage.pointer.update(from: src.baseAddress!, count: values.count)
        }
    }

    /// A tensor filled with `value`.
    public init(repeating value: Float, shape: [Int]) {
        self.init(uninitialized: shape)
        storage.pointer.update(repeating: value, count: count)
    }

    /// A view over existing storage.
    public init(storage: TensorStorage, shape: [Int], offset: Int = 0) {
        precondition(offset + shape.reduce(1, *) <= storage.count, "view \(shape) at \(offset) exceeds storage")
        self.storage = storage
        self.shape = shape
        self.offset = offset
    }

    /// The elements as an array (copies).
    public var scalars: [Float] {
        Array(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Same elements, new shape (no copy). One dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var dims = newShape
        if let i = dims.firstIndex(of: -1) {
            let known = dims.enumerated().filter { $0.offset != i }.map(\.element).reduce(1, *)
            precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
            dims[i] = count / known
        }
        precondition(dims.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(storage: storage, shape: dims, offset: offset)
    }

    /// Read-only access to the elements.
    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// Mutable access to the elements, copy-on-write: when the storage is shared with another tensor or borrowed
    /// from a file mapping, this tensor first gets its own copy.
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        if !isKnownUniquelyReferenced(&storage) || storage.isBorrowed { self = copy() }
        return try body(UnsafeMutableBufferPointer(start: storage.pointer + offset, count: count))
    }

    /// A deep copy with its own storage.
    public func copy() -> Tensor {
        let out = Tensor(uninitialized: shape)
        out.storage.pointer.update(from: storage.pointer + offset, count: count)
        return out
    }

    /// Element at a multi-index (slow; for tests and small tensors).
    public subscript(_ index: Int...) -> Float {
        precondition(index.count == shape.count, "index rank \(index.count) != tensor rank \(shape.count)")
        var flat = 0
        for (i, d) in zip(index, shape) {
            precondition(i >= 0 && i < d, "index \(index) out of bounds for \(shape)")
            flat = flat * d + i
        }
        return storage.pointer[offset + flat]
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor(shape: \(shape))" }
}
