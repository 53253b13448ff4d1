import ArgumentParser
import Foundation
import GraphRuntime
import Tensors

/// `--threads N`: worker threads for the kernels (default: `SANAGRAPH_THREADS`, else every CPU available).
struct ThreadOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Worker threads for the CPU kernels (default: $SANAGRAPH_THREADS, else every CPU "
                               + "this process may use).", valueName: "n"))
    var threads: Int?

    func validate() throws {
        if let threads, !(1...4096).contains(threads) {
            throw ValidationError("--threads must be between 1 and 4096, got \(threads)")
        }
    }

    /// Applies `--threads` before any kernel runs.
    func apply() {
        if let threads { Kernels.configure(threads: threads) }
    }
}

/// `sanagraph info`: what this machine runs — CPU, kernels and libraries, threads, cache folder.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show the CPU, the kernels chosen for fp32 and bf16, threads, library versions and the cache folder.",
        discussion: """
            Kernels are chosen from the CPU's features (CPUID), never from model numbers. Environment: \
            SANAGRAPH_THREADS, SANAGRAPH_CPU=generic (most generic kernels), SANAGRAPH_BF16=auto|on|off|emulate, \
            SANAGRAPH_FP32=auto|openblas|onednn, SANAGRAPH_ONEDNN=0, OPENBLAS_CORETYPE (respected). See docs/cli.md.
            """)

    @OptionGroup var threadOptions: ThreadOptions

    @Option(name: .customLong("cache-dir"), help: ArgumentHelp("The disk cache folder to report.", valueName: "dir"))
    var cacheDirectory: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func run() throws {
        threadOptions.apply()
        var lines = [("sanagraph", SanaGraphVersion.current)] + Kernels.selection.report()
        let environment = ProcessInfo.processInfo.environment
        let cache = DiskCacheSetup.directory(option: cacheDirectory, environment: environment)
        lines.append(("cache", cache ?? "none (HOME and XDG_CACHE_HOME unset; pass --cache-dir)"))
        if json {
            var o = JSONObjectWriter()
            for (key, value) in lines { o.add(key, .string(value)) }
            Console.out(o.text + "\n")
        } else {
            let width = lines.map(\.0.count).max() ?? 0
            for (key, value) in lines {
                Console.out(key + ":" + String(repeating: " ", count: width - key.count + 1) + value + "\n")
            }
        }
    }
}
