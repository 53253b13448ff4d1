import SanaGraphKit
import Yams

// Stage 1 of loading: the YAML text -> a `RawGraph` that keeps every value's Yams node (and so its line and
// column). Only the document's shape is checked here (keys, kinds of values); types, params and edges are
// checked by the validator. Every problem is appended to a `DiagnosticList` and parsing goes on, so one run
// reports all errors.

/// Collects diagnostics during loading.
struct DiagnosticList {
    var items: [Diagnostic] = []

    var hasErrors: Bool { items.contains { $0.severity == .error } }
    var errorCount: Int { items.filter { $0.severity == .error }.count }

    mutating func error(_ message: String, at location: SourceLocation?, node: String? = nil) {
        items.append(Diagnostic(.error, message, at: location, node: node))
    }

    mutating func warning(_ message: String, at location: SourceLocation?, node: String? = nil) {
        items.append(Diagnostic(.warning, message, at: location, node: node))
    }

    /// Diagnostics sorted by place: those without a location first (command-line problems), then the graph
    /// file's, then other files'; by line and column within a file. Ties keep discovery order.
    func sorted(mainFile: String) -> [Diagnostic] {
        func key(_ d: Diagnostic) -> (Int, String, Int, Int) {
            guard let l = d.location else { return (0, "", 0, 0) }
            return (l.file == mainFile ? 1 : 2, l.file, l.line, l.column)
        }
        return items.enumerated().sorted { a, b in
            let ka = key(a.element), kb = key(b.element)
            if ka != kb { return ka < kb }
            return a.offset < b.offset
        }.map(\.element)
    }
}

