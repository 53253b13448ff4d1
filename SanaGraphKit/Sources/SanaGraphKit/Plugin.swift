#if canImport(Glibc)
import Glibc
#endif

/// The contract between `sanagraph` and a plugin library (a shared library loaded with `--plugin`).
///
/// A plugin exports one C function, `sanagraph_plugin_entry`, that hands its request to `SanaGraphPlugin.answer`:
///
/// ```swift
/// import SanaGraphKit
///
/// @_cdecl("sanagraph_plugin_entry")
/// public func sanagraphPluginEntry(_ request: UnsafeMutableRawPointer) -> Int32 {
///     SanaGraphPlugin.answer(request) { registrar in
///         registrar.add(GridPack.self)
///     }
/// }
/// ```
///
/// Swift has no stable ABI on Linux, so a plugin only works with a host built by the same compiler from the same
/// SDK. `answer` is inlined into the plugin, so it compares the versions the *plugin* was compiled with against
/// the host's before any Swift type crosses between them, and on a mismatch registers nothing.
public enum SanaGraphPlugin {
    /// The SDK's interface version. Bump it whenever a public type of SanaGraphKit, DiffusionModels, Tensors or
    /// Safetensors changes in a way that breaks compiled plugins.
    @inlinable public static var sdkVersion: Int { 1 }

    /// The exported symbol's name.
    public static let entryPointName = "sanagraph_plugin_entry"

    /// The C signature of the entry point.
    public typealias EntryPoint = @convention(c) (UnsafeMutableRawPointer) -> Int32

    /// Result codes of the entry point.
    public enum Status: Int32, Sendable {
        case registered = 0
        /// The plugin was built with another SDK version or compiler; nothing was registered.
        case versionMismatch = 1
        /// The plugin's registration closure threw; the message is in the request.
        case registrationFailed = 2
        /// The request did not carry the expected magic number.
        case badRequest = 3
    }

    /// The version of the Swift compiler that compiled the calling code, to patch level ("6.3.1").
    @inlinable public static var compilerVersion: StaticString {
            #if compiler(>=6.6)
            return ">=6.6"
            #elseif compiler(>=6.5.4)
            return "6.5.4"
            #elseif compiler(>=6.5.3)
            return "6.5.3"
            #elseif compiler(>=6.5.2)
            return "6.5.2"
            #elseif compiler(>=6.5.1)
            return "6.5.1"
            #elseif compiler(>=6.5)
            return "6.5.0"
            #elseif compiler(>=6.4.4)
            return "6.4.4"
            #elseif compiler(>=6.4.3)
            return "6.4.3"
            #elseif compiler(>=6.4.2)
            return "6.4.2"
            #elseif compiler(>=6.4.1)
            return "6.4.1"
            #elseif compiler(>=6.4)
            return "6.4.0"
            #elseif compiler(>=6.3.4)
            return "6.3.4"
            #elseif compiler(>=6.3.3)
            return "6.3.3"
            #elseif compiler(>=6.3.2)
            return "6.3.2"
            #elseif compiler(>=6.3.1)
            return "6.3.1"
            #elseif compiler(>=6.3)
            return "6.3.0"
            #elseif compiler(>=6.2.4)
            return "6.2.4"
            #elseif compiler(>=6.2.3)
            return "6.2.3"
            #elseif compiler(>=6.2.2)
            return "6.2.2"
            #elseif compiler(>=6.2.1)
            return "6.2.1"
            #elseif compiler(>=6.2)
            return "6.2.0"
            #elseif compiler(>=6.1.4)
            return "6.1.4"
            #elseif compiler(>=6.1.3)
            return "6.1.3"
            #elseif compiler(>=6.1.2)
            return "6.1.2"
            #elseif compiler(>=6.1.1)
            return "6.1.1"
            #elseif compiler(>=6.1)
            return "6.1.0"
            #elseif compiler(>=6.0.4)
            return "6.0.4"
            #elseif compiler(>=6.0.3)
            return "6.0.3"
            #elseif compiler(>=6.0.2)
            return "6.0.2"
            #elseif compiler(>=6.0.1)
            return "6.0.1"
            #elseif compiler(>=6.0)
            return "6.0.0"
            #else
            return "<6.0"
            #endif
    }

