import ArgumentParser
import Batch
import Foundation
import GraphRuntime
import Logging

/// `run` options that only batches use (docs/cli.md#sweeps). Any of them, or a sweep option, makes `run` a batch.
struct BatchRunOptions: ParsableArguments {
    @Option(name: .customLong("manifest"),
            help: ArgumentHelp("Append one JSON line per item to this file ({shard} becomes the shard index: one "
                               + "file per shard on shared file systems).", valueName: "file"))
    var manifest: String?

    @Flag(name: .customLong("force"),
          help: "Run every item, also those whose outputs exist with matching provenance.")
    var force = false

    @Option(name: .customLong("metrics"),
            help: ArgumentHelp("Keep Prometheus text-format metrics in this file (rewritten atomically after each "
                               + "item; {shard} as for --manifest).", valueName: "file"))
    var metrics: String?

    @Option(name: .customLong("on-item-done"),
            help: ArgumentHelp("Run this shell command after each item that ran, with its manifest line on stdin "
                               + "(a failing hook is a warning).", valueName: "command"))
    var onItemDone: String?

    @Option(name: .customLong("max-failures"),
            help: ArgumentHelp("Start no more items once this many have failed (default: no limit).", valueName: "n"))
    var maxFailures: Int?

    @Option(name: .customLong("retries"),
            help: ArgumentHelp("Try an item that failed with an I/O error again, up to this many times.",
                               valueName: "n"))
    var retries = 0

    var isActive: Bool {
        manifest != nil || force || metrics != nil || onItemDone != nil || maxFailures != nil || retries != 0
    }

    func validate() throws {
        if let maxFailures, maxFailures < 1 { throw ValidationError("--max-failures must be at least 1") }
        guard (0...100).contains(retries) else { throw ValidationError("--retries must be 0 to 100") }
    }
}

extension RunCommand {
    /// Whether this `run` is a batch (a sweep, a shard, a manifest, ...).
    var isBatch: Bool { sweep.isActive || batch.isActive }

