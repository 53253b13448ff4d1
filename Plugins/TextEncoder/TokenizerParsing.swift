import Foundation

/// Typed access to `tokenizer.json` fields with errors that name the file and the field.
struct JSONFieldReader {
    let path: String

    func object(_ value: Any?, _ field: String) throws -> [String: Any] {
        guard let object = value as? [String: Any] else {
            throw TokenizerError.invalidField(path: path, field: field, message: "is missing or not an object")
        }
        return object
    }

    func string(_ value: Any?, _ field: String) throws -> String {
        guard let string = value as? String else {
            throw TokenizerError.invalidField(path: path, field: field, message: "is missing or not a string")
        }
        return string
    }

    func list(_ value: Any?, _ field: String) throws -> [Any] {
        guard let list = value as? [Any] else {
            throw TokenizerError.invalidField(path: path, field: field, message: "is missing or not a list")
        }
        return list
    }

    /// The `type` of a component object.
    func type(_ object: [String: Any], _ field: String) throws -> String {
        try string(object["type"], field + ".type")
    }

    /// A `pattern` given as `{"String": "…"}`; `Regex` patterns are not supported.
    func stringPattern(_ object: [String: Any], _ field: String, component: String) throws -> Bytes {
        let pattern = try self.object(object["pattern"], field + ".pattern")
        if let text = pattern["String"] as? String { return Bytes(text.utf8) }
        throw TokenizerError.unsupported(path: path, component: component, type: "Regex pattern")
    }
}

extension GemmaTokenizer {
    static func parseNormalizer(_ value: Any?, field: String, _ reader: JSONFieldReader) throws -> Normalizer? {
        guard let value, !(value is NSNull) else { return nil }
        let object = try reader.object(value, field)
        let type = try reader.type(object, field)
        switch type {
        case "Replace":
            return .replace(pattern: try reader.stringPattern(object, field, component: "normalizer Replace"),
                            content: Bytes(try reader.string(object["content"], field + ".content").utf8))
        case "Prepend":
            return .prepend(Bytes(try reader.string(object["prepend"], field + ".prepend").utf8))
        case "Sequence":
            let steps = try reader.list(object["normalizers"], field + ".normalizers")
            return .sequence(try steps.enumerated().compactMap {
                try parseNormalizer($1, field: "\(field).normalizers[\($0)]", reader)
            })
        default:
            throw TokenizerError.unsupported(path: reader.path, component: "normalizer", type: type)
        }
    }

    static func parsePreTokenizer(_ value: Any?, field: String, _ reader: JSONFieldReader) throws -> PreTokenizer? {
        guard let value, !(value is NSNull) else { return nil }
        let object = try reader.object(value, field)
        let type = try reader.type(object, field)
        switch type {
        case "Split":
            let behaviorName = try reader.string(object["behavior"], field + ".behavior")
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerError.invalidField(path: reader.path, field: field + ".behavior",
                                                  message: "has unknown value \(behaviorName.debugDescription)")
            }
            return .split(pattern: try reader.stringPattern(object, field, component: "pre_tokenizer Split"),
                          behavior: behavior, invert: (object["invert"] as? Bool) ?? false)
        case "Metaspace":
            let replacement = try reader.string(object["replacement"], field + ".replacement")
            var scheme = PrependScheme.always
            if let name = object["prepend_scheme"] as? String {
                guard let parsed = PrependScheme(rawValue: name) else {
                    throw TokenizerError.invalidField(path: reader.path, field: field + ".prepend_scheme",
                                                      message: "has unknown value \(name.debugDescription)")
                }
                scheme = parsed
            } else if let addPrefixSpace = object["add_prefix_space"] as? Bool {  // older files
                scheme = addPrefixSpace ? .always : .never
            }
            return .metaspace(replacement: Bytes(replacement.utf8), prependScheme: scheme,
                              split: (object["split"] as? Bool) ?? true)
        case "Sequence":
            let steps = try reader.list(object["pretokenizers"], field + ".pretokenizers")
            return .sequence(try steps.enumerated().compactMap {
                try parsePreTokenizer($1, field: "\(field).pretokenizers[\($0)]", reader)
            })
        default:
            throw TokenizerError.unsupported(path: reader.path, component: "pre_tokenizer", type: type)
        }
    }

    static func parseDecoder(_ value: Any?, field: String, _ reader: JSONFieldReader) throws -> TokenDecoder? {
        guard let value, !(value is NSNull) else { return nil }
        let object = try reader.object(value, field)
        let type = try reader.type(object, field)
        switch type {
        case "Replace":
            return .replace(pattern: try reader.stringPattern(object, field, component: "decoder Replace"),
                            content: Bytes(try reader.string(object["content"], field + ".content").utf8))
        case "ByteFallback":
            return .byteFallback
        case "Fuse":
            return .fuse
        case "Strip":
            return .strip(content: Bytes(try reader.string(object["content"], field + ".content").utf8),
                          start: (object["start"] as? Int) ?? 0, stop: (object["stop"] as? Int) ?? 0)
        case "Metaspace":
            let replacement = try reader.string(object["replacement"], field + ".replacement")
            let scheme = (object["prepend_scheme"] as? String) ?? ((object["add_prefix_space"] as? Bool) == false ? "never" : "always")
            return .metaspace(replacement: Bytes(replacement.utf8), prepend: scheme != "never")
        case "Sequence":
            let steps = try reader.list(object["decoders"], field + ".decoders")
            return .sequence(try steps.enumerated().compactMap {
                try parseDecoder($1, field: "\(field).decoders[\($0)]", reader)
            })
        default:
            throw TokenizerError.unsupported(path: reader.path, component: "decoder", type: type)
        }
    }

    /// The single-sequence template of a `TemplateProcessing` post-processor (nil: nothing is added).
    static func parsePostProcessor(_ value: Any?, field: String, _ reader: JSONFieldReader) throws -> [TemplatePiece]? {
        guard let value, !(value is NSNull) else { return nil }
        let object = try reader.object(value, field)
        let type = try reader.type(object, field)
        switch type {
        case "TemplateProcessing":
            let specials = (object["special_tokens"] as? [String: Any]) ?? [:]
            func specialIds(_ name: String) throws -> [Int] {
                guard let entry = specials[name] as? [String: Any], let ids = entry["ids"] as? [Int] else {
                    throw TokenizerError.invalidField(path: reader.path, field: field + ".special_tokens",
                                                      message: "has no ids for \(name.debugDescription)")
                }
                return ids
            }
            var pieces: [TemplatePiece] = []
            if let text = object["single"] as? String {  // "<bos> $A" form
                for word in text.split(separator: " ") {
                    let name = String(word.split(separator: ":").first ?? word)
                    pieces.append(name.hasPrefix("$") ? .sequence : .special(try specialIds(name)))
                }
                return pieces
            }
            let items = try reader.list(object["single"], field + ".single")
            for (index, item) in items.enumerated() {
                let entry = try reader.object(item, "\(field).single[\(index)]")
                if let special = entry["SpecialToken"] as? [String: Any] {
                    pieces.append(.special(try specialIds(try reader.string(special["id"], "\(field).single[\(index)].SpecialToken.id"))))
                } else if entry["Sequence"] != nil {
                    pieces.append(.sequence)
                } else {
                    throw TokenizerError.invalidField(path: reader.path, field: "\(field).single[\(index)]",
                                                      message: "is neither SpecialToken nor Sequence")
                }
            }
            return pieces
        default:
            throw TokenizerError.unsupported(path: reader.path, component: "post_processor", type: type)
        }
    }
}
