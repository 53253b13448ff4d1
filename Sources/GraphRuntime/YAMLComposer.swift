import CYaml
import Yams

/// Composes a YAML document into Yams nodes from libyaml's events, in one linear pass that also enforces the
/// front end's limits. It replaces `Yams.compose` for graph and params files because
/// - hostile YAML is refused before anything is built from it: nesting deeper than `maxDepth` (a recursive
///   composer would overflow the stack) and aliases that expand to more than `maxExpandedNodes` values (an
///   "alias bomb"; Yams hashes mapping keys, and an aliased key of a billion values would never finish);
/// - plain scalars are resolved by `YAMLScalars` (YAML 1.1 core rules, as Yams's resolver) without regular
///   expressions, and duplicate keys are found by their text: Yams spends ~90 % of the time of a 100 000-node
///   graph in `NSRegularExpression`.
/// Marks, tags and styles are kept as Yams would set them, so the rest of the front end is unchanged.
enum YAMLComposer {
    /// A document that can't be composed: the message and its 1-based place.
    struct Failure: Error, Equatable {
        var message: String
        var line: Int
        var column: Int
    }

    /// The first document of `text` (nil when there is none, e.g. an empty file).
    static func compose(_ text: String, maxDepth: Int = GraphLimits.maxYAMLDepth,
                        maxExpandedNodes: Int = GraphLimits.maxYAMLNodes) throws(Failure) -> Yams.Node? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { throw Failure(message: "cannot start the YAML parser", line: 1, column: 1) }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBufferPointer { buffer throws(Failure) -> Yams.Node? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var state = State(maxDepth: maxDepth, maxExpanded: maxExpandedNodes)
            do throws(Failure) {
                return try state.run(&parser)
            } catch {
                guard error.line == 0 else { throw error }
                var line = 1, column = 1
                for byte in buffer.prefix(error.column) {
                    if byte == UInt8(ascii: "\n") { line += 1; column = 1 } else if byte & 0xC0 != 0x80 { column += 1 }
                }
                throw Failure(message: error.message, line: line, column: column)
            }
        }
    }

    /// An open collection and the expanded size of what it holds so far.
    private struct Open {
        var isMapping: Bool
        var items: [Yams.Node] = []
        var tag: String?
        var anchor: String?
        var mark: Mark
        var style: Int
        var expanded = 1
    }

    private struct State {
        let maxDepth: Int
        let maxExpanded: Int
        var open: [Open] = []
        var anchors: [String: (node: Yams.Node, size: Int)] = [:]
        var expandedClosed = 0
        var root: Yams.Node?
        var sawDocument = false

        init(maxDepth: Int, maxExpanded: Int) {
            self.maxDepth = maxDepth
            self.maxExpanded = maxExpanded
        }

        mutating func run(_ parser: inout yaml_parser_t) throws(Failure) -> Yams.Node? {
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { throw syntaxError(parser) }
                defer { yaml_event_delete(&event) }
                let mark = makeMark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return root
                case YAML_DOCUMENT_START_EVENT:
                    // Only the first document counts (as Yams.compose); later ones are not read.
                    if sawDocument { return root }
                    sawDocument = true
                case YAML_SCALAR_EVENT:
                    let s = event.data.scalar
                    let value = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
                    let style = Self.scalarStyle(s.style)
                    let name = Self.tagName(string(s.tag), plain: s.plain_implicit != 0 && style == .plain, value: value)
                    let node = Yams.Node.scalar(.init(value, tag(name), style, mark))
                    try add(node, size: 1, anchor: string(s.anchor), at: mark)
                case YAML_ALIAS_EVENT:
                    let name = string(event.data.alias.anchor) ?? ""
                    guard let target = anchors[name] else {
                        throw Failure(message: "YAML syntax error: found undefined alias '\(name)'", line: mark.line,
                                      column: mark.column)
                    }
                    try add(target.node, size: target.size, anchor: nil, at: mark)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let isMapping = event.type == YAML_MAPPING_START_EVENT
                    let tag = isMapping ? string(event.data.mapping_start.tag) : string(event.data.sequence_start.tag)
                    let anchor = isMapping ? string(event.data.mapping_start.anchor)
                        : string(event.data.sequence_start.anchor)
                    let style = isMapping ? Int(event.data.mapping_start.style.rawValue)
                        : Int(event.data.sequence_start.style.rawValue)
                    open.append(Open(isMapping: isMapping, tag: tag, anchor: anchor, mark: mark, style: style))
                    if open.count > maxDepth {
                        throw Failure(message: "the YAML is nested more than \(maxDepth) levels deep (the limit; a "
                                      + "graph needs about 5)", line: mark.line, column: mark.column)
                    }
                    try checkSize(at: mark)
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let done = open.popLast() else { break }
                    let node: Yams.Node
                    if done.isMapping {
                        var pairs: [(Yams.Node, Yams.Node)] = []
                        pairs.reserveCapacity(done.items.count / 2)
                        var seen: [String: Mark] = [:]
                        var i = 0
                        while i + 1 < done.items.count {
                            let key = done.items[i]
                            if case .scalar(let k) = key, let m = k.mark {
                                if seen[k.string] != nil {
                                    throw Failure(message: "duplicate key '\(k.string)' in a mapping; each key may "
                                                  + "appear once", line: seen[k.string]!.line,
                                                  column: seen[k.string]!.column)
                                }
                                seen[k.string] = m
                            }
                            pairs.append((key, done.items[i + 1]))
                            i += 2
                        }
                        let style: Yams.Node.Mapping.Style = done.style == Int(YAML_FLOW_MAPPING_STYLE.rawValue) ? .flow : .block
                        node = .mapping(.init(pairs, tag(done.tag.map { Tag.Name(rawValue: $0) } ?? .map), style, done.mark))
                    } else {
                        let style: Yams.Node.Sequence.Style = done.style == Int(YAML_FLOW_SEQUENCE_STYLE.rawValue) ? .flow : .block
                        node = .sequence(.init(done.items, tag(done.tag.map { Tag.Name(rawValue: $0) } ?? .seq), style,
                                               done.mark))
                    }
                    try add(node, size: done.expanded, anchor: done.anchor, at: mark)
                default:
                    break
                }
            }
        }

        /// Adds a finished node to its parent (or makes it the document).
        private mutating func add(_ node: Yams.Node, size: Int, anchor: String?, at mark: Mark) throws(Failure) {
            if let anchor { anchors[anchor] = (node, size) }
            if open.isEmpty {
                if root == nil { root = node }
                expandedClosed += size
            } else {
                open[open.count - 1].items.append(node)
                open[open.count - 1].expanded += size
            }
            try checkSize(at: mark)
        }

        private func checkSize(at mark: Mark) throws(Failure) {
            var total = expandedClosed
            for o in open { total += o.expanded }
            if total > maxExpanded {
                throw Failure(message: "the YAML expands to more than \(maxExpanded) values (the limit; anchors and "
                              + "aliases count once per use)", line: mark.line, column: mark.column)
            }
        }

        /// Yams's `Constructor.default` builds a new table on every access: make the tags with one instance.
        private let resolver = Resolver.default
        private let constructor = Constructor.default

        private func tag(_ name: Tag.Name) -> Tag { Tag(name, resolver, constructor) }

        private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
            pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
        }

        /// libyaml's error in the words Yams uses ("YAML syntax error: problem (context at line L, column C)").
        private func syntaxError(_ parser: yaml_parser_t) -> Failure {
            let problem = parser.problem.map { String(cString: $0) } ?? "unknown problem"
            if parser.error == YAML_READER_ERROR {
                // The reader reports a byte offset: `compose` turns it into a line and column.
                return Failure(message: "YAML reader error: \(problem)", line: 0, column: Int(parser.problem_offset))
            }
            var context = ""
            if let c = parser.context {
                context = " (\(String(cString: c)) at line \(parser.context_mark.line + 1), column "
                    + "\(parser.context_mark.column + 1))"
            }
            return Failure(message: "YAML syntax error: \(problem)\(context)", line: Int(parser.problem_mark.line) + 1,
                           column: Int(parser.problem_mark.column) + 1)
        }

        static func scalarStyle(_ style: yaml_scalar_style_t) -> Yams.Node.Scalar.Style {
            switch style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: return .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: return .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: return .literal
            case YAML_FOLDED_SCALAR_STYLE: return .folded
            default: return .plain
            }
        }

        /// The tag a scalar resolves to: its explicit tag, else `YAMLScalars.resolve` for plain scalars, else str.
        static func tagName(_ explicit: String?, plain: Bool, value: String) -> Tag.Name {
            if let explicit, explicit != "!" { return Tag.Name(rawValue: explicit) }
            return plain ? YAMLScalars.resolve(value) : .str
        }
    }
}

