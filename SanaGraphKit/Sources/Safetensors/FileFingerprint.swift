#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Fingerprints of files a node reads, entered into cache keys so results change when the files do.
public enum FileFingerprint {
    /// A cheap fingerprint from metadata only: absolute path, size, modification time in nanoseconds and
    /// device:inode, as `"<path>|size=<bytes>|mtime=<sec>.<nsec>|inode=<dev>:<ino>"`.
    ///
    /// Any rewrite of the file (including an atomic replace, which changes the inode) changes it; reading the
    /// contents is not needed. It does not detect an in-place edit that keeps size and restores the mtime; the
    /// content hash for the disk cache is computed separately (see the disk-cache docs).
    public static func fast(_ path: String) throws(SafetensorsError) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw .unreadable(path: path, reason: SafetensorsFile.errnoText(errno)) }
        #if canImport(Glibc)
        let sec = Int(st.st_mtim.tv_sec), nsec = Int(st.st_mtim.tv_nsec)
        #else
        let sec = Int(st.st_mtimespec.tv_sec), nsec = Int(st.st_mtimespec.tv_nsec)
        #endif
        let ns = String(nsec)
        let padded = String(repeating: "0", count: max(0, 9 - ns.count)) + ns
        return "\(absolute(path))|size=\(Int(st.st_size))|mtime=\(sec).\(padded)|inode=\(UInt64(st.st_dev)):\(UInt64(st.st_ino))"
    }

    /// The canonical absolute path (symlinks resolved), or the path as given if that fails.
    public static func absolute(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
