import Foundation
import SanaGraphKit

/// File-system helpers shared by the image nodes: reading with clear errors, and atomic writes.
enum ImageFiles {
    /// The whole file, or `ImageIOError.unreadable` naming the reason (a folder, a FIFO or device such as
    /// `/dev/zero`, a file above `PNGLimits.maxFileBytes`).
    static func readBytes(_ path: String) throws -> [UInt8] {
        switch BoundedFile.read(path, limit: PNGLimits.maxFileBytes) {
        case .success(let bytes): return bytes
        case .failure(let why): throw ImageIOError.unreadable(path: path, reason: why.description)
        }
    }

    /// "path|size|mtime" of a file, for cache keys.
    static func fingerprint(_ path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ImageIOError.unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        let url = URL(fileURLWithPath: path).standardizedFileURL.path
        return "\(url)|\(st.st_size)|\(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
    }

    /// `mkdir -p` with the system's reason when a component cannot be created (e.g. "Not a directory").
    static func createDirectories(_ directory: String, displayPath: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ImageIOError.unwritable(path: displayPath, reason: "'\(directory)' exists and is not a folder")
            }
            return
        }
        let parent = Paths.directory(of: directory)
        if !parent.isEmpty && parent != directory { try createDirectories(parent, displayPath: displayPath) }
        if mkdir(directory, 0o777) != 0 && errno != EEXIST {
            throw ImageIOError.unwritable(path: displayPath,
                                          reason: "cannot create folder '\(directory)': \(String(cString: strerror(errno)))")
        }
    }

    /// A fully written and fsynced temporary file beside its destination, not yet visible under its final name.
    final class PendingFile {
        let tempPath: String
        private var committed = false

        /// Writes `bytes` to a hidden temporary file in `directory` (created if needed) and fsyncs it.
        init(bytes: [UInt8], directory: String, displayPath: String) throws {
            try ImageFiles.createDirectories(directory, displayPath: displayPath)
            tempPath = Paths.join(directory, ".sanagraph-\(UUID().uuidString).tmp")
            let fd = open(tempPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw ImageIOError.unwritable(path: displayPath, reason: String(cString: strerror(errno)))
            }
            var failure: String?
            bytes.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        failure = String(cString: strerror(errno))
                        return
                    }
                    offset += n
                }
            }
            if failure == nil && fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
            if close(fd) != 0 && failure == nil { failure = String(cString: strerror(errno)) }
            if let failure {
                unlink(tempPath)
                throw ImageIOError.unwritable(path: displayPath, reason: failure)
            }
        }

        /// Moves the file to `path`. Returns false (and keeps the temporary file) when `path` exists and
        /// `replace` is false; the check and the move are one atomic step (a hard link).
        func commit(to path: String, replace: Bool) throws -> Bool {
            if replace {
                guard rename(tempPath, path) == 0 else {
                    throw ImageIOError.unwritable(path: path, reason: String(cString: strerror(errno)))
                }
            } else {
                if link(tempPath, path) != 0 {
                    let code = errno
                    if code == EEXIST { return false }
                    // File systems without hard links: fall back to check-then-rename.
                    if code == EPERM || code == ENOTSUP || code == EOPNOTSUPP {
                        if FileManager.default.fileExists(atPath: path) { return false }
                        guard rename(tempPath, path) == 0 else {
                            throw ImageIOError.unwritable(path: path, reason: String(cString: strerror(errno)))
                        }
                        committed = true
                        syncDirectory(of: path)
                        return true
                    }
                    throw ImageIOError.unwritable(path: path, reason: String(cString: strerror(code)))
                }
                unlink(tempPath)
            }
            committed = true
            syncDirectory(of: path)
            return true
        }

        /// Removes the temporary file unless it was committed.
        func discard() {
            if !committed { unlink(tempPath) }
            committed = true
        }

        deinit { discard() }

        private func syncDirectory(of path: String) {
            let dir = Paths.directory(of: path)
            let fd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if fd >= 0 {
                fsync(fd)
                close(fd)
            }
        }
    }
}
