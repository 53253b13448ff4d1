import SanaGraphKit
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a run lock could not be taken.
public enum RunLockError: CategorizedError, Equatable {
    /// Another process holds the lock (exit 5).
    case held(path: String, holderPID: Int32?)
    /// The lock file could not be opened or locked (exit 6).
    case io(path: String, message: String)

    public var category: ErrorCategory {
        switch self {
        case .held: return .lockHeld
        case .io: return .io
        }
    }

    public var description: String {
        switch self {
        case .held(let path, let pid):
            let who = pid.map { " by process \($0)" } ?? ""
            return "\(path): lock is held\(who); another run is in progress (remove --lock or wait for it to finish)"
        case .io(let path, let message):
            return "\(path): cannot use as a lock file: \(message)"
        }
    }
}

/// An exclusive, non-blocking advisory lock on a file (`flock(LOCK_EX | LOCK_NB)`), for `--lock FILE`: a cron
/// job that starts while the previous one still runs is refused instead of piling up.
///
/// The kernel drops the lock when the process exits, however it exits, so a crashed run never leaves a stale
/// lock behind. The file itself stays (it is not the lock, only its anchor) and records the holder's pid.
public final class RunLock: @unchecked Sendable {
    // @unchecked: `fd` changes only in `release`, which callers invoke once from the owning thread.
    public let path: String
    private var fd: Int32

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    /// Takes the lock or throws `RunLockError.held` immediately (never waits).
    public static func acquire(path: String) throws -> RunLock {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw RunLockError.io(path: path, message: String(cString: strerror(errno))) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let err = errno
            let holder = readPID(fd: fd)
            close(fd)
            if err == EWOULDBLOCK || err == EAGAIN { throw RunLockError.held(path: path, holderPID: holder) }
            throw RunLockError.io(path: path, message: String(cString: strerror(err)))
        }
        // Record our pid for the next process's message; failure to write it is harmless.
        let text = "\(getpid())\n"
        if ftruncate(fd, 0) == 0 {
            _ = text.withCString { pwrite(fd, $0, strlen($0), 0) }
        }
        return RunLock(path: path, fd: fd)
    }

    /// Releases the lock (also done on deinit and, by the kernel, at process exit).
    public func release() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }

    private static func readPID(fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 31, 0) }
        guard n > 0 else { return nil }
        let text = String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return Int32(text)
    }
}
