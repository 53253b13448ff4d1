import SanaGraphKit
import Foundation
import Yams

// Graph-level params: their declarations, values (defaults < --params files < --set overrides), the
// `${name}` substitution into node params, and the conversion of any value to a declared `ParamType`.

/// The types a graph param may declare.
public enum GraphParamType: String, Sendable, CaseIterable {
    case int, float, string, bool, path

    var paramType: ParamType {
        switch self {
        case .int: return .int
        case .float: return .float
        case .string: return .string
        case .bool: return .bool
        case .path: return .path
        }
    }

    /// "an int", "a float", ... for messages.
    var withArticle: String { self == .int ? "an int" : "a \(rawValue)" }
}

/// A graph param as declared in the file's `params:` block.
public struct GraphParameter: Sendable {
    public var name: String
    public var type: GraphParamType
    /// nil: the param is required and must be given with `--set` or a `--params` file.
    public var defaultValue: ParamValue?
    public var min: Double?
    public var max: Double?
    public var choices: [ParamValue]?
    public var doc: String?
    /// Where it is declared.
    public var location: SourceLocation?

    public init(name: String, type: GraphParamType, defaultValue: ParamValue? = nil, min: Double? = nil,
                max: Double? = nil, choices: [ParamValue]? = nil, doc: String? = nil,
                location: SourceLocation? = nil) {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.min = min
        self.max = max
        self.choices = choices
        self.doc = doc
        self.location = location
    }
}

// MARK: - Values and conversion

/// A value on its way to a typed param: a YAML scalar, a substituted graph param, or interpolated text.
struct Operand {
    enum Kind {
        case int(Int), float(Double), bool(Bool), string(String), null
    }

    var kind: Kind
    /// The value as text (a YAML scalar's literal text), used when a string is expected.
    var text: String
    /// A quoted YAML scalar (for the "remove the quotes" hint).
    var quoted: Bool = false
    /// The graph param this value came from (`${name}`), for messages.
    var fromParam: String?

    init(kind: Kind, text: String, quoted: Bool = false, fromParam: String? = nil) {
        self.kind = kind
        self.text = text
        self.quoted = quoted
        self.fromParam = fromParam
    }

    /// A YAML node. Non-scalars become nil.
    init?(yaml node: Yams.Node) {
        guard case .scalar(let s) = node else { return nil }
        text = s.string
        quoted = s.style != .plain
        switch node.tagName {
        case .null: kind = .null
        case .bool: kind = node.bool.map { .bool($0) } ?? .string(s.string)
        case .int:
            if let v = node.int { kind = .int(v) } else if let d = node.float { kind = .float(d) } else { kind = .string(s.string) }
        case .float: kind = node.float.map { .float($0) } ?? .string(s.string)
        default: kind = .string(s.string)
        }
    }

    init(_ value: ParamValue, fromParam: String?) {
        switch value {
        case .int(let v): kind = .int(v)
        case .float(let v): kind = .float(v)
        case .bool(let v): kind = .bool(v)
        case .string(let v): kind = .string(v)
        }
        text = value.description
        self.fromParam = fromParam
    }

    var shown: String {
        switch kind {
        case .int(let v): return "the integer \(v)"
        case .float(let v): return "the float \(v)"
        case .bool(let v): return "the bool \(v)"
        case .string(let v): return "the string \"\(v)\""
        case .null: return "nothing (null)"
        }
    }
}

/// Converts `operand` to `type`. Ints are accepted where floats are expected; integral floats where ints
/// are; any scalar where a string or path is expected (as its text). Returns an error message on failure.
func convert(_ operand: Operand, to type: ParamType) -> Result<ParamValue, ConversionError> {
    let origin = operand.fromParam.map { " (from ${\($0)})" } ?? ""
    if case .null = operand.kind {
        return .failure(.init("has no value; write a value" + (type == .string ? " (\"\" for an empty string)" : "")))
    }
    func mismatch(_ expected: String) -> Result<ParamValue, ConversionError> {
        var hint = ""
        if case .string(let s) = operand.kind, operand.quoted,
           Double(s.trimmingCharacters(in: .whitespaces)) != nil || ["true", "false"].contains(s) {
            hint = " (remove the quotes)"
        }
        return .failure(.init("expected \(expected), got \(operand.shown)\(origin)\(hint)"))
    }
    switch type {
    case .int:
        switch operand.kind {
        case .int(let v): return .success(.int(v))
        case .float(let v) where v.isFinite && v == v.rounded() && abs(v) < 9.0e15: return .success(.int(Int(v)))
        default: return mismatch("an integer")
        }
    case .float:
        switch operand.kind {
        case .int(let v): return .success(.float(Double(v)))
        case .float(let v) where v.isFinite: return .success(.float(v))
        case .float: return .failure(.init("expected a finite number, got \(operand.text)\(origin)"))
        default: return mismatch("a number")
        }
    case .bool:
        if case .bool(let v) = operand.kind { return .success(.bool(v)) }
        return mismatch("true or false")
    case .string, .path:
        return .success(.string(operand.text))
    case .choice(let choices):
        let text = operand.text
        if choices.contains(text) { return .success(.string(text)) }
        return .failure(.init("'\(text)'\(origin) is not one of " + choices.joined(separator: ", ")
                              + Suggestions.didYouMean(text, in: choices)))
    }
}

