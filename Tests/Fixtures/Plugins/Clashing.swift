// A plugin whose pack defines `image.save`, which the built-in ImageIO pack already defines.
import SanaGraphKit

struct ClashingSave: Node {
    static let descriptor = NodeDescriptor(typeName: "image.save", version: 1, summary: "clashes with ImageIO",
                                           hasSideEffects: true)
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs { [:] }
}

struct Harmless: Node {
    static let descriptor = NodeDescriptor(typeName: "clash.harmless", version: 1, summary: "never registered",
                                           hasSideEffects: true)
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs { [:] }
}

enum ClashingPack: NodePack {
    static let name = "Clashing"
    static let nodes: [any Node.Type] = [Harmless.self, ClashingSave.self]
}

@_cdecl("sanagraph_plugin_entry")
public func sanagraphPluginEntry(_ request: UnsafeMutableRawPointer) -> Int32 {
    SanaGraphPlugin.answer(request) { $0.add(ClashingPack.self) }
}