    /// `run` over the items of a sweep in one process (this shard's part): validate every item and refuse
    /// colliding outputs before anything runs, skip items done before, run the rest with models kept loaded,
    /// append each item to the manifest. Exit: 0 all done; the first failed item's code (3, 4, 6) when some
    /// failed; 130 interrupted; 2 for invalid input and 6 for an unwritable manifest before or while running.
    func runBatch() throws {
        let json = self.json
        let reportEarlyFailure: (any Error) -> Void = { error in
            guard json else { return }
            var o = JSONObjectWriter()
            o.add("event", .string("batch_finished"))
            o.add("ok", .bool(false))
            o.add("exit_code", .int(Int(error.exitCategory.exitCode)))
            o.add("error", .string("\(error)"))
            Console.out(o.text + "\n")
        }
        func fail(_ error: any Error) -> ExitCode {
            Console.error("\(error)")
            reportEarlyFailure(error)
            return exitStatus(for: error)
        }
        guard repetitions == 1 else {
            throw fail(UsageError("--repeat can't be combined with a sweep; sweep over the params instead"))
        }

        let token = CancellationToken()
        let signals = SignalCancellation(token: token)
        defer { signals.cancel() }
        var runLock: RunLock?
        if let lock {
            do { runLock = try RunLock.acquire(path: lock) } catch { throw fail(error) }
        }
        defer { runLock?.release() }

        let registry = try plugins.registry()
        let graph: BatchGraph
        let items: [SweepItem]
        let shard: Shard
        do {
            let resolved = try sweep.resolve()
            shard = resolved.shard
            if let source = resolved.source, !quiet { Console.err("shard \(shard) (from \(source))\n") }
            graph = try batchGraph(self.graph)
            items = try sweepItems(resolved.sweep, graph: graph, setNames: Set(self.graph.parsedOverrides().keys))
        } catch let error as GraphValidationError {
            for diagnostic in error.diagnostics { Console.err("\(diagnostic)\n") }
            reportEarlyFailure(error)
            throw exitStatus(for: error)
        } catch {
            throw fail(error)
        }

        var logger = Logger(label: "sanagraph", factory: { StreamLogHandler.standardError(label: $0) })
        logger.logLevel = verbose ? .info : .warning
        let disk: DiskCache?
        do {
            disk = try cache.openForRun(logger: logger) { warning in
                Console.err("warning: \(warning)\n")
                if json { Console.out(RunEvent.cacheWarning(node: "", store: "disk", message: warning).jsonLine + "\n") }
            }
        } catch {
            throw fail(error)
        }

        var settings = BatchSettings()
        settings.shard = shard
        settings.force = batch.force
        settings.manifest = batch.manifest.map { shard.render($0) }
        settings.resumeManifests = batch.manifest.map { siblingManifests(template: $0) } ?? []
        settings.metrics = batch.metrics.map { shard.render($0) }
        settings.onItemDone = batch.onItemDone
        settings.maxFailures = batch.maxFailures
        settings.retries = batch.retries
        settings.writeMetadata = !noMetadata
        let physical = Int(clamping: ProcessInfo.processInfo.physicalMemory)
        settings.modelMemory = physical / 2
        switch cacheMemory {
        case .auto: settings.valueMemory = min(512 << 20, physical / 8)
        case .size(let size): settings.valueMemory = size.bytes
        }
        if let template = batch.manifest, shard.count > 1, !template.contains("{shard}") {
            Console.err("warning: --manifest \(template) is shared by all \(shard.count) shards; appends from several "
                        + "hosts over NFS can be lost: use a per-shard file such as --manifest out/manifest-{shard}.jsonl\n")
        }

        let mode = EventPrinter.mode(json: json, quiet: quiet)
        // Node-level progress of every item would drown the item lines; --verbose shows it, --json always has it.
        let nodePrinter = EventPrinter(mode: mode == .json || verbose ? mode : .quiet)
        let runner = BatchRunner(graph: graph, items: items, registry: registry, settings: settings,
                                 stores: disk.map { [$0] } ?? [], cancellation: token, logger: logger,
                                 provenance: pngProvenance, events: { nodePrinter.handle($0) })
        let prepared: PreparedBatch
        do {
            prepared = try runner.prepare()
        } catch {
            throw fail(error)
        }
        let printer = BatchPrinter(mode: mode, verbose: verbose)
        if !quiet { for warning in prepared.graphWarnings { Console.err(warning + "\n") } }
        for warning in prepared.warnings { Console.err("warning: \(warning)\n") }
        printer.started(prepared, shard: shard, graph: graph.file)

        let outcome: BatchOutcome
        do {
            outcome = try runner.run(prepared, observer: printer)
        } catch {
            nodePrinter.closeLine()
            throw fail(error)
        }
        printer.finished(outcome, total: prepared.items.count)
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

/// Prints a batch's items: one line each (human), or `batch_started` / `item_finished` / `batch_finished` JSON
/// lines beside the run events (`--json`).
final class BatchPrinter: BatchObserver {
    let mode: EventPrinter.Mode
    let verbose: Bool

    init(mode: EventPrinter.Mode, verbose: Bool) {
        self.mode = mode
        self.verbose = verbose
    }

    func started(_ batch: PreparedBatch, shard: Shard, graph: String) {
        let done = batch.items.count - batch.pending.count
        switch mode {
        case .json:
            var o = JSONObjectWriter()
            o.add("event", .string("batch_started"))
            o.add("graph", .string(graph))
            o.add("items", .int(batch.total))
            o.add("shard", .string(shard.description))
            o.add("shard_items", .int(batch.items.count))
            o.add("done", .int(done))
            o.add("to_run", .int(batch.pending.count))
            Console.out(o.text + "\n")
        case .terminal, .plain:
            let part = shard.count > 1 ? "; shard \(shard): \(batch.items.count)" : ""
            Console.err("batch \(graph): \(batch.total) item\(batch.total == 1 ? "" : "s")\(part); "
                        + "\(done) done before, \(batch.pending.count) to run\n")
        case .quiet:
            break
        }
    }

    func itemStarting(_ item: PreparedItem, position: Int, of count: Int, attempt: Int) {
        guard mode == .terminal || mode == .plain, verbose || attempt > 1 else { return }
        Console.err("item \(item.item.index) [\(position)/\(count)] \(item.item.label)"
                    + (attempt > 1 ? " (attempt \(attempt))" : "") + "\n")
    }

    func itemFinished(_ record: ManifestRecord, item: PreparedItem) {
        switch mode {
        case .json:
            Console.out("{\"event\":\"item_finished\"," + record.jsonLine.dropFirst() + "\n")
        case .terminal, .plain:
            let head = "item \(record.item) (\(item.item.label))"
            switch record.status {
            case .ok:
                let files = record.outputs.map(\.path).joined(separator: ", ")
                Console.err("\(head): ok in \(formatDuration(record.seconds)) (\(record.nodesRun) ran, "
                            + "\(record.nodesCached) cached)" + (files.isEmpty ? "" : " -> \(files)") + "\n")
            case .skipped:
                if verbose { Console.err("\(head): done before (\(record.outputs.map(\.path).joined(separator: ", ")))\n") }
            case .failed, .interrupted:
                Console.err("\(head): \(record.status.rawValue), exit \(record.exitCode): \(record.error ?? "")\n")
            }
        case .quiet:
            if record.status == .failed {
                Console.err("item \(record.item) (\(item.item.label)): failed, exit \(record.exitCode): \(record.error ?? "")\n")
            }
        }
    }

    func warning(_ message: String) { Console.err("warning: \(message)\n") }

    func finished(_ outcome: BatchOutcome, total: Int) {
        let counts = ManifestRecord.Status.allCases.compactMap { s -> String? in
            let n = outcome.counts[s] ?? 0
            return n == 0 ? nil : "\(n) \(s.rawValue)"
        } + (outcome.notStarted > 0 ? ["\(outcome.notStarted) not started"] : [])
        switch mode {
        case .json:
            var o = JSONObjectWriter()
            o.add("event", .string("batch_finished"))
            o.add("ok", .bool(outcome.exitCode == 0))
            for s in ManifestRecord.Status.allCases { o.add(s.rawValue == "ok" ? "items_ok" : s.rawValue, .int(outcome.counts[s] ?? 0)) }
            o.add("not_started", .int(outcome.notStarted))
            o.add("seconds", .double(outcome.seconds))
            o.add("exit_code", .int(Int(outcome.exitCode)))
            Console.out(o.text + "\n")
        case .terminal, .plain, .quiet:
            guard mode != .quiet || outcome.exitCode != 0 else { return }
            var line = "batch: \(total) item\(total == 1 ? "" : "s") in \(formatDuration(outcome.seconds)): "
                + counts.joined(separator: ", ")
            if outcome.stoppedAtMaxFailures { line += " (stopped at --max-failures)" }
            if outcome.interrupted { line += " (interrupted)" }
            if outcome.exitCode != 0 { line += "; exit \(outcome.exitCode)" }
            Console.err(line + "\n")
        }
    }
}
