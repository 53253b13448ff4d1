import Foundation
import SanaGraphKit

#if canImport(Glibc)
import Glibc
#endif

/// Why a plugin library could not be loaded. All are exit 2: nothing runs with a half-loaded set of plugins.
public enum PluginError: CategorizedError, Equatable {
    /// The path names nothing (or a folder holds no plugin where one was expected).
    case notFound(path: String, origin: String)
    /// `dlopen` failed: not a shared library, a missing dependency, wrong architecture.
    case cannotOpen(path: String, reason: String)
    /// The library does not export `sanagraph_plugin_entry`.
    case noEntryPoint(path: String)
    /// The plugin was compiled against another SDK interface version.
    case sdkMismatch(path: String, plugin: Int, host: Int, pluginCompiler: String, hostCompiler: String)
    /// The plugin was compiled by another Swift compiler (no ABI stability on Linux).
    case compilerMismatch(path: String, plugin: String, host: String)
    /// The plugin's registration threw.
    case registrationFailed(path: String, message: String)
    /// The entry point answered something this host does not understand.
    case badAnswer(path: String, status: Int32)
    /// The plugin's packs clash with what is registered (duplicate node or pack names, conflicting socket types).
    case registration(path: String, error: NodeRegistry.RegistrationError)

    public var category: ErrorCategory { .invalidGraph }

    public var description: String {
        let rebuild = "rebuild the plugin with this sanagraph's toolchain and SDK: 'swift build -c release' in the "
            + "plugin's package, which depends on SanaGraphKit from the same SanaGraph checkout (docs/plugins.md)"
        switch self {
        case .notFound(let path, let origin):
            return "plugin \(path): no such file or folder (from \(origin))"
        case .cannotOpen(let path, let reason):
            return "plugin \(path): cannot be loaded: \(reason)"
        case .noEntryPoint(let path):
            return "plugin \(path): not a SanaGraph plugin: it exports no '\(SanaGraphPlugin.entryPointName)' "
                + "function (declare it with @_cdecl(\"\(SanaGraphPlugin.entryPointName)\"); docs/plugins.md)"
        case .sdkMismatch(let path, let plugin, let host, let pluginCompiler, let hostCompiler):
            return "plugin \(path): built for SanaGraphKit SDK version \(plugin) (Swift \(pluginCompiler)), but this "
                + "sanagraph has SDK version \(host) (Swift \(hostCompiler)); \(rebuild)"
        case .compilerMismatch(let path, let plugin, let host):
            return "plugin \(path): built with Swift \(plugin), but this sanagraph was built with Swift \(host), and "
                + "Swift has no stable ABI on Linux; \(rebuild)"
        case .registrationFailed(let path, let message):
            return "plugin \(path): its registration failed: \(message); nothing of it was registered"
        case .badAnswer(let path, let status):
            return "plugin \(path): its entry point returned \(status), which this sanagraph does not understand; "
                + rebuild
        case .registration(let path, let error):
            return "plugin \(path): \(error); nothing of it was registered"
        }
    }
}

/// Loads plugin libraries into a registry: `--plugin PATH` (a library or a folder of them) and the folders in
/// `SANAGRAPH_PLUGIN_PATH` (colon-separated). Each library's packs are registered whole or not at all, after its
/// SDK and compiler versions were checked. Libraries are never unloaded (Swift images can't be).
public enum PluginLoader {
    /// The environment variable naming plugin folders.
    public static let environmentVariable = "SANAGRAPH_PLUGIN_PATH"

    /// Plugin library files to load, in order: each explicit path (a library file, or every `*.so` in a folder,
    /// sorted), then every `*.so` in the environment's folders. The same file (by real path) is listed once.
    /// - Throws: `PluginError.notFound` for an explicit path that does not exist (environment folders that
    ///   don't exist are skipped: the variable is often set system-wide).
    public static func libraryPaths(explicit: [String], environment: String?) throws(PluginError) -> [String] {
        var result: [String] = []
        var seen = Set<String>()
        func add(_ path: String) {
            let real = realPath(path) ?? path
            if seen.insert(real).inserted { result.append(path) }
        }
        func libraries(inFolder folder: String) -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
            return names.filter { $0.hasSuffix(".so") && !$0.hasPrefix(".") && $0 != "libSanaGraphKit.so" }
                .sorted().map { folder.hasSuffix("/") ? folder + $0 : folder + "/" + $0 }
        }
        for path in explicit {
            var isDirectory: ObjCBool = false
            guard !path.isEmpty, FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw .notFound(path: path, origin: "--plugin")
            }
            if isDirectory.boolValue { libraries(inFolder: path).forEach(add) } else { add(path) }
        }
        for folder in (environment ?? "").split(separator: ":").map(String.init) where !folder.isEmpty {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue
            else { continue }
            libraries(inFolder: folder).forEach(add)
        }
        return result
    }

    /// Opens `path`, checks the plugin's versions and registers its packs into `registry` (all or nothing).
    public static func load(_ path: String, into registry: inout NodeRegistry) throws(PluginError) {
        guard let handle = dlopen(path.contains("/") ? path : "./" + path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw .cannotOpen(path: path, reason: reason)
        }
        guard let symbol = dlsym(handle, SanaGraphPlugin.entryPointName) else { throw .noEntryPoint(path: path) }
        let entry = unsafeBitCast(symbol, to: SanaGraphPlugin.EntryPoint.self)
        let answer = SanaGraphPlugin.call(entry)
        switch answer.status {
        case .registered?:
            break
        case .versionMismatch?:
            let hostCompiler = "\(SanaGraphPlugin.compilerVersion)"
            if answer.pluginSDKVersion != SanaGraphPlugin.sdkVersion {
                throw .sdkMismatch(path: path, plugin: answer.pluginSDKVersion, host: SanaGraphPlugin.sdkVersion,
                                   pluginCompiler: answer.pluginCompiler, hostCompiler: hostCompiler)
            }
            throw .compilerMismatch(path: path, plugin: answer.pluginCompiler, host: hostCompiler)
        case .registrationFailed?:
            throw .registrationFailed(path: path, message: answer.failure ?? "no message")
        case .badRequest?, nil:
            throw .badAnswer(path: path, status: answer.rawStatus)
        }
        var next = registry
        do {
            for pack in answer.packs { try next.register(pack: pack, origin: .library(path: realPath(path) ?? path)) }
        } catch {
            throw .registration(path: path, error: error)
        }
        registry = next
    }

    /// Loads every library `libraryPaths` lists, in order, into `registry`.
    public static func loadAll(explicit: [String], environment: String?,
                               into registry: inout NodeRegistry) throws(PluginError) {
        for path in try libraryPaths(explicit: explicit, environment: environment) {
            try load(path, into: &registry)
        }
    }

    private static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
