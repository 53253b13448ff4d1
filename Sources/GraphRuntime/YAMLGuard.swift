import CYaml

/// A linear pass over libyaml's events before Yams composes a document, so hostile YAML is refused before
/// anything is built from it: nesting deeper than `maxDepth` (Yams composes recursively, so a deep document
/// would overflow the stack) and documents whose aliases expand to more than `maxExpandedNodes` nodes (an
/// "alias bomb": Yams hashes mapping keys, and an aliased key of a billion nodes would never finish).
/// A syntax error is not reported here: Yams reports it with its own message.
enum YAMLGuard {
    struct Violation: Equatable {
        var message: String
        /// 1-based.
        var line: Int
        var column: Int
    }

    static func check(_ text: String, maxDepth: Int = GraphLimits.maxYAMLDepth,
                      maxExpandedNodes: Int = GraphLimits.maxYAMLNodes) -> Violation? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBufferPointer { buffer -> Violation? in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            // Expanded node count of each open collection; the anchors' expanded sizes.
            var open: [(count: Int, anchor: String?)] = []
            var anchors: [String: Int] = [:]
            var total = 0
            func anchorName(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
                pointer.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
            }
            /// Adds a finished node of `size` to its parent (or to the document).
            func finish(_ size: Int, anchor: String?) {
                if let anchor { anchors[anchor] = size }
                if open.isEmpty { total += size } else { open[open.count - 1].count += size }
            }
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
                defer { yaml_event_delete(&event) }
                let mark = event.start_mark
                func violation(_ message: String) -> Violation {
                    Violation(message: message, line: Int(mark.line) + 1, column: Int(mark.column) + 1)
                }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return nil
                case YAML_SCALAR_EVENT:
                    finish(1, anchor: anchorName(event.data.scalar.anchor))
                case YAML_ALIAS_EVENT:
                    // An undefined alias is a composer error Yams reports.
                    finish(anchors[anchorName(event.data.alias.anchor) ?? ""] ?? 1, anchor: nil)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let anchor = event.type == YAML_SEQUENCE_START_EVENT
                        ? anchorName(event.data.sequence_start.anchor) : anchorName(event.data.mapping_start.anchor)
                    open.append((1, anchor))
                    if open.count > maxDepth {
                        return violation("the YAML is nested more than \(maxDepth) levels deep (the limit; a graph "
                                         + "needs about 5)")
                    }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let done = open.popLast() else { return nil }
                    finish(done.count, anchor: done.anchor)
                default:
                    break
                }
                let expanded = total + open.reduce(0) { $0 + $1.count }
                if expanded > maxExpandedNodes {
                    return violation("the YAML expands to more than \(maxExpandedNodes) values (the limit; "
                                     + "anchors and aliases count once per use)")
                }
            }
        }
    }
}
