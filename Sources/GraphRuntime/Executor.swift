import SanaGraphKit
import Foundation
import Logging
import Synchronization

/// A node failed, was interrupted, or broke its contract while running. Carries the node so every message
/// names it; the category (exit code) is the underlying error's, `.nodeFailed` for uncategorized errors.
public struct NodeRunError: CategorizedError {
    public var nodeID: String
    public var typeName: String
    /// What the node threw (or a `NodeError` describing the contract it broke).
    public var underlying: any Error

    public init(nodeID: String, typeName: String, underlying: any Error) {
        self.nodeID = nodeID
        self.typeName = typeName
        self.underlying = underlying
    }

    public var category: ErrorCategory { underlying.exitCategory }

    /// The underlying message alone (used in `node_failed` events, which carry the node separately).
    public var message: String { "\(underlying)" }

    public var description: String {
        if category == .interrupted { return "interrupted while running node '\(nodeID)' (\(typeName))" }
        let text = message
        // NodeError messages usually name the node already; don't say it twice.
        if text.hasPrefix("node '\(nodeID)'") { return text }
        return "node '\(nodeID)' (\(typeName)): \(text)"
    }
}

/// Errors of the executor itself (not of a node).
public enum ExecutorError: CategorizedError, Equatable {
    /// The run was cancelled between nodes.
    case interrupted
    /// The plan does not fit the graph (a front-end bug; the message says what).
    case inconsistentPlan(String)

    public var category: ErrorCategory {
        switch self {
        case .interrupted: return .interrupted
        case .inconsistentPlan: return .invalidGraph
        }
    }

    public var description: String {
        switch self {
        case .interrupted: return "interrupted"
        case .inconsistentPlan(let message): return "internal error: execution plan does not match the graph: \(message)"
        }
    }
}

/// One step of a plan with its cache key and, if some store already holds it, which one.
public struct PlannedStep: Sendable {
    public var step: ExecutionPlan.Step
    public var typeName: String
    public var key: CacheKey
    /// Side-effect nodes always run and are never looked up.
    public var hasSideEffects: Bool
    /// The first cache store that holds `key`, or nil when the node would run.
    public var cachedIn: String?
    /// True when the node would neither run nor be read: everything that consumes it comes from cache.
    public var skipped: Bool = false
    /// The node's memory estimate from its params alone (`Node.estimateMemory`), when it can give one.
    public var memoryEstimate: Int? = nil
}

/// Runs an `ExecutionPlan` one node at a time on the calling thread.
///
/// For each step it computes the node's Merkle `CacheKey`, serves the outputs from the first cache store that
/// has them or runs the node, checks the outputs against the node's declared sockets, offers them to every
/// store, and releases values after their last consumer. Side-effect nodes always run and are never cached.
/// Nodes that no store holds and whose every reader is served from cache are skipped (`nodeSkipped`), so a
/// model loader is not run when its consumers' results are on disk; should such a reader's entry turn out
/// unusable, the skipped inputs are produced on demand.
/// One executor (and its stores) may run many graphs: re-running recomputes only nodes whose key changed.
public final class Executor: Sendable {
    /// Cache stores, fastest first.
    public let caches: [any NodeCacheStore]
    public let cancellation: CancellationToken
    public let logger: Logger
    private let emit: @Sendable (RunEvent) -> Void

    /// - Parameters:
    ///   - caches: stores asked in order; a hit in a later one is copied into the earlier ones.
    ///   - cancellation: checked before every node and by nodes at their progress points.
    ///   - events: receives every `RunEvent`, synchronously, on the running thread (and on the thread a node
    ///     reports progress from).
    public init(caches: [any NodeCacheStore] = [], cancellation: CancellationToken = CancellationToken(),
                logger: Logger = Logger(label: "sanagraph"),
                events: @escaping @Sendable (RunEvent) -> Void = { _ in }) {
        self.caches = caches
        self.cancellation = cancellation
        self.logger = logger
        self.emit = events
    }

    // MARK: Keys

    /// Cache keys of every planned node, in plan order. Calls each node's `fingerprint` (which may read files
    /// but never loads weights).
    public func cacheKeys(for graph: ValidatedGraph, plan: ExecutionPlan) throws -> [String: CacheKey] {
        try computeKeys(graph, plan).keys
    }

