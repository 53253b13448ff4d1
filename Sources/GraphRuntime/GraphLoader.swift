import Foundation
import SanaGraphKit
import Yams

/// Loads graph files: reads, parses (keeping line and column of every value), substitutes graph params,
/// validates against a node registry. See docs/graph-format.md for the format.
public enum GraphLoader {
    /// Reads, parses, substitutes params, validates. Throws `GraphValidationError` listing ALL errors (each
    /// with FILE:LINE:COL and node, sorted by location; warnings are included). An unreadable file gives a
    /// `GraphValidationError` with one diagnostic.
    /// - Parameters:
    ///   - overrides: `--set name=value` pairs; values are converted to the param's declared type.
    ///   - paramsFiles: `--params FILE` YAML files (mappings of name: value), applied in order before `overrides`.
    ///   - nodeDefaults: node param values (e.g. `--device cuda` as `["device": "cuda"]`) given to every node whose
    ///     type declares that param and whose graph entry does not set it; checked like values in the file.
    public static func load(file path: String, registry: NodeRegistry, overrides: [String: String] = [:],
                            paramsFiles: [String] = [], nodeDefaults: [String: String] = [:]) throws -> ValidatedGraph {
        let data: [UInt8]
        switch BoundedFile.read(path, limit: GraphLimits.maxFileBytes) {
        case .success(let bytes): data = bytes
        case .failure(let why):
            throw GraphValidationError([Diagnostic(.error, "cannot read graph file '\(path)': \(why)", at: nil)])
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw GraphValidationError([Diagnostic(.error, "graph file '\(path)' is not UTF-8 text",
                                                   at: SourceLocation(file: path, line: 1, column: 1))])
        }
        return try load(yaml: text, file: path, registry: registry, overrides: overrides, paramsFiles: paramsFiles,
                        nodeDefaults: nodeDefaults)
    }

    /// Like `load(file:...)` for text already in memory; `file` is the name used in messages.
    public static func load(yaml text: String, file: String, registry: NodeRegistry, overrides: [String: String] = [:],
                            paramsFiles: [String] = [], nodeDefaults: [String: String] = [:]) throws -> ValidatedGraph {
        try load(parse(yaml: text, file: file), registry: registry, overrides: overrides, paramsFiles: paramsFiles,
                 nodeDefaults: nodeDefaults)
    }

    /// Parses a graph's text without validating it, to validate it many times with different params (the items
    /// of a sweep) without parsing the YAML again. Throws `GraphValidationError` for syntax errors.
    public static func parse(yaml text: String, file: String) throws -> ParsedGraph {
        var diagnostics = DiagnosticList()
        if text.utf8.count > GraphLimits.maxFileBytes {
            throw GraphValidationError([Diagnostic(.error, "the graph is \(text.utf8.count) bytes, above the limit of "
                                                   + "\(GraphLimits.maxFileBytes)", at: nil)])
        }
        guard let raw = RawGraph.parse(text, file: file, diagnostics: &diagnostics) else {
            throw GraphValidationError(diagnostics.sorted(mainFile: file))
        }
        return ParsedGraph(raw: raw, parseDiagnostics: diagnostics, source: text, file: file)
    }

    /// Substitutes params into a parsed graph and validates it, like `load(yaml:...)`.
    public static func load(_ parsed: ParsedGraph, registry: NodeRegistry, overrides: [String: String] = [:],
                            paramsFiles: [String] = [], nodeDefaults: [String: String] = [:]) throws -> ValidatedGraph {
        var raw = parsed.raw
        let file = parsed.file
        raw.fillUnsetParams(nodeDefaults, registry: registry)
        // Problems the parser found but could go on after (reported with the validator's).
        var diagnostics = parsed.parseDiagnostics
        var scope = ParamScope.resolve(raw, overrides: overrides, paramsFiles: paramsFiles, diagnostics: &diagnostics)
        guard var graph = Validator.validate(raw, registry: registry, scope: &scope, source: parsed.source,
                                             diagnostics: &diagnostics) else {
            throw GraphValidationError(diagnostics.sorted(mainFile: file))
        }
        // Nodes no output needs are legal but almost always a mistake worth seeing.
        let plan = Planner.plan(graph)
        for id in plan.pruned {
            diagnostics.warning("not needed by any output node, so it will not run", at: graph.node(id)?.location,
                                node: id)
        }
        graph.warnings = diagnostics.sorted(mainFile: file)
        return graph
    }
}

/// A graph file's text parsed into its parts but not validated (`GraphLoader.parse`).
public struct ParsedGraph {
    let raw: RawGraph
    let parseDiagnostics: DiagnosticList
    /// The text it was parsed from.
    public let source: String
    /// The name used in messages.
    public let file: String

    /// The names of the graph params it declares, in file order.
    public var paramNames: [String] { raw.params.map(\.name) }
}

extension RawGraph {
    /// Gives `defaults` to every node whose type declares the param and whose entry does not set it, as if the
    /// file had it as a plain scalar at the node, so the validator types and checks it like any other value.
    mutating func fillUnsetParams(_ defaults: [String: String], registry: NodeRegistry) {
        guard !defaults.isEmpty else { return }
        for i in nodes.indices {
            guard let type = nodes[i].typeName.flatMap({ registry.nodeType(named: $0) }) else { continue }
            for (name, value) in defaults.sorted(by: { $0.key < $1.key })
            where type.descriptor.params.contains(where: { $0.name == name })
                && !nodes[i].params.contains(where: { $0.name == name }) {
                nodes[i].params.append((name: name, keyLocation: nodes[i].location, value: .scalar(.init(value))))
            }
        }
    }
}