/// A Yams `Mark` (1-based line and column). Yams keeps its memberwise initializer internal; `Mark` is a struct of
/// exactly two `Int`s (checked), so it is built from a pair of the same layout.
func makeMark(line: Int, column: Int) -> Mark {
    precondition(MemoryLayout<Mark>.size == MemoryLayout<(Int, Int)>.size, "Yams.Mark changed its layout")
    let mark = unsafeBitCast((line, column), to: Mark.self)
    assert(mark.line == line && mark.column == column)
    return mark
}

/// The implicit tags of plain scalars, by the rules of Yams's default resolver (YAML 1.1 core: null, bool, int,
/// float; timestamps and the merge key `<<` are read as strings here), written without regular expressions.
enum YAMLScalars {
    static func resolve(_ s: String) -> Tag.Name {
        let u = Array(s.utf8)
        if isNull(s) { return .null }
        if isBool(s) { return .bool }
        if isInt(u) { return .int }
        if isFloat(u) { return .float }
        return .str
    }

    static func isNull(_ s: String) -> Bool { ["", "~", "null", "Null", "NULL"].contains(s) }

    static func isBool(_ s: String) -> Bool {
        ["yes", "Yes", "YES", "no", "No", "NO", "true", "True", "TRUE", "false", "False", "FALSE",
         "on", "On", "ON", "off", "Off", "OFF"].contains(s)
    }

