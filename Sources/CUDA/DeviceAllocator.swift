/// A block of device memory from a `DeviceAllocator`; given back to the allocator's cache when released.
public final class DeviceBuffer: @unchecked Sendable {
    public let pointer: DevicePointer
    /// Usable bytes (the requested size rounded up to the allocator's size class).
    public let bytes: Int
    let allocator: DeviceAllocator?

    init(pointer: DevicePointer, bytes: Int, allocator: DeviceAllocator?) {
        self.pointer = pointer; self.bytes = bytes; self.allocator = allocator
    }
    deinit { allocator?.give(pointer, bytes: bytes) }
}

/// A caching device allocator (the usual answer to `cuMemAlloc` costing a synchronisation): freed blocks go to a
/// free list per size class and are handed out again; all users queue work on one stream, so reuse is ordered
/// after the last use. Sizes round up to 512 B below 1 MiB and to 2 MiB above. On an allocation failure the
/// cache is emptied (blocks returned to the driver) and the allocation retried once.
public final class DeviceAllocator: @unchecked Sendable {
    let driver: CUDADriver
    let context: CUHandle
    private let lock = Lock()
    private var free: [Int: [DevicePointer]] = [:]
    /// Bytes handed out and not yet given back.
    public private(set) var inUse = 0
    public private(set) var peakInUse = 0
    /// Bytes obtained from the driver (in use + cached).
    public private(set) var reserved = 0
    public private(set) var peakReserved = 0
    /// Allocations that reached the driver (for tests and capture: none may happen inside a graph capture).
    public var driverAllocations: Int { setup.snapshot().driverAllocations }

    /// The context's first-use counters: driver allocations, their time and bytes.
    let setup: SetupCounters

    init(driver: CUDADriver, context: CUHandle, setup: SetupCounters) {
        self.driver = driver
        self.context = context
        self.setup = setup
    }

    /// The size class of a request.
    static func roundedSize(_ bytes: Int) -> Int {
        let b = max(bytes, 1)
        if b < 1 << 20 { return (b + 511) & ~511 }
        return (b + (2 << 20) - 1) & ~((2 << 20) - 1)
    }

    /// A buffer of at least `bytes` bytes (contents undefined).
    public func allocate(bytes: Int) throws(CUDAError) -> DeviceBuffer {
        let size = Self.roundedSize(bytes)
        let cached: DevicePointer? = lock.withLock {
            guard var list = free[size], let p = list.popLast() else { return nil }
            free[size] = list
            inUse += size
            peakInUse = max(peakInUse, inUse)
            return p
        }
        if let cached { return DeviceBuffer(pointer: cached, bytes: size, allocator: self) }
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var p: DevicePointer = 0
        let t0 = SetupCounters.now()
        var status = driver.cuMemAlloc(&p, size)
        if status == 2 /* CUDA_ERROR_OUT_OF_MEMORY */ {
            try emptyCache()
            status = driver.cuMemAlloc(&p, size)
            if status == 2 {
                var freeBytes = 0, total = 0
                _ = driver.cuMemGetInfo(&freeBytes, &total)
                throw .outOfMemory(bytes: size, free: freeBytes, total: total)
            }
        }
        try driver.check(status, "cuMemAlloc(\(size))")
        let seconds = SetupCounters.now() - t0
        setup.add { $0.driverAllocations += 1; $0.allocationSeconds += seconds; $0.allocatedBytes += size }
        lock.withLock {
            inUse += size
            reserved += size
            peakInUse = max(peakInUse, inUse)
            peakReserved = max(peakReserved, reserved)
        }
        return DeviceBuffer(pointer: p, bytes: size, allocator: self)
    }

    func give(_ pointer: DevicePointer, bytes: Int) {
        lock.withLock {
            free[bytes, default: []].append(pointer)
            inUse -= bytes
        }
    }

    /// Returns every cached (unused) block to the driver. `cuMemFree` waits for the device, so only call this
    /// when memory is short or the work is done.
    public func emptyCache() throws(CUDAError) {
        let blocks: [(DevicePointer, Int)] = lock.withLock {
            let all = free.flatMap { size, list in list.map { ($0, size) } }
            free = [:]
            return all
        }
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        for (p, size) in blocks {
            try driver.check(driver.cuMemFree(p), "cuMemFree")
            lock.withLock { reserved -= size }
        }
    }

    /// Starts a new peak measurement from the current use.
    public func resetPeak() {
        lock.withLock {
            peakInUse = inUse
            peakReserved = reserved
        }
    }
}