    /// Answers the host's request: checks versions, then runs `register` with a registrar whose packs the host
    /// registers (all of them or none) after the entry point returns. Call it from `sanagraph_plugin_entry`.
    @inlinable
    public static func answer(_ request: UnsafeMutableRawPointer,
                              register: (PluginRegistrar) throws -> Void) -> Int32 {
        // Only plain memory is touched until the versions are known to match.
        let slots = request.assumingMemoryBound(to: UInt64.self)
        guard slots[Slot.magic] == requestMagic else { return Status.badRequest.rawValue }
        let compiler = compilerVersion
        slots[Slot.pluginSDKVersion] = UInt64(sdkVersion)
        slots[Slot.pluginCompiler] = UInt64(UInt(bitPattern: compiler.utf8Start))
        let hostCompiler = UnsafePointer<CChar>(bitPattern: UInt(slots[Slot.hostCompiler]))
        guard slots[Slot.hostSDKVersion] == UInt64(sdkVersion), let hostCompiler,
              sameCString(hostCompiler, compiler) else {
            return Status.versionMismatch.rawValue
        }
        guard let registrarPointer = UnsafeMutableRawPointer(bitPattern: UInt(slots[Slot.registrar])) else {
            return Status.badRequest.rawValue
        }
        let registrar = Unmanaged<PluginRegistrar>.fromOpaque(registrarPointer).takeUnretainedValue()
        do {
            try register(registrar)
            return Status.registered.rawValue
        } catch {
            // A malloc'ed C string, freed by the host.
            slots[Slot.failure] = UInt64(UInt(bitPattern: strdup(String(describing: error))))
            return Status.registrationFailed.rawValue
        }
    }

    @inlinable
    static func sameCString(_ a: UnsafePointer<CChar>, _ b: StaticString) -> Bool {
        let bytes = b.utf8Start
        var i = 0
        while i < b.utf8CodeUnitCount {
            if UInt8(bitPattern: a[i]) != bytes[i] { return false }
            i += 1
        }
        return a[i] == 0
    }

    /// "SGPLUG01": the request layout below.
    @usableFromInline static var requestMagic: UInt64 { 0x5347_504C_5547_3031 }

    /// The request is eight 64-bit slots: magic, host SDK version, host compiler (C string), plugin SDK version
    /// (out), plugin compiler (out, C string in the plugin's image), registrar (Unmanaged), failure message (out,
    /// malloc'ed C string).
    @usableFromInline enum Slot {
        @usableFromInline static var magic: Int { 0 }
        @usableFromInline static var hostSDKVersion: Int { 1 }
        @usableFromInline static var hostCompiler: Int { 2 }
        @usableFromInline static var pluginSDKVersion: Int { 3 }
        @usableFromInline static var pluginCompiler: Int { 4 }
        @usableFromInline static var registrar: Int { 5 }
        @usableFromInline static var failure: Int { 6 }
    }

    /// What the host learns from calling a plugin's entry point.
    public struct Answer {
        public var status: Status?
        public var rawStatus: Int32
        public var pluginSDKVersion: Int
        public var pluginCompiler: String
        /// The packs to register (empty unless `status == .registered`).
        public var packs: [any NodePack.Type]
        /// The error the plugin's registration threw.
        public var failure: String?
    }

    /// Host side: calls `entry` with this host's versions and collects the answer.
    public static func call(_ entry: EntryPoint) -> Answer {
        let registrar = PluginRegistrar()
        let hostCompiler = compilerVersion
        var slots = [UInt64](repeating: 0, count: 8)
        slots[Slot.magic] = requestMagic
        slots[Slot.hostSDKVersion] = UInt64(sdkVersion)
        slots[Slot.hostCompiler] = UInt64(UInt(bitPattern: hostCompiler.utf8Start))
        slots[Slot.registrar] = UInt64(UInt(bitPattern: Unmanaged.passUnretained(registrar).toOpaque()))
        let raw = withExtendedLifetime(registrar) { slots.withUnsafeMutableBytes { entry($0.baseAddress!) } }
        let pluginCompiler = UnsafePointer<CChar>(bitPattern: UInt(slots[Slot.pluginCompiler]))
            .map { String(cString: $0) } ?? "unknown"
        var failure: String?
        if let message = UnsafeMutablePointer<CChar>(bitPattern: UInt(slots[Slot.failure])) {
            failure = String(cString: message)
            free(message)
        }
        let status = Status(rawValue: raw)
        return Answer(status: status, rawStatus: raw, pluginSDKVersion: Int(slots[Slot.pluginSDKVersion]),
                      pluginCompiler: pluginCompiler, packs: status == .registered ? registrar.packs : [],
                      failure: failure)
    }
}

/// Collects the packs a plugin registers. The host registers them after the entry point returns, all or none.
public final class PluginRegistrar: @unchecked Sendable {
    public private(set) var packs: [any NodePack.Type] = []

    @usableFromInline init() {}

    /// Adds a pack to register.
    public func add(_ pack: any NodePack.Type) { packs.append(pack) }
}
