// swift-tools-version: 6.0
import PackageDescription

// Plugins/ holds ordinary library targets (one node family each), so every one names its `path:`.
// A plugin depends on GraphRuntime and Tensors (and C shims), never on another plugin.
// F16C makes Float16 <-> Float a single instruction instead of a libcall (x86_64 only).
#if arch(x86_64)
let f16c: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mf16c"])]
#else
let f16c: [SwiftSetting] = []
#endif

let kit: Target.Dependency = .product(name: "SanaGraphKit", package: "SanaGraphKit")

let package = Package(
    name: "SanaGraph",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sanagraph", targets: ["sanagraph"]),
        // The compile-time path for extra node packs: a package of your own calls
        // `SanaGraphCLI.main(extraPacks: [MyPack.self])` from its executable (docs/plugins.md).
        .library(name: "SanaGraphCLI", targets: ["SanaGraphCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // The node SDK (Tensors, Safetensors, SanaGraphKit, DiffusionModels) as one shared library.
        .package(path: "SanaGraphKit"),
    ],
    targets: [
        // C libraries from Debian packages.
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16", providers: [.apt(["libpng-dev"])]),

        // PyTorch zip checkpoints (.pth) read through a restricted unpickler: tensor data only, nothing executed.
        .target(name: "TorchCheckpoint", dependencies: [kit]),

        // The engine: graph files, validation, planning, execution, caches, events.
        .target(
            name: "GraphRuntime",
            dependencies: [
                kit,
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                // A heap keeps planning O(n log n) for wide graphs.
                .product(name: "HeapModule", package: "swift-collections"),
            ]),

        // The CUDA backend: driver, NVRTC and cuBLASLt loaded with dlopen at run time (no link-time CUDA
        // dependency, so CI without a GPU builds and links it), device memory, kernels compiled on the device.
        // (Not yet in SanaGraphKit: device placement joins the SDK's tensor type in a later step, docs/cuda.md.)
        .target(name: "CUDA", dependencies: [kit, .product(name: "Crypto", package: "swift-crypto")]),

        // Batches of graph runs: sweeps, shards, manifests, resume, metrics (the engine knows nothing of it).
        .target(
            name: "Batch",
            dependencies: [
                "GraphRuntime", kit,
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // Node families.
        .target(name: "TensorIO", dependencies: [kit],
                path: "Plugins/TensorIO"),
        .target(name: "ImageIO", dependencies: [kit, "CPNG"],
                path: "Plugins/ImageIO"),
        .target(name: "Upscaler", dependencies: [kit],
                path: "Plugins/Upscaler"),
        .target(name: "FlowSolvers", dependencies: [kit],
                path: "Plugins/FlowSolvers"),
        .target(name: "LinearDiT", dependencies: [kit, "CUDA", "TorchCheckpoint"],
                path: "Plugins/LinearDiT"),
        .target(name: "TextEncoder", dependencies: [kit, "CUDA"],
                path: "Plugins/TextEncoder"),
        .target(name: "DCAE", dependencies: [kit, "CUDA"],
                path: "Plugins/DCAE"),

        // The CLI's commands: the only place that lists the built-in node packs.
        .target(
            name: "SanaGraphCLI",
            dependencies: [
                kit, "GraphRuntime", "Batch", "TensorIO", "ImageIO", "Upscaler", "FlowSolvers", "LinearDiT",
                "TextEncoder", "DCAE", "CUDA",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        .executableTarget(name: "sanagraph", dependencies: ["SanaGraphCLI"]),
        // Kernel and model benchmark (not a test): tools/bench/ compares it with PyTorch.
        .executableTarget(name: "sanagraph-bench", dependencies: [kit, "GraphRuntime", "LinearDiT", "DCAE", "TextEncoder"],
                          swiftSettings: f16c),

        // GPU checks and timings (`make test-cuda`, `make bench-cuda`); the one binary `make bundle` ships to GPU hosts.
        .executableTarget(name: "sanagraph-cuda", dependencies: ["CUDA", kit, "GraphRuntime", "LinearDiT", "DCAE", "TextEncoder"],
                          swiftSettings: f16c),

        // Tests. Fixtures live in Tests/Fixtures and are found through TestSupport.fixturesDirectory.
        .target(name: "TestSupport", dependencies: [kit, "GraphRuntime"],
                path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: [kit, "TestSupport"]),
        .testTarget(name: "SafetensorsTests", dependencies: [kit, "TestSupport"]),
        .testTarget(name: "TorchCheckpointTests", dependencies: ["TorchCheckpoint", kit, "TestSupport"]),
        .testTarget(name: "GraphRuntimeTests", dependencies: ["GraphRuntime", "TestSupport"]),
        .testTarget(name: "BatchTests", dependencies: ["Batch", "TestSupport"]),
        .testTarget(name: "TensorIOTests", dependencies: ["TensorIO", "TestSupport"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO", "TestSupport"]),
        .testTarget(name: "UpscalerTests", dependencies: ["Upscaler", "TestSupport"]),
        .testTarget(name: "FlowSolversTests", dependencies: ["FlowSolvers", "LinearDiT", "TestSupport"]),
        .testTarget(name: "LinearDiTTests", dependencies: ["LinearDiT", "TensorIO", "TestSupport", "CUDA"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"]),
        .testTarget(name: "TextEncoderTests", dependencies: ["TextEncoder", "TensorIO", "TestSupport", "CUDA"]),
        .testTarget(name: "DCAETests", dependencies: ["DCAE", "TensorIO", "TestSupport", "CUDA"]),
        .testTarget(name: "CUDATests", dependencies: ["CUDA", "TestSupport"]),
    ]
)
