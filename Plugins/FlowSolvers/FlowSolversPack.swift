import GraphRuntime

/// Node pack for this plugin (registered by the CLI).
public enum FlowSolversPack: NodePack {
    public static let name = "FlowSolvers"
    public static var nodes: [any Node.Type] { [] }
}
