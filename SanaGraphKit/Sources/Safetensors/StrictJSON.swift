import Foundation

/// Why a JSON file could not be read: it did not parse, broke a limit, or did not have the expected form. The
/// description says where (a byte offset or a key path such as `model.vocab`).
public struct StrictJSONError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// SanaGraph's one JSON reader for files it reads (model configs, tokenizer.json, scheduler configs, provenance,
/// cache manifests): strict where Foundation's readers are lax — duplicate keys, nesting deeper than 64 levels
/// and texts over a size limit are refused; integers are kept apart from other numbers and range-checked when
/// decoded (`Int`, `Int32`, `UInt8` …; a `2.0` is not an integer, `true` is not a number); `Float` fields must
/// fit a finite Float.
public enum StrictJSON {
    /// The largest text `parse` and `decode` take by default (tokenizer.json of Gemma-2 is 17 MB).
    public static let defaultMaxBytes = 256 << 20

    /// Parses one JSON text. `nonFiniteLiterals`: accept Python's `NaN`, `Infinity` and `-Infinity` (which
    /// diffusers writes into scheduler configs) as numbers.
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, maxBytes: Int = defaultMaxBytes,
                                                       nonFiniteLiterals: Bool = false) throws(StrictJSONError) -> JSONValue {
        guard bytes.count <= maxBytes else {
            throw StrictJSONError("the JSON text is \(bytes.count) bytes, over the limit of \(maxBytes)")
        }
        do { return try JSONParser.parse(Array(bytes), uniqueKeys: true, nonFiniteLiterals: nonFiniteLiterals) } catch {
            throw StrictJSONError("invalid JSON: \(error)")
        }
    }

    /// Parses a JSON text and decodes `T` from it (see `JSONValue.decode`).
    public static func decode<T: Decodable, Bytes: Collection<UInt8>>(_ type: T.Type, from bytes: Bytes,
                                                                      maxBytes: Int = defaultMaxBytes) throws -> T {
        try parse(bytes, maxBytes: maxBytes).decode(type)
    }
}

extension JSONValue {
    /// Parses one JSON text strictly (`StrictJSON.parse`).
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes, maxBytes: Int = StrictJSON.defaultMaxBytes,
                                                       nonFiniteLiterals: Bool = false) throws(StrictJSONError) -> JSONValue {
        try StrictJSON.parse(bytes, maxBytes: maxBytes, nonFiniteLiterals: nonFiniteLiterals)
    }

    /// Decodes a `Decodable` value from this tree. Numbers are range-checked for the field's type; a missing key
    /// or a wrong type throws `StrictJSONError` naming the key path.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: JSONTreeDecoder(value: self, codingPath: []))
    }

    /// The member `key` of an object (nil for other kinds or an absent key).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The members of an object in file order, nil for other kinds.
    public var members: [(key: String, value: JSONValue)]? {
        if case .object(let m) = self { return m }
        return nil
    }

    /// The elements of an array, nil for other kinds.
    public var array: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The string, nil for other kinds.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// An integer (written without fraction or exponent), nil for other kinds.
    public var int: Int? {
        if case .integer(let i) = self { return i }
        return nil
    }

    /// Any number as a Double, nil for other kinds.
    public var double: Double? {
        switch self {
        case .integer(let i): return Double(i)
        case .number(let d): return d
        default: return nil
        }
    }

    /// The boolean, nil for other kinds.
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// Whether this is `null`.
    public var isNull: Bool { self == .null }
}

// MARK: Decoder over a parsed tree

private func pathText(_ path: [any CodingKey]) -> String {
    path.isEmpty ? "the top level" : "'" + path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        .joined(separator: ".").replacingOccurrences(of: ".[", with: "[") + "'"
}

private struct IndexKey: CodingKey {
    var stringValue: String { "\(intValue!)" }
    var intValue: Int?
    init(_ i: Int) { intValue = i }
    init?(stringValue: String) { nil }
    init?(intValue: Int) { self.intValue = intValue }
}

