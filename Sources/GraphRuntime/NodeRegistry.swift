/// All node types known to a run, by type name.
public struct NodeRegistry: Sendable {
    public enum RegistrationError: Error, CustomStringConvertible, Equatable {
        case duplicateType(String, packs: [String])

        public var description: String {
            switch self {
            case .duplicateType(let name, let packs):
                return "node type '\(name)' is registered twice (by \(packs.joined(separator: " and ")))"
            }
        }
    }

    private var types: [String: any Node.Type] = [:]
    private var packOf: [String: String] = [:]

    public init() {}

    /// A registry holding every node of `packs`. Duplicate type names are rejected.
    public init(packs: [any NodePack.Type]) throws {
        for pack in packs {
            for node in pack.nodes { try register(node, pack: pack.name) }
        }
    }

    public mutating func register(_ node: any Node.Type, pack: String = "") throws {
        let name = node.descriptor.typeName
        if let existing = packOf[name] { throw RegistrationError.duplicateType(name, packs: [existing, pack]) }
        types[name] = node
        packOf[name] = pack
    }

    public func nodeType(named name: String) -> (any Node.Type)? { types[name] }

    public func pack(of typeName: String) -> String? { packOf[typeName] }

    /// Type names, sorted.
    public var typeNames: [String] { types.keys.sorted() }

    /// Descriptors, sorted by type name.
    public var descriptors: [NodeDescriptor] { typeNames.map { types[$0]!.descriptor } }
}
