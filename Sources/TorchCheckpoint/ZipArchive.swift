import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A file mapped read-only into memory (`PROT_READ`, `MAP_PRIVATE`); unmapped when released.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let size: Int

    init(path: String) throws(TorchCheckpointError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .unreadable(path: path, reason: "not a regular file") }
        size = Int(st.st_size)
        guard size >= 22 else { throw .notACheckpoint(path: path, reason: "\(size) bytes is too small for a zip archive") }
        let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let p, p != MAP_FAILED else { throw .unreadable(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))") }
        base = UnsafeRawPointer(p)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// The stored (uncompressed) members of a zip archive, as `torch.save` writes them (PyTorch's zip writer never
/// compresses). Central directory, ZIP64 records and every offset are checked against the file size.
struct ZipArchive {
    struct Entry {
        let name: String
        /// Offset of the member's data in the file.
        let dataOffset: Int
        let size: Int
    }

    let entries: [String: Entry]

    init(_ file: MappedFile, path: String) throws(TorchCheckpointError) {
        let reader = ByteReader(base: file.base, size: file.size, path: path)
        // End of central directory: the last 22 bytes plus at most a 64 KiB comment.
        var eocd = -1
        var i = file.size - 22
        let lowest = max(0, file.size - 22 - 65_535)
        while i >= lowest {
            if reader.u32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else {
            throw .notACheckpoint(path: path, reason: "no zip end record (a truncated file, or not a PyTorch checkpoint "
                                  + "written by torch.save since PyTorch 1.6)")
        }
        var count = Int(reader.u16(eocd + 10))
        var directorySize = Int(reader.u32(eocd + 12))
        var directoryOffset = Int(reader.u32(eocd + 16))
        if count == 0xFFFF || directorySize == 0xFFFF_FFFF || directoryOffset == 0xFFFF_FFFF {
            // ZIP64 end-of-central-directory locator just before the classic record.
            let locator = eocd - 20
            guard locator >= 0, reader.u32(locator) == 0x0706_4b50 else {
                throw .malformed(path: path, reason: "zip64 sizes without a zip64 locator")
            }
            let record = try reader.int(reader.u64(locator + 8))
            try reader.check(record, 56)
            guard reader.u32(record) == 0x0606_4b50 else { throw .malformed(path: path, reason: "bad zip64 end record") }
            count = try reader.int(reader.u64(record + 32))
            directorySize = try reader.int(reader.u64(record + 40))
            directoryOffset = try reader.int(reader.u64(record + 48))
        }
        try reader.check(directoryOffset, directorySize)
        guard count <= directorySize / 46 else { throw .malformed(path: path, reason: "central directory too short") }

        var entries: [String: Entry] = [:]
        var p = directoryOffset
        for _ in 0..<count {
            try reader.check(p, 46)
            guard reader.u32(p) == 0x0201_4b50 else { throw .malformed(path: path, reason: "bad central directory entry") }
            let flags = reader.u16(p + 8), method = reader.u16(p + 10)
            var compressed = Int(reader.u32(p + 20)), size = Int(reader.u32(p + 24))
            let nameLength = Int(reader.u16(p + 28)), extraLength = Int(reader.u16(p + 30))
            let commentLength = Int(reader.u16(p + 32))
            var local = Int(reader.u32(p + 42))
            try reader.check(p + 46, nameLength + extraLength + commentLength)
            let name = String(decoding: UnsafeRawBufferPointer(start: file.base + p + 46, count: nameLength),
                              as: UTF8.self)
            // ZIP64 extended information: the 0xFFFFFFFF fields, in this order.
            var e = p + 46 + nameLength
            let extraEnd = e + extraLength
            while e + 4 <= extraEnd {
                let id = reader.u16(e), length = Int(reader.u16(e + 2))
                guard e + 4 + length <= extraEnd else { break }
                if id == 0x0001 {
                    var q = e + 4
                    func next() throws(TorchCheckpointError) -> Int {
                        guard q + 8 <= e + 4 + length else { throw .malformed(path: path, reason: "short zip64 field") }
                        defer { q += 8 }
                        return try reader.int(reader.u64(q))
                    }
                    if size == 0xFFFF_FFFF { size = try next() }
                    if compressed == 0xFFFF_FFFF { compressed = try next() }
                    if local == 0xFFFF_FFFF { local = try next() }
                }
                e += 4 + length
            }
            guard flags & 1 == 0 else { throw .unsupported(path: path, reason: "'\(name)' is encrypted") }
            guard method == 0, compressed == size else {
                throw .unsupported(path: path, reason: "'\(name)' is compressed (method \(method)); torch.save stores "
                                   + "members uncompressed: re-save the checkpoint with torch.save")
            }
            try reader.check(local, 30)
            guard reader.u32(local) == 0x0403_4b50 else { throw .malformed(path: path, reason: "bad local header of '\(name)'") }
            let data = local + 30 + Int(reader.u16(local + 26)) + Int(reader.u16(local + 28))
            try reader.check(data, size)
            entries[name] = Entry(name: name, dataOffset: data, size: size)
            p += 46 + nameLength + extraLength + commentLength
        }
        self.entries = entries
    }
}

/// Little-endian reads with range checks.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String

    func check(_ offset: Int, _ count: Int) throws(TorchCheckpointError) {
        guard offset >= 0, count >= 0, offset <= size, count <= size - offset else {
            throw .malformed(path: path, reason: "a record at byte \(offset) runs past the end of the file (\(size) "
                             + "bytes): the file is truncated or corrupt")
        }
    }

    func int(_ v: UInt64) throws(TorchCheckpointError) -> Int {
        guard v <= UInt64(Int.max) else { throw .malformed(path: path, reason: "offset out of range") }
        return Int(v)
    }

    func u16(_ o: Int) -> UInt16 { UInt16(base.load(fromByteOffset: o, as: UInt8.self)) | UInt16(base.load(fromByteOffset: o + 1, as: UInt8.self)) << 8 }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) | UInt64(u32(o + 4)) << 32 }
}