struct ConversionError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

/// A number without a trailing `.0` when integral.
func formatNumber(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
}

/// nil when `value` is within `[min, max]`, else a message.
func rangeProblem(_ value: ParamValue, min: Double?, max: Double?) -> String? {
    let number: Double
    switch value {
    case .int(let v): number = Double(v)
    case .float(let v): number = v
    default: return nil
    }
    if let min, number < min {
        return "\(value) is below the minimum \(formatNumber(min))" + (max.map { " (allowed: \(formatNumber(min))...\(formatNumber($0)))" } ?? "")
    }
    if let max, number > max {
        return "\(value) is above the maximum \(formatNumber(max))" + (min.map { " (allowed: \(formatNumber($0))...\(formatNumber(max)))" } ?? "")
    }
    return nil
}

// MARK: - Graph param scope

/// Graph params after declarations, defaults, params files and overrides, plus what substitution used.
struct ParamScope {
    var declared: [String: GraphParameter] = [:]
    /// Declaration order.
    var order: [String] = []
    /// Final values of every param that has one.
    var values: [String: ParamValue] = [:]
    /// Params whose declaration or value is broken (already reported): references to them stay silent.
    var broken: Set<String> = []
    /// Params referenced by some `${name}`.
    var used: Set<String> = []

    /// Builds the scope: checks declarations, applies params files then overrides, checks ranges and choices,
    /// and reports required params that got no value.
    static func resolve(_ raw: RawGraph, overrides: [String: String], paramsFiles: [String],
                        diagnostics: inout DiagnosticList) -> ParamScope {
        var scope = ParamScope()
        for p in raw.params {
            if scope.declared[p.name] != nil || scope.broken.contains(p.name) { continue }  // YAML rejects duplicates
            if let param = declaration(p, file: raw.file, diagnostics: &diagnostics) {
                scope.declared[p.name] = param
                if let d = param.defaultValue { scope.values[p.name] = d }
            } else {
                scope.broken.insert(p.name)
            }
            scope.order.append(p.name)
        }
        for path in paramsFiles { scope.applyParamsFile(path, diagnostics: &diagnostics) }
        for name in overrides.keys.sorted() {
            scope.applyOverride(name, overrides[name] ?? "", diagnostics: &diagnostics)
        }
        for name in scope.order {
            guard let param = scope.declared[name], scope.values[name] == nil else { continue }
            diagnostics.error("param '\(name)' is required (it has no default): give it with --set \(name)=... "
                              + "or in a --params file", at: param.location)
            scope.broken.insert(name)
        }
        return scope
    }

    /// All names a `${...}` may refer to.
    var names: [String] { order }

