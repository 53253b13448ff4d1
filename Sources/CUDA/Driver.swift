#if canImport(Glibc)
import Glibc
#endif

/// `CUdeviceptr`.
public typealias DevicePointer = UInt64
/// `CUstream`, `CUcontext`, `CUmodule`, `CUfunction`, `CUevent` (opaque handles).
public typealias CUHandle = OpaquePointer

/// The CUDA driver API (`libcuda.so.1`), loaded once per process with `dlopen`. Only the calls SanaGraph uses,
/// declared here with their C signatures (cuda.h, CUDA 12/13; `_v2` names where the header maps to them).
final class CUDADriver: @unchecked Sendable {
    typealias Status = Int32
    let library: DynamicLibrary
    let version: Int32

    let cuInit: @convention(c) (UInt32) -> Status
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Status
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Status
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Status
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Status
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Status
    let cuDeviceTotalMem: @convention(c) (UnsafeMutablePointer<Int>, Int32) -> Status
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<CUHandle?>, Int32) -> Status
    let cuCtxSetCurrent: @convention(c) (CUHandle?) -> Status
    let cuCtxSynchronize: @convention(c) () -> Status
    let cuMemGetInfo: @convention(c) (UnsafeMutablePointer<Int>, UnsafeMutablePointer<Int>) -> Status
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<DevicePointer>, Int) -> Status
    let cuMemFree: @convention(c) (DevicePointer) -> Status
    let cuMemcpyHtoDAsync: @convention(c) (DevicePointer, UnsafeRawPointer, Int, CUHandle?) -> Status
    let cuMemcpyDtoHAsync: @convention(c) (UnsafeMutableRawPointer, DevicePointer, Int, CUHandle?) -> Status
    let cuMemcpyDtoDAsync: @convention(c) (DevicePointer, DevicePointer, Int, CUHandle?) -> Status
    let cuMemsetD8Async: @convention(c) (DevicePointer, UInt8, Int, CUHandle?) -> Status
    let cuMemsetD32Async: @convention(c) (DevicePointer, UInt32, Int, CUHandle?) -> Status
    let cuStreamCreate: @convention(c) (UnsafeMutablePointer<CUHandle?>, UInt32) -> Status
    let cuStreamDestroy: @convention(c) (CUHandle?) -> Status
    let cuStreamSynchronize: @convention(c) (CUHandle?) -> Status
    let cuModuleLoadData: @convention(c) (UnsafeMutablePointer<CUHandle?>, UnsafeRawPointer) -> Status
    let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<CUHandle?>, CUHandle?, UnsafePointer<CChar>) -> Status
    let cuFuncSetAttribute: @convention(c) (CUHandle?, Int32, Int32) -> Status
    let cuLaunchKernel: @convention(c) (CUHandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUHandle?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Status
    let cuEventCreate: @convention(c) (UnsafeMutablePointer<CUHandle?>, UInt32) -> Status
    let cuEventRecord: @convention(c) (CUHandle?, CUHandle?) -> Status
    let cuEventSynchronize: @convention(c) (CUHandle?) -> Status
    let cuEventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, CUHandle?, CUHandle?) -> Status
    let cuEventDestroy: @convention(c) (CUHandle?) -> Status
    let cuGetErrorName: @convention(c) (Status, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Status
    let cuGetErrorString: @convention(c) (Status, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Status

    // Device attributes (CUdevice_attribute).
    static let attributeMultiprocessorCount: Int32 = 16
    static let attributeComputeCapabilityMajor: Int32 = 75
    static let attributeComputeCapabilityMinor: Int32 = 76
    static let attributeMaxSharedMemoryPerBlockOptin: Int32 = 97
    /// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.
    static let functionAttributeMaxDynamicSharedBytes: Int32 = 8

    private init(_ lib: DynamicLibrary) throws(CUDAError) {
        library = lib
        cuInit = try lib.function("cuInit")
        cuDriverGetVersion = try lib.function("cuDriverGetVersion")
        cuDeviceGetCount = try lib.function("cuDeviceGetCount")
        cuDeviceGet = try lib.function("cuDeviceGet")
        cuDeviceGetName = try lib.function("cuDeviceGetName")
        cuDeviceGetAttribute = try lib.function("cuDeviceGetAttribute")
        cuDeviceTotalMem = try lib.function("cuDeviceTotalMem_v2")
        cuDevicePrimaryCtxRetain = try lib.function("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try lib.function("cuCtxSetCurrent")
        cuCtxSynchronize = try lib.function("cuCtxSynchronize")
        cuMemGetInfo = try lib.function("cuMemGetInfo_v2")
        cuMemAlloc = try lib.function("cuMemAlloc_v2")
        cuMemFree = try lib.function("cuMemFree_v2")
        cuMemcpyHtoDAsync = try lib.function("cuMemcpyHtoDAsync_v2")
        cuMemcpyDtoHAsync = try lib.function("cuMemcpyDtoHAsync_v2")
        cuMemcpyDtoDAsync = try lib.function("cuMemcpyDtoDAsync_v2")
        cuMemsetD8Async = try lib.function("cuMemsetD8Async")
        cuMemsetD32Async = try lib.function("cuMemsetD32Async")
        cuStreamCreate = try lib.function("cuStreamCreate")
        cuStreamDestroy = try lib.function("cuStreamDestroy_v2")
        cuStreamSynchronize = try lib.function("cuStreamSynchronize")
        cuModuleLoadData = try lib.function("cuModuleLoadData")
        cuModuleGetFunction = try lib.function("cuModuleGetFunction")
        cuFuncSetAttribute = try lib.function("cuFuncSetAttribute")
        cuLaunchKernel = try lib.function("cuLaunchKernel")
        cuEventCreate = try lib.function("cuEventCreate")
        cuEventRecord = try lib.function("cuEventRecord")
        cuEventSynchronize = try lib.function("cuEventSynchronize")
        cuEventElapsedTime = try lib.function(anyOf: ["cuEventElapsedTime_v2", "cuEventElapsedTime"])
        cuEventDestroy = try lib.function("cuEventDestroy_v2")
        cuGetErrorName = try lib.function("cuGetErrorName")
        cuGetErrorString = try lib.function("cuGetErrorString")
        var v: Int32 = 0
        _ = cuDriverGetVersion(&v)
        version = v
    }

    /// Throws `.driver` with the driver's own name and message when `status` is not CUDA_SUCCESS.
    func check(_ status: Status, _ call: @autoclosure () -> String) throws(CUDAError) {
        guard status != 0 else { return }
        var name: UnsafePointer<CChar>?
        var message: UnsafePointer<CChar>?
        _ = cuGetErrorName(status, &name)
        _ = cuGetErrorString(status, &message)
        throw .driver(call: call(), code: status, name: name.map { String(cString: $0) } ?? "CUDA_ERROR_\(status)",
                      message: message.map { String(cString: $0) } ?? "unknown error")
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var loaded: Result<CUDADriver, CUDAError>?

    /// The process's driver, loaded and initialised on first use. `SANAGRAPH_CUDA_DRIVER` names another
    /// library file instead of `libcuda.so.1`.
    static func shared() throws(CUDAError) -> CUDADriver {
        try lock.withLock { () -> Result<CUDADriver, CUDAError> in
            if let loaded { return loaded }
            let names = getenv("SANAGRAPH_CUDA_DRIVER").map { [String(cString: $0)] } ?? ["libcuda.so.1"]
            let r = Result<CUDADriver, CUDAError> { () throws(CUDAError) -> CUDADriver in try load(names: names) }
            loaded = r
            return r
        }.get()
    }

    /// Opens and initialises the first loadable of `names`; `.noDriver` when none loads.
    static func load(names: [String]) throws(CUDAError) -> CUDADriver {
        let lib: DynamicLibrary
        do {
            lib = try DynamicLibrary(library: "libcuda", candidates: names)
        } catch {
            if case .libraryNotFound(_, let tried, let reason) = error { throw .noDriver(tried: tried, reason: reason) }
            throw error
        }
        let driver = try CUDADriver(lib)
        try driver.check(driver.cuInit(0), "cuInit")
        return driver
    }
}

/// A plain pthread mutex.
final class Lock: @unchecked Sendable {
    private let m: UnsafeMutablePointer<pthread_mutex_t>
    init() {
        m = .allocate(capacity: 1)
        pthread_mutex_init(m, nil)
    }
    deinit {
        pthread_mutex_destroy(m)
        m.deallocate()
    }
    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(m)
        defer { pthread_mutex_unlock(m) }
        return try body()
    }
}