    private static func digit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }

    /// `[-+]?` then one of: `0b[01_]+`, `0o?[0-7_]+`, `0|[1-9][0-9_]*`, `0x[0-9a-fA-F_]+`, `[1-9][0-9_]*(:[0-5]?[0-9])+`.
    static func isInt(_ u: [UInt8]) -> Bool {
        var i = 0
        if i < u.count, u[i] == 43 || u[i] == 45 { i += 1 }
        let r = u[i...]
        guard let first = r.first else { return false }
        func all(_ xs: ArraySlice<UInt8>, _ ok: (UInt8) -> Bool) -> Bool { !xs.isEmpty && xs.allSatisfy(ok) }
        if r.starts(with: Array("0b".utf8)) { return all(r.dropFirst(2)) { $0 == 48 || $0 == 49 || $0 == 95 } }
        if r.starts(with: Array("0x".utf8)) {
            return all(r.dropFirst(2)) { digit($0) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) || $0 == 95 }
        }
        if r.starts(with: Array("0o".utf8)) { return all(r.dropFirst(2)) { ($0 >= 48 && $0 <= 55) || $0 == 95 } }
        if first == 48 { return r.count == 1 || all(r.dropFirst()) { ($0 >= 48 && $0 <= 55) || $0 == 95 } }
        guard first >= 49 && first <= 57 else { return false }
        // Decimal, or sexagesimal `1:30`.
        let parts = r.split(separator: 58, omittingEmptySubsequences: false)
        guard parts[0].allSatisfy({ digit($0) || $0 == 95 }) else { return false }
        return parts.dropFirst().allSatisfy { p in
            (p.count == 1 && digit(p.first!)) || (p.count == 2 && p.first! >= 48 && p.first! <= 53 && digit(p.last!))
        }
    }

    /// `[-+]?([0-9][0-9_]*)(\.[0-9_]*)?([eE][-+]?[0-9]+)?`, `\.[0-9_]+([eE][-+][0-9]+)?`,
    /// `[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+\.[0-9_]*`, `[-+]?\.(inf|Inf|INF)`, `\.(nan|NaN|NAN)`.
    static func isFloat(_ u: [UInt8]) -> Bool {
        let s = String(decoding: u, as: UTF8.self)
        if [".nan", ".NaN", ".NAN"].contains(s) { return true }
        var i = 0
        var signed = false
        if i < u.count, u[i] == 43 || u[i] == 45 { i += 1; signed = true }
        if [".inf", ".Inf", ".INF"].contains(String(decoding: u[i...], as: UTF8.self)) { return true }
        func exponent(_ j: Int, signRequired: Bool) -> Bool {
            // [eE][-+]?[0-9]+ to the end
            var j = j
            guard j < u.count, u[j] == 101 || u[j] == 69 else { return false }
            j += 1
            if j < u.count, u[j] == 43 || u[j] == 45 { j += 1 } else if signRequired { return false }
            return j < u.count && u[j...].allSatisfy(digit)
        }
        if i < u.count, u[i] == 46, !signed {
            // \.[0-9_]+([eE][-+][0-9]+)?
            var j = i + 1
            let start = j
            while j < u.count, digit(u[j]) || u[j] == 95 { j += 1 }
            guard j > start else { return false }
            return j == u.count || exponent(j, signRequired: true)
        }
        guard i < u.count, digit(u[i]) else { return false }
        var j = i + 1
        while j < u.count, digit(u[j]) || u[j] == 95 { j += 1 }
        if j < u.count, u[j] == 58 {
            // sexagesimal float: (:[0-5]?[0-9])+\.[0-9_]*
            var sawPart = false
            while j < u.count, u[j] == 58 {
                j += 1
                if j + 1 < u.count, u[j] >= 48, u[j] <= 53, digit(u[j + 1]) { j += 2 } else if j < u.count, digit(u[j]) { j += 1 } else { return false }
                sawPart = true
            }
            guard sawPart, j < u.count, u[j] == 46 else { return false }
            j += 1
            return u[j...].allSatisfy { digit($0) || $0 == 95 }
        }
        if j == u.count { return true }
        if u[j] == 46 {
            j += 1
            while j < u.count, digit(u[j]) || u[j] == 95 { j += 1 }
            return j == u.count || exponent(j, signRequired: false)
        }
        return exponent(j, signRequired: false)
    }
}