    /// Checks one declaration; nil when it is unusable (errors reported).
    private static func declaration(_ p: RawParamDeclaration, file: String,
                                    diagnostics: inout DiagnosticList) -> GraphParameter? {
        let ok = diagnostics.errorCount
        var type: GraphParamType?
        if let t = p.type {
            let name = t.scalar?.string ?? ""
            if let known = GraphParamType(rawValue: name) { type = known } else {
                diagnostics.error("param '\(p.name)': unknown type '\(name)'"
                                  + Suggestions.didYouMeanOrList(name, in: GraphParamType.allCases.map(\.rawValue),
                                                                 noun: "types"),
                                  at: location(t, file: file))
            }
        } else if p.shorthand, let d = p.defaultValue {
            switch d.tagName {
            case .int: type = .int
            case .float: type = .float
            case .bool: type = .bool
            default: type = .string
            }
        }
        guard let type else { return nil }
        var param = GraphParameter(name: p.name, type: type, location: p.location)
        param.doc = p.doc
        func number(_ node: Yams.Node?, _ key: String) -> Double? {
            guard let node else { return nil }
            if type != .int && type != .float {
                diagnostics.error("param '\(p.name)': '\(key)' applies only to int and float params",
                                  at: location(node, file: file))
                return nil
            }
            if let op = Operand(yaml: node), case .success(.float(let v)) = convert(op, to: .float) { return v }
            diagnostics.error("param '\(p.name)': '\(key)' must be a number, got \(yamlKind(node))",
                              at: location(node, file: file))
            return nil
        }
        param.min = number(p.min, "min")
        param.max = number(p.max, "max")
        if let lo = param.min, let hi = param.max, lo > hi, let m = p.min {
            param.min = nil  // so the default isn't also reported against an impossible range
            param.max = nil
            diagnostics.error("param '\(p.name)': min \(formatNumber(lo)) is greater than max \(formatNumber(hi))",
                              at: location(m, file: file))
        }
        if let c = p.choices {
            if case .sequence = c, !c.array().isEmpty {
                var choices: [ParamValue] = []
                for item in c.array() {
                    switch Operand(yaml: item).map({ convert($0, to: type.paramType) }) {
                    case .success(let v): choices.append(v)
                    case .failure(let e):
                        diagnostics.error("param '\(p.name)': choice: \(e.message)", at: location(item, file: file))
                    case nil:
                        diagnostics.error("param '\(p.name)': each choice must be a single value, got \(yamlKind(item))",
                                          at: location(item, file: file))
                    }
                }
                param.choices = choices
            } else {
                diagnostics.error("param '\(p.name)': 'choices' must be a non-empty list such as [a, b]",
                                  at: location(c, file: file))
            }
        }
        if let d = p.defaultValue {
            let at = location(d, file: file)
            switch Operand(yaml: d).map({ convert($0, to: type.paramType) }) {
            case .success(let v):
                if let problem = param.problem(with: v) {
                    diagnostics.error("param '\(p.name)': default: \(problem)", at: at)
                } else {
                    param.defaultValue = v
                }
            case .failure(let e):
                // A null default (`default: ~`) is an error rather than "required": say so plainly.
                diagnostics.error("param '\(p.name)': default: \(e.message)", at: at)
            case nil:
                diagnostics.error("param '\(p.name)': default must be a single value, got \(yamlKind(d))", at: at)
            }
        }
        return diagnostics.errorCount == ok ? param : nil
    }

    private mutating func set(_ name: String, _ value: ParamValue, problemPrefix: String, at: SourceLocation?,
                              diagnostics: inout DiagnosticList) {
        guard let param = declared[name] else { return }
        if let problem = param.problem(with: value) {
            diagnostics.error("\(problemPrefix)\(problem)", at: at)
            broken.insert(name)
        } else {
            values[name] = value
        }
    }

