#if canImport(Glibc)
import Glibc
#endif

/// Reading user-named files without surprises: a path with a NUL byte is refused (C would cut it there), a FIFO
/// or device is refused without blocking on it (`/dev/zero` is not read forever), and a file larger than the
/// caller's limit is refused before its bytes are read.
public enum BoundedFile {
    /// Why a file can't be read; `description` is the reason, to follow "PATH: ".
    public enum Failure: Error, Equatable, CustomStringConvertible {
        case badPath(String)
        case missing
        case directory
        /// A FIFO, socket or device: `kind` says which.
        case notRegular(kind: String)
        case tooLarge(size: Int, limit: Int)
        case unreadable(String)

        public var description: String {
            switch self {
            case .badPath(let why): return why
            case .missing: return "no such file"
            case .directory: return "is a folder, not a file"
            case .notRegular(let kind): return "is \(kind), not a regular file"
            case .tooLarge(let size, let limit):
                return "is \(size) bytes, above the limit of \(limit) bytes for this kind of file"
            case .unreadable(let why): return why
            }
        }
    }

    /// nil when `path` can name a file, else why not (empty, holds a NUL byte, longer than PATH_MAX).
    public static func pathProblem(_ path: String) -> String? {
        if path.isEmpty { return "the path is empty" }
        if path.utf8.contains(0) { return "the path holds a NUL byte" }
        if path.utf8.count > GraphLimits.maxPathBytes {
            return "the path is \(path.utf8.count) bytes long, above the limit of \(GraphLimits.maxPathBytes)"
        }
        return nil
    }

    /// The kind of a non-regular file, for messages.
    public static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a folder"
        case S_IFIFO: return "a FIFO (named pipe)"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// The whole file, at most `limit` bytes.
    public static func read(_ path: String, limit: Int) -> Result<[UInt8], Failure> {
        if let problem = pathProblem(path) { return .failure(.badPath(problem)) }
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            let code = errno
            switch code {
            case ENOENT: return .failure(.missing)
            case ELOOP: return .failure(.unreadable("too many levels of symbolic links (a link loop?)"))
            default: return .failure(.unreadable(String(cString: strerror(code))))
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .failure(.unreadable(String(cString: strerror(errno)))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { return .failure(.directory) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(.notRegular(kind: kind(st.st_mode))) }
        let size = Int(st.st_size)
        guard size <= limit else { return .failure(.tooLarge(size: size, limit: limit)) }
        // Read one byte more than the limit, so a file that grows meanwhile is still caught.
        var bytes = [UInt8](repeating: 0, count: size + 1)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                return .failure(.unreadable(String(cString: strerror(errno))))
            }
            if n == 0 { break }
            filled += n
            if filled == bytes.count && filled <= limit { bytes.append(contentsOf: [UInt8](repeating: 0, count: 1 << 16)) }
            if filled > limit { return .failure(.tooLarge(size: filled, limit: limit)) }
        }
        bytes.removeLast(bytes.count - filled)
        return .success(bytes)
    }
}