    /// Cache keys and the fingerprints behind them (node id -> what `RunInfo.fingerprints` would record), with
    /// fingerprints taken from `memo` when a node of the same type and params was fingerprinted before: many
    /// graphs checked at one moment (a batch's items) read each model file's metadata once.
    public func cacheKeys(for graph: ValidatedGraph, plan: ExecutionPlan, memo: FingerprintMemo)
        throws -> (keys: [String: CacheKey], fingerprints: [String: String]) {
        try computeKeys(graph, plan, memo: memo)
    }

    /// What `run` would do for each step: its key and whether a store already holds it.
    public func preview(_ graph: ValidatedGraph, plan: ExecutionPlan) throws -> [PlannedStep] {
        let (keys, _) = try computeKeys(graph, plan)
        let (holder, needed) = try demand(graph, plan, keys)
        return try plan.steps.map { step in
            let node = try graphNode(graph, step.node)
            let store = holder[step.node]
            return PlannedStep(step: step, typeName: node.descriptor.typeName, key: keys[step.node]!,
                               hasSideEffects: node.descriptor.hasSideEffects, cachedIn: store,
                               skipped: store == nil && !needed.contains(step.node),
                               memoryEstimate: node.type.init().estimateMemory(params: node.params, inputs: nil))
        }
    }

    /// Which store holds each node's entry (`contains`, nothing loaded), and which nodes must be produced:
    /// output nodes, and every input of a needed node that no store holds. The rest are skipped, so a loader
    /// whose consumers are all cached is never run.
    private func demand(_ graph: ValidatedGraph, _ plan: ExecutionPlan, _ keys: [String: CacheKey])
        throws -> (holder: [String: String], needed: Set<String>) {
        var holder: [String: String] = [:]
        for step in plan.steps {
            let node = try graphNode(graph, step.node)
            guard !node.descriptor.hasSideEffects, let key = keys[step.node] else { continue }
            let info = CacheEntryInfo(nodeID: node.id, descriptor: node.descriptor)
            if let store = caches.first(where: { $0.accepts(info) && $0.contains(key) }) { holder[node.id] = store.name }
        }
        var needed = Set<String>()
        for step in plan.steps.reversed() {
            let node = try graphNode(graph, step.node)
            if node.descriptor.hasSideEffects { needed.insert(node.id) }
            // A needed node that will be served from cache needs none of its inputs.
            guard needed.contains(node.id), holder[node.id] == nil else { continue }
            for ref in node.inputs.values { needed.insert(ref.node) }
        }
        return (holder, needed)
    }

    private func graphNode(_ graph: ValidatedGraph, _ id: String) throws -> GraphNode {
        guard let node = graph.node(id) else {
            throw ExecutorError.inconsistentPlan("step '\(id)' is not a node of \(graph.file)")
        }
        return node
    }

    /// Keys (and fingerprints) in step order; a node's inputs must come from earlier steps.
    private func computeKeys(_ graph: ValidatedGraph, _ plan: ExecutionPlan, memo: FingerprintMemo? = nil)
        throws -> (keys: [String: CacheKey], fingerprints: [String: String]) {
        var keys: [String: CacheKey] = [:]
        var fingerprints: [String: String] = [:]
        for step in plan.steps {
            let node = try graphNode(graph, step.node)
            let descriptor = node.descriptor
            var inputKeys: [String: (key: CacheKey, output: String)] = [:]
            for (socket, ref) in node.inputs {
                guard let upstream = keys[ref.node] else {
                    throw ExecutorError.inconsistentPlan(
                        "node '\(node.id)' input '\(socket)' reads '\(ref)', which is not planned before it")
                }
                inputKeys[socket] = (upstream, ref.output)
            }
            let fingerprint: String?, keyed: String?
            if let hit = memo?.lookup(descriptor.typeName, node.params) {
                (fingerprint, keyed) = hit
            } else {
                do {
                    fingerprint = try CancellationToken.$current.withValue(cancellation) {
                        try node.type.init().fingerprint(params: node.params)
                    }
                } catch {
                    throw NodeRunError(nodeID: node.id, typeName: descriptor.typeName, underlying: error)
                }
                // Stores may canonicalise what enters the key (the disk cache hashes file contents).
                keyed = fingerprint.map { raw in caches.reduce(raw) { $1.canonicalFingerprint($0) } }
                memo?.store(descriptor.typeName, node.params, (fingerprint, keyed))
            }
            if let fingerprint { fingerprints[node.id] = fingerprint }
            keys[node.id] = CacheKey.compute(typeName: descriptor.typeName, version: descriptor.version,
                                             params: node.params, inputs: inputKeys, fingerprint: keyed)
        }
        return (keys, fingerprints)
    }

