#if canImport(Glibc)
import Glibc
#endif

/// NVRTC (`libnvrtc.so.13`/`.12`), loaded with `dlopen`: compiles CUDA C to a CUBIN for one GPU architecture.
final class NVRTC: @unchecked Sendable {
    typealias Status = Int32
    let library: DynamicLibrary
    /// (major, minor), e.g. (13, 0).
    let version: (Int32, Int32)

    let nvrtcCreateProgram: @convention(c) (UnsafeMutablePointer<OpaquePointer?>, UnsafePointer<CChar>,
                                            UnsafePointer<CChar>?, Int32, UnsafePointer<UnsafePointer<CChar>?>?,
                                            UnsafePointer<UnsafePointer<CChar>?>?) -> Status
    let nvrtcCompileProgram: @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Status
    let nvrtcGetProgramLogSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Status
    let nvrtcGetProgramLog: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Status
    let nvrtcGetCUBINSize: @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>) -> Status
    let nvrtcGetCUBIN: @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>) -> Status
    let nvrtcDestroyProgram: @convention(c) (UnsafeMutablePointer<OpaquePointer?>) -> Status
    let nvrtcGetErrorString: @convention(c) (Status) -> UnsafePointer<CChar>?

    private init(_ lib: DynamicLibrary) throws(CUDAError) {
        library = lib
        nvrtcCreateProgram = try lib.function("nvrtcCreateProgram")
        nvrtcCompileProgram = try lib.function("nvrtcCompileProgram")
        nvrtcGetProgramLogSize = try lib.function("nvrtcGetProgramLogSize")
        nvrtcGetProgramLog = try lib.function("nvrtcGetProgramLog")
        nvrtcGetCUBINSize = try lib.function("nvrtcGetCUBINSize")
        nvrtcGetCUBIN = try lib.function("nvrtcGetCUBIN")
        nvrtcDestroyProgram = try lib.function("nvrtcDestroyProgram")
        nvrtcGetErrorString = try lib.function("nvrtcGetErrorString")
        let nvrtcVersion: @convention(c) (UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>) -> Status =
            try lib.function("nvrtcVersion")
        var major: Int32 = 0, minor: Int32 = 0
        _ = nvrtcVersion(&major, &minor)
        version = (major, minor)
    }

    private func check(_ status: Status, _ call: String) throws(CUDAError) {
        guard status != 0 else { return }
        let message = nvrtcGetErrorString(status).map { String(cString: $0) } ?? "unknown"
        throw .nvrtc(call: call, code: status, message: message)
    }

    /// Compiles `source` (named `name` in messages) with `options` to a CUBIN. Throws `.compile` with the log.
    func compile(source: String, name: String, options: [String]) throws(CUDAError) -> [UInt8] {
        var program: OpaquePointer?
        try check(nvrtcCreateProgram(&program, source, name + ".cu", 0, nil, nil), "nvrtcCreateProgram")
        defer { _ = nvrtcDestroyProgram(&program) }
        let cOptions = options.map { strdup($0) }
        defer { cOptions.forEach { free($0) } }
        let status = cOptions.map { UnsafePointer($0) }.withUnsafeBufferPointer { buffer in
            nvrtcCompileProgram(program, Int32(buffer.count), buffer.baseAddress)
        }
        if status != 0 {
            var logSize = 0
            _ = nvrtcGetProgramLogSize(program, &logSize)
            var log = [CChar](repeating: 0, count: max(logSize, 1))
            _ = nvrtcGetProgramLog(program, &log)
            throw .compile(module: name, log: log.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        var size = 0
        try check(nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize")
        var cubin = [CChar](repeating: 0, count: size)
        try check(nvrtcGetCUBIN(program, &cubin), "nvrtcGetCUBIN")
        return cubin.map { UInt8(bitPattern: $0) }
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var loaded: Result<NVRTC, CUDAError>?

    /// The process's NVRTC, loaded on first use.
    static func shared() throws(CUDAError) -> NVRTC {
        try lock.withLock { () -> Result<NVRTC, CUDAError> in
            if let loaded { return loaded }
            let r = Result<NVRTC, CUDAError> { () throws(CUDAError) -> NVRTC in
                try NVRTC(DynamicLibrary(library: "NVRTC",
                                         candidates: ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"],
                                         fallbackDirectories: DynamicLibrary.toolkitDirectories))
            }
            loaded = r
            return r
        }.get()
    }
}
