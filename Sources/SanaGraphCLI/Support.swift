import ArgumentParser
import Foundation
import CUDA
import GraphRuntime
import ImageIO

#if canImport(Glibc)
import Glibc
#endif

// Small helpers shared by the subcommands: output, exit codes, graph loading.

/// Unbuffered writes to stdout/stderr (one `write(2)` per call, so JSON lines never interleave or get stuck
/// in a buffer when the process is interrupted).
enum Console {
    static func out(_ text: String) { write(STDOUT_FILENO, text) }
    static func err(_ text: String) { write(STDERR_FILENO, text) }

    /// `error: message` on stderr.
    static func error(_ message: String) { err("error: \(message)\n") }

    static var stderrIsTTY: Bool { isatty(STDERR_FILENO) == 1 }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return
            }
            offset += n
        }
        bytes.removeAll()
    }
}

/// The exit code for an error. The only place categories become process exit codes.
func exitStatus(for error: any Error) -> ExitCode {
    ExitCode(error.exitCategory.exitCode)
}

/// Options naming a graph file and its param overrides (shared by run, validate, plan, dot).
struct GraphOptions: ParsableArguments {
    @Argument(help: "The graph file (YAML, format 1).")
    var graphFile: String?

    @Option(name: .customLong("from"),
            help: ArgumentHelp("Take the graph and its params from a PNG that SanaGraph wrote (reproduce it); "
                               + "--set still overrides.", valueName: "png"))
    var fromImage: String?

    @Option(name: .customLong("set"),
            help: ArgumentHelp("Override a graph param (repeatable); later ones win.", valueName: "name=value"))
    var overrides: [ParamAssignment] = []

    @Option(name: .customLong("params"),
            help: ArgumentHelp("A YAML file of param values (repeatable); --set wins over it.", valueName: "file"))
    var paramsFiles: [String] = []

    @Option(name: .customLong("device"),
            help: ArgumentHelp("Where models run when the graph does not say: \(ComputeDevice.spellings); fills the "
                               + "'device' param of every node that has one and does not set it (docs/cuda.md).",
                               valueName: "device"))
    var device: String?

    func validate() throws {
        switch (graphFile, fromImage) {
        case (nil, nil): throw ValidationError("give a graph file, or --from FILE.png")
        case (.some, .some): throw ValidationError("give either a graph file or --from FILE.png, not both")
        default: break
        }
        if let device, ComputeDevice(parsing: device) == nil {
            throw ValidationError("--device must be \(ComputeDevice.spellings), got '\(device)'")
        }
        if fromImage != nil && !paramsFiles.isEmpty {
            throw ValidationError("--params can't be combined with --from (the PNG's params come first); use --set")
        }
    }

    /// The graph file, or the PNG it is taken from, for messages.
    var file: String { graphFile ?? fromImage ?? "" }

    /// Node param values for nodes that don't set them (`--device`).
    var nodeDefaults: [String: String] { device.map { ["device": $0] } ?? [:] }

    /// `--set` values by name (a later one wins).
    func parsedOverrides() -> [String: String] {
        var result: [String: String] = [:]
        for item in overrides { result[item.name] = item.value }
        return result
    }
}

/// A command-line mistake outside the graph (exit 2, like an invalid graph).
struct UsageError: CategorizedError {
    var message: String
    init(_ message: String) { self.message = message }
    var category: ErrorCategory { .invalidGraph }
    var description: String { message }
}

/// `--plugin PATH`: node packs loaded from shared libraries (plus the folders in SANAGRAPH_PLUGIN_PATH).
struct PluginOptions: ParsableArguments {
    @Option(name: .customLong("plugin"),
            help: ArgumentHelp("Load node packs from a plugin library, or from every .so in a folder (repeatable); "
                               + "the folders in SANAGRAPH_PLUGIN_PATH are loaded too.", valueName: "path"))
    var paths: [String] = []

    /// The built-in packs, the packs compiled into this binary, then the plugins. Any failure is exit 2 with
    /// a message naming the plugin; nothing runs with a half-loaded set of packs.
    func registry() throws -> NodeRegistry {
        var registry: NodeRegistry
        do {
            registry = try BuiltinPacks.registry()
        } catch {
            Console.error("\(error)")
            throw ExitCode(ErrorCategory.invalidGraph.exitCode)
        }
        do {
            try PluginLoader.loadAll(explicit: paths,
                                     environment: ProcessInfo.processInfo.environment[PluginLoader.environmentVariable],
                                     into: &registry)
        } catch {
            Console.error("\(error)")
            throw ExitCode(error.category.exitCode)
        }
        return registry
    }
}

/// Loads and validates a graph. On failure prints every diagnostic (or the error) to stderr and throws the
/// exit code. Warnings are printed unless `quiet`.
func loadGraph(_ options: GraphOptions, registry: NodeRegistry, quiet: Bool = false,
               onFailure: (any Error) -> Void = { _ in }) throws -> ValidatedGraph {
    do {
        let overrides = options.parsedOverrides()
        let graph: ValidatedGraph
        if let png = options.fromImage {
            // The recorded params come first; the user's --set wins over them.
            let recorded = try PNGMetadata.read(path: png)
            var merged = recorded.params.mapValues(\.description)
            merged.merge(overrides) { _, user in user }
            graph = try GraphLoader.load(yaml: recorded.graphSource, file: recorded.graphFile, registry: registry,
                                         overrides: merged, paramsFiles: options.paramsFiles,
                                         nodeDefaults: options.nodeDefaults)
        } else {
            graph = try GraphLoader.load(file: options.file, registry: registry, overrides: overrides,
                                         paramsFiles: options.paramsFiles, nodeDefaults: options.nodeDefaults)
        }
        if !quiet {
            for warning in graph.warnings { Console.err("\(warning)\n") }
        }
        return graph
    } catch let error as GraphValidationError {
        for diagnostic in error.diagnostics { Console.err("\(diagnostic)\n") }
        let errors = error.diagnostics.filter { $0.severity == .error }.count
        Console.err("\(options.file): \(errors) error\(errors == 1 ? "" : "s")\n")
        onFailure(error)
        throw exitStatus(for: error)
    } catch {
        Console.error("\(error)")
        onFailure(error)
        throw exitStatus(for: error)
    }
}

/// `1.23 GiB`, `512 MiB`, `800 B`.
func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= Double(1 << 30) { return String(format: "%.2f GiB", d / Double(1 << 30)) }
    if d >= Double(1 << 20) { return String(format: "%.1f MiB", d / Double(1 << 20)) }
    if d >= Double(1 << 10) { return String(format: "%.1f KiB", d / Double(1 << 10)) }
    return "\(n) B"
}
