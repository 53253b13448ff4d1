import Tensors

/// The nominal type of a socket, named by a string ("Tensor", "Latent", "DenoiserModel", "grid.Layout").
///
/// Socket types are open: a pack declares its own as static constants, e.g.
/// `extension SocketType { public static let mask = SocketType("mypack.Mask", storing: Mask.self, doc: "…") }`.
/// An edge is valid when the producer's output type is one of the types the consumer's input accepts (by name).
/// A type also says which Swift type its values hold (checked when a node returns a value) and whether values can
/// be written to the disk cache: `storing:` types conform to `CacheableValue`, `holding:` types stay in memory.
/// Two packs may declare the same name only for the same Swift type (the registry checks).
public struct SocketType: Sendable, Hashable, CustomStringConvertible {
    /// The name used in messages, `describe` and the cache (unique across packs; namespace yours: "mypack.Mask").
    public let name: String
    /// One line for `sanagraph describe` and `sanagraph types`.
    public let doc: String
    /// The Swift type of the values (`String(reflecting:)`), for messages and conflict checks.
    public let payloadTypeName: String
    let payloadTypeID: ObjectIdentifier
    let admitsPayload: @Sendable (Any) -> Bool
    let codec: ValueCodec?

    /// A type whose values can be written to the disk cache and read back exactly.
    public init<Payload: CacheableValue>(_ name: String, storing payload: Payload.Type, doc: String = "") {
        self.name = name
        self.doc = doc
        payloadTypeName = String(reflecting: payload)
        payloadTypeID = ObjectIdentifier(payload)
        admitsPayload = { $0 is Payload }
        codec = ValueCodec(Payload.self)
    }

    /// A type whose values live in memory only (loaded models, handles): never written to the disk cache.
    public init<Payload>(_ name: String, holding payload: Payload.Type, doc: String = "") {
        self.name = name
        self.doc = doc
        payloadTypeName = String(reflecting: payload)
        payloadTypeID = ObjectIdentifier(payload)
        admitsPayload = { $0 is Payload }
        codec = nil
    }

    public var description: String { name }

    /// Whether values of this type may be written to the disk cache.
    public var isDiskCacheable: Bool { codec != nil }

    /// Whether `payload` is a value of this type's Swift type.
    public func admits(_ payload: Any) -> Bool { admitsPayload(payload) }

    /// Whether `other` declares the same name for the same Swift type (a compatible re-declaration).
    public func isSameDeclaration(as other: SocketType) -> Bool {
        name == other.name && payloadTypeID == other.payloadTypeID
    }

    public static func == (a: SocketType, b: SocketType) -> Bool { a.name == b.name }
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}

extension SocketType {
    /// Any fp32 tensor.
    public static let tensor = SocketType("Tensor", storing: Tensor.self, doc: "an fp32 tensor of any shape")
    /// Latents [B, C, h, w].
    public static let latent = SocketType("Latent", storing: Tensor.self, doc: "latents [B, C, h, w]")
    /// Images [B, 3, H, W], float in [0, 1].
    public static let image = SocketType("Image", storing: Tensor.self, doc: "images [B, 3, H, W], values in [0, 1]")
    public static let int = SocketType("Int", storing: Int.self, doc: "an integer")
    public static let float = SocketType("Float", storing: Double.self, doc: "a floating-point number")
    public static let string = SocketType("String", storing: String.self, doc: "a string")
    public static let bool = SocketType("Bool", storing: Bool.self, doc: "true or false")
    public static let path = SocketType("Path", storing: String.self, doc: "a file system path")

    /// The types every registry knows without a pack declaring them.
    public static let core: [SocketType] = [.tensor, .latent, .image, .int, .float, .string, .bool, .path]
}

/// A named input of a node.
public struct InputSpec: Sendable {
    public var name: String
    /// Types this input accepts (usually one).
    public var accepts: [SocketType]
    public var optional: Bool
    public var doc: String

    public init(_ name: String, _ type: SocketType, optional: Bool = false, doc: String = "") {
        self.init(name, accepts: [type], optional: optional, doc: doc)
    }

    public init(_ name: String, accepts: [SocketType], optional: Bool = false, doc: String = "") {
        self.name = name
        self.accepts = accepts
        self.optional = optional
        self.doc = doc
    }
}

/// A named output of a node.
public struct OutputSpec: Sendable {
    public var name: String
    public var type: SocketType
    public var doc: String

