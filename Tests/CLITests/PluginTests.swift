import Foundation
import GraphRuntime
import Testing
import TestSupport

/// Node packs from outside the repository: the example plugin package built both ways (a library loaded with
/// `--plugin`, and a custom `sanagraph` with the pack compiled in), and every way a bad plugin is refused.
@Suite(.serialized) struct PluginTests {
    // MARK: the example package (examples/image-grid)

    @Test func examplePluginRunsItsGraphAndMatchesTheCompiledInBinary() throws {
        let example = try ExampleBuild.shared.get()
        let dir = TestSupport.temporaryDirectory("sanagraph-plugin")
        defer { try? FileManager.default.removeItem(at: dir) }
        let graph = ExampleBuild.folder.appendingPathComponent("example.yaml").path
        let common = ["--no-metadata", "--cache", "off", "--quiet", "--set", "steps=2"]

        // Run-time path: the stock binary with --plugin.
        let viaPlugin = dir.appendingPathComponent("plugin.png").path
        let r = try CLI.run(["run", graph, "--plugin", example.library.path, "--set", "output=\(viaPlugin)"] + common,
                            directory: TestSupport.repositoryRoot)
        #expect(r.status == 0, "\(r.stderr)")

        // Compile-time path: sanagraph-grid has the pack built in; same nodes, same picture.
        let compiledIn = dir.appendingPathComponent("compiled.png").path
        let c = try CLI.run(["run", graph, "--set", "output=\(compiledIn)"] + common,
                            directory: TestSupport.repositoryRoot, executable: example.customBinary)
        #expect(c.status == 0, "\(c.stderr)")

        let (a, b) = try PipelineSupport.pixels(viaPlugin, compiledIn)
        // Four 256 px images in two columns with 8 px padding on a #202020 background.
        #expect(a.shape == [1, 3, 2 * 256 + 3 * 8, 2 * 256 + 3 * 8])
        #expect(PipelineSupport.maxDifference255(a, b) <= 1)
        for (y, x) in [(0, 0), (3, 100), (264, 264), (535, 535)] {
            #expect((0..<3).allSatisfy { abs(a[0, $0, y, x] * 255 - 32) < 0.5 }, "padding pixel (\(y), \(x))")
        }
        // Every tile holds a picture (the model draws coloured shapes on white), not the background.
        for (top, left) in [(8, 8), (8, 272), (272, 8), (272, 272)] {
            var bright = 0
            for y in stride(from: top, to: top + 256, by: 4) {
                for x in stride(from: left, to: left + 256, by: 4) where a[0, 0, y, x] > 0.6 { bright += 1 }
            }
            #expect(bright > 1000, "tile at (\(top), \(left)) looks empty")
        }
    }

