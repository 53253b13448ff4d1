import Foundation
import GraphRuntime
import Logging
import SanaGraphKit
import Synchronization

/// The graph a batch runs: its text and what every item shares.
public struct BatchGraph: Sendable {
    /// The YAML text.
    public var source: String
    /// The graph file as given (messages, provenance, `{graph}`).
    public var file: String
    /// `--set` values (and, with `--from`, the PNG's params under them).
    public var overrides: [String: String]
    public var paramsFiles: [String]
    /// Node param values for nodes that don't set them (`--device`).
    public var nodeDefaults: [String: String]

    public init(source: String, file: String, overrides: [String: String] = [:], paramsFiles: [String] = [],
                nodeDefaults: [String: String] = [:]) {
        self.source = source
        self.file = file
        self.overrides = overrides
        self.paramsFiles = paramsFiles
        self.nodeDefaults = nodeDefaults
    }
}

/// How a batch runs (the `run` options of docs/cli.md#sweeps).
public struct BatchSettings: Sendable {
    public var shard = Shard.all
    /// Run every item, even those whose outputs exist with matching provenance.
    public var force = false
    /// The manifest to append to (already rendered for this shard), if any.
    public var manifest: String?
    /// More manifests to consult when deciding what is done (the other shards' files).
    public var resumeManifests: [String] = []
    public var metrics: String?
    public var onItemDone: String?
    /// Stop starting items once this many have failed (nil: never).
    public var maxFailures: Int?
    /// Extra attempts for an item that failed with an I/O error.
    public var retries = 0
    /// Seconds before the first retry; doubled for each further one.
    public var retryDelay = 1.0
    public var writeMetadata = true
    /// Budget of the in-memory store for loaded models (loaders' outputs).
    public var modelMemory = 0
    /// Budget of the in-memory store for other values (encodings, latents, images).
    public var valueMemory = 0

    public init() {}
}

/// Told what a batch is doing, as it happens (the CLI prints it).
public protocol BatchObserver: AnyObject {
    /// An item is about to run (`attempt` counts from 1).
    func itemStarting(_ item: PreparedItem, position: Int, of count: Int, attempt: Int)
    /// An item has a manifest record: it ran (ok, failed, interrupted) or was found done (skipped).
    func itemFinished(_ record: ManifestRecord, item: PreparedItem)
    /// Something worth a `warning:` line (a hook that failed, metrics that can't be written, ...).
    func warning(_ message: String)
}

/// One item of this process's part, ready to run.
public struct PreparedItem: Sendable {
    public enum Completion: Sendable {
        /// Must run; `reason` says why when earlier outputs were found but don't match.
        case pending(reason: String?)
        /// Done before: these outputs exist with matching provenance. `recorded`: a manifest already says so.
        case complete(outputs: [ManifestRecord.Output], recorded: Bool)
    }

    public var item: SweepItem
    public var graph: ValidatedGraph
    public var plan: ExecutionPlan
    /// (node, path) of the files the output nodes will write; nil when some output node can't say in advance.
    public var plannedFiles: [(node: String, path: String)]?
    /// The item's identity (`ManifestRecord.key`).
    public var key: String
    public var completion: Completion = .pending(reason: nil)
    /// Each loader's key -> the keys of the nodes that read it (to drop models no later item needs).
    var loaders: [CacheKey: [CacheKey]] = [:]
    /// Node id -> fingerprint, as the run's provenance will record them.
    var fingerprints: [String: String] = [:]

    public var isComplete: Bool {
        if case .complete = completion { return true }
        return false
    }
}

/// A batch after validation, collision checks and resume decisions, before anything runs.
public struct PreparedBatch: Sendable {
    /// Items in the whole sweep.
    public var total: Int
    /// This process's items, in sweep order.
    public var items: [PreparedItem]
    public var graphSHA256: String
    /// Warnings found while preparing (printed before running).
    public var warnings: [String]
    /// The graph's own warnings (`FILE:LINE:COL: warning: …`), from the first item.
    public var graphWarnings: [String] = []

