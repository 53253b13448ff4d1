// swift-tools-version: 6.0
import Foundation
import PackageDescription

// An example node pack built outside SanaGraph's own package, both ways a pack can reach `sanagraph`:
// - libImageGrid.so, a plugin library: `sanagraph run --plugin .build/release/libImageGrid.so example.yaml`;
// - sanagraph-grid, a `sanagraph` with the pack compiled in: `.build/release/sanagraph-grid run example.yaml`.
// It depends on the SanaGraph checkout by path (two folders up). Build with the same Swift toolchain as the
// `sanagraph` that loads the plugin: `swift build -c release` (see docs/plugins.md).

// The checkout's package identity is its folder's name, whatever the clone is called.
let checkout = URL(fileURLWithPath: Context.packageDirectory).appendingPathComponent("../..").standardized
let sdk: Target.Dependency = .product(name: "SanaGraphKit", package: "SanaGraphKit")

let package = Package(
    name: "ImageGrid",
    platforms: [.macOS(.v15)],
    products: [
        // The plugin library. It must be `.dynamic` and link SanaGraphKit as a product (never its targets), so it
        // shares the host's one copy of the SDK's types.
        .library(name: "ImageGrid", type: .dynamic, targets: ["ImageGridPlugin"]),
        // A sanagraph binary with the pack compiled in.
        .executable(name: "sanagraph-grid", targets: ["sanagraph-grid"]),
    ],
    dependencies: [
        .package(path: checkout.appendingPathComponent("SanaGraphKit").path),
        .package(path: checkout.path),
    ],
    targets: [
        // The nodes: no entry point, so both products can use them.
        .target(name: "ImageGridNodes", dependencies: [sdk]),
        // The plugin's entry point.
        .target(name: "ImageGridPlugin", dependencies: ["ImageGridNodes", sdk]),
        .executableTarget(name: "sanagraph-grid", dependencies: [
            "ImageGridNodes", .product(name: "SanaGraphCLI", package: checkout.lastPathComponent),
        ]),
    ]
)