    public init(_ name: String, _ type: SocketType, doc: String = "") {
        self.name = name
        self.type = type
        self.doc = doc
    }
}

/// Kinds of parameter values.
public enum ParamType: Sendable, Equatable, CustomStringConvertible {
    case int, float, string, bool, path
    /// A string restricted to the listed choices.
    case choice([String])

    public var description: String {
        switch self {
        case .int: return "int"
        case .float: return "float"
        case .string: return "string"
        case .bool: return "bool"
        case .path: return "path"
        case .choice(let c): return "one of " + c.joined(separator: "|")
        }
    }
}

/// A parameter value after parsing and substitution.
public enum ParamValue: Sendable, Hashable, CustomStringConvertible {
    case int(Int)
    case float(Double)
    case string(String)
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return String(v)
        case .string(let v): return v
        case .bool(let v): return String(v)
        }
    }
}

/// Declaration of one node parameter.
public struct ParamSpec: Sendable {
    public var name: String
    public var type: ParamType
    /// `nil` means the parameter is required.
    public var defaultValue: ParamValue?
    public var min: Double?
    public var max: Double?
    public var doc: String

    public init(_ name: String, _ type: ParamType, default defaultValue: ParamValue? = nil,
                min: Double? = nil, max: Double? = nil, doc: String = "") {
        self.name = name
        self.type = type
        self.defaultValue = defaultValue
        self.min = min
        self.max = max
        self.doc = doc
    }
}

/// Everything the runtime knows about a node type without running it.
public struct NodeDescriptor: Sendable {
    /// Stable dotted name used in graph files (`dit.load`, `sample.flow_dpm_solver`).
    public var typeName: String
    /// Bumped whenever outputs for the same inputs change; part of every cache key.
    public var version: Int
    /// One line for `sanagraph nodes`.
    public var summary: String
    public var inputs: [InputSpec]
    public var outputs: [OutputSpec]
    public var params: [ParamSpec]
    /// Output nodes (savers) have side effects: they always run, are never cached, and are the roots of pruning.
    public var hasSideEffects: Bool
    /// False for nodes whose outputs must not be stored on disk (nondeterministic, or cheap and huge).
    public var diskCacheable: Bool

    public init(typeName: String, version: Int, summary: String, inputs: [InputSpec] = [],
                outputs: [OutputSpec] = [], params: [ParamSpec] = [], hasSideEffects: Bool = false,
                diskCacheable: Bool = true) {
        self.typeName = typeName
        self.version = version
        self.summary = summary
        self.inputs = inputs
        self.outputs = outputs
        self.params = params
        self.hasSideEffects = hasSideEffects
        self.diskCacheable = diskCacheable
    }
}

/// A node type. Nodes are pure functions of inputs and params unless they declare side effects;
/// nodes that read files return a fingerprint of what they read so cache keys change when files do.
public protocol Node: Sendable {
    static var descriptor: NodeDescriptor { get }
    init()

    /// Extra checks on resolved params before anything runs (e.g. "width must be a multiple of 32").
    /// Return user-facing messages; an empty array means valid.
    func validate(params: ParamValues) -> [String]

    /// A fingerprint of external state this node reads (files), or nil. Entered into the cache key.
    func fingerprint(params: ParamValues) throws -> String?

    /// Computes the outputs. Throw `NodeError` (or any `CategorizedError`) with an actionable message.
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs
}

extension Node {
    public func validate(params: ParamValues) -> [String] { [] }
    public func fingerprint(params: ParamValues) throws -> String? { nil }
}

/// A set of node types shipped together: one per plugin module, registered as a whole or not at all.
///
/// ```swift
/// public enum GridPack: NodePack {
///     public static let name = "ImageGrid"
///     public static let nodes: [any Node.Type] = [GridComposeNode.self]
/// }
/// ```
public protocol NodePack {
    /// A unique name, shown by `sanagraph nodes` and listed by graphs' `requires:`.
    static var name: String { get }
    static var nodes: [any Node.Type] { get }
    /// The socket types this pack's nodes use beyond the core ones (`SocketType.core`), including types declared
    /// by shared modules such as DiffusionModels. Declaring a type another pack declared too is fine when it is
    /// the same Swift type.
    static var socketTypes: [SocketType] { get }
}

extension NodePack {
    public static var socketTypes: [SocketType] { [] }
}
