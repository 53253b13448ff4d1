import SanaGraphKit
import Foundation

/// What happened in a run, in order. The CLI turns these into a progress display or, with `--json`, into
/// one JSON object per line (see `jsonLine`; documented in docs/cli.md).
public enum RunEvent: Sendable {
    /// The run begins: `steps` nodes will run (or come from cache); `pruned` nodes no output needs.
    case runStarted(graph: String, steps: Int, pruned: [String])
    /// Step `index` (1-based) of `total` begins.
    case nodeStarted(node: String, type: String, index: Int, total: Int)
    /// A node reported progress (e.g. sampling step `completed` of `total`).
    case nodeProgress(node: String, completed: Int, total: Int)
    /// A node finished: it ran (`cachedFrom == nil`) or its outputs came from the named cache store.
    case nodeFinished(node: String, type: String, seconds: Double, cachedFrom: String?)
    /// A node failed (or was interrupted: category `.interrupted`).
    case nodeFailed(node: String, type: String, message: String, category: ErrorCategory)
    /// The executor dropped its reference to a value after its last consumer (liveness).
    case valueReleased(OutputRef)
    /// A node neither ran nor came from cache because every node that reads it was served from cache
    /// (e.g. a text encoder loader whose prompts are already encoded on disk).
    case nodeSkipped(node: String, type: String)
    /// A cache store had a problem with a node's entry (corrupt blob discarded, write failed); the run goes on.
    case cacheWarning(node: String, store: String, message: String)
    /// A running node said something worth recording (e.g. the precision and kernels a loader chose), or warned
    /// (e.g. a bf16 request that runs fp32 on this CPU).
    case nodeNote(node: String, type: String, warning: Bool, message: String)
    /// The run ended.
    case runFinished(RunSummary)

    /// The event's name in JSON (`node_finished`, ...).
    public var name: String {
        switch self {
        case .runStarted: return "run_started"
        case .nodeStarted: return "node_started"
        case .nodeProgress: return "node_progress"
        case .nodeFinished: return "node_finished"
        case .nodeFailed: return "node_failed"
        case .valueReleased: return "value_released"
        case .nodeSkipped: return "node_skipped"
        case .cacheWarning: return "cache_warning"
        case .nodeNote: return "node_note"
        case .runFinished: return "run_finished"
        }
    }

    /// One JSON object (no trailing newline), `event` first, then `node` where relevant.
    public var jsonLine: String {
        var o = JSONObjectWriter()
        o.add("event", .string(name))
        switch self {
        case .runStarted(let graph, let steps, let pruned):
            o.add("graph", .string(graph))
            o.add("steps", .int(steps))
            o.add("pruned", .array(pruned.map { .string($0) }))
        case .nodeStarted(let node, let type, let index, let total):
            o.add("node", .string(node))
            o.add("type", .string(type))
            o.add("index", .int(index))
            o.add("total", .int(total))
        case .nodeProgress(let node, let completed, let total):
            o.add("node", .string(node))
            o.add("completed", .int(completed))
            o.add("total", .int(total))
        case .nodeFinished(let node, let type, let seconds, let cachedFrom):
            o.add("node", .string(node))
            o.add("type", .string(type))
            o.add("seconds", .double(seconds))
            o.add("cached", .bool(cachedFrom != nil))
            if let cachedFrom { o.add("cache", .string(cachedFrom)) }
        case .nodeFailed(let node, let type, let message, let category):
            o.add("node", .string(node))
            o.add("type", .string(type))
            o.add("message", .string(message))
            o.add("category", .string(category.name))
            o.add("exit_code", .int(Int(category.exitCode)))
        case .valueReleased(let ref):
            o.add("node", .string(ref.node))
            o.add("output", .string(ref.output))
        case .nodeSkipped(let node, let type):
            o.add("node", .string(node))
            o.add("type", .string(type))
        case .cacheWarning(let node, let store, let message):
            o.add("node", .string(node))
            o.add("cache", .string(store))
            o.add("message", .string(message))
        case .nodeNote(let node, let type, let warning, let message):
            o.add("node", .string(node))
            o.add("type", .string(type))
            o.add("level", .string(warning ? "warning" : "info"))
            o.add("message", .string(message))
        case .runFinished(let summary):
            o.add("ok", .bool(summary.ok))
            o.add("seconds", .double(summary.seconds))
            o.add("nodes_run", .int(summary.nodesRun))
            o.add("nodes_cached", .int(summary.nodesCached))
            o.add("nodes_skipped", .int(summary.nodesSkipped))
            o.add("exit_code", .int(Int(summary.exitCode)))
            if let error = summary.error { o.add("error", .string(error)) }
            o.add("outputs", .array(summary.outputFiles.map { .string($0.path) }))
        }
        return o.text
    }
}

/// The outcome of one run of a graph.
public struct RunSummary: Sendable {
    public var ok: Bool
    /// Wall-clock seconds of the whole run.
    public var seconds: Double
    /// Nodes whose `run` was called (side-effect nodes included).
    public var nodesRun: Int
    /// Nodes served from a cache store.
    public var nodesCached: Int
    /// Node id -> the cache store that served it.
    public var cachedNodes: [String: String]
    /// Nodes not needed because everything that reads them came from cache.
    public var nodesSkipped: Int
    /// The process exit code this outcome maps to (0 on success).
    public var exitCode: Int32
    /// The error message when the run failed.
    public var error: String?
    /// The files output nodes wrote, in the order they ran: each `Path` output of a side-effect node, split
    /// into lines (`image.save` lists a batch's files one per line).
    public var outputFiles: [(node: String, path: String)]

    public init(ok: Bool, seconds: Double, nodesRun: Int, nodesCached: Int, cachedNodes: [String: String] = [:],
                exitCode: Int32, error: String? = nil, nodesSkipped: Int = 0,
                outputFiles: [(node: String, path: String)] = []) {
        self.ok = ok
        self.seconds = seconds
        self.nodesRun = nodesRun
        self.nodesCached = nodesCached
        self.cachedNodes = cachedNodes
        self.nodesSkipped = nodesSkipped
        self.exitCode = exitCode
        self.error = error
        self.outputFiles = outputFiles
    }
}

extension ErrorCategory {
    /// The category's name in JSON events and messages (`node_failed`, `interrupted`, ...).
    public var name: String {
        switch self {
        case .invalidGraph: return "invalid_graph"
        case .nodeFailed: return "node_failed"
        case .modelFile: return "model_file"
        case .lockHeld: return "lock_held"
        case .io: return "io"
        case .interrupted: return "interrupted"
        }
    }
}

/// A tiny JSON writer that keeps key order (so `event` comes first on every line).
public struct JSONObjectWriter: Sendable {
    public indirect enum Value: Sendable {
        case string(String), int(Int), double(Double), bool(Bool), null
        case array([Value])
        case object([(String, Value)])
    }

    private var fields: [(String, Value)] = []

    public init() {}

    public mutating func add(_ key: String, _ value: Value) { fields.append((key, value)) }

    /// The object as compact JSON on one line.
    public var text: String { Self.encode(.object(fields)) }

    public static func encode(_ value: Value) -> String {
        switch value {
        case .string(let s): return quote(s)
        case .int(let i): return String(i)
        case .double(let d):
            guard d.isFinite else { return "null" }
            // Microsecond precision is plenty for timings; %.6f never uses exponent notation.
            return String(format: "%.6f", d)
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let items): return "[" + items.map(encode).joined(separator: ",") + "]"
        case .object(let fields):
            return "{" + fields.map { quote($0.0) + ":" + encode($0.1) }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal; control characters are escaped so one event is always one line.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
