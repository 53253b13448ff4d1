#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Writes safetensors files atomically.
///
/// The file is written to a temporary file in the target's directory, `fsync`ed, renamed over the target and
/// the directory `fsync`ed, so readers (and a crash) see either the old file or the complete new one — never a
/// partial file. On failure the temporary file is removed and an existing target is untouched.
///
/// Output matches the Rust/Python `safetensors` writer byte for byte: tensors ordered by dtype (widest first,
/// which keeps every tensor aligned to its element size) then name, compact JSON header with `__metadata__`
/// first, padded with spaces to a multiple of 8 bytes.
public enum SafetensorsWriter {
    /// One tensor to write.
    public enum Entry: Sendable {
        /// A fp32 tensor stored as the given dtype (F16/BF16 round to nearest even).
        case tensor(Tensor, DType)
        /// Bytes already in safetensors form (e.g. copied from another file without conversion).
        case raw(RawTensorBytes)

        var dtype: DType {
            switch self {
            case .tensor(_, let d): return d
            case .raw(let r): return r.info.dtype
            }
        }

        var shape: [Int] {
            switch self {
            case .tensor(let t, _): return t.shape
            case .raw(let r): return r.info.shape
            }
        }

        var byteCount: Int {
            switch self {
            case .tensor(let t, let d): return t.count * d.size
            case .raw(let r): return r.bytes.count
            }
        }
    }

