internal import SystemPackage

/// Path manipulation for nodes and the CLI, through swift-system's `FilePath` (Foundation's NSString path
/// methods trap on some ordinary paths on Linux, e.g. `a/x.png`). Paths are kept as the user wrote them:
/// relative stays relative, nothing is resolved against the file system.
public enum Paths {
    /// The folder part: `a/b.png` -> `a`, `b.png` -> `` (empty: the working directory), `/b` -> `/`.
    public static func directory(of path: String) -> String {
        var p = FilePath(path)
        guard p.lastComponent != nil else { return p.string }
        p.removeLastComponent()
        return p.string
    }

    /// The last component: `a/b.png` -> `b.png`, `a/` -> `a`, `/` -> `` (none).
    public static func fileName(of path: String) -> String {
        FilePath(path).lastComponent?.string ?? ""
    }

    /// `directory/name`; `name` alone when `directory` is empty.
    public static func join(_ directory: String, _ name: String) -> String {
        guard !directory.isEmpty else { return name }
        var p = FilePath(directory)
        p.append(name)
        return p.string
    }

    /// The extension of the last component without its dot (`x.tar.gz` -> `gz`; `.hidden` -> none).
    public static func fileExtension(of path: String) -> String? {
        guard let ext = FilePath(path).extension, !ext.isEmpty else { return nil }
        return ext
    }

    /// The last component without its extension (`a/b.png` -> `b`).
    public static func stem(of path: String) -> String {
        FilePath(path).stem ?? ""
    }

    /// Whether the last component is `.` or `..` (or there is none), i.e. the path names a folder.
    public static func namesFolder(_ path: String) -> Bool {
        if path.hasSuffix("/") { return true }
        guard let last = FilePath(path).lastComponent else { return true }
        return last.kind != .regular
    }
}
