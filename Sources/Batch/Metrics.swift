import Foundation
import Safetensors

/// Prometheus text-format metrics of a batch (`--metrics FILE`), for node_exporter's textfile collector: item
/// counts by state, seconds and runs per node type, model loads. Rewritten atomically (temporary file, fsync,
/// rename) after every item, so a scraper never reads half a file.
public struct BatchMetrics: Sendable {
    public var graph: String
    public var shard: Shard
    /// Items of this shard's part.
    public var total: Int
    public var counts: [ManifestRecord.Status: Int] = [:]
    public var nodeTypes: [String: ManifestRecord.NodeTypeStats] = [:]
    public var modelLoads = 0
    public var itemSeconds = 0.0
    public var finished = false

    public init(graph: String, shard: Shard, total: Int) {
        self.graph = graph
        self.shard = shard
        self.total = total
    }

    public mutating func add(_ record: ManifestRecord) {
        counts[record.status, default: 0] += 1
        itemSeconds += record.seconds
        modelLoads += record.modelLoads
        for (type, s) in record.nodeTypes {
            var t = nodeTypes[type] ?? .init()
            t.runs += s.runs
            t.cached += s.cached
            t.skipped += s.skipped
            t.seconds += s.seconds
            nodeTypes[type] = t
        }
    }

    /// The metrics in Prometheus' text exposition format.
    public func render(now: Date = Date()) -> String {
        let base = "graph=\(Self.quote(graph)),shard=\(Self.quote(shard.description))"
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name){\(base)\(labels)} \(value)\n" }
        }
        let done = counts.values.reduce(0, +)
        var states: [(String, String)] = ManifestRecord.Status.allCases.map {
            (",state=\"\($0.rawValue)\"", String(counts[$0] ?? 0))
        }
        states.append((",state=\"pending\"", String(max(0, total - done))))
        metric("sanagraph_batch_items", "gauge", "Items of this shard's part of the sweep, by state.", states)
        metric("sanagraph_batch_item_seconds_total", "counter", "Wall-clock seconds spent on items.",
               [("", Self.number(itemSeconds))])
        metric("sanagraph_batch_model_loads_total", "counter", "Loader nodes that ran (models loaded).",
               [("", String(modelLoads))])
        let types = nodeTypes.keys.sorted()
        metric("sanagraph_batch_node_seconds_total", "counter", "Seconds spent in nodes, by node type (cache hits included).",
               types.map { (",type=\(Self.quote($0))", Self.number(nodeTypes[$0]!.seconds)) })
        metric("sanagraph_batch_node_runs_total", "counter", "Nodes that ran, by node type.",
               types.map { (",type=\(Self.quote($0))", String(nodeTypes[$0]!.runs)) })
        metric("sanagraph_batch_node_cached_total", "counter", "Nodes served from a cache, by node type.",
               types.map { (",type=\(Self.quote($0))", String(nodeTypes[$0]!.cached)) })
        metric("sanagraph_batch_finished", "gauge", "1 once the process has gone through its part of the sweep.",
               [("", finished ? "1" : "0")])
        metric("sanagraph_batch_last_update_timestamp_seconds", "gauge", "When this file was written (Unix time).",
               [("", Self.number(now.timeIntervalSince1970))])
        return out
    }

    /// Writes `render()` to `path` atomically.
    public func write(to path: String) throws {
        let bytes = Array(render().utf8)
        try AtomicFile.write(to: path) { sink throws(SafetensorsError) in try sink.write(bytes) }
    }

    static func quote(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n") + "\""
    }

    static func number(_ v: Double) -> String { v.isFinite ? String(format: "%.6f", v) : "0" }
}