private struct JSONTreeDecoder: Decoder {
    let value: JSONValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ expected: String) -> StrictJSONError {
        StrictJSONError("\(pathText(codingPath)) must be \(expected), not \(value.kindName)")
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else { throw mismatch("an object") }
        var dict: [String: JSONValue] = [:]
        for (k, v) in members { dict[k] = v }
        return KeyedDecodingContainer(Keyed<Key>(members: dict, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let items) = value else { throw mismatch("an array") }
        return Unkeyed(items: items, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(decoder: self) }

    func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard case .integer(let i) = value else { throw mismatch("an integer") }
        guard let v = T(exactly: i) else {
            throw StrictJSONError("\(pathText(codingPath)) = \(i) is out of range (\(T.min)…\(T.max))")
        }
        return v
    }

    func number() throws -> Double {
        guard let d = value.double else { throw mismatch("a number") }
        return d
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch type {
        case is Bool.Type:
            guard case .bool(let b) = value else { throw mismatch("true or false") }
            return b as! T
        case is String.Type:
            guard case .string(let s) = value else { throw mismatch("a string") }
            return s as! T
        case is Double.Type: return try number() as! T
        case is Float.Type:
            let d = try number()
            guard Float(d).isFinite else { throw StrictJSONError("\(pathText(codingPath)) = \(d) does not fit a Float") }
            return Float(d) as! T
        case is Int.Type: return try integer(Int.self) as! T
        case is Int8.Type: return try integer(Int8.self) as! T
        case is Int16.Type: return try integer(Int16.self) as! T
        case is Int32.Type: return try integer(Int32.self) as! T
        case is Int64.Type: return try integer(Int64.self) as! T
        case is UInt.Type: return try integer(UInt.self) as! T
        case is UInt8.Type: return try integer(UInt8.self) as! T
        case is UInt16.Type: return try integer(UInt16.self) as! T
        case is UInt32.Type: return try integer(UInt32.self) as! T
        case is UInt64.Type: return try integer(UInt64.self) as! T
        default: return try T(from: self)
        }
    }

    struct Single: SingleValueDecodingContainer {
        let decoder: JSONTreeDecoder
        var codingPath: [any CodingKey] { decoder.codingPath }
        func decodeNil() -> Bool { decoder.value == .null }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type) }
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let members: [String: JSONValue]
        let codingPath: [any CodingKey]
        var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }
        func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

        func child(_ key: Key) throws -> JSONTreeDecoder {
            guard let v = members[key.stringValue] else {
                throw StrictJSONError("\(pathText(codingPath + [key])) is missing")
            }
            return JSONTreeDecoder(value: v, codingPath: codingPath + [key])
        }

        func decodeNil(forKey key: Key) throws -> Bool { members[key.stringValue].map { $0 == .null } ?? true }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decode(type) }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            guard let v = members[key.stringValue], v != .null else { return nil }
            return try JSONTreeDecoder(value: v, codingPath: codingPath + [key]).decode(type)
        }
        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: Key) throws -> KeyedDecodingContainer<N> {
            try child(key).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            try child(key).unkeyedContainer()
        }
        func superDecoder() throws -> any Decoder { JSONTreeDecoder(value: .object(members.map { (key: $0.key, value: $0.value) }), codingPath: codingPath) }
        func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [JSONValue]
        let codingPath: [any CodingKey]
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        init(items: [JSONValue], codingPath: [any CodingKey]) {
            self.items = items
            self.codingPath = codingPath
        }

        mutating func next() throws -> JSONTreeDecoder {
            guard !isAtEnd else { throw StrictJSONError("\(pathText(codingPath)) has too few elements") }
            defer { currentIndex += 1 }
            return JSONTreeDecoder(value: items[currentIndex], codingPath: codingPath + [IndexKey(currentIndex)])
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, items[currentIndex] == .null else { return false }
            currentIndex += 1
            return true
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> {
            try next().container(keyedBy: type)
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next() }
    }
}