    // MARK: Running

    /// Runs the plan. Emits `runStarted`, per-node events and `runFinished` (also on failure), then returns the
    /// summary or throws: a `NodeRunError` naming the node, `ExecutorError.interrupted` when cancelled between
    /// nodes, or `ExecutorError.inconsistentPlan`.
    ///
    /// - Parameter info: provenance for output nodes; its `nodeVersions` and `fingerprints` are filled in here.
    ///   Defaults to the graph's file, source text and params.
    @discardableResult
    public func run(_ graph: ValidatedGraph, plan: ExecutionPlan, info: RunInfo? = nil) throws -> RunSummary {
        let start = ContinuousClock.now
        var nodesRun = 0
        var skipped = Set<String>()
        var cachedNodes: [String: String] = [:]
        var outputFiles: [(node: String, path: String)] = []

        func finish(_ error: (any Error)?) -> RunSummary {
            let category = error?.exitCategory
            let summary = RunSummary(
                ok: error == nil, seconds: seconds(since: start), nodesRun: nodesRun, nodesCached: cachedNodes.count,
                cachedNodes: cachedNodes, exitCode: category?.exitCode ?? 0, error: error.map { "\($0)" },
                nodesSkipped: skipped.count, outputFiles: outputFiles)
            emit(.runFinished(summary))
            return summary
        }

        emit(.runStarted(graph: graph.file, steps: plan.steps.count, pruned: plan.pruned))
        do {
            try checkCancelled()
            let (keys, fingerprints) = try computeKeysReporting(graph, plan)
            var runInfo = info ?? RunInfo(graphFile: graph.file, graphSource: graph.source, params: graph.params)
            for step in plan.steps {
                let d = try graphNode(graph, step.node).descriptor
                runInfo.nodeVersions[d.typeName] = d.version
            }
            runInfo.fingerprints.merge(fingerprints) { _, new in new }
            let (holder, needed) = try demand(graph, plan, keys)

            // Outputs some planned step reads; anything else is released as soon as it is produced.
            var consumed = Set<OutputRef>()
            for step in plan.steps { consumed.formUnion(try graphNode(graph, step.node).inputs.values) }
            // The step after which each consumed value is released (for values produced late, see below).
            var releaseAt: [OutputRef: Int] = [:]
            var stepIndex: [String: Int] = [:]
            for (index, step) in plan.steps.enumerated() {
                stepIndex[step.node] = index
                for ref in step.releaseAfter { releaseAt[ref] = index }
            }

            var live: [OutputRef: Value] = [:]
            var late = Set<OutputRef>()
            func release(_ ref: OutputRef) {
                if live.removeValue(forKey: ref) != nil { emit(.valueReleased(ref)) }
            }

            /// Serves node `id` from cache or runs it, first producing any input that is not live (an input
            /// skipped because its consumer was expected in cache, whose entry then turned out unusable).
            /// `mustProduce == false`: a cache miss skips the node instead of running it.
            func produce(_ id: String, mustProduce: Bool) throws -> NodeOutputs? {
                try checkCancelled()
                let node = try graphNode(graph, id)
                let descriptor = node.descriptor
                let key = keys[node.id]!
                let index = stepIndex[id] ?? 0
                let emit = self.emit, logger = self.logger, nodeID = node.id
                let info = CacheEntryInfo(nodeID: nodeID, descriptor: descriptor, warn: { store, message in
                    logger.warning("\(message)")
                    emit(.cacheWarning(node: nodeID, store: store, message: message))
                })
                let nodeStart = ContinuousClock.now
                var outputs: NodeOutputs? = nil
                var servedBy: String? = nil
                if !descriptor.hasSideEffects {
                    (outputs, servedBy) = lookup(key, info: info)
                }
                if outputs == nil && !mustProduce {
                    skipped.insert(node.id)
                    emit(.nodeSkipped(node: node.id, type: descriptor.typeName))
                    return nil
                }
                emit(.nodeStarted(node: node.id, type: descriptor.typeName, index: index + 1,
                                  total: plan.steps.count))
                skipped.remove(node.id)
                if outputs == nil {
                    for ref in node.inputs.values.sorted(by: { $0.description < $1.description })
                    where live[ref] == nil {
                        guard let upstream = try produce(ref.node, mustProduce: true) else { continue }
                        for (name, value) in upstream {
                            live[OutputRef(node: ref.node, output: name)] = value
                            late.insert(OutputRef(node: ref.node, output: name))
                        }
                    }
                    outputs = try runNode(node, live: live, runInfo: runInfo)
                    nodesRun += 1
                    // A node that finished after an interrupt must not have its (possibly partial) result stored.
                    try checkCancelled()
                    if !descriptor.hasSideEffects {
                        for store in caches { store.store(key, outputs: outputs!, info: info) }
                    } else {
                        for spec in descriptor.outputs where spec.type == .path {
                            guard let text = outputs![spec.name]?.payload(as: String.self) else { continue }
                            for line in text.split(separator: "\n") { outputFiles.append((node.id, String(line))) }
                        }
                    }
                } else {
                    cachedNodes[node.id] = servedBy
                }
                emit(.nodeFinished(node: node.id, type: descriptor.typeName, seconds: seconds(since: nodeStart),
                                   cachedFrom: servedBy))
                return outputs
            }

            for (index, step) in plan.steps.enumerated() {
                let node = try graphNode(graph, step.node)
                let isNeeded = needed.contains(node.id)
                if !isNeeded && holder[node.id] == nil {
                    // Nothing that runs reads it, and no store has it: don't compute it at all.
                    try checkCancelled()
                    skipped.insert(node.id)
                    emit(.nodeSkipped(node: node.id, type: node.descriptor.typeName))
                    continue
                }
                if let outputs = try produce(node.id, mustProduce: isNeeded) {
                    for (name, value) in outputs { live[OutputRef(node: node.id, output: name)] = value }
                    for ref in step.releaseAfter { release(ref) }
                    for name in outputs.keys.sorted() where !consumed.contains(OutputRef(node: node.id, output: name)) {
                        release(OutputRef(node: node.id, output: name))
                    }
                } else {
                    for ref in step.releaseAfter { release(ref) }
                }
                // Values produced late (for a recomputed node) whose last planned use has passed. Only those are
                // looked at, so a step costs nothing extra however many values are live.
                for ref in late.sorted(by: { $0.description < $1.description })
                where (releaseAt[ref] ?? index) <= index {
                    release(ref)
                    late.remove(ref)
                }
            }
            // Whatever the plan did not release (nothing, for a correct plan) goes now.
            for ref in live.keys.sorted(by: { $0.description < $1.description }) { release(ref) }
            // A signal during the last node still means "interrupted" (exit 130), as the CLI promises.
            try checkCancelled()
            return finish(nil)
        } catch {
            _ = finish(error)
            throw error
        }
    }