    public var pending: [PreparedItem] { items.filter { !$0.isComplete } }
}

/// How a batch ended.
public struct BatchOutcome: Sendable {
    public var counts: [ManifestRecord.Status: Int] = [:]
    /// Items of this part that were never started (after `--max-failures` or an interrupt).
    public var notStarted = 0
    /// Records of the items that failed.
    public var failures: [ManifestRecord] = []
    public var stoppedAtMaxFailures = false
    public var interrupted = false
    public var seconds = 0.0

    /// 130 when interrupted; else the first failed item's exit code (3 node failed, 4 model file, 6 I/O); else 0.
    public var exitCode: Int32 {
        if interrupted { return ErrorCategory.interrupted.exitCode }
        return failures.first.map { Int32($0.exitCode) } ?? 0
    }
}

/// Runs the items of a sweep (this shard's part) in one process with one executor, so loaded models stay loaded
/// from item to item and unchanged nodes are not recomputed; writes the manifest, metrics and hooks.
///
/// Memory: loaders' outputs (models) live in their own in-memory store and stay until no remaining item of this
/// process needs them (a seed sweep drops the text encoder once the prompts are encoded); other values live in a
/// small LRU store (`valueMemory`), so intermediates of earlier items don't pile up. The disk cache, if given,
/// comes after both.
public final class BatchRunner {
    public let graph: BatchGraph
    public let sweepItems: [SweepItem]
    public let registry: NodeRegistry
    public let settings: BatchSettings
    /// When the batch started: every item's `RunInfo.startedAt`, so `{date}`/`{time}` are known in advance.
    public let startedAt: Date
    public let executor: Executor
    private let modelStore: MemoryCache
    private let collector = ItemCollector()
    private let provenance: ProvenanceReader

    /// - Parameters:
    ///   - stores: cache stores after the two in-memory ones (the disk cache).
    ///   - provenance: reads what an output file records about its run (resume).
    ///   - events: every executor event, for progress output.
    public init(graph: BatchGraph, items: [SweepItem], registry: NodeRegistry, settings: BatchSettings,
                stores: [any NodeCacheStore], cancellation: CancellationToken, logger: Logger,
                provenance: @escaping ProvenanceReader, startedAt: Date = Date(),
                events: @escaping @Sendable (RunEvent) -> Void) {
        self.graph = graph
        self.sweepItems = items
        self.registry = registry
        self.settings = settings
        self.startedAt = startedAt
        self.provenance = provenance
        let holdsModel: @Sendable (CacheEntryInfo) -> Bool = { info in
            info.descriptor.outputs.contains { !$0.type.isDiskCacheable }
        }
        modelStore = MemoryCache(budget: settings.modelMemory, accepting: holdsModel)
        let valueStore = MemoryCache(budget: settings.valueMemory, accepting: { !holdsModel($0) })
        let collector = self.collector
        executor = Executor(caches: [modelStore, valueStore] + stores, cancellation: cancellation, logger: logger,
                            events: { event in
                                collector.handle(event)
                                events(event)
                            })
    }

    // MARK: Preparing

