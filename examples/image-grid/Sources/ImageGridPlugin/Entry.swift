import ImageGridNodes
import SanaGraphKit

/// The one symbol `sanagraph --plugin` looks for. `answer` checks that this library and the host were built from
/// the same SDK by the same compiler before anything is registered.
@_cdecl("sanagraph_plugin_entry")
public func sanagraphPluginEntry(_ request: UnsafeMutableRawPointer) -> Int32 {
    SanaGraphPlugin.answer(request) { registrar in
        registrar.add(ImageGridPack.self)
    }
}