    /// Writes fp32 tensors stored as F32.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to path: String) throws {
        try write(tensors, dtype: .f32, metadata: metadata, to: path)
    }

    /// Writes fp32 tensors, all stored as `dtype` (F32, F16, BF16; integer and BOOL dtypes work too).
    public static func write(_ tensors: [String: Tensor], dtype: DType, metadata: [String: String] = [:],
                             to path: String) throws(SafetensorsError) {
        try write(entries: tensors.mapValues { .tensor($0, dtype) }, metadata: metadata, to: path)
    }

    /// Writes a mix of converted and raw entries.
    public static func write(entries: [String: Entry], metadata: [String: String] = [:],
                             to path: String) throws(SafetensorsError) {
        if entries["__metadata__"] != nil {
            throw .writeFailed(path: path, reason: "'__metadata__' is reserved and cannot name a tensor")
        }
        let order = entries.keys.sorted { a, b in
            let ra = rank(entries[a]!.dtype), rb = rank(entries[b]!.dtype)
            return ra != rb ? ra > rb : a < b
        }
        let header = headerBytes(order: order, entries: entries, metadata: metadata)
        try AtomicFile.write(to: path) { sink throws(SafetensorsError) in
            var prefix: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(header.count) >> (8 * $0)) }
            prefix += header
            try sink.write(prefix)
            for name in order {
                switch entries[name]! {
                case .raw(let r): try sink.write(r.bytes)
                case .tensor(let t, let dtype): try writeEncoded(t, dtype, sink)
                }
            }
        }
    }

    /// Dtype order of the Rust implementation (widest/most aligned first when sorted descending).
    private static func rank(_ d: DType) -> Int {
        switch d {
        case .bool: return 0
        case .u8: return 1
        case .f16: return 2
        case .bf16: return 3
        case .i32: return 4
        case .f32: return 5
        case .i64: return 6
        }
    }

    /// The JSON header (without the length prefix), padded with spaces to a multiple of 8.
    static func headerBytes(order: [String], entries: [String: Entry], metadata: [String: String]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func comma() { if !first { out.append(UInt8(ascii: ",")) }; first = false }
        if !metadata.isEmpty {
            comma()
            JSONWriter.appendString("__metadata__", to: &out)
            out.append(contentsOf: Array(":{".utf8))
            for (i, key) in metadata.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                JSONWriter.appendString(metadata[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for name in order {
            let e = entries[name]!
            comma()
            JSONWriter.appendString(name, to: &out)
            let shape = e.shape.map(String.init).joined(separator: ",")
            let end = offset + e.byteCount
            out.append(contentsOf: Array(
                ":{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}".utf8))
            offset = end
        }
        out.append(UInt8(ascii: "}"))
        while out.count % 8 != 0 { out.append(UInt8(ascii: " ")) }
        return out
    }

    /// Encodes in bounded chunks so a multi-gigabyte tensor never needs a second full-size buffer.
    private static func writeEncoded(_ t: Tensor, _ dtype: DType, _ sink: AtomicFile.Sink) throws(SafetensorsError) {
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk * 8, alignment: 64)
        defer { buffer.deallocate() }
        var failure: SafetensorsError?
        t.withUnsafeBufferPointer { src in
            guard let s = src.baseAddress else { return }
            var done = 0
            while done < src.count {
                let n = min(chunk, src.count - done)
                DTypeConversion.encode(s + done, count: n, as: dtype, into: buffer)
                do throws(SafetensorsError) { try sink.write(UnsafeRawBufferPointer(start: buffer, count: n * dtype.size)) } catch {
                    failure = error
                    return
                }
                done += n
            }
        }
        if let failure { throw failure }
    }
}

/// Atomic replacement of a file: temp file in the same directory, fsync, rename, fsync of the directory.
public enum AtomicFile {
    /// Receives the bytes of the new file in order.
    public final class Sink {
        fileprivate let fd: Int32
        fileprivate let path: String

        fileprivate init(fd: Int32, path: String) {
            self.fd = fd
            self.path = path
        }

        /// Appends `chunk`, retrying short writes and EINTR.
        public func write(_ chunk: UnsafeRawBufferPointer) throws(SafetensorsError) {
            guard var p = chunk.baseAddress else { return }
            var left = chunk.count
            while left > 0 {
                let n = AtomicFile.systemWrite(fd, p, left)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .writeFailed(path: path, reason: SafetensorsFile.errnoText(errno))
                }
                left -= n
                p += n
            }
        }

        /// Appends `bytes`.
        public func write(_ bytes: [UInt8]) throws(SafetensorsError) {
            var failure: SafetensorsError?
            bytes.withUnsafeBytes { b in
                do throws(SafetensorsError) { try write(b) } catch { failure = error }
            }
            if let failure { throw failure }
        }
    }

    /// Writes `path` through `body`, which appends the new contents to a `Sink`.
    /// Throws `SafetensorsError.writeFailed` naming `path`; on failure nothing at `path` changes.
    public static func write(to path: String, _ body: (Sink) throws(SafetensorsError) -> Void) throws(SafetensorsError) {
        func fail(_ reason: String) -> SafetensorsError { .writeFailed(path: path, reason: reason) }
        let (dir, base) = split(path)
        guard !base.isEmpty else { throw fail("the path names a directory, not a file") }
        var st = stat()
        var existingMode: mode_t?
        if stat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR { throw fail("it is a directory") }
            if (st.st_mode & S_IFMT) == S_IFREG { existingMode = st.st_mode & 0o7777 }
        }
        var dst = stat()
        if stat(dir, &dst) != 0 {
            throw fail("directory '\(dir)' \(errno == ENOENT ? "does not exist" : "is not usable: " + SafetensorsFile.errnoText(errno))")
        }
        let temp = dir + "/." + base + ".tmp-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw fail("cannot create a file in '\(dir)': \(SafetensorsFile.errnoText(errno))")
        }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temp) }
        }
        if let existingMode { _ = fchmod(fd, existingMode) }
        try body(Sink(fd: fd, path: path))
        guard fsync(fd) == 0 else { throw fail("fsync failed: \(SafetensorsFile.errnoText(errno))") }
        closed = true
        guard close(fd) == 0 else { throw fail("close failed: \(SafetensorsFile.errnoText(errno))") }
        guard rename(temp, path) == 0 else { throw fail("rename failed: \(SafetensorsFile.errnoText(errno))") }
        renamed = true
        // Make the rename itself durable.
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            _ = fsync(dfd)
            close(dfd)
        }
    }

    fileprivate static func systemWrite(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int) -> Int {
        #if canImport(Glibc)
        return Glibc.write(fd, p, n)
        #else
        return Darwin.write(fd, p, n)
        #endif
    }

    /// (directory, file name) of a path; the directory is "." for a bare name.
    static func split(_ path: String) -> (String, String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let dir = String(path[..<slash])
        return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
    }
}
