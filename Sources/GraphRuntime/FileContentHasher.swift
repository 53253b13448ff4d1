import SanaGraphKit
import Crypto
import Foundation
import Safetensors

#if canImport(Glibc)
import Glibc
#endif

/// Turns the fast file fingerprints nodes return (`FileFingerprint.fast`: path, size, mtime, inode) into content
/// hashes for disk-cache keys, so a file that was touched, copied back or restored with identical bytes still hits.
///
/// Each file is hashed (SHA-256, streamed) once per fast fingerprint; the result is remembered in the store's
/// `files/` folder under the SHA-256 of the fast fingerprint, so later processes only `stat` the file. A file
/// whose fast fingerprint changed between the node's `fingerprint` call and now is left as is (the key then
/// simply misses). Lines that are not fast fingerprints (e.g. `scheduler_config:…`) pass through unchanged.
public final class FileContentHasher: Sendable {
    /// Where digests are remembered (`<cache>/files`), or nil to remember nothing.
    public let memoDirectory: String?
    /// Whether new digests are written to `memoDirectory` (false for a read-only cache).
    public let writesMemos: Bool

    public init(memoDirectory: String?, writesMemos: Bool) {
        self.memoDirectory = memoDirectory
        self.writesMemos = writesMemos
    }

    /// `fingerprint` with every fast-fingerprint line replaced by `content-sha256:<hex>|size=<n>`.
    public func canonical(_ fingerprint: String) -> String {
        fingerprint.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            contentLine(String(line)) ?? String(line)
        }.joined(separator: "\n")
    }

    /// The path of a `FileFingerprint.fast` line, or nil for other lines.
    static func path(ofFastFingerprint line: String) -> String? {
        guard let size = line.range(of: "|size=", options: .backwards), line.hasPrefix("/"),
              line[size.upperBound...].contains("|mtime="), line[size.upperBound...].contains("|inode=") else {
            return nil
        }
        return String(line[..<size.lowerBound])
    }

    private func contentLine(_ line: String) -> String? {
        guard let path = Self.path(ofFastFingerprint: line),
              let now = try? FileFingerprint.fast(path), now == line else { return nil }
        let memoName = Self.sha256Hex(Array(line.utf8))
        let memoPath = memoDirectory.map { "\($0)/\(memoName.prefix(2))/\(memoName)" }
        if let memoPath, let digest = Self.readMemo(memoPath, line: line) { return Self.render(digest, line) }
        guard let digest = Self.hashFile(path) else { return nil }
        if writesMemos, let memoPath, let dir = memoDirectory {
            // Best effort: a memo that can't be written only costs a re-hash next time.
            let sub = "\(dir)/\(memoName.prefix(2))"
            mkdir(sub, 0o755)
            try? AtomicFile.write(to: memoPath) { sink throws(SafetensorsError) in
                try sink.write(Array("\(digest)\n\(line)\n".utf8))
            }
        }
        return Self.render(digest, line)
    }

    private static func render(_ digest: String, _ line: String) -> String {
        let size = line.range(of: "|size=", options: .backwards).map { line[$0.upperBound...].prefix { $0.isNumber } }
        return "content-sha256:\(digest)|size=\(size ?? "")"
    }

    /// A memo is "<64 hex digits>\n<the fast fingerprint>\n"; anything else is ignored (and re-hashed).
    static func readMemo(_ path: String, line: String) -> String? {
        guard case .success(let data) = BoundedFile.read(path, limit: 1 << 16) else { return nil }
        let parts = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].count == 64, parts[0].allSatisfy(\.isHexDigit), parts[1] == line else {
            return nil
        }
        return String(parts[0])
    }

    /// SHA-256 of a file's contents, streamed in 4 MiB reads; nil if it can't be read.
    static func hashFile(_ path: String) -> String? { sha256(path: path)?.hex }

    /// SHA-256 (lowercase hex) and size of a regular file's contents, streamed in 4 MiB reads; nil if it can't be
    /// read, is not a regular file, or the run is cancelled meanwhile.
    public static func sha256(path: String) -> (hex: String, bytes: Int)? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        var sha = SHA256()
        var total = 0
        let chunk = 4 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: chunk, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            let n = read(fd, buffer, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            // A huge (or sparse) file must not keep an interrupted run alive.
            if CancellationToken.current?.isCancelled == true { return nil }
            sha.update(bufferPointer: UnsafeRawBufferPointer(start: buffer, count: n))
            total += n
        }
        return (sha.finalize().map { String(format: "%02x", $0) }.joined(), total)
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }
}
