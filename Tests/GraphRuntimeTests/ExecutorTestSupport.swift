import Foundation
import GraphRuntime
import Synchronization
import TestSupport

// Hand-built graphs and plans for executor tests, so the executor is tested on its own (the loader and
// planner have their own tests), plus a few node types only executor tests need.

/// One node of a hand-built graph: inputs as `node` (its only output) or `node.output`.
struct NodeSpec {
    var id: String
    var type: any Node.Type
    var params: [String: ParamValue] = [:]
    var inputs: [String: String] = [:]

    init(_ id: String, _ type: any Node.Type, params: [String: ParamValue] = [:], inputs: [String: String] = [:]) {
        self.id = id
        self.type = type
        self.params = params
        self.inputs = inputs
    }
}

enum ExecTest {
    /// A validated graph from specs; params get their declared defaults.
    static func graph(_ specs: [NodeSpec], file: String = "test.yaml") -> ValidatedGraph {
        let nodes = specs.map { spec -> GraphNode in
            var params: [String: ParamValue] = [:]
            for p in spec.type.descriptor.params { if let d = p.defaultValue { params[p.name] = d } }
            params.merge(spec.params) { _, new in new }
            var inputs: [String: OutputRef] = [:]
            for (socket, ref) in spec.inputs {
                let parts = ref.split(separator: ".", maxSplits: 1).map(String.init)
                let producer = specs.first { $0.id == parts[0] }!
                let output = parts.count == 2 ? parts[1] : producer.type.descriptor.outputs[0].name
                inputs[socket] = OutputRef(node: parts[0], output: output)
            }
            return GraphNode(id: spec.id, type: spec.type, params: ParamValues(params), inputs: inputs, location: nil)
        }
        return ValidatedGraph(file: file, description: nil, nodes: nodes, params: [:], warnings: [])
    }

    /// A reference plan: ancestors of side-effect nodes in file order (specs are written producers first),
    /// each consumed output released after its last consumer.
    static func plan(_ graph: ValidatedGraph) -> ExecutionPlan {
        var needed = Set<String>()
        func visit(_ id: String) {
            guard needed.insert(id).inserted, let node = graph.node(id) else { return }
            for ref in node.inputs.values { visit(ref.node) }
        }
        for node in graph.nodes where node.descriptor.hasSideEffects { visit(node.id) }
        let order = graph.nodes.filter { needed.contains($0.id) }
        var lastUse: [OutputRef: Int] = [:]
        for (i, node) in order.enumerated() { for ref in node.inputs.values { lastUse[ref] = i } }
        let steps = order.enumerated().map { i, node in
            ExecutionPlan.Step(node: node.id,
                               releaseAfter: lastUse.filter { $0.value == i }.keys.sorted { $0.description < $1.description })
        }
        return ExecutionPlan(steps: steps, pruned: graph.nodes.map(\.id).filter { !needed.contains($0) })
    }

    /// A unique TestRecorder key per test.
    static func key(_ name: String = #function) -> String { "\(name)-\(UUID().uuidString)" }
}

/// Collects events in order (thread-safe).
final class EventLog: Sendable {
    private let events = Mutex<[RunEvent]>([])

    var all: [RunEvent] { events.withLock { $0 } }

    func append(_ e: RunEvent) { events.withLock { $0.append(e) } }

    func clear() { events.withLock { $0 = [] } }

    var handler: @Sendable (RunEvent) -> Void { { [self] in self.append($0) } }

    /// node id -> cached flag, from `nodeFinished` events.
    var finished: [String: Bool] {
        var result: [String: Bool] = [:]
        for case .nodeFinished(let node, _, _, let cachedFrom) in all { result[node] = cachedFrom != nil }
        return result
    }

    /// Event names with node ids, e.g. `node_started:a`, `value_released:a.value`.
    var trace: [String] {
        all.compactMap { e in
            switch e {
            case .nodeStarted(let n, _, _, _): return "node_started:\(n)"
            case .nodeFinished(let n, _, _, _): return "node_finished:\(n)"
            case .nodeFailed(let n, _, _, _): return "node_failed:\(n)"
            case .valueReleased(let r): return "value_released:\(r)"
            case .runStarted: return "run_started"
            case .runFinished: return "run_finished"
            case .nodeProgress: return nil
            case .nodeSkipped(let n, _): return "node_skipped:\(n)"
            case .cacheWarning(let n, _, _): return "cache_warning:\(n)"
            case .nodeNote(let n, _, _, _): return "node_note:\(n)"
            }
        }
    }

