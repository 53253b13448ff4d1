import Tensors

/// A value flowing along an edge: a payload and the socket type it travels as.
///
/// The same Swift type may travel as several socket types (a `Tensor` as Tensor, Latent or Image). Build values
/// with the static helpers (`.latent(t)`, `.int(3)`) or `Value(type, payload)` for a pack's own types.
public struct Value: Sendable {
    public let type: SocketType
    public let payload: any Sendable

    /// A value of `type`. The payload must be of the type's Swift type (a programmer error otherwise).
    public init(_ type: SocketType, _ payload: any Sendable) {
        precondition(type.admits(payload), "a \(Swift.type(of: payload)) cannot travel as \(type.name) (it holds \(type.payloadTypeName))")
        self.type = type
        self.payload = payload
    }

    /// The socket type (same as `type`).
    public var socketType: SocketType { type }

    /// The payload as `T`, or nil.
    public func payload<T>(as _: T.Type) -> T? { payload as? T }

    /// Approximate resident bytes, for the memory cache budget.
    public var byteCount: Int { (payload as? any ResidentSize)?.residentBytes ?? 8 }

    public static func tensor(_ t: Tensor) -> Value { Value(.tensor, t) }
    public static func latent(_ t: Tensor) -> Value { Value(.latent, t) }
    public static func image(_ t: Tensor) -> Value { Value(.image, t) }
    public static func int(_ v: Int) -> Value { Value(.int, v) }
    public static func float(_ v: Double) -> Value { Value(.float, v) }
    public static func string(_ v: String) -> Value { Value(.string, v) }
    public static func bool(_ v: Bool) -> Value { Value(.bool, v) }
    public static func path(_ v: String) -> Value { Value(.path, v) }

    /// The payload when it is a tensor (Tensor, Latent, Image and any other tensor-valued type).
    public var tensor: Tensor? { payload as? Tensor }
}

/// Something that knows how much memory it holds (the memory cache's budget counts it).
public protocol ResidentSize {
    /// Approximate bytes held in memory.
    var residentBytes: Int { get }
}

/// A value that the disk cache can store and read back exactly, as named fp32 tensors plus string fields.
public protocol CacheableValue: Sendable {
    /// The value's contents. Tensor part names may be "" (the value is one tensor) or short identifiers.
    func cacheParts() -> ValueParts
    /// Rebuilds the value; throw `ValueParts.Invalid` when parts are missing or malformed.
    init(cacheParts: ValueParts) throws
}

/// The stored form of a `CacheableValue`.
public struct ValueParts: Sendable {
    public var tensors: [String: Tensor]
    public var fields: [String: String]

    public init(tensors: [String: Tensor] = [:], fields: [String: String] = [:]) {
        self.tensors = tensors
        self.fields = fields
    }

    /// Why stored parts could not be turned back into a value.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The tensor part `name`, or `Invalid`.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else { throw Invalid("tensor part '\(name)' is missing") }
        return t
    }

    /// The field `name`, or `Invalid`.
    public func field(_ name: String) throws -> String {
        guard let f = fields[name] else { throw Invalid("field '\(name)' is missing") }
        return f
    }
}

/// Type-erased encode/decode of one `CacheableValue` type.
struct ValueCodec: Sendable {
    let encode: @Sendable (any Sendable) -> ValueParts?
    let decode: @Sendable (ValueParts) throws -> any Sendable

    init<T: CacheableValue>(_: T.Type) {
        encode = { ($0 as? T)?.cacheParts() }
        decode = { try T(cacheParts: $0) }
    }
}

extension SocketType {
    /// The stored parts of `value`, or nil when this type is memory-only or the payload is not its Swift type.
    public func encodeForCache(_ value: Value) -> ValueParts? { codec?.encode(value.payload) }

    /// Rebuilds a value of this type from stored parts.
    public func decodeFromCache(_ parts: ValueParts) throws -> Value {
        guard let codec else { throw ValueParts.Invalid("\(name) values are never stored on disk") }
        return Value(self, try codec.decode(parts))
    }
}

extension Tensor: CacheableValue, ResidentSize {
    public func cacheParts() -> ValueParts { ValueParts(tensors: ["": self]) }
    public init(cacheParts parts: ValueParts) throws { self = try parts.tensor("") }
    public var residentBytes: Int { byteCount }
}

extension Int: CacheableValue {
    public func cacheParts() -> ValueParts { ValueParts(fields: ["value": String(self)]) }
    public init(cacheParts parts: ValueParts) throws {
        guard let v = Int(try parts.field("value")) else { throw ValueParts.Invalid("not an integer") }
        self = v
    }
}

