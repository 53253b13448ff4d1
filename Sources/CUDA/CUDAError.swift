/// Everything that can go wrong talking to a GPU. Messages say what was tried and what to do.
public enum CUDAError: Error, CustomStringConvertible, Equatable, Sendable {
    /// `libcuda.so.1` could not be opened: no NVIDIA driver on this machine (or not visible to this process).
    case noDriver(tried: [String], reason: String)
    /// A CUDA toolkit library (NVRTC, cuBLASLt) could not be opened.
    case libraryNotFound(library: String, tried: [String], reason: String)
    /// A library lacks an entry point this program needs (too old a version).
    case missingSymbol(library: String, symbol: String)
    /// The driver is there but reports no GPU (or the index is past the last one).
    case noDevice(index: Int, count: Int)
    /// A driver API call failed.
    case driver(call: String, code: Int32, name: String, message: String)
    /// NVRTC failed outside compilation proper (creating or reading a program).
    case nvrtc(call: String, code: Int32, message: String)
    /// A kernel source did not compile; `log` is NVRTC's log.
    case compile(module: String, log: String)
    /// A cuBLASLt call failed (`status` is its cublasStatus_t).
    case cublas(call: String, status: Int32)
    /// The device could not hold an allocation even after the cache was emptied.
    case outOfMemory(bytes: Int, free: Int, total: Int)
    /// A request the CUDA path does not handle (shape, dtype, model option).
    case unsupported(String)

    public var description: String {
        switch self {
        case .noDriver(let tried, let reason):
            return "no CUDA driver found: could not load \(tried.joined(separator: ", "))"
                + (reason.isEmpty ? "" : " (\(reason))")
                + ". A GPU run needs an NVIDIA GPU with its driver installed; use device 'cpu' otherwise"
        case .libraryNotFound(let library, let tried, let reason):
            return "CUDA library \(library) not found (tried \(tried.joined(separator: ", "))"
                + (reason.isEmpty ? "" : "; last error: \(reason)")
                + "). Install the CUDA toolkit runtime libraries or point SANAGRAPH_CUDA_LIBRARY_PATH at their folder"
        case .missingSymbol(let library, let symbol):
            return "\(library) has no entry point \(symbol): the installed version is too old for SanaGraph"
        case .noDevice(let index, let count):
            return count == 0 ? "the CUDA driver reports no GPU"
                : "there is no GPU cuda:\(index) (this machine has \(count): cuda:0 … cuda:\(count - 1))"
        case .driver(let call, let code, let name, let message):
            return "CUDA driver call \(call) failed: \(name) (\(code)): \(message)"
        case .nvrtc(let call, let code, let message):
            return "NVRTC call \(call) failed (\(code)): \(message)"
        case .compile(let module, let log):
            return "CUDA kernels '\(module)' did not compile:\n\(log)"
        case .cublas(let call, let status):
            return "cuBLASLt call \(call) failed with status \(status)"
        case .outOfMemory(let bytes, let free, let total):
            return "GPU out of memory: needed \(bytes) bytes, \(free) of \(total) free after emptying the cache"
        case .unsupported(let message):
            return "not supported on CUDA: \(message)"
        }
    }
}
