import Crypto
import Foundation

/// A CUDA C source compiled for one GPU and loaded: its kernels by name. Compiled by NVRTC for the device's
/// architecture and cached on disk (`KernelCache`), so only the first run on a machine pays for NVRTC.
public final class KernelModule: @unchecked Sendable {
    public let name: String
    let context: CUDAContext
    let module: CUHandle
    private var functions: [String: CUHandle] = [:]
    private let lock = Lock()
    /// Whether the CUBIN came from the disk cache (false: compiled by NVRTC in this process).
    public let fromDiskCache: Bool

    init(context: CUDAContext, name: String, source: String) throws(CUDAError) {
        self.context = context
        self.name = name
        let cache = KernelCache()
        let options = ["--gpu-architecture=\(context.architecture)", "--std=c++17", "-default-device", "-lineinfo"]
        let key = try cache.key(source: source, options: options, context: context)
        var cubin: [UInt8]
        if let cached = cache.read(key) {
            cubin = cached
            fromDiskCache = true
        } else {
            cubin = try NVRTC.shared().compile(source: source, name: name, options: options)
            cache.write(key, cubin)
            fromDiskCache = false
        }
        var m: CUHandle?
        try context.driver.check(cubin.withUnsafeBytes { context.driver.cuModuleLoadData(&m, $0.baseAddress!) },
                                 "cuModuleLoadData(\(name))")
        module = m!
    }

    /// The kernel `name` (an `extern "C" __global__` function of the source).
    public func function(_ kernel: String) throws(CUDAError) -> KernelFunction {
        let handle = try lock.withLock { () throws(CUDAError) -> CUHandle in
            if let f = functions[kernel] { return f }
            var f: CUHandle?
            try context.driver.check(context.driver.cuModuleGetFunction(&f, module, kernel),
                                     "cuModuleGetFunction(\(name).\(kernel))")
            functions[kernel] = f!
            return f!
        }
        return KernelFunction(context: context, handle: handle, name: kernel)
    }
}

/// One argument of a kernel launch, as the kernel's C parameter type.
public enum KernelArgument: Sendable {
    case pointer(DevicePointer)
    case int32(Int32)
    case int64(Int64)
    case float(Float)
}

extension KernelArgument {
    public static func int(_ v: Int) -> KernelArgument { .int32(Int32(v)) }
}

/// A kernel ready to launch on its context's stream.
public struct KernelFunction: @unchecked Sendable {
    let context: CUDAContext
    let handle: CUHandle
    public let name: String

    /// Allows up to `bytes` of dynamic shared memory (needed above 48 KiB).
    public func allowSharedMemory(_ bytes: Int) throws(CUDAError) {
        try context.driver.check(context.driver.cuFuncSetAttribute(handle, CUDADriver.functionAttributeMaxDynamicSharedBytes,
                                                                    Int32(bytes)), "cuFuncSetAttribute(\(name))")
    }

    /// Queues the kernel; launch-configuration errors throw here, faults inside it at the next synchronisation.
    /// `bytes`: an estimate of the device memory it reads and writes, for the profiler's GB/s (unused otherwise).
    public func launch(grid: (Int, Int, Int), block: (Int, Int, Int), sharedBytes: Int = 0, bytes: Int = 0,
                       _ arguments: [KernelArgument]) throws(CUDAError) {
        try context.profiled(name, bytes: bytes) { () throws(CUDAError) in
            try enqueue(grid: grid, block: block, sharedBytes: sharedBytes, arguments)
        }
    }

    private func enqueue(grid: (Int, Int, Int), block: (Int, Int, Int), sharedBytes: Int,
                         _ arguments: [KernelArgument]) throws(CUDAError) {
        precondition(grid.0 > 0 && grid.1 > 0 && grid.2 > 0, "\(name): empty grid \(grid)")
        // Each argument in its own 8-byte slot; the driver reads as many bytes as the parameter's C type has.
        let slots = UnsafeMutableRawPointer.allocate(byteCount: max(arguments.count, 1) * 8, alignment: 8)
        defer { slots.deallocate() }
        var pointers = [UnsafeMutableRawPointer?](repeating: nil, count: arguments.count)
        for (i, argument) in arguments.enumerated() {
            let slot = slots + i * 8
            switch argument {
            case .pointer(let p): slot.storeBytes(of: p, as: UInt64.self)
            case .int32(let v): slot.storeBytes(of: v, as: Int32.self)
            case .int64(let v): slot.storeBytes(of: v, as: Int64.self)
            case .float(let v): slot.storeBytes(of: v, as: Float.self)
            }
            pointers[i] = slot
        }
        let status = pointers.withUnsafeMutableBufferPointer { p in
            context.driver.cuLaunchKernel(handle, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                                          UInt32(block.0), UInt32(block.1), UInt32(block.2), UInt32(sharedBytes),
                                          context.stream, p.baseAddress, nil)
        }
        try context.driver.check(status, "cuLaunchKernel(\(name), grid \(grid), block \(block))")
    }
}

/// CUBINs on disk, keyed by SHA-256 of (source, NVRTC options, NVRTC version, architecture, driver version).
/// Folder: `SANAGRAPH_CUDA_CACHE`, else `$XDG_CACHE_HOME/sanagraph/cuda-kernels`, else
/// `~/.cache/sanagraph/cuda-kernels`. Writes are atomic (temporary file + rename); an unwritable folder only
/// means compiling again next time.
public struct KernelCache: Sendable {
    public let directory: String

    public init(directory: String? = nil) {
        let env = ProcessInfo.processInfo.environment
        if let directory {
            self.directory = directory
        } else if let d = env["SANAGRAPH_CUDA_CACHE"], !d.isEmpty {
            self.directory = d
        } else if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
            self.directory = x + "/sanagraph/cuda-kernels"
        } else {
            self.directory = (env["HOME"] ?? "/tmp") + "/.cache/sanagraph/cuda-kernels"
        }
    }

    /// The file name for a compilation: the hash plus the architecture and driver version, readable in `ls`.
    public static func fileName(source: String, options: [String], nvrtcVersion: String, architecture: String,
                                driverVersion: Int) -> String {
        var hasher = SHA256()
        for part in [source, options.joined(separator: " "), nvrtcVersion, architecture, String(driverVersion)] {
            hasher.update(data: Data(part.utf8))
            hasher.update(data: Data([0]))
        }
        let hex = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        return "\(hex.prefix(32))-\(architecture)-driver\(driverVersion).cubin"
    }

    func key(source: String, options: [String], context: CUDAContext) throws(CUDAError) -> String {
        let nvrtc = try NVRTC.shared()
        return Self.fileName(source: source, options: options, nvrtcVersion: "\(nvrtc.version.0).\(nvrtc.version.1)",
                             architecture: context.architecture, driverVersion: context.driverVersion)
    }

    public func read(_ name: String) -> [UInt8]? {
        guard let data = FileManager.default.contents(atPath: directory + "/" + name), data.count > 16,
              data.starts(with: [0x7f, 0x45, 0x4c, 0x46]) /* ELF */ else { return nil }
        return [UInt8](data)
    }

    public func write(_ name: String, _ bytes: [UInt8]) {
        let fm = FileManager.default
        guard (try? fm.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil else { return }
        let temporary = directory + "/.\(name).\(ProcessInfo.processInfo.processIdentifier).tmp"
        guard fm.createFile(atPath: temporary, contents: Data(bytes)) else { return }
        if rename(temporary, directory + "/" + name) != 0 { unlink(temporary) }
    }
}
