import Tensors

/// Text conditioning: embeddings [B, L, D] and an attention mask [B, L] of 0/1 floats.
public struct Conditioning: Sendable {
    public var embeddings: Tensor
    public var mask: Tensor

    public init(embeddings: Tensor, mask: Tensor) {
        self.embeddings = embeddings
        self.mask = mask
    }
}

/// A value flowing along an edge.
public enum Value: Sendable {
    case tensor(Tensor)
    /// Latents [B, C, h, w].
    case latent(Tensor)
    case conditioning(Conditioning)
    /// Images [B, 3, H, W], float in [0, 1].
    case image(Tensor)
    case textEncoder(any TextEncoderModel)
    case denoiser(any DenoiserModel)
    case autoencoder(any AutoencoderModel)
    case upscaler(any UpscaleModel)
    case int(Int)
    case float(Double)
    case string(String)
    case bool(Bool)
    case path(String)

    public var socketType: SocketType {
        switch self {
        case .tensor: return .tensor
        case .latent: return .latent
        case .conditioning: return .conditioning
        case .image: return .image
        case .textEncoder: return .textEncoderModel
        case .denoiser: return .denoiserModel
        case .autoencoder: return .autoencoderModel
        case .upscaler: return .upscaleModel
        case .int: return .int
        case .float: return .float
        case .string: return .string
        case .bool: return .bool
        case .path: return .path
        }
    }

    /// Approximate resident bytes, for the memory cache budget.
    public var byteCount: Int {
        switch self {
        case .tensor(let t), .latent(let t), .image(let t): return t.byteCount
        case .conditioning(let c): return c.embeddings.byteCount + c.mask.byteCount
        case .textEncoder(let m): return m.residentBytes
        case .denoiser(let m): return m.residentBytes
        case .autoencoder(let m): return m.residentBytes
        case .upscaler(let m): return m.residentBytes
        case .int, .float, .bool: return 8
        case .string(let s), .path(let s): return s.utf8.count
        }
    }
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

    private func missing(_ name: String) -> NodeError {
        .invalidInput(node: nodeID, message: "input '\(name)' is not connected")
    }

    private func wrong(_ name: String, _ v: Value, _ expected: String) -> NodeError {
        .invalidInput(node: nodeID, message: "input '\(name)' is \(v.socketType), expected \(expected)")
    }

    /// A tensor-valued input; Latent and Image values are accepted too.
    public func tensor(_ name: String) throws -> Tensor {
        guard let v = values[name] else { throw missing(name) }
        switch v {
        case .tensor(let t), .latent(let t), .image(let t): return t
        default: throw wrong(name, v, "a tensor")
        }
    }

    public func optionalTensor(_ name: String) throws -> Tensor? {
        values[name] == nil ? nil : try tensor(name)
    }

    public func conditioning(_ name: String) throws -> Conditioning {
        guard let v = values[name] else { throw missing(name) }
        guard case .conditioning(let c) = v else { throw wrong(name, v, "Conditioning") }
        return c
    }

    public func optionalConditioning(_ name: String) throws -> Conditioning? {
        values[name] == nil ? nil : try conditioning(name)
    }

    public func textEncoder(_ name: String) throws -> any TextEncoderModel {
        guard let v = values[name] else { throw missing(name) }
        guard case .textEncoder(let m) = v else { throw wrong(name, v, "TextEncoderModel") }
        return m
    }

    public func denoiser(_ name: String) throws -> any DenoiserModel {
        guard let v = values[name] else { throw missing(name) }
        guard case .denoiser(let m) = v else { throw wrong(name, v, "DenoiserModel") }
        return m
    }

    public func autoencoder(_ name: String) throws -> any AutoencoderModel {
        guard let v = values[name] else { throw missing(name) }
        guard case .autoencoder(let m) = v else { throw wrong(name, v, "AutoencoderModel") }
        return m
    }

    public func upscaler(_ name: String) throws -> any UpscaleModel {
        guard let v = values[name] else { throw missing(name) }
        guard case .upscaler(let m) = v else { throw wrong(name, v, "UpscaleModel") }
        return m
    }
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
