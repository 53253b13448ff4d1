import DCAE
import FlowSolvers
import GraphRuntime
import ImageIO
import LinearDiT
import TensorIO
import TextEncoder
import Upscaler

/// The node packs built into the `sanagraph` binary. This is the only place that lists plugins.
enum BuiltinPacks {
    static var all: [any NodePack.Type] {
        [
            TensorIOPack.self,
            ImageIOPack.self,
            UpscalerPack.self,
            FlowSolversPack.self,
            LinearDiTPack.self,
            TextEncoderPack.self,
            DCAEPack.self,
        ]
    }

    /// A registry of every built-in node type, and the packs compiled in by a custom binary.
    static func registry() throws -> NodeRegistry {
        try NodeRegistry(packs: all + CompiledPacks.extra)
    }
}

/// Packs a custom binary adds through `SanaGraphCLI.main(extraPacks:)`; set once before any command runs.
enum CompiledPacks {
    nonisolated(unsafe) static var extra: [any NodePack.Type] = []
}
