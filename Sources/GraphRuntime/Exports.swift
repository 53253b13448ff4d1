// The engine's API uses the SDK's types (NodeRegistry, Value, ParamValue …) throughout.
@_exported import SanaGraphKit
