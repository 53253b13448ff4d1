#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// A safetensors file opened for reading.
///
/// The file is memory-mapped read-only (`mmap` with `PROT_READ`/`MAP_PRIVATE`) and its header fully validated
/// at open; tensor bytes are touched only when a tensor is asked for. The mapping lives as long as this object
/// (and any `RawTensorBytes` taken from it). Opening is cheap even for multi-gigabyte checkpoints.
///
/// Caveat: if another process truncates the file while it is mapped, reading the lost pages raises SIGBUS —
/// as with every mmap reader. Replace model files by rename (as `SafetensorsWriter` does), never in place.
public final class SafetensorsFile: @unchecked Sendable {
    /// The path as given.
    public let path: String
    /// Every tensor with a supported dtype, by name.
    public let tensors: [String: TensorInfo]
    /// Tensors in a dtype of the format that SanaGraph does not convert (F64, I8, F8_E4M3 …): name → dtype.
    public let unsupportedTensors: [String: String]
    /// The optional `__metadata__` string map.
    public let metadata: [String: String]
    /// Size of the file in bytes.
    public let fileSize: Int
    /// Offset of the data section (8 + header length).
    public let dataStart: Int

    private let base: UnsafeRawPointer

    /// Opens and validates `path`. Throws `SafetensorsError` naming the file (and tensor) on any problem.
    public init(path: String) throws(SafetensorsError) {
        self.path = path
        // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below as not a regular file).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .unreadable(path: path, reason: Self.errnoText(errno)) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, reason: Self.errnoText(errno)) }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw .unreadable(path: path, reason: "it is a directory (use SafetensorsCheckpoint for model folders)")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        fileSize = size
        if size < 8 {
            // Also avoids mmap of an empty file, which fails.
            throw .invalidHeader(path: path, reason: "the file is \(size) bytes, too short to hold the 8-byte header "
                                 + "length; it is truncated or not a safetensors file")
        }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw .unreadable(path: path, reason: "mmap failed: \(Self.errnoText(errno))")
        }
        base = UnsafeRawPointer(p)
        let header: SafetensorsHeader
        do {
            header = try SafetensorsHeader.parse(path: path, bytes: UnsafeRawBufferPointer(start: base, count: size))
        } catch {
            munmap(p, size)
            throw error
        }
        tensors = header.tensors
        unsupportedTensors = header.unsupported
        metadata = header.metadata
        dataStart = header.dataStart
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: base), fileSize)
    }

    /// Tensor names (supported dtypes only), sorted.
    public var names: [String] { tensors.keys.sorted() }

    /// Whether the file holds a tensor called `name` (of any dtype).
    public func contains(_ name: String) -> Bool { tensors[name] != nil || unsupportedTensors[name] != nil }

    /// Where tensor `name` lives, or `tensorNotFound` / `unsupportedDType`.
    public func info(_ name: String) throws(SafetensorsError) -> TensorInfo {
        if let info = tensors[name] { return info }
        if let d = unsupportedTensors[name] { throw .unsupportedDType(path: path, tensor: name, dtype: d) }
        throw .tensorNotFound(path: path, tensor: name, available: names)
    }

    /// Reads tensor `name` converted to fp32.
    public func tensor(_ name: String) throws(SafetensorsError) -> Tensor {
        let info = try info(name)
        let bytes = rawPointer(info)
        return Tensor(decoding: bytes, dtype: info.dtype, shape: info.shape)
    }

    /// Reads tensor `name` converted to fp32 like `tensor(_:)`; with `releasingSource`, then drops this process's
    /// mapped source pages of a large tensor (`MADV_DONTNEED`; the page cache keeps them and a later read
    /// re-faults them). Model loaders use it so that the mapped F16/BF16 file does not stay resident on top of
    /// the fp32 copies until the end of the load (Gemma-2-2B: 4.9 GiB of BF16 pages over 9.8 GiB of weights).
    public func tensor(_ name: String, releasingSource: Bool) throws(SafetensorsError) -> Tensor {
        let info = try info(name)
        let bytes = rawPointer(info)
        let tensor = Tensor(decoding: bytes, dtype: info.dtype, shape: info.shape)
        if releasingSource { Self.releasePages(bytes, info.byteCount) }
        return tensor
    }

    /// Decodes tensor `name` to fp32 into caller-owned memory of exactly its element count.
    public func read(_ name: String, into destination: UnsafeMutableBufferPointer<Float>) throws(SafetensorsError) {
        let info = try info(name)
        guard destination.count == info.elementCount else {
            throw .invalidTensor(path: path, tensor: name,
                                 reason: "has \(info.elementCount) elements, destination holds \(destination.count)")
        }
        guard let d = destination.baseAddress else { return }
        DTypeConversion.decode(info.dtype, from: rawPointer(info), count: info.elementCount, into: d)
    }

    /// The stored bytes of tensor `name`, without conversion or copy. The result keeps the mapping alive.
    /// `readAhead: false` for a tensor read only in parts (an embedding table gathered row by row): the kernel is
    /// not asked to read all of it in.
    public func rawBytes(_ name: String, readAhead: Bool = true) throws(SafetensorsError) -> RawTensorBytes {
        let info = try info(name)
        return RawTensorBytes(info: info, bytes: UnsafeRawBufferPointer(start: rawPointer(info, readAhead: readAhead),
                                                                        count: info.byteCount), owner: self)
    }

    private func rawPointer(_ info: TensorInfo, readAhead: Bool = true) -> UnsafeRawPointer {
        // Validated at open: dataStart + dataOffsets lies inside the mapping.
        let p = base + dataStart + info.dataOffsets.lowerBound
        if readAhead && info.byteCount >= 1 << 20 { Self.adviseWillNeed(p, info.byteCount) }
        return p
    }

    /// Asks the kernel to start reading a large tensor's pages ahead of the conversion loop.
    private static func adviseWillNeed(_ p: UnsafeRawPointer, _ count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0 else { return }
        let start = Int(bitPattern: p) & ~(page - 1)
        let end = Int(bitPattern: p) + count
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_WILLNEED))
    }

    /// Drops this process's pages of a mapped range of at least 1 MiB (smaller ones are not worth a system
    /// call and share pages with their neighbours). The mapping is read-only and private, so the data stays
    /// valid: the next read re-faults the pages from the page cache.
    static func releasePages(_ p: UnsafeRawPointer, _ count: Int) {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        guard page > 0, count >= 1 << 20 else { return }
        let start = Int(bitPattern: p) & ~(page - 1)
        let end = Int(bitPattern: p) + count
        _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, Int32(MADV_DONTNEED))
    }

    static func errnoText(_ code: Int32) -> String {
        if code == ENOENT { return "no such file" }
        return String(cString: strerror(code))
    }
}

/// The stored (unconverted) bytes of one tensor, borrowed from a mapped file that stays alive while this exists.
public struct RawTensorBytes: @unchecked Sendable {
    public let info: TensorInfo
    /// `info.byteCount` bytes in `info.dtype`, little-endian, with no alignment promise.
    public let bytes: UnsafeRawBufferPointer
    /// Keeps the mapping alive.
    public let owner: AnyObject

    public var dtype: DType { info.dtype }
    public var shape: [Int] { info.shape }

    /// Bytes from another reader (e.g. a PyTorch checkpoint) that `owner` keeps alive.
    public init(info: TensorInfo, bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.info = info
        self.bytes = bytes
        self.owner = owner
    }

    /// Decodes to a fresh fp32 tensor.
    public func decoded() -> Tensor {
        guard let b = bytes.baseAddress else { return Tensor(zeros: info.shape) }
        return Tensor(decoding: b, dtype: info.dtype, shape: info.shape)
    }

    /// Drops this process's pages of these bytes once they are converted (see
    /// `SafetensorsFile.tensor(_:releasingSource:)`); the bytes stay readable.
    public func releaseSourcePages() {
        guard let b = bytes.baseAddress else { return }
        SafetensorsFile.releasePages(b, bytes.count)
    }
}
