// swift-tools-version: 6.0
import PackageDescription

// SanaGraphKit: what a node author needs (node protocol, registry, values and socket types, tensors, params, run
// context, errors, model folders, safetensors), built as ONE shared library. It is a package of its own because
// run-time plugins only work when the host and every plugin link the same dynamic library from a separate
// package (a target dependency inside one package is linked statically, giving each image its own copy of every
// type). The engine and the CLI live in the package at the repository root. See docs/plugins.md.
//
// SANAGRAPH_STATIC_KIT=1 in the environment makes the library static, for `make bundle` (a binary with the Swift
// runtime linked statically, which cannot load plugins anyway).
#if arch(x86_64)
// F16C makes Float16 <-> Float a single instruction instead of a libcall.
let f16c: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-mf16c"])]
#else
let f16c: [SwiftSetting] = []
#endif

let staticKit = Context.environment["SANAGRAPH_STATIC_KIT"] == "1"

let package = Package(
    name: "SanaGraphKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SanaGraphKit", type: staticKit ? .static : .dynamic,
                 targets: ["SanaGraphKit", "DiffusionModels", "Tensors", "Safetensors"]),
    ],
    dependencies: [
        // FilePath: path manipulation that is right on Linux (no NSString path APIs).
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // CPU features and the kernel libraries: OpenBLAS and oneDNN (Debian libopenblas0, libdnnl2; the dnnl.h
        // header from libdnnl-dev) are opened with dlopen after the process chose their settings (Tensors/Kernels.swift).
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("dl")]),
        // fp32 tensors and CPU kernels.
        .target(name: "Tensors", dependencies: ["CKernels"], swiftSettings: f16c),
        // safetensors files and sharded checkpoints.
        .target(name: "Safetensors", dependencies: ["Tensors"], swiftSettings: f16c),
        // The node SDK: Node, NodePack, NodeRegistry, Value, SocketType, params, RunContext, errors, ModelFolder,
        // the plugin entry point, and the helpers nodes share (Paths, BoundedFile, ConfigBounds, limits, MachineMemory).
        .target(name: "SanaGraphKit", dependencies: [
            "Tensors", "Safetensors", .product(name: "SystemPackage", package: "swift-system"),
        ]),
        // The interfaces SANA's packs share: text encoder, denoiser, autoencoder and upscaler protocols,
        // Conditioning, and their socket types.
        .target(name: "DiffusionModels", dependencies: ["SanaGraphKit", "Tensors"]),
    ]
)
