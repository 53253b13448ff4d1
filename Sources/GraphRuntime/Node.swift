import Tensors

/// The nominal types carried by sockets. Checked before a run: an edge is valid when the producer's
/// output type is one of the types the consumer's input accepts.
public enum SocketType: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case tensor = "Tensor"
    case latent = "Latent"
    case conditioning = "Conditioning"
    case image = "Image"
    case textEncoderModel = "TextEncoderModel"
    case denoiserModel = "DenoiserModel"
    case autoencoderModel = "AutoencoderModel"
    case upscaleModel = "UpscaleModel"
    case int = "Int"
    case float = "Float"
    case string = "String"
    case bool = "Bool"
    case path = "Path"

    public var description: String { rawValue }

    /// Whether values of this type may be written to the disk cache (models never are).
    public var isDiskCacheable: Bool {
        switch self {
        case .textEncoderModel, .denoiserModel, .autoencoderModel, .upscaleModel: return false
        default: return true
        }
    }
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

    /// Checks that also depend on which inputs the graph connects (e.g. "width 0 needs the 'model' input"), run
    /// before anything runs. The default is `validate(params:)`.
    func validate(params: ParamValues, connectedInputs: Set<String>) -> [String]

    /// A fingerprint of external state this node reads (files), or nil. Entered into the cache key.
    func fingerprint(params: ParamValues) throws -> String?

    /// Bytes this node will hold at its peak (weights it loads plus the activations and outputs it makes), or nil
    /// when it can't say. `inputs` is nil for `plan` (params only); the executor asks again with the inputs just
    /// before running the node and refuses it when the estimate exceeds the machine's memory. Must be cheap: read
    /// file headers at most, never weights.
    func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int?

    /// Computes the outputs. Throw `NodeError` (or any `CategorizedError`) with an actionable message.
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs
}

extension Node {
    public func validate(params: ParamValues) -> [String] { [] }
    public func validate(params: ParamValues, connectedInputs: Set<String>) -> [String] { validate(params: params) }
    public func fingerprint(params: ParamValues) throws -> String? { nil }
    public func estimateMemory(params: ParamValues, inputs: NodeInputs?) -> Int? { nil }
}

/// A set of node types shipped together (one per plugin module).
public protocol NodePack {
    static var name: String { get }
    static var nodes: [any Node.Type] { get }
}