    @Test func pluginTypesShowTheirPackAndLibraryAndCacheOnDisk() throws {
        let example = try ExampleBuild.shared.get()
        let library = example.library.resolvingSymlinksInPath().path

        let nodes = try CLI.run(["nodes", "--plugin", example.library.path])
        #expect(nodes.status == 0, "\(nodes.stderr)")
        #expect(nodes.stdout.split(separator: "\n").contains {
            $0.hasPrefix("grid.compose") && $0.contains("ImageGrid") })
        #expect(nodes.stdout.split(separator: "\n").contains { $0.contains("ImageGrid") && $0.hasSuffix(library) })
        #expect(nodes.stdout.split(separator: "\n").contains { $0.contains("DCAE") && $0.hasSuffix("built in") })

        let describe = try CLI.run(["describe", "grid.compose", "--plugin", example.library.path])
        #expect(describe.status == 0, "\(describe.stderr)")
        #expect(describe.stdout.hasPrefix("grid.compose (version 1, pack ImageGrid, \(library))"), "\(describe.stdout)")
        #expect(describe.stdout.contains("layout: grid.Layout (optional)"))

        // The same plugin from SANAGRAPH_PLUGIN_PATH (a folder; a missing folder in the list is skipped).
        let viaEnv = try CLI.run(["nodes"], environment: [
            "SANAGRAPH_PLUGIN_PATH": "/nonexistent:" + example.library.deletingLastPathComponent().path])
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")
        #expect(viaEnv.stdout.contains("grid.layout"))

        // A plugin's own socket type (grid.Layout) goes through the disk cache: a second process reads it back.
        let dir = TestSupport.temporaryDirectory("sanagraph-plugin-cache")
        defer { try? FileManager.default.removeItem(at: dir) }
        let graph = dir.appendingPathComponent("layout.yaml")
        try """
            sanagraph: 1
            requires: [ImageGrid]
            nodes:
              img:    {type: image.load, params: {path: "\(TestSupport.fixture("ImageIO/rgb8.png"))"}}
              layout: {type: grid.layout, params: {columns: 3, padding: 2, background: "#ff8000"}}
              grid:   {type: grid.compose, inputs: {a: img, b: img, c: img, layout: layout}}
              save:   {type: tensor.save, inputs: {tensor: grid}, params: {path: "\(dir.path)/grid.safetensors", name: grid}}
            """.write(to: graph, atomically: true, encoding: .utf8)
        let cache = ["--cache-dir", dir.appendingPathComponent("cache").path, "--json"]
        let first = try CLI.run(["run", graph.path, "--plugin", example.library.path] + cache)
        #expect(first.status == 0, "\(first.stderr)")
        let second = try CLI.run(["run", graph.path, "--plugin", example.library.path] + cache)
        #expect(second.status == 0, "\(second.stderr)")
        let cached = PipelineSupport.events(second.stdout).filter { $0["event"] as? String == "node_finished" }
            .filter { $0["cache"] as? String == "disk" }.compactMap { $0["node"] as? String }
        #expect(Set(cached).isSuperset(of: ["layout", "grid"]), "\(second.stdout)")
        // Without the plugin, the graph names the pack it needs.
        let missing = try CLI.run(["validate", graph.path])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("the graph requires node pack 'ImageGrid', which is not loaded; load it "
                                        + "with --plugin PATH or a folder in SANAGRAPH_PLUGIN_PATH"), "\(missing.stderr)")
        #expect(missing.stderr.contains("unknown node type 'grid.layout' (probably from the required pack "
                                        + "'ImageGrid', not loaded)"))
    }

    @Test func aPackCompiledInCannotBeLoadedAgainAsAPlugin() throws {
        let example = try ExampleBuild.shared.get()
        let r = try CLI.run(["nodes", "--plugin", example.library.path], executable: example.customBinary)
        #expect(r.status == 2)
        #expect(r.stderr == "error: plugin \(example.library.path): a pack named 'ImageGrid' is already registered "
                + "(built in); nothing of it was registered\n")
        // The same file twice is loaded once.
        let twice = try CLI.run(["nodes", "--plugin", example.library.path, "--plugin", example.library.path])
        #expect(twice.status == 0, "\(twice.stderr)")
    }

    // MARK: bad plugins, each refused with exit 2 and its own message

    @Test func badPluginsAreRefusedWithExitTwoAndAClearMessage() throws {
        let bad = try BadPlugins.shared.get()
        let rebuild = "rebuild the plugin with this sanagraph's toolchain and SDK: 'swift build -c release' in the "
            + "plugin's package, which depends on SanaGraphKit from the same SanaGraph checkout (docs/plugins.md)"
        let cases: [(String, String)] = [
            (bad.noEntry, "plugin \(bad.noEntry): not a SanaGraph plugin: it exports no 'sanagraph_plugin_entry' "
                + "function (declare it with @_cdecl(\"sanagraph_plugin_entry\"); docs/plugins.md)"),
            (bad.otherSDK, "plugin \(bad.otherSDK): built for SanaGraphKit SDK version 999 (Swift 6.3.1), but this "
                + "sanagraph has SDK version \(SanaGraphPlugin.sdkVersion) (Swift \(SanaGraphPlugin.compilerVersion)); "
                + rebuild),
            (bad.otherCompiler, "plugin \(bad.otherCompiler): built with Swift 5.10.0, but this sanagraph was built "
                + "with Swift \(SanaGraphPlugin.compilerVersion), and Swift has no stable ABI on Linux; " + rebuild),
            (bad.unknownAnswer, "plugin \(bad.unknownAnswer): its entry point returned 42, which this sanagraph does "
                + "not understand; " + rebuild),
            (bad.throwing, "plugin \(bad.throwing): its registration failed: licence file /nonexistent/licence.txt "
                + "is missing; nothing of it was registered"),
            (bad.clashing, "plugin \(bad.clashing): node type 'image.save' is registered twice (by ImageIO and "
                + "Clashing); nothing of it was registered"),
            (bad.notALibrary, "plugin \(bad.notALibrary): cannot be loaded: \(bad.notALibrary): invalid ELF header"),
            ("/nonexistent/libX.so", "plugin /nonexistent/libX.so: no such file or folder (from --plugin)"),
        ]
        for (path, message) in cases {
            for command in [["nodes"], ["validate", TestSupport.fixture("CLI/noise.yaml")]] {
                let r = try CLI.run(command + ["--plugin", path])
                #expect(r.status == 2, "\(path): \(r.stderr)")
                #expect(r.stderr == "error: \(message)\n")
                #expect(r.stdout.isEmpty)
            }
        }
        // A bad library in SANAGRAPH_PLUGIN_PATH is an error too (nothing runs with a half-loaded set of packs).
        let env = try CLI.run(["nodes"], environment: [
            "SANAGRAPH_PLUGIN_PATH": URL(fileURLWithPath: bad.throwing).deletingLastPathComponent().path])
        #expect(env.status == 2)
        #expect(env.stderr.hasPrefix("error: plugin "))
    }
}

