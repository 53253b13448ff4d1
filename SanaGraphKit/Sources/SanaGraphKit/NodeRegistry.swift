/// All node types and socket types known to a run, with the pack each came from.
///
/// Packs are registered whole: if any node or socket type of a pack conflicts with what is already registered,
/// nothing of the pack is added and the registry is unchanged.
public struct NodeRegistry: Sendable {
    /// Why a pack could not be registered (exit 2 when it comes from a plugin; a build defect for built-ins).
    public enum RegistrationError: Error, CustomStringConvertible, Equatable {
        /// Two packs define a node type with the same name.
        case duplicateType(String, packs: [String])
        /// A pack with this name is already registered (from `existing`).
        case duplicatePack(String, existing: String)
        /// Two packs declare one socket type name for different Swift types.
        case conflictingSocketType(String, packs: [String], swiftTypes: [String])
        /// A node uses a socket type that neither the core, its pack nor an earlier pack declares.
        case undeclaredSocketType(String, node: String, pack: String)
        /// A node's descriptor is unusable (empty or malformed type name, duplicate socket or param names).
        case invalidDescriptor(node: String, pack: String, message: String)

        public var description: String {
            switch self {
            case .duplicateType(let name, let packs):
                return "node type '\(name)' is registered twice (by \(packs.joined(separator: " and ")))"
            case .duplicatePack(let name, let existing):
                return "a pack named '\(name)' is already registered (\(existing))"
            case .conflictingSocketType(let name, let packs, let types):
                return "socket type '\(name)' is declared by \(packs.joined(separator: " and ")) for different "
                    + "Swift types (\(types.joined(separator: " vs "))); namespace pack-specific types, e.g. 'mypack.\(name)'"
            case .undeclaredSocketType(let name, let node, let pack):
                return "node type '\(node)' of pack '\(pack)' uses socket type '\(name)', which no pack declares; "
                    + "list it in \(pack).socketTypes"
            case .invalidDescriptor(let node, let pack, let message):
                return "node type '\(node)' of pack '\(pack)': \(message)"
            }
        }
    }

    /// Where a pack's code comes from.
    public enum Origin: Sendable, Equatable, CustomStringConvertible {
        /// Compiled into the running binary.
        case builtIn
        /// Loaded at run time from a plugin library.
        case library(path: String)

        public var description: String {
            switch self {
            case .builtIn: return "built in"
            case .library(let path): return path
            }
        }
    }

    /// A registered pack.
    public struct PackInfo: Sendable {
        public var name: String
        public var origin: Origin
        /// Node type names, sorted.
        public var nodeTypes: [String]
        /// Socket type names the pack declared, sorted.
        public var socketTypes: [String]
    }

    private var types: [String: any Node.Type] = [:]
    private var packOf: [String: String] = [:]
    private var packInfos: [String: PackInfo] = [:]
    private var packOrder: [String] = []
    private var sockets: [String: SocketType] = [:]
    private var socketDeclarer: [String: String] = [:]

    public init() {
        for type in SocketType.core {
            sockets[type.name] = type
            socketDeclarer[type.name] = "the core"
        }
    }

    /// A registry holding every node of `packs` (in order). Throws on the first pack that does not fit.
    public init(packs: [any NodePack.Type], origin: Origin = .builtIn) throws(RegistrationError) {
        self.init()
        for pack in packs { try register(pack: pack, origin: origin) }
    }

    /// Adds a whole pack, or nothing of it.
    public mutating func register(pack: any NodePack.Type, origin: Origin = .builtIn) throws(RegistrationError) {
        var next = self
        let name = pack.name
        if let existing = next.packInfos[name] { throw .duplicatePack(name, existing: existing.origin.description) }
        for type in pack.socketTypes { try next.declare(type, by: name) }
        for node in pack.nodes { try next.add(node, pack: name) }
        next.packInfos[name] = PackInfo(name: name, origin: origin,
                                        nodeTypes: pack.nodes.map { $0.descriptor.typeName }.sorted(),
                                        socketTypes: pack.socketTypes.map(\.name).sorted())
        next.packOrder.append(name)
        self = next
    }