    var summary: RunSummary? {
        for case .runFinished(let s) in all.reversed() { return s }
        return nil
    }
}

/// `exec.steps`: counts to `steps` reporting progress; cancels the run's token itself after `cancel_at`
/// steps (0 = never), standing in for a SIGINT arriving mid-node.
struct StepsNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.steps", version: 1, summary: "Counts with progress.",
        inputs: [InputSpec("x", .int, optional: true)],
        outputs: [OutputSpec("count", .int)],
        params: [ParamSpec("steps", .int, default: .int(5)), ParamSpec("cancel_at", .int, default: .int(0)),
                 ParamSpec("key", .string, default: .string(""))])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        TestRecorder.shared.recordRun(key: params.string("key"), nodeID: context.nodeID)
        let steps = params.int("steps")
        for i in 1...steps {
            if i == params.int("cancel_at") { context.cancellation.cancel() }
            try context.progress(i, of: steps)
        }
        return ["count": .int(steps)]
    }
}

/// `exec.cancel`: cancels the run's token and finishes normally (a signal arriving between nodes).
struct CancelNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.cancel", version: 1, summary: "Cancels the run.",
        inputs: [InputSpec("x", .int)], outputs: [OutputSpec("x", .int)],
        params: [ParamSpec("key", .string, default: .string(""))])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        TestRecorder.shared.recordRun(key: params.string("key"), nodeID: context.nodeID)
        context.cancellation.cancel()
        return ["x": inputs["x"]!]
    }
}

/// `exec.bad_output`: breaks its output contract in the way `mode` says.
struct BadOutputNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.bad_output", version: 1, summary: "Returns wrong outputs.",
        outputs: [OutputSpec("value", .int)],
        params: [ParamSpec("mode", .choice(["wrong_type", "missing", "extra"]), default: .string("wrong_type"))])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        switch params.string("mode") {
        case "missing": return [:]
        case "extra": return ["value": .int(1), "surprise": .int(2)]
        default: return ["value": .string("not an int")]
        }
    }
}

/// A plain Swift error with no category.
struct PlainError: Error, CustomStringConvertible {
    var description: String { "something odd happened" }
}

/// `exec.throw`: throws `PlainError` (uncategorized) or a model-file error.
struct ThrowNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.throw", version: 1, summary: "Throws.",
        outputs: [OutputSpec("value", .int)],
        params: [ParamSpec("kind", .choice(["plain", "model"]), default: .string("plain"))])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        if params.string("kind") == "model" {
            throw NodeError.modelFile(path: "/models/x.safetensors", message: "truncated header")
        }
        throw PlainError()
    }
}

/// `exec.versioned` at version 1 and 2: the same type name, so only the version tells them apart.
struct VersionedNodeV1: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.versioned", version: 1, summary: "Version 1.",
        outputs: [OutputSpec("value", .int)], params: [ParamSpec("key", .string, default: .string(""))])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        TestRecorder.shared.recordRun(key: params.string("key"), nodeID: context.nodeID)
        return ["value": .int(1)]
    }
}

struct VersionedNodeV2: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.versioned", version: 2, summary: "Version 2.",
        outputs: [OutputSpec("value", .int)], params: [ParamSpec("key", .string, default: .string(""))])
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        TestRecorder.shared.recordRun(key: params.string("key"), nodeID: context.nodeID)
        return ["value": .int(2)]
    }
}

/// RunInfo seen by `exec.probe` nodes, by `key`.
let probedRunInfo = Mutex<[String: RunInfo]>([:])

/// `exec.probe`: an output node that records the RunInfo it was given.
struct ProbeNode: Node {
    static let descriptor = NodeDescriptor(
        typeName: "exec.probe", version: 3, summary: "Records RunInfo.",
        inputs: [InputSpec("value", accepts: [.int, .float, .string])],
        params: [ParamSpec("key", .string, default: .string(""))], hasSideEffects: true)
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs {
        let key = params.string("key")
        if let info = context.run { probedRunInfo.withLock { $0[key] = info } }
        return [:]
    }
}

/// A cache store backed by a dictionary, standing in for a slower store (e.g. disk) behind the memory cache.
final class DictionaryStore: NodeCacheStore {
    let name: String
    private let entries = Mutex<[CacheKey: NodeOutputs]>([:])

    init(name: String) { self.name = name }

    var count: Int { entries.withLock { $0.count } }

    func contains(_ key: CacheKey) -> Bool { entries.withLock { $0[key] != nil } }

    func lookup(_ key: CacheKey, info: CacheEntryInfo) -> NodeOutputs? { entries.withLock { $0[key] } }

    func store(_ key: CacheKey, outputs: NodeOutputs, info: CacheEntryInfo) {
        entries.withLock { $0[key] = outputs }
    }

    /// Replaces an entry directly (to simulate a corrupt store).
    func put(_ key: CacheKey, _ outputs: NodeOutputs) { entries.withLock { $0[key] = outputs } }
}
