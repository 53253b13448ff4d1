import Foundation
import XCTest
@testable import CUDA

/// What can be checked of the CUDA backend on a machine without a GPU (CI). The GPU behaviour itself is checked
/// by `make test-cuda` (`sanagraph-cuda test`) on a GPU host.
final class CUDABackendTests: XCTestCase {
    func testMissingDriverIsATypedNoDriverError() {
        XCTAssertThrowsError(try CUDADriver.load(names: ["/nonexistent/libcuda.so.1"])) { error in
            guard case CUDAError.noDriver(let tried, _) = error else { return XCTFail("expected .noDriver, got \(error)") }
            XCTAssertEqual(tried, ["/nonexistent/libcuda.so.1"])
            XCTAssertTrue("\(error)".hasPrefix("no CUDA driver found"), "\(error)")
            XCTAssertTrue("\(error)".contains("device 'cpu'"), "the message says what to do: \(error)")
        }
    }

    func testOpeningAGPUWithoutDriverSaysSo() throws {
        guard !CUDAContext.driverAvailable else { throw XCTSkip("this machine has a CUDA driver") }
        XCTAssertThrowsError(try CUDAContext.open(device: 0)) { error in
            guard case CUDAError.noDriver = error else { return XCTFail("expected .noDriver, got \(error)") }
        }
    }

    func testMissingToolkitLibraryListsWhatWasTried() {
        XCTAssertThrowsError(try DynamicLibrary(library: "NVRTC", candidates: ["libnvrtc-does-not-exist.so"],
                                                fallbackDirectories: ["/opt/nowhere"])) { error in
            guard case CUDAError.libraryNotFound(let library, let tried, _) = error else {
                return XCTFail("expected .libraryNotFound, got \(error)")
            }
            XCTAssertEqual(library, "NVRTC")
            XCTAssertTrue(tried.contains("/opt/nowhere/libnvrtc-does-not-exist.so"))
            XCTAssertTrue("\(error)".contains("SANAGRAPH_CUDA_LIBRARY_PATH"))
        }
    }

    func testKernelCacheFileNameDependsOnEverythingThatChangesTheBinary() {
        func name(_ source: String = "k", _ options: [String] = ["-a"], _ nvrtc: String = "13.0", _ arch: String = "sm_90",
                  _ driver: Int = 13000) -> String {
            KernelCache.fileName(source: source, options: options, nvrtcVersion: nvrtc, architecture: arch,
                                 driverVersion: driver)
        }
        XCTAssertEqual(name(), name())
        XCTAssertTrue(name().hasSuffix("-sm_90-driver13000.cubin"))
        let variants = [name("k2"), name("k", ["-b"]), name("k", ["-a"], "13.1"), name("k", ["-a"], "13.0", "sm_80"),
                        name("k", ["-a"], "13.0", "sm_90", 12080)]
        XCTAssertEqual(Set(variants + [name()]).count, variants.count + 1)
    }

    func testKernelCacheRoundTripAndRejectsNonELF() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sanagraph-kcache-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cache = KernelCache(directory: dir + "/nested")
        let elf: [UInt8] = [0x7f, 0x45, 0x4c, 0x46] + [UInt8](repeating: 7, count: 60)
        XCTAssertNil(cache.read("a.cubin"))
        cache.write("a.cubin", elf)
        XCTAssertEqual(cache.read("a.cubin"), elf)
        cache.write("b.cubin", [UInt8](repeating: 1, count: 64))  // a corrupt entry is ignored, not loaded
        XCTAssertNil(cache.read("b.cubin"))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir + "/nested").filter { $0.hasPrefix(".") }, [],
                       "no temporary file left behind")
    }

    func testAllocatorSizeClasses() {
        XCTAssertEqual(DeviceAllocator.roundedSize(0), 512)
        XCTAssertEqual(DeviceAllocator.roundedSize(513), 1024)
        XCTAssertEqual(DeviceAllocator.roundedSize((1 << 20) - 1), 1 << 20)
        XCTAssertEqual(DeviceAllocator.roundedSize(1 << 20), 2 << 20)
        XCTAssertEqual(DeviceAllocator.roundedSize((2 << 20) + 1), 4 << 20)
    }

    func testCuBLASLtHeuristicResultHasTheCLayout() {
        XCTAssertEqual(MemoryLayout<CuBLASLtLibrary.HeuristicResult>.size, 96)
        XCTAssertEqual(MemoryLayout<CuBLASLtLibrary.HeuristicResult>.offset(of: \.workspaceSize), 64)
        XCTAssertEqual(MemoryLayout<CuBLASLtLibrary.HeuristicResult>.offset(of: \.state), 72)
    }

    func testGemmAlignmentIsTheLowestSetBitCappedAt256() {
        XCTAssertEqual(Gemm.alignment(0x1000), 256)
        XCTAssertEqual(Gemm.alignment(0x1000 + 144), 16)
        XCTAssertEqual(Gemm.alignment(0x1000 + 2), 2)
    }

    /// Compiles the project's kernels with NVRTC when one is installed (no GPU needed): catches CUDA C errors
    /// before a GPU run. CI has no NVRTC and skips; set SANAGRAPH_CUDA_LIBRARY_PATH to a CUDA lib folder to run it.
    func testKernelSourcesCompileWithNVRTC() throws {
        let nvrtc: NVRTC
        do { nvrtc = try NVRTC.shared() } catch { throw XCTSkip("no NVRTC here: \(error)") }
        for (name, source) in [("nn", NNKernels.source), ("conv", ConvKernels.source)] {
            let cubin = try nvrtc.compile(source: KernelPrelude.prefixed(source), name: name,
                                          options: ["--gpu-architecture=sm_90", "--std=c++17", "-default-device"])
            XCTAssertEqual(Array(cubin.prefix(4)), [0x7f, 0x45, 0x4c, 0x46], "a CUBIN is an ELF file")
        }
        XCTAssertThrowsError(try nvrtc.compile(source: "this is not CUDA", name: "bad", options: [])) { error in
            guard case CUDAError.compile(let module, let log) = error else { return XCTFail("expected .compile, got \(error)") }
            XCTAssertEqual(module, "bad")
            XCTAssertFalse(log.isEmpty)
        }
    }
}