    /// Validates every item of the sweep (all shards: collisions between shards count too), refuses items that
    /// would write the same file, computes this shard's items' keys and decides which are done already.
    /// - Throws: `BatchError.invalidItems` / `.outputCollision` (exit 2), or a `NodeRunError` from a node's
    ///   fingerprint (a missing model file: exit 4).
    public func prepare() throws -> PreparedBatch {
        var problems: [String] = []
        var seenProblems = Set<String>()
        var writers: [String: [(item: SweepItem, node: String)]] = [:]
        var warnings: [String] = []
        var unplannable = Set<String>()
        var own: [PreparedItem] = []
        var graphWarnings: [String]?
        let parsed = try GraphLoader.parse(yaml: graph.source, file: graph.file)
        for item in sweepItems {
            let validated: ValidatedGraph
            do {
                validated = try GraphLoader.load(parsed, registry: registry,
                                                 overrides: graph.overrides.merging(item.overrides) { $1 },
                                                 paramsFiles: graph.paramsFiles, nodeDefaults: graph.nodeDefaults)
            } catch let error as GraphValidationError {
                for d in error.diagnostics where d.severity == .error {
                    // The loader words swept values as overrides; say where they came from.
                    var message = d.description
                    for v in item.values { message = message.replacingOccurrences(of: "--set \(v.name)=", with: "--sweep \(v.name)=") }
                    if seenProblems.insert(message).inserted {
                        problems.append("item \(item.index) (\(item.label)): \(message)")
                    }
                }
                if problems.count >= 20 { break }
                continue
            }
            if graphWarnings == nil { graphWarnings = validated.warnings.map(\.description) }
            let plan = Planner.plan(validated)
            var files: [(node: String, path: String)]? = []
            for step in plan.steps {
                guard let node = validated.node(step.node), node.descriptor.hasSideEffects else { continue }
                guard let planner = node.type.init() as? any PlansOutputFiles else {
                    unplannable.insert("\(node.id) (\(node.descriptor.typeName))")
                    files = nil
                    continue
                }
                do {
                    if let paths = try planner.plannedOutputFiles(params: node.params, run: runInfo(validated)) {
                        files?.append(contentsOf: paths.map { (node.id, $0) })
                    } else {
                        unplannable.insert("\(node.id) (\(node.descriptor.typeName))")
                        files = nil
                    }
                } catch {
                    let message = "node '\(node.id)': \(error)"
                    if seenProblems.insert(message).inserted {
                        problems.append("item \(item.index) (\(item.label)): \(message)")
                    }
                    files = nil
                }
            }
            for (node, path) in files ?? [] { writers[Self.normalized(path), default: []].append((item, node)) }
            if settings.shard.owns(item.index) {
                own.append(PreparedItem(item: item, graph: validated, plan: plan, plannedFiles: files, key: ""))
            }
        }
        if !problems.isEmpty { throw BatchError.invalidItems(problems) }

        let collisions = writers.filter { $0.value.count > 1 }.sorted { $0.key < $1.key }
        if !collisions.isEmpty {
            var lines = collisions.prefix(10).map { path, users -> String in
                let who = users.prefix(4).map { "item \($0.item.index) (\($0.item.label))" }
                return "\(path): " + who.joined(separator: ", ") + (users.count > 4 ? ", … (\(users.count) items)" : "")
            }
            if collisions.count > 10 { lines.append("… and \(collisions.count - 10) more files") }
            throw BatchError.outputCollision(lines)
        }
        if !unplannable.isEmpty && sweepItems.count > 1 {
            warnings.append("output node\(unplannable.count == 1 ? "" : "s") \(unplannable.sorted().joined(separator: ", ")) "
                            + "can't name \(unplannable.count == 1 ? "its" : "their") files before running ({counter} in a path?): "
                            + "collisions between items are not checked, and only the manifest tells which items are done")
        }

        let records = settings.force ? [:] : doneRecords()
        let memo = FingerprintMemo()
        for i in own.indices {
            try identify(&own[i], memo: memo)
            if !settings.force { own[i].completion = completion(of: own[i], records: records) }
        }
        return PreparedBatch(total: sweepItems.count, items: own, graphSHA256: FileDigest.sha256(graph.source),
                             warnings: warnings, graphWarnings: graphWarnings ?? [])
    }

    private func runInfo(_ g: ValidatedGraph) -> RunInfo {
        RunInfo(graphFile: g.file, graphSource: g.source, params: g.params, writeMetadata: settings.writeMetadata,
                startedAt: startedAt)
    }