// MARK: - Building the plugins the tests load

/// Runs a build tool, throwing its output when it fails.
private func tool(_ arguments: [String], in directory: URL? = nil) throws -> String {
    let out = TestSupport.temporaryDirectory("sanagraph-tool").appendingPathComponent("log")
    FileManager.default.createFile(atPath: out.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = arguments
    if let directory { p.currentDirectoryURL = directory }
    let handle = try FileHandle(forWritingTo: out)
    p.standardOutput = handle
    p.standardError = handle
    p.standardInput = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let log = String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self)
    guard p.terminationStatus == 0 else {
        throw CLIError("\(arguments.joined(separator: " ")) failed (\(p.terminationStatus)):\n\(log.suffix(4000))")
    }
    return log
}

/// Computes a value once, on first use, and remembers the outcome (success or error).
private final class Once<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<T, any Error>?
    private let make: () throws -> T

    init(_ make: @escaping () throws -> T) { self.make = make }

    func get() throws -> T {
        lock.lock()
        defer { lock.unlock() }
        if result == nil { result = Result { try make() } }
        return try result!.get()
    }
}

/// `swift build -c release` of examples/image-grid, as a user would run it, into a scratch folder the next test
/// run reuses (`.build-examples/`, ignored by git).
private struct ExampleBuild: Sendable {
    static let folder = TestSupport.repositoryRoot.appendingPathComponent("examples/image-grid")
    static let shared = Once<ExampleBuild> {
        let scratch = TestSupport.repositoryRoot.appendingPathComponent(".build-examples/image-grid")
        // SwiftPM re-plans a reused scratch folder when the example's own files change, not when a source file is
        // added to the checkout it depends on by path: drop the cached plan (compiled objects stay reusable).
        try? FileManager.default.removeItem(at: scratch.appendingPathComponent("release.yaml"))
        _ = try tool(["swift", "build", "-c", "release", "--package-path", folder.path, "--scratch-path", scratch.path])
        let products = scratch.appendingPathComponent("release")
        return ExampleBuild(library: products.appendingPathComponent("libImageGrid.so"),
                            customBinary: products.appendingPathComponent("sanagraph-grid"))
    }

    var library: URL
    var customBinary: URL
}

/// Plugins that must be refused, built at test time from Tests/Fixtures/Plugins: C libraries that answer as a
/// plugin from another SDK or compiler would, and Swift plugins compiled against this build's SanaGraphKit.
private struct BadPlugins: Sendable {
    var noEntry, otherSDK, otherCompiler, unknownAnswer, throwing, clashing, notALibrary: String

    static let shared = Once<BadPlugins> {
        let dir = TestSupport.temporaryDirectory("sanagraph-bad-plugins")
        let sources = TestSupport.fixturesDirectory.appendingPathComponent("Plugins")
        func c(_ name: String, _ source: String, mode: Int = 0) throws -> String {
            let out = dir.appendingPathComponent("lib\(name).so").path
            _ = try tool(["cc", "-shared", "-fPIC", "-DMODE=\(mode)", sources.appendingPathComponent(source).path,
                          "-o", out])
            return out
        }
        // The Swift plugins link the libSanaGraphKit.so this test run was built with.
        let products = try CLI.executable().deletingLastPathComponent()
        // The SDK's module imports swift-system, whose C module the compiler must find too.
        let checkouts = products.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("checkouts")
        let cSystem = checkouts.appendingPathComponent("swift-system/Sources/CSystem/include/module.modulemap").path
        func swift(_ name: String) throws -> String {
            let out = dir.appendingPathComponent("lib\(name).so").path
            _ = try tool(["swiftc", "-O", "-emit-library", "-module-name", name,
                          "-I", products.appendingPathComponent("Modules").path,
                          "-Xcc", "-fmodule-map-file=" + cSystem,
                          // The SDK's kernels module (imported internally, still loaded by clients of a
                          // non-resilient module): SwiftPM's generated module map beside the products.
                          "-Xcc", "-fmodule-map-file=" + products.appendingPathComponent("CKernels.build/module.modulemap").path]
                         + ["-L", products.path, "-lSanaGraphKit",
                                   sources.appendingPathComponent("\(name).swift").path, "-o", out])
            return out
        }
        let notALibrary = dir.appendingPathComponent("libtext.so").path
        try String(repeating: "not an ELF file\n", count: 16).write(toFile: notALibrary, atomically: true, encoding: .utf8)
        return BadPlugins(noEntry: try c("noentry", "noentry.c"), otherSDK: try c("foreign1", "foreign.c", mode: 1),
                          otherCompiler: try c("foreign2", "foreign.c", mode: 2),
                          unknownAnswer: try c("foreign3", "foreign.c", mode: 3),
                          throwing: try swift("Throwing"), clashing: try swift("Clashing"), notALibrary: notALibrary)
    }
}
