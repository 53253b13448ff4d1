import Foundation
import Safetensors

/// Typed access to `tokenizer.json` fields with errors that name the file and the field.
struct JSONFieldReader {
    let path: String

    func object(_ value: JSONValue?, _ field: String) throws -> JSONValue {
        guard let object = value, object.members != nil else {
            throw TokenizerFile.invalidField(path: path, field: field, message: "is missing or not an object")
        }
        return object
    }

    func string(_ value: JSONValue?, _ field: String) throws -> String {
        guard let string = value?.string else {
            throw TokenizerFile.invalidField(path: path, field: field, message: "is missing or not a string")
        }
        return string
    }

    func list(_ value: JSONValue?, _ field: String) throws -> [JSONValue] {
        guard let list = value?.array else {
            throw TokenizerFile.invalidField(path: path, field: field, message: "is missing or not a list")
        }
        return list
    }

    /// The `type` of a component object.
    func type(_ object: JSONValue, _ field: String) throws -> String {
        try string(object["type"], field + ".type")
    }

    /// A `pattern` given as `{"String": "…"}`; `Regex` patterns are not supported.
    func stringPattern(_ object: JSONValue, _ field: String, component: String) throws -> Bytes {
        let pattern = try self.object(object["pattern"], field + ".pattern")
        if let text = pattern["String"]?.string { return Bytes(text.utf8) }
        throw TokenizerFile.unsupported(path: path, component: component, type: "Regex pattern")
    }
}

extension GemmaTokenizer {
    static func parseNormalizer(_ value: JSONValue?, field: String, _ reader: JSONFieldReader) throws -> Normalizer? {
        guard let value, !value.isNull else { return nil }
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
            throw TokenizerFile.unsupported(path: reader.path, component: "normalizer", type: type)
        }
    }

    static func parsePreTokenizer(_ value: JSONValue?, field: String, _ reader: JSONFieldReader) throws -> PreTokenizer? {
        guard let value, !value.isNull else { return nil }
        let object = try reader.object(value, field)
        let type = try reader.type(object, field)
        switch type {
        case "Split":
            let behaviorName = try reader.string(object["behavior"], field + ".behavior")
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw TokenizerFile.invalidField(path: reader.path, field: field + ".behavior",
                                                  message: "has unknown value \(behaviorName.debugDescription)")
            }
            return .split(pattern: try reader.stringPattern(object, field, component: "pre_tokenizer Split"),
                          behavior: behavior, invert: object["invert"]?.bool ?? false)
        case "Metaspace":
            let replacement = try reader.string(object["replacement"], field + ".replacement")
            var scheme = PrependScheme.always
            if let name = object["prepend_scheme"]?.string {
                guard let parsed = PrependScheme(rawValue: name) else {
                    throw TokenizerFile.invalidField(path: reader.path, field: field + ".prepend_scheme",
                                                      message: "has unknown value \(name.debugDescription)")
                }
                scheme = parsed
            } else if let addPrefixSpace = object["add_prefix_space"]?.bool {  // older files
                scheme = addPrefixSpace ? .always : .never
            }
            return .metaspace(replacement: Bytes(replacement.utf8), prependScheme: scheme,
                              split: object["split"]?.bool ?? true)
        case "Sequence":
            let steps = try reader.list(object["pretokenizers"], field + ".pretokenizers")
            return .sequence(try steps.enumerated().compactMap {
                try parsePreTokenizer($1, field: "\(field).pretokenizers[\($0)]", reader)
            })
        default:
            throw TokenizerFile.unsupported(path: reader.path, component: "pre_tokenizer", type: type)
        }
    }

    static func parseDecoder(_ value: JSONValue?, field: String, _ reader: JSONFieldReader) throws -> TokenDecoder? {
        guard let value, !value.isNull else { return nil }
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
                          start: object["start"]?.int ?? 0, stop: object["stop"]?.int ?? 0)
        case "Metaspace":
            let replacement = try reader.string(object["replacement"], field + ".replacement")
            let scheme = object["prepend_scheme"]?.string ?? (object["add_prefix_space"]?.bool == false ? "never" : "always")
            return .metaspace(replacement: Bytes(replacement.utf8), prepend: scheme != "never")
        case "Sequence":
            let steps = try reader.list(object["decoders"], field + ".decoders")
            return .sequence(try steps.enumerated().compactMap {
                try parseDecoder($1, field: "\(field).decoders[\($0)]", reader)
            })
        default:
            throw TokenizerFile.unsupported(path: reader.path, component: "decoder", type: type)
        }
    }

    /// The single-sequence template of a `TemplateProcessing` post-processor (nil: nothing is added).
    static func parsePostProcessor(_ value: JSONValue?, field: String, _ reader: JSONFieldReader) throws -> [TemplatePiece]? {
        guard let value, !value.isNull else { return nil }
        let object = try reader.object(value, field)
        let type = try reader.type(object, field)
        switch type {
        case "TemplateProcessing":
            let specials = object["special_tokens"]
            func specialIds(_ name: String) throws -> [Int] {
                guard let list = specials?[name]?["ids"]?.array, case let ids = list.compactMap(\.int),
                      ids.count == list.count else {
                    throw TokenizerFile.invalidField(path: reader.path, field: field + ".special_tokens",
                                                      message: "has no ids for \(name.debugDescription)")
                }
                return ids
            }
            var pieces: [TemplatePiece] = []
            if let text = object["single"]?.string {  // "<bos> $A" form
                for word in text.split(separator: " ") {
                    let name = String(word.split(separator: ":").first ?? word)
                    pieces.append(name.hasPrefix("$") ? .sequence : .special(try specialIds(name)))
                }
                return pieces
            }
            let items = try reader.list(object["single"], field + ".single")
            for (index, item) in items.enumerated() {
                let entry = try reader.object(item, "\(field).single[\(index)]")
                if let special = entry["SpecialToken"], special.members != nil {
                    pieces.append(.special(try specialIds(try reader.string(special["id"], "\(field).single[\(index)].SpecialToken.id"))))
                } else if entry["Sequence"] != nil {
                    pieces.append(.sequence)
                } else {
                    throw TokenizerFile.invalidField(path: reader.path, field: "\(field).single[\(index)]",
                                                      message: "is neither SpecialToken nor Sequence")
                }
            }
            return pieces
        default:
            throw TokenizerFile.unsupported(path: reader.path, component: "post_processor", type: type)
        }
    }
}