    private func checkCancelled() throws {
        if cancellation.isCancelled { throw ExecutorError.interrupted }
    }

    private func computeKeysReporting(_ graph: ValidatedGraph, _ plan: ExecutionPlan)
        throws -> (keys: [String: CacheKey], fingerprints: [String: String]) {
        do {
            return try computeKeys(graph, plan)
        } catch let error as NodeRunError {
            emit(.nodeFailed(node: error.nodeID, type: error.typeName, message: error.message,
                             category: error.category))
            throw error
        }
    }

    /// The first store holding `key` whose outputs still match the node's declared sockets; copies the hit
    /// into the faster stores before it.
    private func lookup(_ key: CacheKey, info: CacheEntryInfo) -> (NodeOutputs?, String?) {
        for (i, store) in caches.enumerated() {
            guard let outputs = store.lookup(key, info: info) else { continue }
            if let problem = Self.checkOutputs(outputs, descriptor: info.descriptor) {
                // A store returned something the node could not have produced: ignore it and recompute.
                info.warn(store.name, "cache store '\(store.name)' entry for node '\(info.nodeID)' ignored: \(problem)")
                continue
            }
            for faster in caches[..<i] { faster.store(key, outputs: outputs, info: info) }
            return (outputs, store.name)
        }
        return (nil, nil)
    }

