#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One GPU, opened through the driver: its primary context, the stream all SanaGraph work on it is queued on,
/// a caching allocator, the GEMM engine and the compiled kernel modules. Work on one stream runs in order, so a
/// buffer freed on the host can be reused by the next queued kernel without waiting.
public final class CUDAContext: @unchecked Sendable {
    let driver: CUDADriver
    public let deviceIndex: Int
    let device: Int32
    let context: CUHandle
    /// The stream every operation of this context is queued on.
    public let stream: CUHandle
    public let allocator: DeviceAllocator
    /// First-use costs (module loads, cuBLASLt heuristic queries, driver allocations), always counted.
    public let setup = SetupCounters()
    /// Per-launch GPU timing; nil (the default) costs nothing. Attach with `attachProfiler()` or
    /// `SANAGRAPH_CUDA_PROFILE=1` (which prints the tables to stderr at exit). Set or cleared only while no other
    /// thread queues work on this context.
    public var profiler: CUDAProfiler?

    /// e.g. "NVIDIA H200".
    public let name: String
    public let computeCapability: (major: Int, minor: Int)
    public let multiprocessorCount: Int
    public let totalMemory: Int
    /// The driver's CUDA version, e.g. 13000 for 13.0.
    public let driverVersion: Int
    /// Shared memory a block may opt into (bytes).
    public let maxSharedMemoryPerBlock: Int

    /// `sm_90` for compute capability 9.0: the NVRTC target.
    public var architecture: String { "sm_\(computeCapability.major)\(computeCapability.minor)" }

    private let lazyLock = Lock()
    private var gemmEngine: Gemm?
    private var modules: [String: KernelModule] = [:]

    private init(driver: CUDADriver, index: Int) throws(CUDAError) {
        self.driver = driver
        deviceIndex = index
        var count: Int32 = 0
        try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
        guard index >= 0, index < Int(count) else { throw .noDevice(index: index, count: Int(count)) }
        var dev: Int32 = 0
        try driver.check(driver.cuDeviceGet(&dev, Int32(index)), "cuDeviceGet")
        device = dev
        var nameBuffer = [CChar](repeating: 0, count: 256)
        try driver.check(driver.cuDeviceGetName(&nameBuffer, 255, dev), "cuDeviceGetName")
        name = nameBuffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        func attribute(_ a: Int32) throws(CUDAError) -> Int {
            var v: Int32 = 0
            try driver.check(driver.cuDeviceGetAttribute(&v, a, dev), "cuDeviceGetAttribute(\(a))")
            return Int(v)
        }
        computeCapability = (try attribute(CUDADriver.attributeComputeCapabilityMajor),
                             try attribute(CUDADriver.attributeComputeCapabilityMinor))
        multiprocessorCount = try attribute(CUDADriver.attributeMultiprocessorCount)
        maxSharedMemoryPerBlock = try attribute(CUDADriver.attributeMaxSharedMemoryPerBlockOptin)
        var total = 0
        try driver.check(driver.cuDeviceTotalMem(&total, dev), "cuDeviceTotalMem")
        totalMemory = total
        driverVersion = Int(driver.version)
        var ctx: CUHandle?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain")
        context = ctx!
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var s: CUHandle?
        try driver.check(driver.cuStreamCreate(&s, 1 /* CU_STREAM_NON_BLOCKING */), "cuStreamCreate")
        stream = s!
        allocator = DeviceAllocator(driver: driver, context: context, setup: setup)
    }

    private static let lock = Lock()
    nonisolated(unsafe) private static var contexts: [Int: CUDAContext] = [:]

    /// The context of GPU `index` (`cuda:index`), created on first use and kept for the process. Throws
    /// `.noDriver` on a machine without the NVIDIA driver and `.noDevice` for an index past the last GPU.
    public static func open(device index: Int = 0) throws(CUDAError) -> CUDAContext {
        let driver = try CUDADriver.shared()
        return try lock.withLock { () throws(CUDAError) -> CUDAContext in
            if let c = contexts[index] { return c }
            let c = try CUDAContext(driver: driver, index: index)
            contexts[index] = c
            if let v = getenv("SANAGRAPH_CUDA_PROFILE"), String(cString: v) != "0", !String(cString: v).isEmpty {
                c.attachProfiler()
                if !exitReportRegistered {
                    exitReportRegistered = true
                    atexit { CUDAContext.printProfilesAtExit() }
                }
            }
            return c
        }
    }

    nonisolated(unsafe) private static var exitReportRegistered = false

    /// `SANAGRAPH_CUDA_PROFILE`'s report: every profiled context's tables on stderr.
    private static func printProfilesAtExit() {
        let all = lock.withLock { contexts.sorted { $0.key < $1.key }.map(\.value) }
        for c in all {
            guard let p = c.profiler, let text = try? p.report() else { continue }
            let line = c.setup.snapshot().line()
            let message = "== SANAGRAPH_CUDA_PROFILE cuda:\(c.deviceIndex) (\(c.name))\nsetup: \(line)\n\n\(text)\n"
            FileHandle.standardError.write(Data(message.utf8))
        }
    }

    /// Attaches a profiler (a fresh one unless one is attached) and returns it.
    @discardableResult
    public func attachProfiler() -> CUDAProfiler {
        if let p = profiler { return p }
        let p = CUDAProfiler(driver: driver, stream: stream)
        profiler = p
        return p
    }