    private mutating func applyOverride(_ name: String, _ text: String, diagnostics: inout DiagnosticList) {
        let shown = "--set \(name)=\(text)"
        guard let param = declared[name] else {
            if broken.contains(name) { return }
            diagnostics.error("\(shown): the graph has no param '\(name)'"
                              + Suggestions.didYouMeanOrList(name, in: names, noun: "its params"), at: nil)
            return
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let value: ParamValue?
        switch param.type {
        case .int: value = Int(trimmed).map { .int($0) }
        case .float: value = Double(trimmed).flatMap { $0.isFinite ? .float($0) : nil }
        case .bool:
            switch trimmed.lowercased() {
            case "true", "yes", "on", "1": value = .bool(true)
            case "false", "no", "off", "0": value = .bool(false)
            default: value = nil
            }
        case .string, .path: value = .string(text)
        }
        guard let value else {
            let expected = param.type == .int ? "an integer such as 42"
                : param.type == .float ? "a number such as 4.5" : "true or false"
            diagnostics.error("\(shown): param '\(name)' is \(param.type.withArticle); expected \(expected), "
                              + "got '\(text)'", at: nil)
            broken.insert(name)
            return
        }
        set(name, value, problemPrefix: "\(shown): param '\(name)': ", at: nil, diagnostics: &diagnostics)
    }

    private mutating func applyParamsFile(_ path: String, diagnostics: inout DiagnosticList) {
        guard let data = FileManager.default.contents(atPath: path) else {
            diagnostics.error("cannot read params file '\(path)' (--params): check that it exists and is readable",
                              at: nil)
            return
        }
        guard let text = String(data: data, encoding: .utf8) else {
            diagnostics.error("params file '\(path)' is not UTF-8 text", at: nil)
            return
        }
        let root: Yams.Node?
        do { root = try Yams.compose(yaml: text) } catch {
            diagnostics.items.append(yamlErrorDiagnostic(error, file: path))
            return
        }
        guard let root else { return }  // an empty file sets nothing
        guard case .mapping(let m) = root else {
            diagnostics.error("a params file must be a mapping of param names to values (seed: 7), got "
                              + yamlKind(root), at: location(root, file: path))
            return
        }
        for (key, value) in m {
            let name = key.scalar?.string ?? ""
            let at = location(value, file: path)
            guard let param = declared[name] else {
                if broken.contains(name) { continue }
                diagnostics.error("the graph has no param '\(name)'"
                                  + Suggestions.didYouMeanOrList(name, in: names, noun: "its params"),
                                  at: location(key, file: path))
                continue
            }
            switch Operand(yaml: value).map({ convert($0, to: param.type.paramType) }) {
            case .success(let v):
                set(name, v, problemPrefix: "param '\(name)': ", at: at, diagnostics: &diagnostics)
            case .failure(let e):
                diagnostics.error("param '\(name)' is \(param.type.withArticle): \(e.message)", at: at)
                broken.insert(name)
            case nil:
                diagnostics.error("param '\(name)' must be a single value, got \(yamlKind(value))", at: at)
                broken.insert(name)
            }
        }
    }

    // MARK: Substitution

    /// Resolves `${name}` references in a node param value. A value that is exactly one reference keeps the
    /// param's type; references inside longer text interpolate as text; `$${` is a literal `${`.
    /// Returns nil when the value can't be resolved (reported, or silent when it names a broken param).
    mutating func substitute(_ node: Yams.Node, file: String, nodeID: String, paramName: String,
                             diagnostics: inout DiagnosticList) -> Operand? {
        guard var operand = Operand(yaml: node) else { return nil }
        guard case .string(let text) = operand.kind, text.contains("$") else { return operand }
        let at = location(node, file: file)
        enum Piece { case text(String), ref(String) }
        var pieces: [Piece] = []
        var literal = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            literal += rest[..<dollar]
            let after = rest[dollar...]
            if after.hasPrefix("$${") {
                literal += "${"
                rest = after.dropFirst(3)
            } else if after.hasPrefix("${") {
                let body = after.dropFirst(2)
                guard let close = body.firstIndex(of: "}") else {
                    diagnostics.error("param '\(paramName)': unterminated '${' in \"\(text)\" (write '$${' for a "
                                      + "literal '${')", at: at, node: nodeID)
                    return nil
                }
                var name = String(body[..<close])
                if name.hasPrefix("params.") { name.removeFirst("params.".count) }
                guard isIdentifier(name) else {
                    diagnostics.error("param '\(paramName)': '${\(body[..<close])}' is not a param reference "
                                      + "(write ${name}, or '$${' for a literal '${')", at: at, node: nodeID)
                    return nil
                }
                if !literal.isEmpty { pieces.append(.text(literal)); literal = "" }
                pieces.append(.ref(name))
                rest = body[body.index(after: close)...]
            } else {
                literal += "$"
                rest = after.dropFirst()
            }
        }
        literal += rest
        if !literal.isEmpty { pieces.append(.text(literal)) }

        var ok = true
        for case .ref(let name) in pieces {
            used.insert(name)
            if declared[name] == nil && !broken.contains(name) {
                let hint = order.isEmpty ? " (the graph declares no params; add it under 'params:')"
                    : Suggestions.didYouMeanOrList(name, in: names, noun: "params")
                diagnostics.error("param '\(paramName)': unknown graph param '${\(name)}'\(hint)", at: at, node: nodeID)
                ok = false
            } else if values[name] == nil {
                ok = false  // broken: already reported where it was declared or set
            }
        }
        guard ok else { return nil }
        if pieces.count == 1, case .ref(let name) = pieces[0], let value = values[name] {
            return Operand(value, fromParam: name)
        }
        let joined = pieces.map { piece -> String in
            switch piece {
            case .text(let t): return t
            case .ref(let name): return values[name]?.description ?? ""
            }
        }.joined()
        operand.kind = .string(joined)
        operand.text = joined
        operand.quoted = false  // the quotes were needed for the reference, so don't suggest removing them
        return operand
    }
}

extension GraphParameter {
    /// nil when `value` satisfies the declared range and choices, else a message.
    func problem(with value: ParamValue) -> String? {
        if let choices, !choices.contains(value) {
            return "'\(value)' is not one of " + choices.map(\.description).joined(separator: ", ")
                + Suggestions.didYouMean(value.description, in: choices.map(\.description))
        }
        return rangeProblem(value, min: min, max: max)
    }
}