    private func runNode(_ node: GraphNode, live: [OutputRef: Value], runInfo: RunInfo) throws -> NodeOutputs {
        let typeName = node.descriptor.typeName
        var values: [String: Value] = [:]
        for (socket, ref) in node.inputs {
            guard let value = live[ref] else {
                throw ExecutorError.inconsistentPlan(
                    "value '\(ref)' for node '\(node.id)' input '\(socket)' was released before its last use")
            }
            values[socket] = value
        }
        // Refuse what can never fit before starting it (a run that would swap or be killed by the kernel instead).
        let physical = MachineMemory.physical
        if let needed = node.type.init().estimateMemory(params: node.params, inputs: NodeInputs(values, nodeID: node.id)),
           needed > physical {
            let failure = NodeRunError(nodeID: node.id, typeName: typeName,
                                       underlying: InsufficientMemoryError(nodeID: node.id, needed: needed))
            emit(.nodeFailed(node: node.id, type: typeName, message: failure.message, category: failure.category))
            throw failure
        }
        let emit = self.emit
        let logger = self.logger
        let nodeLogger = NodeLogger { level, message in
            logger.log(level: Logger.Level(level), "\(message)", metadata: ["node": "\(node.id)"])
        }
        let context = RunContext(
            nodeID: node.id, logger: nodeLogger, cancellation: cancellation, run: runInfo,
            onProgress: { id, completed, total in emit(.nodeProgress(node: id, completed: completed, total: total)) },
            onNote: { [id = node.id] message, warning in
                emit(.nodeNote(node: id, type: typeName, warning: warning, message: message))
            })
        do {
            let outputs = try CancellationToken.$current.withValue(cancellation) {
                try node.type.init().run(inputs: NodeInputs(values, nodeID: node.id), params: node.params,
                                         context: context)
            }
            if let problem = Self.checkOutputs(outputs, descriptor: node.descriptor) {
                throw NodeError.failed(node: node.id, message: problem + " (a bug in node type '\(typeName)')")
            }
            return outputs
        } catch {
            let failure = NodeRunError(nodeID: node.id, typeName: typeName, underlying: error)
            emit(.nodeFailed(node: node.id, type: typeName, message: failure.message, category: failure.category))
            throw failure
        }
    }

    /// nil when `outputs` are exactly the declared outputs with the declared socket types; else what is wrong.
    static func checkOutputs(_ outputs: NodeOutputs, descriptor: NodeDescriptor) -> String? {
        var problems: [String] = []
        for spec in descriptor.outputs {
            guard let value = outputs[spec.name] else {
                problems.append("did not produce its declared output '\(spec.name)' (\(spec.type))")
                continue
            }
            if value.type != spec.type {
                problems.append("output '\(spec.name)' is \(value.type), declared \(spec.type)")
            } else if !spec.type.admits(value.payload) {
                problems.append("output '\(spec.name)' holds a \(type(of: value.payload)), but \(spec.type) holds "
                                + spec.type.payloadTypeName)
            }
        }
        let declared = Set(descriptor.outputs.map(\.name))
        for name in outputs.keys.sorted() where !declared.contains(name) {
            problems.append("produced undeclared output '\(name)'")
        }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }
}

/// Fingerprints by node type and params (raw, and as entered into keys), for `Executor.cacheKeys(for:plan:memo:)`.
/// Keep one only while files are not expected to change (one batch's preparation).
public final class FingerprintMemo: Sendable {
    private struct Key: Hashable {
        var typeName: String
        var params: ParamValues
    }

    private let entries = Mutex([Key: (raw: String?, keyed: String?)]())

    public init() {}

    func lookup(_ typeName: String, _ params: ParamValues) -> (raw: String?, keyed: String?)? {
        entries.withLock { $0[Key(typeName: typeName, params: params)] }
    }

    func store(_ typeName: String, _ params: ParamValues, _ value: (raw: String?, keyed: String?)) {
        entries.withLock { $0[Key(typeName: typeName, params: params)] = value }
    }
}

private func seconds(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
}

extension Logger.Level {
    /// The swift-log level of a node's log message.
    init(_ level: NodeLogger.Level) {
        switch level {
        case .trace: self = .trace
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        }
    }
}
