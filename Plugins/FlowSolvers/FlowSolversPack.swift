import SanaGraphKit
import DiffusionModels

/// Node pack for this plugin (registered by the CLI): flow samplers and latent noise.
public enum FlowSolversPack: NodePack {
    public static let name = "FlowSolvers"
    public static var nodes: [any Node.Type] {
        [FlowDPMSolverNode.self, FlowEulerNode.self, SCMNode.self, LatentNoiseNode.self, LatentMaskNode.self]
    }
    public static var socketTypes: [SocketType] { DiffusionSocketTypes.all + [.latentMask] }
}