    /// Adds one node type outside any pack declaration (tests, tools). Its socket types must already be known,
    /// except those its own sockets declare, which are added.
    public mutating func register(_ node: any Node.Type, pack: String = "") throws(RegistrationError) {
        var next = self
        let d = node.descriptor
        for type in d.inputs.flatMap(\.accepts) + d.outputs.map(\.type) where next.sockets[type.name] == nil {
            try next.declare(type, by: pack)
        }
        try next.add(node, pack: pack)
        self = next
    }

    private mutating func declare(_ type: SocketType, by pack: String) throws(RegistrationError) {
        if let known = sockets[type.name] {
            guard known.isSameDeclaration(as: type) else {
                throw .conflictingSocketType(type.name, packs: [socketDeclarer[type.name] ?? "?", pack],
                                             swiftTypes: [known.payloadTypeName, type.payloadTypeName])
            }
            return
        }
        sockets[type.name] = type
        socketDeclarer[type.name] = pack
    }

    private mutating func add(_ node: any Node.Type, pack: String) throws(RegistrationError) {
        let d = node.descriptor
        let name = d.typeName
        if let problem = Self.descriptorProblem(d) {
            throw .invalidDescriptor(node: name, pack: pack, message: problem)
        }
        if let existing = packOf[name] { throw .duplicateType(name, packs: [existing, pack]) }
        for type in d.inputs.flatMap(\.accepts) + d.outputs.map(\.type) {
            guard let known = sockets[type.name] else { throw .undeclaredSocketType(type.name, node: name, pack: pack) }
            guard known.isSameDeclaration(as: type) else {
                throw .conflictingSocketType(type.name, packs: [socketDeclarer[type.name] ?? "?", pack],
                                             swiftTypes: [known.payloadTypeName, type.payloadTypeName])
            }
        }
        types[name] = node
        packOf[name] = pack
    }

    private static func descriptorProblem(_ d: NodeDescriptor) -> String? {
        let name = d.typeName
        guard !name.isEmpty, name.utf8.count <= 128,
              name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || $0.properties.numericType != nil
                                                              || "._-".unicodeScalars.contains($0)) }) else {
            return "type names are 1-128 ASCII letters, digits, '.', '_' or '-'"
        }
        func duplicates(_ names: [String]) -> String? {
            var seen = Set<String>()
            return names.first { !seen.insert($0).inserted }
        }
        if let dup = duplicates(d.inputs.map(\.name)) { return "input '\(dup)' is declared twice" }
        if let dup = duplicates(d.outputs.map(\.name)) { return "output '\(dup)' is declared twice" }
        if let dup = duplicates(d.params.map(\.name)) { return "param '\(dup)' is declared twice" }
        if let input = d.inputs.first(where: { $0.accepts.isEmpty }) { return "input '\(input.name)' accepts no type" }
        return nil
    }

    public func nodeType(named name: String) -> (any Node.Type)? { types[name] }

    /// The name of the pack that registered `typeName`.
    public func pack(of typeName: String) -> String? { packOf[typeName] }

    /// The pack that registered `typeName`, with its origin.
    public func packInfo(of typeName: String) -> PackInfo? { packOf[typeName].flatMap { packInfos[$0] } }

    /// Registered packs in registration order.
    public var packs: [PackInfo] { packOrder.compactMap { packInfos[$0] } }

    /// Whether a pack of this name is registered.
    public func hasPack(named name: String) -> Bool { packInfos[name] != nil }

    /// A known socket type by name.
    public func socketType(named name: String) -> SocketType? { sockets[name] }

    /// Every known socket type, sorted by name.
    public var socketTypes: [SocketType] { sockets.keys.sorted().map { sockets[$0]! } }

    /// The pack (or "the core") that first declared a socket type.
    public func declarer(ofSocketType name: String) -> String? { socketDeclarer[name] }

    /// Type names, sorted.
    public var typeNames: [String] { types.keys.sorted() }

    /// Descriptors, sorted by type name.
    public var descriptors: [NodeDescriptor] { typeNames.map { types[$0]!.descriptor } }
}
