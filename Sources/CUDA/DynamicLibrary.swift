#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A shared library opened with `dlopen` at run time (the CUDA libraries are never linked at build time).
/// Never closed: the driver and the math libraries live as long as the process.
final class DynamicLibrary: @unchecked Sendable {
    let name: String
    let path: String
    private let handle: UnsafeMutableRawPointer

    /// Opens the first of `candidates` that loads: in the `SANAGRAPH_CUDA_LIBRARY_PATH` directories, then by
    /// soname (the loader's own search: `LD_LIBRARY_PATH`, ld.so.cache), then in `fallbackDirectories`.
    /// Throws `CUDAError.libraryNotFound` listing everything tried and the last loader message.
    init(library name: String, candidates: [String], fallbackDirectories: [String] = []) throws(CUDAError) {
        self.name = name
        var tried: [String] = []
        var lastReason = ""
        let bare = candidates.filter { !$0.contains("/") }  // paths are tried as given, names also in folders
        func inDirs(_ dirs: [String]) -> [String] { dirs.flatMap { dir in bare.map { dir + "/" + $0 } } }
        let paths = inDirs(Self.userDirectories) + candidates + inDirs(fallbackDirectories)
        for path in paths {
            tried.append(path)
            if let h = dlopen(path, RTLD_NOW | RTLD_LOCAL) {
                handle = h
                self.path = path
                return
            }
            if let e = dlerror() { lastReason = String(cString: e) }
        }
        throw .libraryNotFound(library: name, tried: tried, reason: lastReason)
    }

    /// The entry point `symbol` reinterpreted as the C function type `T`.
    func function<T>(_ symbol: String, as type: T.Type = T.self) throws(CUDAError) -> T {
        guard let p = dlsym(handle, symbol) else { throw .missingSymbol(library: name, symbol: symbol) }
        return unsafeBitCast(p, to: T.self)
    }

    /// The first of `symbols` that exists (newer versioned names first), as `T`.
    func function<T>(anyOf symbols: [String], as type: T.Type = T.self) throws(CUDAError) -> T {
        for s in symbols { if let p = dlsym(handle, s) { return unsafeBitCast(p, to: T.self) } }
        throw .missingSymbol(library: name, symbol: symbols.joined(separator: " | "))
    }

    /// `SANAGRAPH_CUDA_LIBRARY_PATH` (colon-separated directories), searched before anything else.
    static var userDirectories: [String] {
        guard let env = getenv("SANAGRAPH_CUDA_LIBRARY_PATH") else { return [] }
        return String(cString: env).split(separator: ":").map(String.init)
    }

    /// Directories where the CUDA toolkit libraries (NVRTC, cuBLASLt) are usually installed.
    static var toolkitDirectories: [String] {
        var dirs: [String] = []
        if let home = getenv("CUDA_HOME") { dirs.append(String(cString: home) + "/lib64") }
        dirs += ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
        for version in ["13.2", "13.1", "13.0", "12.9", "12.8", "12.6", "12.4"] {
            dirs.append("/usr/local/cuda-\(version)/targets/x86_64-linux/lib")
        }
        dirs.append("/usr/lib/x86_64-linux-gnu")
        return dirs
    }
}