/// The identifier rule for node ids, param names and socket names: a letter or `_`, then letters, digits, `_`.
func isIdentifier(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first else { return false }
    func letter(_ c: Unicode.Scalar) -> Bool { (c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c == "_" }
    guard letter(first) else { return false }
    return s.unicodeScalars.allSatisfy { letter($0) || ($0 >= "0" && $0 <= "9") }
}

extension Yams.Node {
    /// The resolved tag's name (`Tag.name` itself is internal to Yams).
    var tagName: Tag.Name { Tag.Name(rawValue: tag.rawValue) }
}

func location(_ node: Yams.Node, file: String) -> SourceLocation {
    let mark = node.mark
    return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
}

/// A short description of what kind of YAML value a node is, for "expected X, got Y" messages.
func yamlKind(_ node: Yams.Node) -> String {
    switch node {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .alias: return "an alias"
    case .scalar:
        switch node.tagName {
        case .null: return "nothing (null)"
        case .int: return "an integer"
        case .float: return "a float"
        case .bool: return "a bool"
        default: return "a string"
        }
    }
}

/// Turns a Yams error into one diagnostic with the line and column libyaml reports.
func yamlErrorDiagnostic(_ error: Error, file: String) -> Diagnostic {
    func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
    guard let yamlError = error as? YamlError else {
        return Diagnostic(.error, "cannot parse YAML: \(error)", at: SourceLocation(file: file, line: 1, column: 1))
    }
    switch yamlError {
    case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
         .composer(let context, let problem, let mark, _):
        let ctx = context.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? ""
        return Diagnostic(.error, "YAML syntax error: \(problem)\(ctx)", at: at(mark))
    case .duplicatedKeysInMapping(let duplicates, let context):
        let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
        return Diagnostic(.error, "duplicate key \(keys) in a mapping; each key may appear once", at: at(context.mark))
    case .reader(let problem, let offset, _, let yaml):
        // Convert the byte offset into a line and column.
        var line = 1, column = 1
        if let offset {
            for (i, byte) in yaml.utf8.enumerated() where i < offset {
                if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
            }
        }
        return Diagnostic(.error, "YAML reader error: \(problem)", at: SourceLocation(file: file, line: line, column: column))
    default:
        return Diagnostic(.error, "cannot parse YAML: \(yamlError)", at: SourceLocation(file: file, line: 1, column: 1))
    }
}

/// The top-level keys of format 1.
let topLevelKeys = ["sanagraph", "description", "requires", "params", "nodes"]
/// The keys of a graph param declaration.
let paramDeclarationKeys = ["type", "default", "doc", "min", "max", "choices"]
/// The keys of a node.
let nodeKeys = ["type", "params", "inputs", "doc"]

/// A graph param declaration as written.
struct RawParamDeclaration {
    var name: String
    var location: SourceLocation
    /// The `type:` value node (nil when absent or when the shorthand `name: value` was used).
    var type: Yams.Node?
    var defaultValue: Yams.Node?
    var doc: String?
    var min: Yams.Node?
    var max: Yams.Node?
    var choices: Yams.Node?
    /// True for the shorthand `name: value` (type inferred from the value, which is the default).
    var shorthand: Bool
}

/// One `inputs:` entry as written.
struct RawInput {
    var socket: String
    var socketLocation: SourceLocation
    /// `node` or `node.output`; nil when the value is not a string (already reported).
    var reference: String?
    var referenceLocation: SourceLocation
}

/// A node as written.
struct RawNode {
    var id: String
    var location: SourceLocation
    var typeName: String?
    var typeLocation: SourceLocation
    /// Param name -> value node, in file order.
    var params: [(name: String, keyLocation: SourceLocation, value: Yams.Node)]
    var inputs: [RawInput]
    var doc: String?
    /// `params:` / `inputs:` was not a mapping (reported): "missing required ..." would repeat that mistake.
    var paramsMalformed = false
    var inputsMalformed = false
}

/// A parsed graph document before validation.
struct RawGraph {
    var file: String
    var description: String?
    /// Packs the graph needs (`requires: [ImageGrid]`), with where each is named.
    var requires: [(name: String, location: SourceLocation)] = []
    var params: [RawParamDeclaration] = []
    var nodes: [RawNode] = []
    /// Where `nodes:` is (for graph-wide errors such as "no output node").
    var nodesLocation: SourceLocation
    /// False when `nodes:` is missing (reported): "no output node" would repeat that mistake.
    var hasNodesKey = true

    /// Parses `text`. Returns nil only when the YAML itself can't be read (the error is in `diagnostics`).
    static func parse(_ text: String, file: String, diagnostics: inout DiagnosticList) -> RawGraph? {
        let start = SourceLocation(file: file, line: 1, column: 1)
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            diagnostics.items.append(yamlErrorDiagnostic(error, file: file))
            return nil
        }
        guard let root, case .mapping(let top) = root else {
            let got = root.map(yamlKind) ?? "an empty document"
            diagnostics.error("a graph file must be a mapping with 'sanagraph: 1' and 'nodes:', got \(got)",
                              at: root.map { location($0, file: file) } ?? start)
            return nil
        }
        var graph = RawGraph(file: file, nodesLocation: start)
        var sawVersion = false, sawNodes = false
        var guessedKeys: Set<String> = []  // keys a misspelt key probably meant
        for (key, value) in top {
            let keyLocation = location(key, file: file)
            guard let name = key.string, case .scalar = key else {
                diagnostics.error("top-level keys must be names, got \(yamlKind(key))", at: keyLocation)
                continue
            }
            switch name {
            case "sanagraph":
                sawVersion = true
                if value.tagName != .int || value.int != 1 {
                    let shown = value.scalar?.string ?? yamlKind(value)
                    diagnostics.error("unsupported graph format version '\(shown)'; this SanaGraph reads format 1 "
                                      + "(write 'sanagraph: 1')", at: location(value, file: file))
                }
            case "description":
                if case .scalar(let s) = value, value.tagName != .null { graph.description = s.string } else {
                    diagnostics.error("'description' must be a string, got \(yamlKind(value))",
                                      at: location(value, file: file))
                }
            case "requires":
                guard case .sequence(let items) = value else {
                    diagnostics.error("'requires' must be a list of pack names (e.g. [ImageGrid]), got \(yamlKind(value))",
                                      at: location(value, file: file))
                    break
                }
                for item in items {
                    if case .scalar(let s) = item, item.tagName == .str, !s.string.isEmpty {
                        graph.requires.append((s.string, location(item, file: file)))
                    } else {
                        diagnostics.error("'requires' lists pack names (strings), got \(yamlKind(item))",
                                          at: location(item, file: file))
                    }
                }
            case "params":
                graph.parseParams(value, diagnostics: &diagnostics)
            case "nodes":
                sawNodes = true
                graph.nodesLocation = keyLocation
                graph.parseNodes(value, diagnostics: &diagnostics)
            default:
                if let guess = Suggestions.closest(to: name, in: topLevelKeys) { guessedKeys.insert(guess) }
                diagnostics.error("unknown top-level key '\(name)'"
                                  + Suggestions.didYouMeanOrList(name, in: topLevelKeys, noun: "allowed"),
                                  at: keyLocation)
            }
        }
        if !sawVersion && !guessedKeys.contains("sanagraph") {
            diagnostics.error("missing the format version: add 'sanagraph: 1' as the first line", at: start)
        }
        if !sawNodes && !guessedKeys.contains("nodes") {
            diagnostics.error("missing 'nodes:' (the graph's nodes)", at: start)
        }
        graph.hasNodesKey = sawNodes
        return graph
    }

    /// A value that should be a mapping (an absent/null value counts as empty).
    private func mapping(_ value: Yams.Node, what: String, diagnostics: inout DiagnosticList,
                         node: String? = nil) -> Yams.Node.Mapping? {
        if case .mapping(let m) = value { return m }
        if value.tagName == .null { return Yams.Node.Mapping([]) }
        diagnostics.error("\(what) must be a mapping, got \(yamlKind(value))", at: location(value, file: file),
                          node: node)
        return nil
    }

    private func scalarString(_ node: Yams.Node) -> String? {
        if case .scalar(let s) = node, node.tagName != .null { return s.string }
        return nil
    }

    private mutating func parseParams(_ value: Yams.Node, diagnostics: inout DiagnosticList) {
        guard let m = mapping(value, what: "'params'", diagnostics: &diagnostics) else { return }
        for (key, decl) in m {
            let keyLocation = location(key, file: file)
            guard let name = scalarString(key) else {
                diagnostics.error("param names must be strings, got \(yamlKind(key))", at: keyLocation)
                continue
            }
            if !isIdentifier(name) {
                diagnostics.error("param name '\(name)' is not an identifier (letters, digits and _, "
                                  + "not starting with a digit)", at: keyLocation)
            }
            var p = RawParamDeclaration(name: name, location: keyLocation, shorthand: false)
            switch decl {
            case .mapping(let fields):
                var sawUnknownKey = false
                for (fk, fv) in fields {
                    let field = scalarString(fk) ?? ""
                    switch field {
                    case "type": p.type = fv
                    case "default": p.defaultValue = fv
                    case "doc":
                        if let s = scalarString(fv) { p.doc = s } else {
                            diagnostics.error("param '\(name)': 'doc' must be a string, got \(yamlKind(fv))",
                                              at: location(fv, file: file))
                        }
                    case "min": p.min = fv
                    case "max": p.max = fv
                    case "choices": p.choices = fv
                    default:
                        sawUnknownKey = true
                        diagnostics.error("param '\(name)': unknown key '\(field)'"
                                          + Suggestions.didYouMeanOrList(field, in: paramDeclarationKeys,
                                                                         noun: "allowed"),
                                          at: location(fk, file: file))
                    }
                }
                // A misspelt `type:` key was reported already; "no type" would be the same mistake again.
                if p.type == nil && !sawUnknownKey {
                    diagnostics.error("param '\(name)' has no 'type' (one of "
                                      + GraphParamType.allCases.map(\.rawValue).joined(separator: ", ") + ")",
                                      at: keyLocation)
                }
            case .scalar where decl.tagName != .null:
                // Shorthand: `seed: 42` declares an int param with default 42.
                p.defaultValue = decl
                p.shorthand = true
            default:
                diagnostics.error("param '\(name)' must be a mapping such as {type: int, default: 1} or a plain "
                                  + "default value, got \(yamlKind(decl))", at: location(decl, file: file))
                continue
            }
            params.append(p)
        }
    }

    private mutating func parseNodes(_ value: Yams.Node, diagnostics: inout DiagnosticList) {
        guard let m = mapping(value, what: "'nodes'", diagnostics: &diagnostics) else { return }
        for (key, body) in m {
            let keyLocation = location(key, file: file)
            guard let id = scalarString(key) else {
                diagnostics.error("node ids must be names, got \(yamlKind(key))", at: keyLocation)
                continue
            }
            if !isIdentifier(id) {
                diagnostics.error("node id '\(id)' is not an identifier (letters, digits and _, not starting "
                                  + "with a digit)", at: keyLocation, node: id)
            }
            var node = RawNode(id: id, location: keyLocation, typeName: nil, typeLocation: keyLocation,
                               params: [], inputs: [], doc: nil)
            guard case .mapping(let fields) = body else {
                diagnostics.error("a node must be a mapping such as {type: ..., params: {...}, inputs: {...}}, "
                                  + "got \(yamlKind(body))", at: location(body, file: file), node: id)
                nodes.append(node)
                continue
            }
            var sawType = false
            for (fk, fv) in fields {
                let field = scalarString(fk) ?? ""
                switch field {
                case "type":
                    sawType = true
                    node.typeLocation = location(fv, file: file)
                    if let s = scalarString(fv) { node.typeName = s } else {
                        diagnostics.error("'type' must be a node type name, got \(yamlKind(fv))",
                                          at: location(fv, file: file), node: id)
                    }
                case "params":
                    guard let pm = mapping(fv, what: "'params'", diagnostics: &diagnostics, node: id) else {
                        node.paramsMalformed = true
                        continue
                    }
                    for (pk, pv) in pm {
                        guard let pname = scalarString(pk) else {
                            diagnostics.error("param names must be strings, got \(yamlKind(pk))",
                                              at: location(pk, file: file), node: id)
                            continue
                        }
                        node.params.append((pname, location(pk, file: file), pv))
                    }
                case "inputs":
                    guard let im = mapping(fv, what: "'inputs'", diagnostics: &diagnostics, node: id) else {
                        node.inputsMalformed = true
                        continue
                    }
                    for (ik, iv) in im {
                        guard let socket = scalarString(ik) else {
                            diagnostics.error("input names must be strings, got \(yamlKind(ik))",
                                              at: location(ik, file: file), node: id)
                            continue
                        }
                        var input = RawInput(socket: socket, socketLocation: location(ik, file: file),
                                             reference: nil, referenceLocation: location(iv, file: file))
                        if iv.tagName == .str, let ref = iv.scalar?.string {
                            input.reference = ref
                        } else {
                            diagnostics.error("input '\(socket)' must name a node ('node' or 'node.output'), got "
                                              + "\(yamlKind(iv)); constants go in 'params'",
                                              at: location(iv, file: file), node: id)
                        }
                        node.inputs.append(input)
                    }
                case "doc":
                    node.doc = scalarString(fv)
                default:
                    diagnostics.error("unknown key '\(field)' in a node"
                                      + Suggestions.didYouMeanOrList(field, in: nodeKeys, noun: "allowed"),
                                      at: location(fk, file: file), node: id)
                }
            }
            if !sawType {
                diagnostics.error("missing 'type' (the node type; 'sanagraph nodes' lists them)", at: keyLocation, node: id)
            }
            nodes.append(node)
        }
    }
}
