import Foundation
import Safetensors

/// The record of how an output was made: the graph (file name and full text), the params after defaults and
/// overrides, every node type's version, the fingerprints of the model files each node read, the tool version,
/// the start time, and which saver node (and batch index) wrote the output. Savers store its JSON form with the
/// output (ImageIO: a PNG iTXt chunk); `sanagraph inspect` shows it, `run --from` re-runs it and batch resume
/// compares it with what an item would record now.
public struct Provenance: Sendable, Equatable {
    /// Version of the JSON layout.
    public static let formatVersion = 1

    /// The graph file as given by the user.
    public var graphFile: String
    /// The graph file's full text.
    public var graphSource: String
    /// Graph-level params after defaults and overrides.
    public var params: [String: ParamValue]
    /// Node type name -> version for every node of the run.
    public var nodeVersions: [String: Int]
    /// Node id -> fingerprint of the model files it read.
    public var modelFingerprints: [String: String]
    /// The SanaGraph version that wrote the file.
    public var toolVersion: String
    /// When the run started (ISO 8601, UTC).
    public var createdAt: String
    /// The id of the saver node that wrote the file.
    public var node: String
    /// Index within the batch of the saved image.
    public var batchIndex: Int

    public init(graphFile: String, graphSource: String, params: [String: ParamValue], nodeVersions: [String: Int],
                modelFingerprints: [String: String], toolVersion: String, createdAt: String, node: String,
                batchIndex: Int) {
        self.graphFile = graphFile
        self.graphSource = graphSource
        self.params = params
        self.nodeVersions = nodeVersions
        self.modelFingerprints = modelFingerprints
        self.toolVersion = toolVersion
        self.createdAt = createdAt
        self.node = node
        self.batchIndex = batchIndex
    }

    /// The record for one output saved by node `node` during `run`.
    public init(run: RunInfo, node: String, batchIndex: Int) {
        self.init(graphFile: run.graphFile, graphSource: run.graphSource, params: run.params,
                  nodeVersions: run.nodeVersions, modelFingerprints: run.fingerprints, toolVersion: run.toolVersion,
                  createdAt: Timestamp.iso8601(run.startedAt), node: node, batchIndex: batchIndex)
    }

    /// Parses the JSON form (strictly: `StrictJSON`).
    /// - Throws: `StrictJSONError` saying what is wrong.
    public init(json: String) throws {
        let payload = try StrictJSON.decode(Payload.self, from: Array(json.utf8), maxBytes: Self.maxJSONBytes)
        var params: [String: ParamValue] = [:]
        for (name, value) in payload.params {
            params[name] = value.typed(as: payload.param_types?[name])
        }
        self.init(graphFile: payload.graph_file, graphSource: payload.graph_source, params: params,
                  nodeVersions: payload.node_versions ?? [:], modelFingerprints: payload.model_fingerprints ?? [:],
                  toolVersion: payload.sanagraph_version ?? "unknown", createdAt: payload.created ?? "",
                  node: payload.node ?? "", batchIndex: payload.batch_index ?? 0)
    }

    /// The largest JSON form read (the graph's text is in it).
    public static let maxJSONBytes = 16 << 20

    /// The JSON form stored with the output (keys sorted, compact).
    public var json: String {
        let payload = Payload(
            format: Self.formatVersion, graph_file: graphFile, graph_source: graphSource,
            params: params.mapValues(JSONParam.init), param_types: params.mapValues(Self.typeName),
            node_versions: nodeVersions, model_fingerprints: modelFingerprints, sanagraph_version: toolVersion,
            created: createdAt, node: node, batch_index: batchIndex)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding strings, numbers and dictionaries cannot fail.
        let data = (try? encoder.encode(payload)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A human-readable report (for `sanagraph inspect`).
    public var report: String {
        var lines: [String] = []
        lines.append("graph:      \(graphFile)")
        lines.append("created:    \(createdAt)")
        lines.append("sanagraph:  \(toolVersion)")
        lines.append("saved by:   node '\(node)', batch index \(batchIndex)")
        lines.append("params:")
        for name in params.keys.sorted() {
            let v = params[name]!
            let shown: String
            if case .string(let s) = v { shown = "\"\(s)\"" } else { shown = v.description }
            lines.append("  \(name) = \(shown) (\(Self.typeName(v)))")
        }
        if params.isEmpty { lines.append("  (none)") }
        lines.append("node versions:")
        for name in nodeVersions.keys.sorted() { lines.append("  \(name) v\(nodeVersions[name]!)") }
        lines.append("model fingerprints:")
        for name in modelFingerprints.keys.sorted() { lines.append("  \(name): \(modelFingerprints[name]!)") }
        if modelFingerprints.isEmpty { lines.append("  (none)") }
        let sourceLines = graphSource.split(separator: "\n", omittingEmptySubsequences: false)
        lines.append("graph source (\(sourceLines.count) lines):")
        for line in sourceLines { lines.append("  | \(line)") }
        return lines.joined(separator: "\n")
    }

    static func typeName(_ v: ParamValue) -> String {
        switch v {
        case .int: return "int"
        case .float: return "float"
        case .string: return "string"
        case .bool: return "bool"
        }
    }

    // The JSON layout (snake_case keys, as stored).
    private struct Payload: Codable {
        var format: Int?
        var graph_file: String
        var graph_source: String
        var params: [String: JSONParam]
        var param_types: [String: String]?
        var node_versions: [String: Int]?
        var model_fingerprints: [String: String]?
        var sanagraph_version: String?
        var created: String?
        var node: String?
        var batch_index: Int?
    }
}

/// A param value as a plain JSON scalar (its type is stored beside it, since JSON writes 3.0 as 3).
private struct JSONParam: Codable {
    var value: ParamValue

    init(_ value: ParamValue) { self.value = value }

    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let b = try? c.decode(Bool.self) { value = .bool(b) }
        else if let i = try? c.decode(Int.self) { value = .int(i) }
        else if let d = try? c.decode(Double.self) { value = .float(d) }
        else { value = .string(try c.decode(String.self)) }
    }

    func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch value {
        case .int(let v): try c.encode(v)
        case .float(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .bool(let v): try c.encode(v)
        }
    }

    func typed(as type: String?) -> ParamValue {
        switch (type, value) {
        case ("float", .int(let i)): return .float(Double(i))
        // Only integral floats an Int holds exactly; anything else stays a float, which the graph then refuses.
        case ("int", .float(let d)) where d == d.rounded() && abs(d) < 9.0e15: return .int(Int(d))
        case ("string", let v) where !(v.isString): return .string(v.description)
        default: return value
        }
    }
}

private extension ParamValue {
    var isString: Bool { if case .string = self { return true } else { return false } }
}