extension Double: CacheableValue {
    /// Stored by bit pattern, so the value comes back exactly.
    public func cacheParts() -> ValueParts { ValueParts(fields: ["bits": String(bitPattern, radix: 16)]) }
    public init(cacheParts parts: ValueParts) throws {
        guard let bits = UInt64(try parts.field("bits"), radix: 16) else { throw ValueParts.Invalid("bad float bits") }
        self = Double(bitPattern: bits)
    }
}

extension Bool: CacheableValue {
    public func cacheParts() -> ValueParts { ValueParts(fields: ["value": self ? "1" : "0"]) }
    public init(cacheParts parts: ValueParts) throws {
        switch try parts.field("value") {
        case "1": self = true
        case "0": self = false
        default: throw ValueParts.Invalid("not a bool")
        }
    }
}

extension String: CacheableValue, ResidentSize {
    public func cacheParts() -> ValueParts { ValueParts(fields: ["value": self]) }
    public init(cacheParts parts: ValueParts) throws { self = try parts.field("value") }
    public var residentBytes: Int { utf8.count }
}

/// The inputs a node receives, by socket name. Optional inputs that are not connected are absent.
public struct NodeInputs: Sendable {
    public var values: [String: Value]
    /// The graph node id, for error messages.
    public var nodeID: String

    public init(_ values: [String: Value], nodeID: String = "") {
        self.values = values
        self.nodeID = nodeID
    }

    public subscript(name: String) -> Value? { values[name] }

    /// The payload of input `name` as `T`; `expected` names the socket type(s) for the message.
    /// - Throws: `NodeError.invalidInput` when the input is not connected or holds something else.
    public func payload<T>(_ name: String, as _: T.Type, expected: String) throws -> T {
        guard let v = values[name] else {
            throw NodeError.invalidInput(node: nodeID, message: "input '\(name)' is not connected")
        }
        guard let p = v.payload as? T else {
            throw NodeError.invalidInput(node: nodeID, message: "input '\(name)' is \(v.type), expected \(expected)")
        }
        return p
    }

    /// Like `payload(_:as:expected:)`, or nil when the input is not connected.
    public func optionalPayload<T>(_ name: String, as type: T.Type, expected: String) throws -> T? {
        values[name] == nil ? nil : try payload(name, as: type, expected: expected)
    }

    /// A tensor-valued input (Tensor, Latent, Image, or any type whose values are tensors).
    public func tensor(_ name: String) throws -> Tensor { try payload(name, as: Tensor.self, expected: "a tensor") }

    public func optionalTensor(_ name: String) throws -> Tensor? {
        try optionalPayload(name, as: Tensor.self, expected: "a tensor")
    }

    public func int(_ name: String) throws -> Int { try payload(name, as: Int.self, expected: "Int") }

    public func optionalInt(_ name: String) throws -> Int? { try optionalPayload(name, as: Int.self, expected: "Int") }

    /// An Int or Float input as a Double.
    public func number(_ name: String) throws -> Double {
        if let i = values[name]?.payload as? Int { return Double(i) }
        return try payload(name, as: Double.self, expected: "Int or Float")
    }

    public func string(_ name: String) throws -> String { try payload(name, as: String.self, expected: "String") }

    public func optionalString(_ name: String) throws -> String? {
        try optionalPayload(name, as: String.self, expected: "String")
    }

    public func bool(_ name: String) throws -> Bool { try payload(name, as: Bool.self, expected: "Bool") }
}

/// Outputs by socket name. Every declared output must be present.
public typealias NodeOutputs = [String: Value]

/// Resolved parameter values (graph values, substituted, with defaults filled in).
public struct ParamValues: Sendable, Hashable {
    public var values: [String: ParamValue]

    public init(_ values: [String: ParamValue] = [:]) { self.values = values }

    public subscript(name: String) -> ParamValue? { values[name] }

    public func int(_ name: String) -> Int {
        switch values[name] {
        case .int(let v): return v
        case .float(let v): return Int(v)
        default: preconditionFailure("param '\(name)' is not an int (validation should have caught this)")
        }
    }

    public func double(_ name: String) -> Double {
        switch values[name] {
        case .float(let v): return v
        case .int(let v): return Double(v)
        default: preconditionFailure("param '\(name)' is not a number (validation should have caught this)")
        }
    }

    public func float(_ name: String) -> Float { Float(double(name)) }

    public func string(_ name: String) -> String {
        switch values[name] {
        case .string(let v): return v
        case .some(let v): return v.description
        case nil: preconditionFailure("param '\(name)' is missing (validation should have caught this)")
        }
    }

    public func bool(_ name: String) -> Bool {
        guard case .bool(let v) = values[name] else {
            preconditionFailure("param '\(name)' is not a bool (validation should have caught this)")
        }
        return v
    }

    /// A string param, or nil when absent or empty.
    public func optionalString(_ name: String) -> String? {
        guard case .string(let v) = values[name], !v.isEmpty else { return nil }
        return v
    }
}
