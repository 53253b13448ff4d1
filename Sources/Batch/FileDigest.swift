import Crypto
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 of files and texts, as lowercase hex.
enum FileDigest {
    /// The file's SHA-256 and size, streamed in 1 MiB reads; nil if it can't be read.
    static func sha256(path: String) -> (hex: String, bytes: Int)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var sha = SHA256()
        var total = 0
        let chunk = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            sha.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n))
            total += n
        }
        return (hex(sha.finalize()), total)
    }

    static func sha256(_ text: String) -> String { hex(SHA256.hash(data: Array(text.utf8))) }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        digest.map { String(format: "%02x", $0) }.joined()
    }
}
