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

let package = Package(
    name: "SanaGraph",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sanagraph", targets: ["sanagraph"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        // C libraries from Debian packages. OpenBLAS and oneDNN (libopenblas0, libdnnl2; headers from
        // libdnnl-dev) are opened with dlopen after the process chose their settings (Sources/Tensors/Kernels.swift).
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("dl")]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng16", providers: [.apt(["libpng-dev"])]),

        // Core.
        .target(name: "Tensors", dependencies: ["CKernels"], swiftSettings: f16c),
        .target(name: "Safetensors", dependencies: ["Tensors"], swiftSettings: f16c),
        .target(
            name: "GraphRuntime",
            dependencies: [
                "Tensors",
                // The disk cache stores node outputs as safetensors blobs (written atomically).
                "Safetensors",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]),

        // Node families.
        .target(name: "TensorIO", dependencies: ["GraphRuntime", "Tensors", "Safetensors"],
                path: "Plugins/TensorIO"),
        .target(name: "ImageIO", dependencies: ["GraphRuntime", "Tensors", "CPNG"],
                path: "Plugins/ImageIO"),
        .target(name: "Upscaler", dependencies: ["GraphRuntime", "Tensors", "Safetensors"],
                path: "Plugins/Upscaler"),
        .target(name: "FlowSolvers", dependencies: ["GraphRuntime", "Tensors"],
                path: "Plugins/FlowSolvers"),
        .target(name: "LinearDiT", dependencies: ["GraphRuntime", "Tensors", "Safetensors"],
                path: "Plugins/LinearDiT"),
        .target(name: "TextEncoder", dependencies: ["GraphRuntime", "Tensors", "Safetensors"],
                path: "Plugins/TextEncoder"),
        .target(name: "DCAE", dependencies: ["GraphRuntime", "Tensors", "Safetensors"],
                path: "Plugins/DCAE"),

        // The CLI: the only place that lists the built-in node packs.
        .executableTarget(
            name: "sanagraph",
            dependencies: [
                "GraphRuntime", "TensorIO", "ImageIO", "Upscaler", "FlowSolvers", "LinearDiT", "TextEncoder", "DCAE",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // Kernel and model benchmark (not a test): tools/bench/ compares it with PyTorch.
        .executableTarget(name: "sanagraph-bench",
                          dependencies: ["Tensors", "Safetensors", "GraphRuntime", "LinearDiT", "DCAE", "TextEncoder"],
                          swiftSettings: f16c),

        // Tests. Fixtures live in Tests/Fixtures and are found through TestSupport.fixturesDirectory.
        .target(name: "TestSupport", dependencies: ["Tensors", "Safetensors", "GraphRuntime"],
                path: "Tests/TestSupport"),
        .testTarget(name: "TensorsTests", dependencies: ["Tensors", "TestSupport"]),
        .testTarget(name: "SafetensorsTests", dependencies: ["Safetensors", "TestSupport"]),
        .testTarget(name: "GraphRuntimeTests", dependencies: ["GraphRuntime", "TestSupport"]),
        .testTarget(name: "TensorIOTests", dependencies: ["TensorIO", "TestSupport"]),
        .testTarget(name: "ImageIOTests", dependencies: ["ImageIO", "TestSupport"]),
        .testTarget(name: "UpscalerTests", dependencies: ["Upscaler", "TestSupport"]),
        .testTarget(name: "FlowSolversTests", dependencies: ["FlowSolvers", "LinearDiT", "TestSupport"]),
        .testTarget(name: "LinearDiTTests", dependencies: ["LinearDiT", "TensorIO", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport"]),
        .testTarget(name: "TextEncoderTests", dependencies: ["TextEncoder", "TensorIO", "TestSupport"]),
        .testTarget(name: "DCAETests", dependencies: ["DCAE", "TensorIO", "TestSupport"]),
    ]
)
