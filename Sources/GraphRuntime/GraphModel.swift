import SanaGraphKit

// The contract between the graph front end (parsing, substitution, validation, planning) and the back end
// (executor, caches, events, CLI). The front end produces a `ValidatedGraph` and an `ExecutionPlan`;
// the back end runs them.

/// A place in a graph file, for messages in `FILE:LINE:COL` form (1-based line and column).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One finding of validation.
public struct Diagnostic: Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable { case error, warning }

    public var severity: Severity
    public var location: SourceLocation?
    /// The graph node concerned, if any.
    public var node: String?
    public var message: String

    public init(_ severity: Severity, _ message: String, at location: SourceLocation?, node: String? = nil) {
        self.severity = severity
        self.message = message
        self.location = location
        self.node = node
    }

    /// `FILE:LINE:COL: error: node 'x': message`
    public var description: String {
        let prefix = location.map { "\($0): " } ?? ""
        let nodePart = node.map { "node '\($0)': " } ?? ""
        return "\(prefix)\(severity.rawValue): \(nodePart)\(message)"
    }
}

/// A reference to one output of one node.
public struct OutputRef: Sendable, Hashable, CustomStringConvertible {
    public var node: String
    public var output: String

    public init(node: String, output: String) {
        self.node = node
        self.output = output
    }

    public var description: String { "\(node).\(output)" }
}

/// A node of a validated graph: its type is known, params are resolved and typed, inputs are resolved.
public struct GraphNode: Sendable {
    public var id: String
    public var type: any Node.Type
    public var params: ParamValues
    /// Input socket name -> the output feeding it.
    public var inputs: [String: OutputRef]
    public var location: SourceLocation?

    public init(id: String, type: any Node.Type, params: ParamValues, inputs: [String: OutputRef],
                location: SourceLocation?) {
        self.id = id
        self.type = type
        self.params = params
        self.inputs = inputs
        self.location = location
    }

    public var descriptor: NodeDescriptor { type.descriptor }
}

/// A graph that passed validation: every type, param, input and edge is known to be consistent.
public struct ValidatedGraph: Sendable {
    /// The graph file's path (as given by the user).
    public var file: String
    public var description: String?
    /// Nodes in file order.
    public var nodes: [GraphNode]
    /// The graph-level params after defaults and overrides.
    public var params: [String: ParamValue]
    /// Warnings found during validation (errors make validation fail instead).
    public var warnings: [Diagnostic]
    /// The graph file's text as loaded (for provenance: `RunInfo.graphSource`).
    public var source: String
    /// The graph-level param declarations in file order (types, defaults, docs).
    public var parameters: [GraphParameter]

    public init(file: String, description: String?, nodes: [GraphNode], params: [String: ParamValue],
                warnings: [Diagnostic], source: String = "", parameters: [GraphParameter] = []) {
        self.file = file
        self.description = description
        self.nodes = nodes
        self.params = params
        self.warnings = warnings
        self.source = source
        self.parameters = parameters
    }

    public func node(_ id: String) -> GraphNode? { nodes.first { $0.id == id } }
}

/// Thrown when a graph fails to load or validate: all errors at once.
public struct GraphValidationError: CategorizedError {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var category: ErrorCategory { .invalidGraph }
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// What to run, in which order, and when each value may be dropped.
public struct ExecutionPlan: Sendable {
    public struct Step: Sendable {
        public var node: String
        /// Values no later step needs once this step finished (liveness); the executor releases them.
        public var releaseAfter: [OutputRef]

        public init(node: String, releaseAfter: [OutputRef]) {
            self.node = node
            self.releaseAfter = releaseAfter
        }
    }

    /// Ancestors of output nodes only, in a deterministic dependency order.
    public var steps: [Step]
    /// Nodes of the graph that no output needs (pruned).
    public var pruned: [String]

    public init(steps: [Step], pruned: [String]) {
        self.steps = steps
        self.pruned = pruned
    }
}
