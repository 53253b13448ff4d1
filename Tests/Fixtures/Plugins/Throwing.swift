// A plugin whose registration throws after adding a pack: the host must register nothing of it.
import SanaGraphKit

struct Ready: Node {
    static let descriptor = NodeDescriptor(typeName: "throwing.ready", version: 1, summary: "never registered",
                                           hasSideEffects: true)
    func run(inputs: NodeInputs, params: ParamValues, context: RunContext) throws -> NodeOutputs { [:] }
}

enum ThrowingPack: NodePack {
    static let name = "Throwing"
    static let nodes: [any Node.Type] = [Ready.self]
}

struct MissingLicence: Error, CustomStringConvertible {
    var description: String { "licence file /nonexistent/licence.txt is missing" }
}

@_cdecl("sanagraph_plugin_entry")
public func sanagraphPluginEntry(_ request: UnsafeMutableRawPointer) -> Int32 {
    SanaGraphPlugin.answer(request) { registrar in
        registrar.add(ThrowingPack.self)
        throw MissingLicence()
    }
}