    /// Runs `body` (which queues one operation on the stream) between profiler events when a profiler is attached;
    /// otherwise just runs it (`name` and `bytes` are then not evaluated).
    func profiled(_ name: @autoclosure () -> String, bytes: @autoclosure () -> Int, flops: @autoclosure () -> Int = 0,
                  _ body: () throws(CUDAError) -> Void) throws(CUDAError) {
        guard let profiler else { return try body() }
        try profiler.measure(name(), bytes: bytes(), flops: flops(), body)
    }

    /// Runs `body` with `name` pushed on the profiler's scope path (e.g. a model stage); without a profiler just
    /// runs it.
    public func profileScope<T>(_ name: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        guard let p = profiler else { return try body() }
        p.push(name())
        defer { p.pop() }
        return try body()
    }

    /// Number of GPUs the driver sees (throws `.noDriver` without a driver).
    public static func deviceCount() throws(CUDAError) -> Int {
        let driver = try CUDADriver.shared()
        var count: Int32 = 0
        try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
        return Int(count)
    }

    /// Whether a driver can be loaded here (no error details; use `open` for those).
    public static var driverAvailable: Bool { (try? CUDADriver.shared()) != nil }

    /// Makes this context current on the calling thread (driver calls act on the thread's current context).
    /// Every entry point that talks to the driver calls it first; it is a thread-local store.
    public func bind() throws(CUDAError) {
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
    }

    /// Waits until everything queued on the stream has run; surfaces asynchronous kernel errors.
    public func synchronize() throws(CUDAError) {
        try bind()
        try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
    }

    /// The GEMM engine (cuBLASLt loaded on first use).
    public func gemm() throws(CUDAError) -> Gemm {
        try lazyLock.withLock { () throws(CUDAError) -> Gemm in
            if let g = gemmEngine { return g }
            try bind()
            let g = try Gemm(context: self)
            gemmEngine = g
            return g
        }
    }

    /// The compiled module for `source` (named `name`): from this process's table, else the on-disk kernel cache,
    /// else NVRTC (then written to the disk cache).
    public func module(named name: String, source: String) throws(CUDAError) -> KernelModule {
        try lazyLock.withLock { () throws(CUDAError) -> KernelModule in
            if let m = modules[name] { return m }
            try bind()
            let t0 = SetupCounters.now()
            let m = try KernelModule(context: self, name: name, source: KernelPrelude.prefixed(source))
            let seconds = SetupCounters.now() - t0
            setup.add { $0.moduleLoads += 1; $0.moduleSeconds += seconds }
            modules[name] = m
            return m
        }
    }

    /// Free and total device memory as the driver reports it (other processes included).
    public func memoryInfo() throws(CUDAError) -> (free: Int, total: Int) {
        try bind()
        var free = 0, total = 0
        try driver.check(driver.cuMemGetInfo(&free, &total), "cuMemGetInfo")
        return (free, total)
    }

    // MARK: copies (explicit, on the stream)

    /// Copies `bytes` from host memory to the device. The source may be reused as soon as this returns.
    public func copy(toDevice destination: DevicePointer, from source: UnsafeRawPointer, bytes: Int) throws(CUDAError) {
        guard bytes > 0 else { return }
        try bind()
        try driver.check(driver.cuMemcpyHtoDAsync(destination, source, bytes, stream), "cuMemcpyHtoDAsync")
    }

    /// Copies `bytes` from the device to host memory, after all queued work (waits for the result).
    public func copy(toHost destination: UnsafeMutableRawPointer, from source: DevicePointer, bytes: Int) throws(CUDAError) {
        guard bytes > 0 else { return }
        try bind()
        try driver.check(driver.cuMemcpyDtoHAsync(destination, source, bytes, stream), "cuMemcpyDtoHAsync")
        try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
    }

    /// Device-to-device copy on the stream.
    public func copy(device destination: DevicePointer, from source: DevicePointer, bytes: Int) throws(CUDAError) {
        guard bytes > 0 else { return }
        try bind()
        try driver.check(driver.cuMemcpyDtoDAsync(destination, source, bytes, stream), "cuMemcpyDtoDAsync")
    }

    /// Fills `count` 32-bit words with `value` (bit pattern) on the stream.
    public func fill32(_ destination: DevicePointer, value: UInt32, count: Int) throws(CUDAError) {
        guard count > 0 else { return }
        try bind()
        try driver.check(driver.cuMemsetD32Async(destination, value, count, stream), "cuMemsetD32Async")
    }

    // MARK: timing

    /// Runs `body` (which queues work) and returns the GPU time between events around it, in milliseconds.
    public func time(_ body: () throws -> Void) throws -> Double {
        try bind()
        var start: CUHandle?, end: CUHandle?
        try driver.check(driver.cuEventCreate(&start, 0), "cuEventCreate")
        try driver.check(driver.cuEventCreate(&end, 0), "cuEventCreate")
        defer { _ = driver.cuEventDestroy(start); _ = driver.cuEventDestroy(end) }
        try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord")
        try body()
        try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord")
        try driver.check(driver.cuEventSynchronize(end), "cuEventSynchronize")
        var ms: Float = 0
        try driver.check(driver.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime")
        return Double(ms)
    }
}
