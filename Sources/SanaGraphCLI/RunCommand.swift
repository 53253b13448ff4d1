import ArgumentParser
import Foundation
import GraphRuntime
import Tensors
import Logging

/// `sanagraph run FILE`: validate, plan and run a graph.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Validate a graph, then run the nodes its outputs need.",
        discussion: """
            Only ancestors of output nodes run, in dependency order; each value is released after its last \
            consumer. Nodes whose key (type, version, params, inputs, files read) is in the disk cache are not \
            run again, across processes (--cache rw|ro|off, --cache-dir; docs/cache.md); with --repeat, later \
            runs also take unchanged nodes from the in-memory cache. A disk cache that can't be used gives a \
            warning and the run goes on without it.
            SIGINT/SIGTERM stop the run before the next node (or at the next progress point inside one); \
            outputs are written atomically, so an interrupted run leaves no partial files.

            Exit codes: 0 success, 2 invalid graph or params, 3 a node failed, 4 a model/weights file is \
            missing or corrupt, 5 the --lock file is held by another run, 6 input/output error, 130 interrupted.
            """)

    @OptionGroup var graph: GraphOptions

    @OptionGroup var cache: CacheOptions

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Print events as JSON lines on stdout (one object per line; errors still go to stderr).")
    var json = false

    @Flag(help: "Print no progress (errors and warnings still go to stderr).")
    var quiet = false

    @Flag(help: "Also print the nodes' informational log messages (stderr).")
    var verbose = false

    @Flag(name: .customLong("no-metadata"), help: "Don't record the graph and params in output files.")
    var noMetadata = false

    @Option(help: ArgumentHelp("Refuse to start (exit 5) while another run holds this lock file.",
                               valueName: "file"))
    var lock: String?

    @Option(name: .customLong("repeat"),
            help: ArgumentHelp("Run the graph this many times in one process.", valueName: "n"))
    var repetitions = 1

    @Option(name: .customLong("cache-memory"),
            help: ArgumentHelp("""
                In-memory cache budget (e.g. 512M, 4G, 0). 'auto': none for a single run, half the \
                machine's memory with --repeat.
                """, valueName: "size"))
    var cacheMemory = MemoryBudget.auto

    @Option(name: .customLong("preview"),
            help: ArgumentHelp("""
                While sampling, write a preview picture of the current latent every N steps to \
                <preview-dir>/<graph>-<node>.preview.png (replaced atomically; removed when the run ends).
                """, valueName: "n"))
    var previewEvery: Int?

    @Option(name: .customLong("preview-dir"),
            help: ArgumentHelp("Folder of the --preview pictures.", valueName: "dir"))
    var previewDirectory = "out/preview"

    func validate() throws {
        guard (1...1_000_000).contains(repetitions) else { throw ValidationError("--repeat must be 1 to 1000000") }
        if let previewEvery, !(1...1_000_000).contains(previewEvery) {
            throw ValidationError("--preview must be 1 to 1000000 (steps between preview pictures)")
        }
        if previewEvery != nil && isBatch {
            throw ValidationError("--preview is for single runs; it cannot be used with --sweep or batch options")
        }
    }

    @OptionGroup var plugins: PluginOptions

    @OptionGroup(title: "Sweeps and batches (docs/cli.md#sweeps)") var sweep: SweepOptions

    @OptionGroup(title: "Sweeps and batches (docs/cli.md#sweeps)") var batch: BatchRunOptions

    func run() throws {
        threadOptions.apply()
        SectionProfile.startFromEnvironment()
        if isBatch { return try runBatch() }
        let printer = EventPrinter(mode: EventPrinter.mode(json: json, quiet: quiet), repetitions: repetitions)
        // In JSON mode a failure before the run still ends the log with a summary line.
        let json = self.json
        let reportEarlyFailure: (any Error) -> Void = { error in
            guard json else { return }
            let summary = RunSummary(ok: false, seconds: 0, nodesRun: 0, nodesCached: 0,
                                     exitCode: error.exitCategory.exitCode, error: "\(error)")
            Console.out(RunEvent.runFinished(summary).jsonLine + "\n")
        }

        // Listen for SIGINT/SIGTERM from the start, so an interrupt while loading also ends with exit 130.
        let token = CancellationToken()
        let signals = SignalCancellation(token: token)
        defer { signals.cancel() }

        var runLock: RunLock?
        if let lock {
            do {
                runLock = try RunLock.acquire(path: lock)
            } catch {
                Console.error("\(error)")
                reportEarlyFailure(error)
                throw exitStatus(for: error)
            }
        }
        defer { runLock?.release() }

        let registry = try plugins.registry()
        let validated = try loadGraph(graph, registry: registry, quiet: quiet, onFailure: reportEarlyFailure)
        let plan = Planner.plan(validated)

        let budget: Int
        switch cacheMemory {
        case .auto: budget = repetitions > 1 ? Int(ProcessInfo.processInfo.physicalMemory / 2) : 0
        case .size(let size): budget = size.bytes
        }
        // Log lines (node messages, cache warnings) go to stderr: stdout carries only JSON events with --json.
        var logger = Logger(label: "sanagraph", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = verbose ? .info : .warning
        let disk: DiskCache?
        do {
            disk = try cache.openForRun(logger: logger) { warning in
                Console.err("warning: \(warning)\n")
                if json { Console.out(RunEvent.cacheWarning(node: "", store: "disk", message: warning).jsonLine + "\n") }
            }
        } catch {
            Console.error("\(error)")
            reportEarlyFailure(error)
            throw exitStatus(for: error)
        }
        let caches: [any NodeCacheStore] = [MemoryCache(budget: budget)] + (disk.map { [$0] } ?? [])
        let executor = Executor(caches: caches, cancellation: token, logger: logger,
                                events: { printer.handle($0) })
        let previews = previewEvery.map { _ in PreviewFiles(directory: previewDirectory, graphFile: validated.file) }
        defer { previews?.removeAll() }
        for _ in 0..<repetitions {
            var info = RunInfo(graphFile: validated.file, graphSource: validated.source, params: validated.params,
                               writeMetadata: !noMetadata)
            if let previews, let previewEvery { info.preview = previews.sink(every: previewEvery) }
            do {
                try executor.run(validated, plan: plan, info: info)
            } catch {
                printer.closeLine()
                Console.error("\(error)")
                throw exitStatus(for: error)
            }
        }
    }
}
