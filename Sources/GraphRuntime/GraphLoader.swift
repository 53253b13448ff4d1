import SanaGraphKit
import Foundation

/// Loads graph files: reads, parses (keeping line and column of every value), substitutes graph params,
/// validates against a node registry. See docs/graph-format.md for the format.
public enum GraphLoader {
    /// Reads, parses, substitutes params, validates. Throws `GraphValidationError` listing ALL errors (each
    /// with FILE:LINE:COL and node, sorted by location; warnings are included). An unreadable file gives a
    /// `GraphValidationError` with one diagnostic.
    /// - Parameters:
    ///   - overrides: `--set name=value` pairs; values are converted to the param's declared type.
    ///   - paramsFiles: `--params FILE` YAML files (mappings of name: value), applied in order before `overrides`.
    public static func load(file path: String, registry: NodeRegistry,
                            overrides: [String: String] = [:], paramsFiles: [String] = []) throws -> ValidatedGraph {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            let why = !exists ? "no such file" : isDirectory.boolValue ? "it is a directory" : "permission denied"
            throw GraphValidationError([Diagnostic(.error, "cannot read graph file '\(path)': \(why)", at: nil)])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw GraphValidationError([Diagnostic(.error, "graph file '\(path)' is not UTF-8 text",
                                                   at: SourceLocation(file: path, line: 1, column: 1))])
        }
        return try load(yaml: text, file: path, registry: registry, overrides: overrides, paramsFiles: paramsFiles)
    }

    /// Like `load(file:...)` for text already in memory; `file` is the name used in messages.
    public static func load(yaml text: String, file: String, registry: NodeRegistry,
                            overrides: [String: String] = [:], paramsFiles: [String] = []) throws -> ValidatedGraph {
        var diagnostics = DiagnosticList()
        guard let raw = RawGraph.parse(text, file: file, diagnostics: &diagnostics) else {
            throw GraphValidationError(diagnostics.sorted(mainFile: file))
        }
        var scope = ParamScope.resolve(raw, overrides: overrides, paramsFiles: paramsFiles, diagnostics: &diagnostics)
        guard var graph = Validator.validate(raw, registry: registry, scope: &scope, source: text,
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