    /// An absolute, standardized path (so `out/a.png` and `./out/a.png` are one file).
    static func normalized(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// The item key and loader map, from the executor's cache keys.
    private func identify(_ item: inout PreparedItem, memo: FingerprintMemo) throws {
        let (keys, fingerprints) = try executor.cacheKeys(for: item.graph, plan: item.plan, memo: memo)
        item.fingerprints = fingerprints
        var parts = ["sanagraph-item/1", item.graph.source]
        for name in item.graph.params.keys.sorted() {
            parts.append(name)
            parts.append(Self.typed(item.graph.params[name]!))
        }
        for step in item.plan.steps {
            guard let node = item.graph.node(step.node), let key = keys[step.node] else { continue }
            if node.descriptor.hasSideEffects {
                parts.append(step.node)
                parts.append(key.hex)
            }
            if node.descriptor.outputs.contains(where: { !$0.type.isDiskCacheable }) {
                let readers = item.plan.steps.compactMap { s -> CacheKey? in
                    guard let reader = item.graph.node(s.node),
                          reader.inputs.values.contains(where: { $0.node == step.node }) else { return nil }
                    return keys[s.node]
                }
                item.loaders[key] = readers
            }
        }
        item.key = FileDigest.sha256(parts.map { "\($0.utf8.count):\($0)" }.joined())
    }

    private static func typed(_ v: ParamValue) -> String {
        switch v {
        case .int(let i): return "int \(i)"
        case .float(let d): return "float \(String(d.bitPattern, radix: 16))"
        case .string(let s): return "string \(s)"
        case .bool(let b): return "bool \(b)"
        }
    }

    /// The latest ok/skipped record of each item key in the manifests.
    private func doneRecords() -> [String: ManifestRecord] {
        let paths = settings.resumeManifests + (settings.manifest.map { [$0] } ?? [])
        var byKey: [String: ManifestRecord] = [:]
        for record in ManifestReader.readExisting(Array(Set(paths)).sorted()).records {
            if record.status == .ok || record.status == .skipped { byKey[record.key] = record }
            else { byKey[record.key] = nil }
        }
        return byKey
    }

    /// Whether the item's outputs exist already: every planned file exists and records the same graph, params,
    /// node versions and model files (or, for a file without provenance, a manifest line of this item lists it
    /// with the same SHA-256); failing that, a manifest line of this item whose files all still exist unchanged.
    private func completion(of item: PreparedItem, records: [String: ManifestRecord]) -> PreparedItem.Completion {
        let record = records[item.key]
        var reason: String?
        if let planned = item.plannedFiles, !planned.isEmpty {
            var outputs: [ManifestRecord.Output] = []
            for (node, path) in planned {
                guard let digest = FileDigest.sha256(path: path) else {
                    reason = nil  // simply not written yet
                    outputs = []
                    break
                }
                if let recorded = provenance(path) {
                    if let why = expectedProvenance(item, node: node).mismatch(recorded) {
                        reason = "\(path) exists, but \(why)"
                        outputs = []
                        break
                    }
                } else if !(record?.outputs.contains { $0.path == path && $0.sha256 == digest.hex } ?? false) {
                    reason = "\(path) exists, but carries no provenance and no manifest line vouches for it"
                    outputs = []
                    break
                }
                outputs.append(.init(node: node, path: path, sha256: digest.hex, bytes: digest.bytes))
            }
            if outputs.count == planned.count { return .complete(outputs: outputs, recorded: record != nil) }
        }
        if let record, !record.outputs.isEmpty,
           record.outputs.allSatisfy({ FileDigest.sha256(path: $0.path)?.hex == $0.sha256 }) {
            return .complete(outputs: record.outputs, recorded: true)
        }
        return .pending(reason: reason)
    }

    /// What an output file of this item would record (PNG provenance).
    private func expectedProvenance(_ item: PreparedItem, node: String) -> OutputProvenance {
        var versions: [String: Int] = [:]
        for step in item.plan.steps {
            guard let n = item.graph.node(step.node) else { continue }
            versions[n.descriptor.typeName] = n.descriptor.version
        }
        return OutputProvenance(graphSource: item.graph.source, params: item.graph.params, nodeVersions: versions,
                                fingerprints: item.fingerprints, node: node)
    }

    // MARK: Running

    /// Runs the pending items in order; records every item that ran, and those found done for the first time.
    /// - Throws: `BatchError.manifestUnwritable` (exit 6) when the manifest can't be appended to; the batch stops.
    public func run(_ batch: PreparedBatch, observer: any BatchObserver) throws -> BatchOutcome {
        let start = ContinuousClock.now
        var outcome = BatchOutcome()
        let writer = try settings.manifest.map { try ManifestWriter(path: $0) }
        var metrics = BatchMetrics(graph: graph.file, shard: settings.shard, total: batch.items.count)
        let pendingCount = batch.pending.count
        var position = 0

        func finish(_ record: ManifestRecord, _ item: PreparedItem) throws {
            outcome.counts[record.status, default: 0] += 1
            if record.status == .failed { outcome.failures.append(record) }
            metrics.add(record)
            try writer?.append(record)
            observer.itemFinished(record, item: item)
            writeMetrics(metrics, observer)
            if record.status != .skipped, let hook = settings.onItemDone,
               let warning = ItemHook.run(hook, line: record.jsonLine, record: record) {
                observer.warning(warning)
            }
        }

        for (index, item) in batch.items.enumerated() {
            if case .complete(let outputs, let recorded) = item.completion {
                var record = baseRecord(item, batch: batch, status: .skipped)
                record.attempts = 0
                record.outputs = outputs
                if recorded {
                    // The manifest says so already: count it, write nothing.
                    outcome.counts[.skipped, default: 0] += 1
                    metrics.add(record)
                    observer.itemFinished(record, item: item)
                } else {
                    try finish(record, item)
                }
                continue
            }
            if executor.cancellation.isCancelled || outcome.interrupted {
                outcome.interrupted = true
                outcome.notStarted += 1
                continue
            }
            if let max = settings.maxFailures, outcome.failures.count >= max {
                outcome.stoppedAtMaxFailures = true
                outcome.notStarted += 1
                continue
            }
            position += 1
            let record = runItem(item, batch: batch, position: position, of: pendingCount, observer: observer)
            if record.status == .interrupted { outcome.interrupted = true }
            try finish(record, item)
            releaseModels(after: index, in: batch)
        }
        metrics.finished = true
        writeMetrics(metrics, observer)
        outcome.seconds = elapsed(since: start)
        return outcome
    }

    private func writeMetrics(_ metrics: BatchMetrics, _ observer: any BatchObserver) {
        guard let path = settings.metrics else { return }
        do { try metrics.write(to: path) } catch { observer.warning("--metrics \(path): \(error)") }
    }

    private func baseRecord(_ item: PreparedItem, batch: PreparedBatch, status: ManifestRecord.Status) -> ManifestRecord {
        ManifestRecord(item: item.item.index, items: batch.total, shard: settings.shard.description,
                       params: item.item.overrides, key: item.key, graph: graph.file,
                       graphSHA256: batch.graphSHA256, status: status,
                       started: Timestamp.iso8601(Date()))
    }

    /// Runs one item, retrying I/O failures, and returns its record.
    private func runItem(_ item: PreparedItem, batch: PreparedBatch, position: Int, of count: Int,
                         observer: any BatchObserver) -> ManifestRecord {
        var record = baseRecord(item, batch: batch, status: .ok)
        let loaderIDs = Set(item.plan.steps.compactMap { step -> String? in
            guard let node = item.graph.node(step.node),
                  node.descriptor.outputs.contains(where: { !$0.type.isDiskCacheable }) else { return nil }
            return node.id
        })
        var attempt = 0
        while true {
            attempt += 1
            record.started = Timestamp.iso8601(Date())
            observer.itemStarting(item, position: position, of: count, attempt: attempt)
            collector.reset(loaders: loaderIDs)
            let resetPeak = PeakMemory.reset()
            let start = ContinuousClock.now
            var failure: (any Error)?
            var summary: RunSummary?
            do {
                summary = try executor.run(item.graph, plan: item.plan, info: runInfo(item.graph))
            } catch {
                failure = error
            }
            record.seconds = elapsed(since: start)
            record.attempts = attempt
            let collected = collector.snapshot()
            summary = summary ?? collected.summary
            record.nodeTypes = collected.nodeTypes
            record.cacheHits = collected.cacheHits
            record.modelLoads = collected.loads
            record.modelLoadSeconds = collected.loadSeconds
            record.nodesRun = summary?.nodesRun ?? 0
            record.nodesCached = summary?.nodesCached ?? 0
            record.nodesSkipped = summary?.nodesSkipped ?? 0
            record.peakRSSBytes = resetPeak ? PeakMemory.current() : nil
            record.outputs = (summary?.outputFiles ?? []).map { node, path in
                let digest = FileDigest.sha256(path: path)
                return .init(node: node, path: path, sha256: digest?.hex ?? "", bytes: digest?.bytes ?? 0)
            }
            guard let failure else {
                record.status = .ok
                record.exitCode = 0
                record.error = nil
                record.category = nil
                return record
            }
            let category = failure.exitCategory
            record.status = category == .interrupted ? .interrupted : .failed
            record.exitCode = Int(category.exitCode)
            record.error = "\(failure)"
            record.category = category.name
            guard category == .io, attempt <= settings.retries, !executor.cancellation.isCancelled else { return record }
            let delay = settings.retryDelay * Double(1 << min(attempt - 1, 10))
            observer.warning("item \(item.item.index) (\(item.item.label)): \(failure); retrying in "
                             + formatDuration(delay) + " (attempt \(attempt + 1) of \(settings.retries + 1))")
            if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        }
    }

    /// Drops loaded models that no remaining pending item of this process will read: a model is kept while some
    /// later item has a reader of it that no store holds (so the loader would have to run).
    private func releaseModels(after index: Int, in batch: PreparedBatch) {
        let held = Set(modelStore.keys)
        guard !held.isEmpty else { return }
        var wanted = Set<CacheKey>()
        let later = batch.items[(index + 1)...].filter { !$0.isComplete }
        for key in held {
            for item in later {
                guard let readers = item.loaders[key] else { continue }
                if readers.contains(where: { reader in !executor.caches.contains { $0.contains(reader) } }) {
                    wanted.insert(key)
                    break
                }
            }
        }
        for key in held where !wanted.contains(key) { modelStore.remove(key) }
    }
}

/// Per-item figures gathered from the executor's events.
final class ItemCollector: Sendable {
    struct State {
        var loaders = Set<String>()
        var nodeTypes: [String: ManifestRecord.NodeTypeStats] = [:]
        var cacheHits: [String: Int] = [:]
        var loads = 0
        var loadSeconds = 0.0
        var summary: RunSummary?
    }

    private let state = Mutex(State())

    func reset(loaders: Set<String>) { state.withLock { $0 = State(loaders: loaders) } }

    func snapshot() -> State { state.withLock { $0 } }

    func handle(_ event: RunEvent) {
        state.withLock { s in
            switch event {
            case .nodeFinished(let node, let type, let seconds, let cachedFrom):
                var t = s.nodeTypes[type] ?? .init()
                t.seconds += seconds
                if let cachedFrom {
                    t.cached += 1
                    s.cacheHits[cachedFrom, default: 0] += 1
                } else {
                    t.runs += 1
                    if s.loaders.contains(node) {
                        s.loads += 1
                        s.loadSeconds += seconds
                    }
                }
                s.nodeTypes[type] = t
            case .nodeSkipped(_, let type):
                s.nodeTypes[type, default: .init()].skipped += 1
            case .runFinished(let summary):
                s.summary = summary
            default:
                break
            }
        }
    }
}

func elapsed(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}
